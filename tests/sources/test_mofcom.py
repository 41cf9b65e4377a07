"""The `mofcom` kind: hand-made list pages linking to the recorded real detail pages, on 127.0.0.1."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.servers import LocalServer, Request, Response
from tests.sources.helpers import data_bytes, fixture_bytes, spec
from tradewatch.errors import SourceError
from tradewatch.fetch import Fetcher
from tradewatch.sources._text import SHANGHAI
from tradewatch.sources.mofcom import MofcomSource, announcement_number

EC_DETAIL = "/article/zcfg/gnzcfg/gzjgfxwj/202410/1057.html"
XKZJ_DETAIL = "/tzgg/art/2026/art_7ad4508a20f04807b4926134a6f9d10c.html"
TARIFF_DETAIL = "/zwgk/zcfb/art/2025/t20251231_tariff.html"
HTML = {"Content-Type": "text/html; charset=utf-8"}


def _serve_exportcontrol(server: LocalServer) -> None:
    server.routes["/articleList.shtml"] = Response(
        200, data_bytes("mofcom/exportcontrol-articleList-14.html"), HTML
    )
    server.routes[EC_DETAIL] = Response(200, fixture_bytes("mofcom/prc-dual-use-regulation-792.html"), HTML)


async def test_exportcontrol_list_and_detail(server: LocalServer, fetcher: Fetcher) -> None:
    """The JS-filled title, Shanghai publish time, order number and body without script or disclaimer."""
    _serve_exportcontrol(server)
    source = MofcomSource(spec("mofcom", url=server.url("/articleList.shtml?columnID=14&num=1")))
    result = await source.fetch(fetcher)
    (doc,) = result.documents  # the 1058 entry answers 404 and is left for the next poll
    assert doc.id == doc.url == server.url(EC_DETAIL)
    assert doc.title == "中华人民共和国两用物项出口管制条例"
    assert doc.published_at == datetime(2024, 10, 23, 14, 43, 23, tzinfo=SHANGHAI)
    assert doc.published_at is not None
    assert doc.published_at.isoformat() == "2024-10-23T14:43:23+08:00"
    assert doc.extra["announcement"] == "国务院令〔2024〕792号"
    assert doc.extra["announcement_from"] == "header"  # the 【发布文号】 line: the page's own
    assert doc.extra["issued_on"] == "2024-09-30"
    assert doc.extra["issuer"] == "安全与管制局"
    assert doc.text.startswith("【发布单位】安全与管制局\n【发布文号】国务院令〔2024〕792号")
    assert "var title" not in doc.text
    assert "免责声明" not in doc.text
    assert "第一章 总 则" in doc.text
    assert "自2024年12月1日起施行" in doc.text
    assert doc.lang == "zh"


async def test_xkzj_truncated_title_split_spans_and_attachment(server: LocalServer, fetcher: Fetcher) -> None:
    """The list's title attribute wins; the number split over spans reads whole; the PDF name is decoded."""
    server.routes["/tzgg/index.html"] = Response(200, data_bytes("mofcom/xkzj-tzgg-index.html"), HTML)
    server.routes[XKZJ_DETAIL] = Response(
        200, fixture_bytes("mofcom/mofcom-import-licence-catalogue-2026.html")
    )
    (doc,) = (await MofcomSource(spec("mofcom", url=server.url("/tzgg/index.html"))).fetch(fetcher)).documents
    assert doc.title == "公布《进口许可证管理货物目录（2026年）》"
    assert doc.extra["announcement"] == "商务部 海关总署公告2025年第88号"
    assert doc.extra["issued_on"] == "2025-12-30"
    assert doc.published_at == datetime(2026, 1, 4, 18, 53, tzinfo=SHANGHAI)  # the visible date, as listed
    (attachment,) = doc.extra["attachments"]
    assert attachment["name"] == "进口许可证管理货物目录（2026年）.pdf"
    assert attachment["url"].startswith(server.url("/api-gateway/jpaas-web-server/front/document/download?"))
    assert "&amp;" not in attachment["url"]
    assert "来源：外贸司" not in doc.text


async def test_gbk_list_without_charset_header(server: LocalServer, fetcher: Fetcher) -> None:
    """A GBK list labelled GB2312 and served without charset reads right; a date in a comment is ignored."""
    server.routes["/zwgk/zcfb/index.html"] = Response(
        200, data_bytes("mofcom/www-zcfb-index-gbk.html"), {"Content-Type": "text/html"}
    )
    server.routes[TARIFF_DETAIL] = Response(
        200, fixture_bytes("mofcom/prc-tariff-schedule-2026-announcement.html")
    )
    (doc,) = (
        await MofcomSource(spec("mofcom", url=server.url("/zwgk/zcfb/index.html"))).fetch(fetcher)
    ).documents
    assert doc.title == "国务院关税税则委员会关于发布《中华人民共和国进出口税则（2026）》的公告"
    assert doc.extra["announcement"] == "税委会公告2025年第12号"
    assert doc.extra["announcement_from"] == "text"  # no 发布文号 line: found near the top
    assert doc.published_at == datetime(2025, 12, 31, 16, 31, tzinfo=SHANGHAI)
    assert "自2026年1月1日起实施" in doc.text
    assert ".TRS_Editor" not in doc.text
    assert "2017年11月21日" not in doc.text
    (attachment,) = doc.extra["attachments"]
    assert attachment == {
        "name": "中华人民共和国进出口税则（2026）.pdf",
        "url": server.url("/zwgk/zcfb/art/2025/P020251231607833453633.pdf"),
    }


