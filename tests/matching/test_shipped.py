"""The shipped rulebook: valid, its examples pass, its vocabulary and truce deadlines as the contract says."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.conftest import ROOT
from tradewatch.matching import Rulebook, check_rules, load_rulebook, run_examples
from tradewatch.models import Document

RULES = ROOT / "rules"
VOCABULARY = {"export-control", "export-license", "tariff-change", "truce", "trade-talks"}


@pytest.fixture(scope="module", params=["hyperscan", "python"])
def rulebook(request: pytest.FixtureRequest) -> Rulebook:
    """The shipped rulebook on each backend."""
    return load_rulebook(RULES, backend=request.param)


def test_shipped_rules_check_clean() -> None:
    """`rules check` finds nothing wrong in rules/, also against the default routes."""
    assert check_rules(RULES) == []
    assert check_rules(RULES, slack_routes={"default", "critical"}) == []


def test_shipped_examples_pass(rulebook: Rulebook) -> None:
    """Every inline example of every shipped rule passes on each backend."""
    assert run_examples(rulebook) == []


def test_every_tag_is_covered_and_known(rulebook: Rulebook) -> None:
    """Each contract tag has rules, and shipped rules use only contract tags."""
    used = {tag for rule in rulebook.rules for tag in rule.tags}
    assert used == VOCABULARY


def test_truce_deadlines_follow_the_history(rulebook: Rulebook) -> None:
    """Geneva truce to 2025-08-12, extended to 2025-11-10, then to 2026-11-10, each cancellable."""
    due = sorted(d.due.astimezone(UTC).date().isoformat() for d in rulebook.deadlines if "truce" in d.tags)
    assert due == ["2025-08-12", "2025-11-10", "2026-11-10"]
    for deadline in rulebook.deadlines:
        assert deadline.cancelled_by
        assert deadline.remind
        for rule_id in deadline.cancelled_by:
            assert rulebook.rule(rule_id).tags == ["truce"]


def test_only_official_sources_raise_critical_without_a_strong_signal(rulebook: Rulebook) -> None:
    """A market-research press release using every alarming word is never above info."""
    doc = Document(
        source="prnewswire",
        title="Rare Earth Magnets Market to Reach $30 Billion by 2032 amid China export controls: Research",
        text="The rare earth magnets market (NYSE: XYZ peers) is expected to grow as China's export controls "
        "on rare earths and 145% US tariffs on Chinese goods reshape supply chains, analysts said. "
        "Investors should watch the stock price of magnet makers.",
        published_at=datetime(2025, 6, 1, tzinfo=UTC),
    )
    assert all(m.severity == "info" for m in rulebook.match(doc)), rulebook.match(doc)


def test_match_records_follow_the_contract(rulebook: Rulebook) -> None:
    """A match carries doc_id, rule, title, tags, severity and facts with contract keys."""
    doc = Document(
        id="mofcom-61",
        source="mofcom-announcements",
        title="商务部公告2025年第61号 公布对境外相关稀土物项实施出口管制的决定",
        text="对钐、镝相关物项实施出口管制。本公告自2025年12月1日起正式实施。",
        published_at=datetime(2025, 10, 9, 12, tzinfo=UTC),
    )
    matches = {m.rule: m for m in rulebook.match(doc)}
    notice = matches["mofcom-export-control-notice"]
    assert notice.severity == "critical"
    assert notice.tags == ["export-control"]
    assert notice.doc_id == "mofcom-61"
    assert notice.facts["announcement"] == "MOFCOM Announcement No. 61 of 2025"
    assert notice.facts["effective_date"] == "2025-12-01"
    assert notice.facts["items"][:2] == ["rare earths", "samarium"]
