"""Official notices keep the effective date their deadline reminders count from.

Each case is a notice read by the shipped rules: a date of another measure or of background
beside the notice's own must not displace it, nor must wording in the date's sentence that
names another measure (a tariff preamble, 非关税反制措施) drop it. Cases from the reviews of
reading each rule's own date (see CHANGELOG); they hold for any such reading.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tradewatch.matching import Rulebook, load_rulebook
from tradewatch.models import Document

SHIPPED = Path(__file__).resolve().parents[2] / "rules"

# (source, title, text, published, rule, effective date)
CASES: list[tuple[str, str, str, str, str, str]] = [
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
    (
        "mofcom",
        "商务部 海关总署公告2023年第23号 关于对镓、锗相关物项实施出口管制的公告",
        "根据《中华人民共和国出口管制法》有关规定，决定对镓、锗相关物项实施出口管制。"
        "出口经营者应自2023年8月1日起向商务部申请出口许可。",
        "2023-07-03T10:00:00+08:00",
        "mofcom-export-control-notice",
        "2023-08-01",
    ),
    # 非关税反制措施 (non-tariff countermeasures) names no tariff the notice imposes
    (
        "mofcom",
        "商务部新闻发言人就暂停实施对部分美国实体出口管制措施答记者问",
        "商务部决定继续暂停实施对16家美国实体的出口管制措施。为落实双方关于非关税反制措施的共识，"
        "上述安排自2025年8月12日起执行，为期90天。",
        "2025-08-12T10:00:00+08:00",
        "mofcom-export-control-notice",
        "2025-08-12",
    ),
    (
        "mofcom-en",
        "MOFCOM suspends export control measures against U.S. entities",
        "MOFCOM suspends the export control measures against 28 U.S. entities for 90 days. "
        "The suspension of these non-tariff countermeasures takes effect immediately.",
        "2025-05-14T10:00:00+08:00",
        "mofcom-export-control-notice",
        "2025-05-14",
    ),
]


@pytest.fixture(scope="module")
def shipped() -> Rulebook:
    return load_rulebook(SHIPPED)


@pytest.mark.parametrize(("source", "title", "text", "published", "rule", "expected"), CASES)
def test_an_official_notice_keeps_its_date(
    shipped: Rulebook, source: str, title: str, text: str, published: str, rule: str, expected: str
) -> None:
    doc = Document(title=title, text=text, source=source, published_at=datetime.fromisoformat(published))
    facts = {m.rule: m.facts for m in shipped.match(doc)}
    assert facts[rule].get("effective_date") == expected