async def test_selectors_are_overridable(server: LocalServer, fetcher: Fetcher) -> None:
    """A user can fix the list selector in config while keeping the preset's detail reading."""
    page = b"""<html><body><table class="news"><tr><td>
    <a href="/article/zcfg/gnzcfg/gzjgfxwj/202410/1057.html">
    Regulation</a></td><td>2024/10/23</td></tr></table></body></html>"""
    server.routes["/new-layout.html"] = Response(200, page, HTML)
    server.routes[EC_DETAIL] = Response(200, fixture_bytes("mofcom/prc-dual-use-regulation-792.html"), HTML)
    source = MofcomSource(
        spec("mofcom", url=server.url("/new-layout.html"), select={"item": "table.news tr"})
    )
    (doc,) = (await source.fetch(fetcher)).documents
    assert doc.extra["announcement"] == "国务院令〔2024〕792号"
    assert source.options.select.body is not None


async def test_list_without_items_is_empty_not_an_error(server: LocalServer, fetcher: Fetcher) -> None:
    """A list page where no selector matches yields no documents (sources test shows the emptiness)."""
    server.routes["/empty.html"] = Response(200, b"<html><body><p>maintenance</p></body></html>", HTML)
    result = await MofcomSource(spec("mofcom", url=server.url("/empty.html"))).fetch(fetcher)
    assert result.documents == []


async def test_every_detail_failing_fails_the_source(server: LocalServer, fetcher: Fetcher) -> None:
    """When no detail page can be read the poll fails with the first reason."""
    server.routes["/articleList.shtml"] = Response(
        200, data_bytes("mofcom/exportcontrol-articleList-14.html"), HTML
    )
    with pytest.raises(SourceError, match="every detail page failed, first: HTTP 404"):
        await MofcomSource(spec("mofcom", url=server.url("/articleList.shtml?columnID=14&num=1"))).fetch(
            fetcher
        )


async def test_detail_pages_are_not_refetched_every_poll(server: LocalServer, fetcher: Fetcher) -> None:
    """A known detail page is reused until detail_refresh; an unchanged list costs a 304 only."""

    def listing(req: object) -> Response:
        if getattr(req, "headers", {}).get("if-none-match") == '"l1"':
            return Response(304)
        return Response(200, data_bytes("mofcom/exportcontrol-articleList-14.html"), {**HTML, "ETag": '"l1"'})

    server.routes["/articleList.shtml"] = listing
    server.routes[EC_DETAIL] = Response(200, fixture_bytes("mofcom/prc-dual-use-regulation-792.html"), HTML)
    source = MofcomSource(spec("mofcom", url=server.url("/articleList.shtml?columnID=14&num=1")))
    await source.fetch(fetcher)
    await source.fetch(fetcher)
    assert server.hits(EC_DETAIL) == 1
    first = await source.fetch(fetcher)
    await fetcher.commit(first)
    again = await source.fetch(fetcher)
    assert again.not_modified
    assert again.documents == []
    assert server.hits(EC_DETAIL) == 1


async def test_revised_notice_surfaces_after_detail_refresh(server: LocalServer, fetcher: Fetcher) -> None:
    """With detail_refresh 0s the list is read in full each poll, so a notice revised in place is seen."""
    server.routes["/articleList.shtml"] = conditional_list = _ConditionalList()
    body = fixture_bytes("mofcom/prc-dual-use-regulation-792.html")
    server.routes[EC_DETAIL] = Response(200, body, HTML)
    url = server.url("/articleList.shtml?columnID=14&num=1")
    source = MofcomSource(spec("mofcom", url=url, detail_refresh="0s"))
    await fetcher.commit(await source.fetch(fetcher))
    server.routes[EC_DETAIL] = Response(
        200, body.replace("自2024年12月1日起施行".encode(), "自2025年1月1日起施行".encode())
    )
    (doc,) = (await source.fetch(fetcher)).documents
    assert "自2025年1月1日起施行" in doc.text
    assert conditional_list.conditional_hits == 0


class _ConditionalList:
    """The hand-made export-control list with an ETag; counts conditional requests."""

    def __init__(self) -> None:
        self.conditional_hits = 0

    def __call__(self, req: Request) -> Response:
        if "if-none-match" in req.headers:
            self.conditional_hits += 1
            return Response(304)
        return Response(200, data_bytes("mofcom/exportcontrol-articleList-14.html"), {**HTML, "ETag": '"l1"'})


@pytest.mark.parametrize(
    ("text", "number"),
    [
        (
            "【发布单位】外贸司\n【发布文号】商务部 海关总署公告2025年第88号\n【发文日期】2025年12月30日",
            "商务部 海关总署公告2025年第88号",
        ),
        ("税委会公告2025年第12号\n根据《中华人民共和国关税法》", "税委会公告2025年第12号"),
        ("商务部令2024年第3号 公布《两用物项出口管制条例》", "商务部令2024年第3号"),
        ("商贸函〔2025〕18号 关于……的通知", "商贸函〔2025〕18号"),
        (
            "MOFCOM Announcement No. 18 of 2025 on export control of medium and heavy rare earths",
            "Announcement No. 18 of 2025",
        ),
        ("商务部召开例行新闻发布会", None),
    ],
)
def test_announcement_numbers(text: str, number: str | None) -> None:
    """Announcement numbers are found in the forms MOFCOM, MOF and the English site write them."""
    assert announcement_number(text) == number
