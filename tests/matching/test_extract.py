"""Extractors on real sentences: dates, effective dates, rates, announcements, items, HS codes, countries."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import CORPUS, need_shared
from tradewatch.matching import extract_facts, lead_line, load_rulebook
from tradewatch.matching.backtest import read_documents
from tradewatch.matching.compiler import term_literal
from tradewatch.matching.dates import all_dates, chinese_number, effective_date
from tradewatch.matching.extract import (
    _LabelFinder,
    announcement,
    glossary_labels,
    hs_codes,
    plain_text,
)
from tradewatch.matching.glossary import Glossary, GlossaryEntry
from tradewatch.matching.lead import _shipped_glossary
from tradewatch.matching.normalize import normalize
from tradewatch.matching.rates import rates
from tradewatch.matching.scan import PythonScanner
from tradewatch.models import Document

EDGE = Path(__file__).parents[1] / "corpus"

BEIJING = timezone(timedelta(hours=8))
PUBLISHED = datetime(2025, 10, 9, 20, 0, tzinfo=BEIJING)


@pytest.fixture(scope="module")
def glossary() -> Glossary:
    """The shipped glossary."""
    return _shipped_glossary()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("本公告自2025年12月1日起正式实施。", "2025-12-01"),
        ("自2025年4月10日12时01分起，对原产于美国的进口商品加征关税。", "2025-04-10"),
        ("自2025年11月10日13时01分起，停止实施加征关税措施", "2025-11-10"),
        ("The extra tariffs will be effective from April 10, 2025.", "2025-04-10"),
        ("The rule takes effect on Nov. 1.", "2025-11-01"),
        ("This order is effective at 12:01 a.m. eastern daylight time on May 14, 2025.", "2025-05-14"),
        ("China will impose a 34% tariff on all U.S. goods beginning April 10.", "2025-04-10"),
        ("本公告自公布之日起实施。", "2025-10-09"),
        ("This announcement took effect upon its release.", "2025-10-09"),
        ("The talks were held on May 10 and May 11.", None),
        ("The suspension takes effect from Sunday until Nov 27, 2026.", "2025-10-12"),
        ("The new rates are effective tomorrow.", "2025-10-10"),
        # the Federal Register's wording, a time of day between keyword and date
        (
            "shall apply to goods entered for consumption, or withdrawn from warehouse for consumption, "
            "on or after 12:01 a.m. eastern daylight time on April 10, 2025.",
            "2025-04-10",
        ),
        ("The pause is effective as of 12:01 a.m. eastern daylight time on August 12, 2025.", "2025-08-12"),
        ("This order is effective upon signature.", "2025-10-09"),
        ("自公布之日起至2026年11月10日暂停实施。", "2025-10-09"),
        # a strong keyword beats an earlier weak one in the same sentence, not in a later one
        ("Tariffs doubled from March 4 will be cut to 10% effective Nov. 10.", "2025-11-10"),
        (
            "China will suspend the controls from November 10. The controls, which took effect on "
            "October 9, covered five elements.",
            "2025-11-10",
        ),
        ("Duties doubled from March 4, U.S. Customs said, and drop to 10% effective Nov. 10.", "2025-11-10"),
        # "immediate effect" beats a date after a weak keyword ("as of" a price quote)
        ("The directive takes immediate effect. Prices as of October 2 rose 5%.", "2025-10-09"),
        (
            "China will impose a 34% tariff starting October 20. Separately, export controls on "
            "seven rare earths take effect immediately.",
            "2025-10-20",
        ),
        # when people meet is not when a measure starts; a measure agreed at talks keeps its date
        ("He Lifeng will lead the delegation during talks scheduled from October 27 to 30.", None),
        ("The talks agreed that the 24% tariff is suspended starting November 10.", "2025-11-10"),
        ("Officials said Monday. Talks are scheduled from October 27 to 30.", None),
        (
            "Both sides held talks in Geneva. Tariffs agreed at the talks apply from November 14.",
            "2025-11-14",
        ),
        (
            "After talks in Geneva, the U.S. said that from November 14 it will cut tariffs to 30%.",
            "2025-11-14",
        ),
    ],
)
def test_effective_date(text: str, expected: str | None) -> None:
    """The date a measure takes effect, resolved against the document's date and timezone."""
    assert effective_date(text, PUBLISHED) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a yearless date told as done is past, even when next year's is nearer
        ("The reciprocal tariff took effect on April 5.", "2025-04-05"),
        ("The controls, which went into effect on April 4, stay.", "2025-04-04"),
        # told as done, it is a weak keyword: a strong one later in its sentence wins
        ("The tariffs, which took effect on April 5, will be cut to 10% effective Nov. 10.", "2025-11-10"),
        # a date to come keeps the nearest year, also after a "took effect" of something else
        ("The reciprocal tariff takes effect on April 5.", "2026-04-05"),
        ("The 20% duty that took effect in March drops to 10% as of November 10.", "2025-11-10"),
        # news after the fact keeps the measure's date over a later weak one
        (
            "The export controls took effect on October 9. Applications received as of October 28 "
            "will be processed.",
            "2025-10-09",
        ),
        # the next day in Beijing is not last year
        ("China's suspension took effect on November 2, Beijing time.", "2025-11-02"),
        # what would have taken effect, or will once something has, is not done
        ("The tariff, which would have taken effect on November 10, is suspended.", None),
        ("Once the deal has taken effect on December 1, tariffs fall to 10%.", None),
    ],
)
def test_a_date_told_as_done_is_past_and_weak(text: str, expected: str | None) -> None:
    assert effective_date(text, datetime(2025, 11, 1, 12, tzinfo=UTC)) == expected


