"""Each rule reads its own effective date where one text states several measures' dates."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CORPUS, need_shared
from tradewatch.matching import Rulebook, load_rulebook
from tradewatch.matching.backtest import read_documents
from tradewatch.models import Document

PUBLISHED = datetime(2025, 4, 4, 9, 0, tzinfo=UTC)
SHIPPED = Path(__file__).resolve().parents[2] / "rules"


def _rule(rule_id: str, tag: str, match: Any) -> dict[str, Any]:
    return {"id": rule_id, "title": rule_id, "tags": [tag], "match": match, "extract": ["effective_date"]}


@pytest.fixture(params=["hyperscan", "python"])
def book(request: pytest.FixtureRequest, tmp_path: Path) -> Rulebook:
    rules = [
        _rule("tariffs", "tariff-change", {"any": ["tariff*"]}),
        _rule("duties", "tariff-change", {"any": ["duty", "duties"]}),
        _rule("controls", "export-control", {"any": ["export control*", "samarium", "gallium"]}),
        _rule("controls-by-regex", "export-control", {"regex": r"export controls?\b"}),
    ]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"rules": rules}), encoding="utf-8")
    return load_rulebook(tmp_path, backend=request.param)


def _dates(book: Rulebook, text: str, title: str = "Trade measures") -> dict[str, str | None]:
    doc = Document(title=title, text=text, published_at=PUBLISHED)
    return {m.rule: m.facts.get("effective_date") for m in book.match(doc)}


def test_each_rule_takes_the_date_stated_beside_its_own_terms(book: Rulebook) -> None:
    """The tariff's date stays the tariff's; the controls' date is the one by the controls."""
    dates = _dates(
        book,
        "China imposes 34% tariffs on U.S. goods starting April 10. "
        "Effective April 4, samarium will be subject to export controls.",
    )
    assert dates["tariffs"] == "2025-04-10"
    assert dates["controls"] == "2025-04-04"


def test_a_date_stated_only_for_another_measure_is_not_a_rules_own(book: Rulebook) -> None:
    """Controls announced without a date do not take the tariff's date."""
    dates = _dates(
        book,
        "China imposes 34% tariffs on U.S. goods starting April 10. "
        "Beijing will also tighten export controls on rare earths.",
    )
    assert dates["tariffs"] == "2025-04-10"
    assert dates["controls"] is None
    # a rule of the same kind of measure shares the date ("duties" beside "tariffs")
    both = _dates(book, "China imposes 34% tariffs and duties on U.S. goods starting April 10.")
    assert both["tariffs"] == both["duties"] == "2025-04-10"


def test_a_rule_of_regexes_alone_keeps_the_texts_date(book: Rulebook) -> None:
    """Without index terms a rule has no sentence of its own, so no other rule takes its date."""
    dates = _dates(
        book,
        "China imposes 34% tariffs on U.S. goods starting April 10. "
        "Beijing will also tighten export controls.",
    )
    assert dates["controls-by-regex"] == "2025-04-10"


def test_immediate_effect_beside_the_rules_terms_wins_over_another_measures_date(book: Rulebook) -> None:
    dates = _dates(
        book,
        "Tariffs of 34% apply starting April 10; export controls on gallium take effect immediately.",
    )
    assert dates["tariffs"] == "2025-04-10"
    assert dates["controls"] == "2025-04-04"


def test_a_date_in_a_sentence_of_no_rules_terms_is_every_rules(book: Rulebook) -> None:
    """A notice whose date sentence names no measure ("This announcement takes effect on …")."""
    dates = _dates(
        book,
        "New export controls on gallium items. New tariffs of 10%. "
        "This announcement takes effect on May 1, 2025.",
    )
    assert dates["controls"] == dates["tariffs"] == "2025-05-01"


def test_shipped_rules_on_a_report_of_two_measures() -> None:
    """ev-0165: 34% tariffs from 10 April, samarium and dysprosium controls effective 4 April."""
    rulebook = load_rulebook(SHIPPED)
    lines = need_shared(CORPUS / "documents.jsonl").read_text(encoding="utf-8").splitlines()
    doc = next(d for d in read_documents(lines) if d.id == "ev-0165")
    facts = {m.rule: m.facts for m in rulebook.match(doc)}
    assert facts["us-china-tariff-change-headline"]["effective_date"] == "2025-04-10"
    assert facts["china-export-control-news"]["effective_date"] == "2025-04-04"


def test_a_headline_is_a_sentence_of_its_own(book: Rulebook) -> None:
    """A title without a full stop does not lend its terms to the text's first sentence."""
    dates = _dates(book, "It imposes 34% tariffs starting April 10.", title="China tightens export controls")
    assert dates["tariffs"] == "2025-04-10"
    assert dates["controls"] is None
