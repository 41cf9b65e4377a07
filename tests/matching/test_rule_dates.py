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
        _rule("tariffs", "tariff-change", {"glossary": "tariff"}),
        _rule("duties", "tariff-change", {"any": ["duty", "duties"]}),
        _rule("controls", "export-control", {"any": [{"glossary": "export-control"}, "samarium", "gallium"]}),
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
    assert dates["controls"] is None


def test_immediate_effect_beside_the_rules_terms_wins_over_another_measures_date(book: Rulebook) -> None:
    dates = _dates(
        book,
        "Tariffs of 34% apply starting April 10; export controls on gallium take effect immediately.",
    )
    assert dates["tariffs"] == "2025-04-10"
    assert dates["controls"] == "2025-04-04"


def test_a_date_in_a_sentence_of_no_rules_terms_is_every_rules(book: Rulebook) -> None:
    """A notice whose date sentence names no measure ("This announcement takes effect on …"),
    however many measures the others name."""
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


def test_a_weekday_beside_the_rules_measure_counts_when_another_measures_date_does_not(
    book: Rulebook,
) -> None:
    dates = _dates(
        book, "China imposes 34% tariffs starting April 10. Its export controls take effect from Sunday."
    )
    assert dates["tariffs"] == "2025-04-10"
    assert dates["controls"] == "2025-04-06"  # the Sunday after Friday 4 April


def test_each_rule_takes_the_weekday_stated_for_its_own_measure(book: Rulebook) -> None:
    text = "Export controls on gallium take effect from Sunday. The tariff change takes effect from Monday."
    dates = _dates(book, text)
    assert dates["controls"] == "2025-04-06"
    assert dates["tariffs"] == "2025-04-07"


SHIPPED_CASES: list[tuple[str, str, str, str, str, str | None]] = [
    # (source, title, text, published, rule, effective date)
    (
        "tariff-commission",
        "国务院关税税则委员会关于调整对原产于美国的进口商品加征关税措施的公告",
        "税委会公告2025年第7号 经国务院批准，在一年内继续暂停实施24%的对美加征关税税率，保留10%的税率。"
        "上述措施自2025年11月10日13时01分起执行，为期一年。",
        "2025-11-05T17:00:00+08:00",
        "china-tariff-commission-notice",
        "2025-11-10",
    ),
    (
        "mofcom-exportcontrol",
        "商务部公告2025年第9号 关于对部分关键矿产相关物项实施出口管制的公告",
        "鉴于美方对原产于中国的进口商品加征10%关税，根据《中华人民共和国出口管制法》有关规定，决定对钨、碲、铋、钼、铟"
        "相关物项实施出口管制。本公告自2025年2月10日起正式实施。",
        "2025-02-04T10:00:00+08:00",
        "mofcom-export-control-notice",
        "2025-02-10",
    ),
    (
        "mofcom",
        "商务部新闻发言人答记者问",
        "中方将暂停实施10月9日公布的相关出口管制等措施一年，并研究细化具体方案。上述措施自2025年11月10日起实施。",
        "2025-11-05T10:00:00+08:00",
        "mofcom-export-control-notice",
        "2025-11-10",
    ),
    (
        "mofcom-en",
        "China announces countermeasures: export controls on gallium items and tariffs on US goods",
        "China imposes 15% tariffs on U.S. coal. New export controls on gallium items. "
        "This announcement takes effect on May 1, 2025.",
        "2025-04-20T10:00:00+00:00",
        "mofcom-export-control-notice",
        "2025-05-01",
    ),
    (
        "news",
        "Trump threatens 100% tariff on China after Beijing expands rare earth export controls",
        "The US will impose an additional 100% tariff on imports from China starting November 1. "
        "Beijing's new rules on rare earth exports take effect on December 1.",
        "2025-10-11T10:00:00+00:00",
        "china-export-control-news",
        "2025-12-01",
    ),
]


SHIPPED_CASES += [
    # a background date beside the rule's own kind of measure does not beat the notice's date
    (
        "tariff-commission",
        "国务院关税税则委员会关于调整对原产于美国的进口商品加征关税措施的公告",
        "税委会公告2025年第7号 自2025年11月10日13时01分起，停止执行税委会公告2025年第2号规定的加征关税措施。"
        "美方自4月5日起实施的所谓对等关税中，24%部分继续暂停一年。",
        "2025-11-05T17:00:00+08:00",
        "china-tariff-commission-notice",
        "2025-11-10",
    ),
    (
        "whitehouse",
        "Modifying Duties Addressing the Synthetic Opioid Supply Chain in the People's Republic of China",
        "The United States will reduce the tariffs on Chinese imports designed to curb the flow of fentanyl "
        "by 10 percentage points, effective November 10, 2025. The 10 percent reciprocal tariff that took "
        "effect on April 5 remains in place for China.",
        "2025-11-01T12:00:00+00:00",
        "us-tariff-action-official",
        "2025-11-10",
    ),
    (
        "mofcom",
        "商务部公告 关于对境外相关稀土物项实施出口管制的决定",
        "一、自2025年12月1日起，对境外相关稀土物项实施出口管制。二、商务部此前已于2025年10月9日起对相关两用物项实施出口管制。",
        "2025-10-09T10:00:00+08:00",
        "mofcom-export-control-notice",
        "2025-12-01",
    ),
    # export licences are the export controls' kind of measure: their date is the controls' date
    (
        "mofcom",
        "商务部 海关总署公告2023年第23号 关于对镓、锗相关物项实施出口管制的公告",
        "根据《中华人民共和国出口管制法》有关规定，决定对镓、锗相关物项实施出口管制。"
        "出口经营者应自2023年8月1日起向商务部申请出口许可。",
        "2023-07-03T10:00:00+08:00",
        "mofcom-export-control-notice",
        "2023-08-01",
    ),
    # a measure no shipped rule names (the unreliable entity list) is still another measure
    (
        "news",
        "China adds US firms to unreliable entity list, tightens export controls",
        "China added 11 US firms to its unreliable entity list effective April 4. "
        "Beijing will also tighten export controls on rare earths.",
        "2025-04-04T10:00:00+00:00",
        "china-export-control-news",
        None,
    ),
    # a weekday stated for another kind of measure is not the rule's either
    (
        "news",
        "China imposes 34% tariffs on U.S. goods",
        "China imposes 34% tariffs on U.S. goods. Its export controls on rare earth magnets take effect "
        "from Sunday.",
        "2025-04-04T10:00:00+00:00",
        "us-china-tariff-change-headline",
        None,
    ),
]


@pytest.mark.parametrize(("source", "title", "text", "published", "rule", "expected"), SHIPPED_CASES)
def test_shipped_rules_keep_an_official_notices_date(
    source: str, title: str, text: str, published: str, rule: str, expected: str | None
) -> None:
    """A date sentence that names no measure ("上述措施自…起执行", "This announcement takes effect
    on …") stays every rule's: an official notice keeps the date its deadline reminds from."""
    doc = Document(title=title, text=text, source=source, published_at=datetime.fromisoformat(published))
    facts = {m.rule: m.facts for m in load_rulebook(SHIPPED).match(doc)}
    assert facts[rule].get("effective_date") == expected