def test_a_coming_date_after_a_past_one_keeps_its_year() -> None:
    text = "The tariffs, which took effect Friday, will rise again on November 10."
    assert all_dates(text, datetime(2025, 11, 5, 12, tzinfo=UTC)) == ["2025-11-10"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a.m./p.m. before a time zone is no sentence end; before a new sentence it is
        ("It takes effect at 12:01 a.m. Eastern Standard Time on November 10, 2025.", "2025-11-10"),
        (
            "Tariffs of 34% will apply starting April 10 at 12:01 p.m. The US tariffs, effective April 5, "
            "violate WTO rules.",
            "2025-04-10",
        ),
    ],
)
def test_a_time_before_its_zone_does_not_end_a_sentence(text: str, expected: str) -> None:
    assert effective_date(text, datetime(2025, 4, 4, 12, tzinfo=UTC)) == expected


def test_one_instant_in_two_timezones_is_read_on_each_ones_day() -> None:
    """A date is read on the document's own day: 5 January 12:00 in Beijing is 4 January 23:00 in
    New York, and "July 6" is nearest in different years."""
    text = "Tariffs take effect July 6."
    beijing = datetime(2025, 1, 5, 12, tzinfo=timezone(timedelta(hours=8)))
    new_york = datetime(2025, 1, 4, 23, tzinfo=timezone(timedelta(hours=-5)))
    assert beijing == new_york
    assert effective_date(text, new_york) == "2024-07-06"
    assert effective_date(text, beijing) == "2025-07-06"


def test_effective_date_uses_the_documents_own_timezone() -> None:
    """ "From the date of publication" is the publication date in the document's own timezone."""
    late_evening = datetime(2025, 4, 4, 23, 30, tzinfo=BEIJING)  # still 4 April in Beijing, 15:30 UTC
    assert effective_date("本公告自公布之日起施行。", late_evening) == "2025-04-04"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "The individualized rates include 34% for China, 20% for the European Union, 46% for Vietnam, "
            "24% for Japan.",
            [34],
        ),
        ("美国对越南商品加征46%关税，对中国加征34%。", [34]),
        ("Tariffs on Chinese goods fall from 145% to 30%; the EU's 20% rate stays.", [145, 30]),
        ("A 25% tariff on imports from Canada and a 10% duty on China.", [10]),
        # a rate that covers China too stays
        ("美国对欧盟和中国加征20%关税", [20]),
        ("25% tariffs on Canada, Mexico and China.", [25]),
        ("对越南加征百分之四十六的关税，对中国加征百分之三十四", [34]),
        ("US tariffs on China: a 10% fentanyl duty and a 34% reciprocal tariff.", [10, 34]),
        ("Trump Imposes 10% Universal Tariff, India To Face 'Discounted' 26% Tariff From US", [10]),
        ("Vietnam gets a 46% tariff, China a 34% one.", [34]),
        ("India and China face 26% tariffs", [26]),
    ],
)
def test_rates_of_a_third_country_are_left_out(glossary: Glossary, text: str, expected: list[int]) -> None:
    """The rates of a US–China alert are its rates, not those a fact sheet lists for the EU or Japan."""
    assert extract_facts(["rates"], Document(title="t", text=text), glossary)["rates"] == expected


@pytest.mark.parametrize(
    ("published", "text", "expected"),
    [
        (datetime(2025, 12, 29, tzinfo=BEIJING), "自1月1日起施行。", "2026-01-01"),
        (datetime(2026, 1, 5, tzinfo=BEIJING), "The duties took effect on Dec. 20.", "2025-12-20"),
        (datetime(2025, 8, 15, tzinfo=BEIJING), "The rates applied from March 4.", "2025-03-04"),
        (datetime(2025, 4, 2, tzinfo=BEIJING), "Effective April 9, the rates rise.", "2025-04-09"),
        (datetime(2025, 6, 20, tzinfo=BEIJING), "The new duties take effect on October 1.", "2025-10-01"),
        (datetime(2025, 7, 20, tzinfo=BEIJING), "The truce is extended, effective Nov. 10.", "2025-11-10"),
        (datetime(2025, 11, 4, tzinfo=BEIJING), "The new duties take effect Feb. 1.", "2026-02-01"),
    ],
)
def test_a_date_without_a_year_takes_the_year_near_the_document(
    published: datetime, text: str, expected: str
) -> None:
    """The reading nearest the document's date: "from 1 January" in late December is next year's."""
    assert effective_date(text, published) == expected


def test_this_year_and_last_year_count_from_the_documents_year() -> None:
    """今年4月2日 in a notice of 9 October is this April, not next; 去年/明年 likewise."""
    text = "今年4月2日，美国宣布加征关税。去年12月1日起实施的措施，明年1月1日起停止。"
    assert all_dates(text, PUBLISHED) == ["2025-04-02", "2024-12-01", "2026-01-01"]


def test_all_dates_in_order_without_repeats() -> None:
    """Every date mentioned, Chinese and English, in order of first mention."""
    text = "2025年4月4日，商务部宣布……自4月10日起实施。On April 4, 2025 MOFCOM said; 二〇二五年十月九日"
    assert all_dates(text, PUBLISHED) == ["2025-04-04", "2025-04-10", "2025-10-09"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("三十四", 34),
        ("一百四十五", 145),
        ("十", 10),
        ("二〇二五", 2025),
        ("24", 24),
        ("abc", None),
    ],
)
def test_chinese_number(text: str, expected: int | None) -> None:
    """Chinese numerals, positional and digit-by-digit."""
    assert chinese_number(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("在现行适用关税税率基础上加征34%关税", [34]),
        ("US tariffs will be cut from 145% to 30%", [145, 30]),
        ("an additional 25 per cent tariff; a 10 percent duty", [25, 10]),
        ("加征税率由百分之八十四提高至百分之一百二十五", [84, 125]),
        ("tariffs of 7.5% remain", [7.5]),
        ("24 percentage points", []),
        ("US to cut tariffs on Chinese goods to 47 pc from 57 pc", [47, 57]),
        ("a 10-percent levy and a 20 pct duty; 500 pcs shipped", [10, 20]),
        # a rate is a measure's only when its sentence speaks of one
        ("Trump threatens 100% tariffs. The S&P 500 dropped 2.7% and Nvidia lost nearly 5%.", [100]),
        ("China supplies more than 90% of the world's rare earths.", []),
        ("keeps U.S. tariffs at 30% and Chinese tariffs on U.S. goods at 10%", [30, 10]),
        ("China will lower its import tax on American goods to 10 percent from 125 percent.", [10, 125]),
        ("价值比例达到0.1%及以上的；控股50%及以上的子公司", [0.1, 50]),
        ("稀土精矿交易价环比上涨了37%。", []),
        ("Trump orders an additional 10% on all imports from China", [10]),
        # a market or trade figure moving beside a tariff in the same sentence
        ("The Nasdaq fell 3.6% while Trump announced tariffs of 25% on Canada, Mexico and China.", [25]),
        ("the S&P 500 dropped 2.7% after Trump threatened a 100% tariff on Chinese goods", [100]),
        ("exports rose 5% despite the 10% duties", [10]),
        ("股指下跌2%，美国对华加征关税34%", [34]),
        ("Tariffs rose to 145% on Chinese goods; tariffs on Chinese imports rose to 125%", [145, 125]),
        # …but a tariff that moves is a rate, whatever the sentence's other words
        ("Tariffs on Chinese imports increased by 10% on Tuesday.", [10]),
        ("Trump said tariffs on Chinese imports would rise by 10% next month.", [10]),
        ("Duties on Canadian imports jumped 25% overnight.", [25]),
        ("对美进口商品关税上涨25%", [25]),
        ("As tariffs bit, exports fell 5% and the 25% duty stayed", [25]),
    ],
)
def test_rates(text: str, expected: list[float]) -> None:
    """Percentages of tariffs and controls in order of mention, without repeats; percentage
    points are not rates, nor are market moves and shares."""
    assert rates(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "商务部 海关总署公告2025年第18号 关于对部分中重稀土相关物项实施出口管制的决定",
            "MOFCOM Announcement No. 18 of 2025",
        ),
        (
            "商务部公告2025第61号 公布对境外相关稀土物项实施出口管制的决定",
            "MOFCOM Announcement No. 61 of 2025",
        ),
        ("MOFCOM Announcement No. 18 of 2025 on heavy rare earths", "MOFCOM Announcement No. 18 of 2025"),
        (
            "税委会公告2025年第4号 国务院关税税则委员会关于对原产于美国的进口商品加征关税的公告",
            "Tariff Commission Announcement No. 4 of 2025",
        ),
        ("中國商務部與海關總署7日聯合發布公告（2025）第70號", "MOFCOM Announcement No. 70 of 2025"),
        (
            "China's Ministry of Commerce and the General Administration of Customs jointly issued "
            "Announcement No. 70 of 2025",
            "MOFCOM Announcement No. 70 of 2025",
        ),
        ("Executive Order 14298 of May 12, 2025", "Executive Order 14298"),
        (
            "as in Announcement No. 4 of the Customs Tariff Commission of the State Council for 2025",
            "Tariff Commission Announcement No. 4 of 2025",
        ),
        ("停止实施《关于对原产于美国的部分进口商品加征关税的公告》（税委会公告2025年第2号）", None),
        (
            "税委会公告2025年第8号 停止实施《加征关税的公告》（税委会公告2025年第2号）",
            "Tariff Commission Announcement No. 8 of 2025",
        ),
        # the notice acted on is not this one: a suspension is keyed by its own number, or by none
        (
            "商务部公告2025年第70号 关于暂停实施商务部公告2025年第61号的公告",
            "MOFCOM Announcement No. 70 of 2025",
        ),
        (
            "China's commerce ministry said it would suspend the implementation of MOFCOM Announcement "
            "No. 61 of 2025, which extended its controls, until Nov. 10, 2026, "
            "under Announcement No. 70 of 2025.",
            "MOFCOM Announcement No. 70 of 2025",
        ),
        ("China lifted MOFCOM Announcement No. 61 of 2025 for a year.", None),
        (
            "Sec. 1. In Executive Order 14257 of April 2, 2025, I declared a national emergency. "
            "This order raises the rate to 84 percent.",
            None,
        ),
        # the Geneva joint statement, the Message to Congress and a Chinese report only cite these
        (
            "China will modify the application of its additional ad valorem duty on U.S. goods as set "
            "forth in Announcement No. 4 of the Customs Tariff Commission of the State Council for 2025",
            None,
        ),
        ("並取消根據稅委會公告2025年第5號和第6號對這些商品的加徵關稅", None),
        (
            "Message to the Congress on Modifying Reciprocal Tariff Rates\n"
            + "The tariffs described below apply to goods of the People's Republic of China. " * 4
            + "Section 4(b) of Executive Order 14257 provided that the rates may change. "
            "Since I signed Executive Order 14266 of April 9, 2025, talks went on.",
            None,
        ),
        ("国务院令〔2024〕792号 中华人民共和国两用物项出口管制条例", "State Council Order No. 792"),
        ("国务院令第792号", "State Council Order No. 792"),
        # a list of suspended notices is cited to its end (the real No. 70 title)
        ("关于暂停实施商务部公告2025年第55号、56号、57号、58号及商务部公告2025年第61号、62号的公告", None),
        ("the curbs set out in Announcement No. 61 of 2025 are suspended", None),
        (
            "as set forth in MOFCOM Announcement No. 4 of 2025, the controls stay",
            None,
        ),
        ("根据《中华人民共和国两用物项出口管制条例》（国务院令第792号），决定", None),
        ("no notice here", None),
    ],
)
def test_announcement_is_one_key_in_both_languages(text: str, expected: str | None) -> None:
    """Chinese and English spellings of a notice number normalise to the same key."""
    from tradewatch.matching.normalize import t2s

    assert announcement(t2s(text)) == expected


def test_announcement_read_by_the_source_comes_first() -> None:
    """The number a source read from the page's header (MOFCOM's 文号, the Federal Register's
    executive order number) is the document's own, whatever the text cites."""
    cited = "暂停实施商务部公告2025年第61号"
    assert (
        announcement(cited, {"announcement": "商务部公告2025年第70号"})
        == "MOFCOM Announcement No. 70 of 2025"
    )
    assert announcement(cited, {"announcement": "国务院令〔2024〕792号"}) == "State Council Order No. 792"
    assert announcement("In Executive Order 14257, I declared", {"executive_order_number": 14298}) == (
        "Executive Order 14298"
    )
    assert announcement(cited, {"announcement": "no number here"}) is None
    # a number the mofcom source only found near the top (no 发布文号 line) may be a cited one
    guessed = {"announcement": "商务部公告2025年第61号", "announcement_from": "text"}
    own_in_title = "商务部公告2025年第70号 关于" + cited
    assert announcement(own_in_title, guessed) == "MOFCOM Announcement No. 70 of 2025"
    # an English header without its issuer keeps the key of both languages
    english = {"announcement": "Announcement No. 70 of 2025", "issuer": "Ministry of Commerce"}
    assert announcement("text", english) == "MOFCOM Announcement No. 70 of 2025"
    assert announcement("text", {"executive_order_number": {"a": 1}}) is None


def test_effective_date_stated_as_data_wins(glossary: Glossary) -> None:
    """A Federal Register document's `effective_on` is its effective date, whatever the text says."""
    doc = Document(
        title="Notice of modification",
        text="Effective March 4, 2025.",
        published_at=PUBLISHED,
        extra={"effective_on": "2025-03-05"},
    )
    assert extract_facts(["effective_date"], doc, glossary) == {"effective_date": "2025-03-05"}
    doc.extra["effective_on"] = "soon"
    assert extract_facts(["effective_date"], doc, glossary) == {"effective_date": "2025-03-04"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("决定自即日起至2026年11月10日，暂停实施6项涉及稀土出口管制的公告。", "2026-11-10"),
        ("The suspension will remain in effect until November 27, 2026, the statement added.", "2026-11-27"),
        ("Tariffs rose to 145% on April 9.", None),
        ("The controls took effect on October 9.", None),
    ],
)
def test_until_is_when_a_suspension_or_truce_ends(
    glossary: Glossary, text: str, expected: str | None
) -> None:
    """`until`: the first date the text says a measure runs until (至, until, through)."""
    facts = extract_facts(["until"], Document(title="t", text=text, published_at=PUBLISHED), glossary)
    assert facts.get("until") == expected


def test_hs_codes_after_an_anchor() -> None:
    """Customs codes listed after 税则号列/HS code anchors, as written."""
    assert hs_codes("1. 金属钬(参考税则号列:28053019)。") == ["28053019"]
    assert hs_codes("HS codes 2805.30, 8505.11 and 2846.90 are covered") == ["2805.30", "8505.11", "2846.90"]
    assert hs_codes("In 2025 prices rose 12 percent") == []


def test_items_and_countries_from_the_glossary(glossary: Glossary) -> None:
    """Items and countries are the glossary labels found, in order of first mention."""
    doc = Document(
        title="决定对钐、钆、铽相关物项实施出口管制",
        text="China bans gallium exports to the United States; 镝 and NdFeB magnets too.",
    )
    facts = extract_facts(["items", "countries"], doc, glossary)
    assert facts["items"][:3] == ["samarium", "gadolinium", "terbium"]
    assert {"gallium", "dysprosium", "rare-earth magnets"} <= set(facts["items"])
    assert facts["countries"] == ["China", "United States"]


def test_a_term_inside_a_longer_one_is_the_longer_ones(glossary: Glossary) -> None:
    """钕 (neodymium) inside 钕铁硼 (NdFeB magnets) is the magnets, not the metal; a spelling two
    entries share (中美: China and the US) counts for both."""
    labels = glossary_labels(normalize("含铽的钕铁硼永磁材料"), glossary, "item")
    assert labels == ["terbium", "rare-earth magnets"]
    assert "neodymium" in glossary_labels(normalize("钕、镝和钕铁硼"), glossary, "item")
    assert glossary_labels(normalize("中美经贸磋商"), glossary, "country") == ["China", "United States"]


def test_empty_facts_are_left_out(glossary: Glossary) -> None:
    """A fact the text does not contain is absent, not empty."""
    assert extract_facts(["effective_date", "rates", "items"], Document(title="hello"), glossary) == {}


def test_lead_line_for_a_chinese_notice(glossary: Glossary) -> None:
    """The English lead line names the notice, the measure, the items and the effective date."""
    doc = Document(
        title="商务部公告2025年第61号 关于对钐、镝相关物项实施出口管制的决定",
        text="本公告自2025年12月1日起正式实施。",
        published_at=PUBLISHED,
    )
    facts = extract_facts(["announcement", "items", "effective_date"], doc, glossary)
    assert lead_line(doc, facts) == (
        "MOFCOM Announcement No. 61 of 2025 — export controls on samarium, dysprosium — effective 2025-12-01"
    )


def test_lead_line_of_an_export_ban_is_not_a_suspension(glossary: Glossary) -> None:
    """暂停对美国出口 suspends exports, a ban: the measure itself is not suspended, and the lead
    says "export ban", also when only the text states it (MOFCOM No. 46 of 2024)."""
    doc = Document(title="商务部：暂停对美国出口镓、锗、锑等两用物项", text="", published_at=PUBLISHED)
    facts = extract_facts(["announcement", "items"], doc, glossary)
    line = lead_line(doc, facts)
    assert "suspension of" not in line
    assert "export ban on gallium, germanium, antimony" in line
    no46 = Document(
        title="商务部公告2024年第46号 关于加强相关两用物项对美国出口管制的公告",
        text="一、禁止两用物项对美国军事用户或军事用途出口。二、原则上不予许可镓、锗、锑、超硬材料相关两用物项对美国出口。",
        published_at=PUBLISHED,
    )
    facts = extract_facts(["announcement", "items"], no46, glossary)
    assert lead_line(no46, facts).startswith("MOFCOM Announcement No. 46 of 2024 — export ban on gallium")


@pytest.mark.parametrize(
    ("title", "text", "expected"),
    [
        (
            "商务部公告2025年第70号 关于暂停实施商务部公告2025年第61号的公告",
            "自即日起至2026年11月10日，暂停实施对钐、镝相关物项的出口管制措施。",
            "MOFCOM Announcement No. 70 of 2025 — suspension of export controls on samarium, dysprosium"
            " — effective 2025-10-09 — until 2026-11-10",
        ),
        (
            "国务院关税税则委员会关于停止实施对原产于美国的部分进口商品加征关税措施的公告",
            "自2025年11月10日13时01分起，停止实施加征15%关税的措施。",
            "Tariff Commission — end of tariffs — effective 2025-11-10",
        ),
        (  # a new tariff beside a suspension of something else is not a suspension of tariffs
            "国务院关税税则委员会关于暂停3家美国企业输华资质并对原产于美国的进口商品加征关税的公告",
            "自2025年3月10日起，对原产于美国的部分进口商品加征15%关税。",
            "Tariff Commission — tariffs — rates 15% — effective 2025-03-10",
        ),
        (  # what is suspended named between 暂停 and the tariff
            "国务院关税税则委员会将暂停对原产于美国的进口商品实施24%的加征关税税率，为期一年",
            "自2025年11月10日13时01分起，将暂停对原产于美国的进口商品实施24%的加征关税税率。",
            "Tariff Commission — suspension of tariffs — effective 2025-11-10",
        ),
    ],
)
def test_lead_line_says_a_measure_is_suspended_or_ended(
    glossary: Glossary, title: str, text: str, expected: str
) -> None:
    """A suspension or an end of controls never reads as new controls; the rates it names
    (suspended or kept) are left to the facts, and a suspension says until when."""
    doc = Document(title=title, text=text, published_at=PUBLISHED)
    facts = extract_facts(["announcement", "items", "effective_date", "rates"], doc, glossary)
    assert lead_line(doc, facts) == expected


def test_a_yearless_date_told_after_a_dated_event_takes_its_year() -> None:
    """A report of spring's events, published in November: 4 April, 3 and 4 March follow
    "今年4月2日" and are that year's, not next year's nearest ones; a coming start keeps the
    year nearest the document (自1月1日起施行 after a 2024 date is next January), and a coming
    end anchors nothing."""
    published = datetime(2025, 11, 5, tzinfo=UTC)
    told = (
        "今年4月2日，美方宣布对等关税。大陆随即于4月4日发布公告。自11月10日13时01分起停止实施。"
        "另外，美方3月3日宣布加征，大陆于3月4日发布公告。"
    )
    assert all_dates(told, published) == [
        "2025-04-02",
        "2025-04-04",
        "2025-11-10",
        "2025-03-03",
        "2025-03-04",
    ]
    assert all_dates("根据2024年12月3日公告，本规定自1月1日起施行。", published) == [
        "2024-12-03",
        "2026-01-01",
    ]
    # a coming date after an old dated event keeps the year ahead (a past one would never remind)
    assert all_dates("2024年12月3日，商务部发布公告。相关措施将于12月1日正式生效。", published) == [
        "2024-12-03",
        "2025-12-01",
    ]
    assert all_dates("今年4月2日，美方宣布对等关税。双方将于4月4日再谈。", published) == [
        "2025-04-02",
        "2026-04-04",
    ]
    december = datetime(2025, 12, 20, tzinfo=UTC)
    ruling = "Beijing first restricted gallium exports on December 3, 2024. A ruling is due on December 28."
    assert all_dates(ruling, december) == ["2024-12-03", "2025-12-28"]
    assert all_dates("The suspension runs until Nov. 27, 2026. Talks on Oct. 30 followed.", published) == [
        "2026-11-27",
        "2025-10-30",
    ]


def test_numeric_date_formats() -> None:
    """ISO, slashed and dotted dates are read; version-like numbers are not."""
    text = "on 2025/11/10, 2025.5.14 and 2025-05-12, not 1.2025.3"
    assert all_dates(text, None) == ["2025-11-10", "2025-05-14", "2025-05-12"]


def _labels_by_regex(normalised: str, glossary: Glossary, kind: str) -> list[str]:
    """The reference: every occurrence of every term by regex, those inside a longer one of any
    term dropped, then each entry's first, in order."""
    spans = []
    for entry in glossary.of_kind(kind).values():
        for term in entry.terms():
            body, left, right = term_literal(term)
            pattern = (
                ("(?<![a-z0-9_])" if left else "")
                + re.escape(body.decode("utf-8"))
                + ("(?![a-z0-9_])" if right else "")
            )
            for m in re.finditer(f"(?=({pattern}))", normalised):
                spans.append((m.start(1), m.end(1), entry.label))
    kept = [
        (s, label)
        for s, e, label in spans
        if not any(s2 <= s and e <= e2 and e2 - s2 > e - s for s2, e2, _ in spans)
    ]
    found = [(min(s for s, lab in kept if lab == label), label) for label in {lab for _, lab in kept}]
    out: list[str] = []
    for _, label in sorted(found):
        if label not in out:
            out.append(label)
    return out


def _corpus_texts() -> list[str]:
    docs = []
    for path in (need_shared(CORPUS) / "documents.jsonl", EDGE / "edge_documents.jsonl"):
        docs += list(read_documents(path.read_text(encoding="utf-8").splitlines()))
    texts = [normalize(plain_text(doc)) for doc in docs]
    return texts + [normalize(doc.title) for doc in docs]


@pytest.mark.parametrize("kind", ["item", "country", "measure"])
def test_glossary_labels_equal_a_regex_search_per_entry(glossary: Glossary, kind: str) -> None:
    """The one-scan label finder names the same entries in the same order as a regex per entry."""
    texts = _corpus_texts()
    assert any(glossary_labels(text, glossary, kind) for text in texts)
    for text in texts:
        assert glossary_labels(text, glossary, kind) == _labels_by_regex(text, glossary, kind), text[:80]


def test_glossary_labels_without_hyperscan(glossary: Glossary) -> None:
    """The pure-Python scanner behind the label finder names the same entries as the regexes."""
    finder = _LabelFinder(glossary, "item")
    finder.scanner = PythonScanner(list(finder.literals))  # ids in insertion order, as built
    for text in _corpus_texts():
        assert finder.find(text) == _labels_by_regex(text, glossary, "item"), text[:80]


def test_glossary_labels_whole_words_prefixes_and_first_mention() -> None:
    """Latin terms match whole words (a `*` term as a prefix); order is each entry's first mention."""
    glossary = Glossary(
        {
            "a": GlossaryEntry(label="gallium", kind="item", en=["gallium"], zh=["镓"]),
            "b": GlossaryEntry(label="magnets", kind="item", en=["magnet*"]),
            "c": GlossaryEntry(label="earths", kind="item", en=["rare earth", "earth"]),
            "d": GlossaryEntry(label="blank", kind="country", en=["*"]),
        }
    )
    text = "galliumx magnetic rare earth, 镓 and gallium; earth"
    assert glossary_labels(text, glossary, "item") == ["magnets", "earths", "gallium"]
    assert glossary_labels(text, glossary, "item") == _labels_by_regex(text, glossary, "item")
    # A term that normalises to nothing is refused by `rules check` (term_problem); in a glossary
    # built in code it matches nothing.
    assert glossary_labels("nothing", glossary, "country") == []


def test_facts_only_for_the_rules_asked() -> None:
    """match(facts_for=…) fires the same rules; only the listed rules carry facts, with the same values."""
    rb = load_rulebook(Path(__file__).parents[2] / "rules")
    docs = []
    for path in (need_shared(CORPUS) / "documents.jsonl", EDGE / "edge_documents.jsonl"):
        docs += list(read_documents(path.read_text(encoding="utf-8").splitlines()))
    asked = {"mofcom-export-control-notice", "us-china-truce-extension", "us-china-tariff-change-headline"}
    compared = 0
    for doc in docs:
        full = rb.match(doc)
        partial = rb.match(doc, facts_for=asked)
        assert [m.rule for m in partial] == [m.rule for m in full]
        for a, b in zip(full, partial, strict=True):
            assert b.facts == (a.facts if a.rule in asked else {})
            compared += a.rule in asked and bool(a.facts)
    assert compared > 0
