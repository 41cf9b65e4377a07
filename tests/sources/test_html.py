"""The `html` kind: a list page described by selectors, pagination, detail pages, failures."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import pytest

from tests.servers import LocalServer, Response
from tests.sources.helpers import data_bytes, fixture_bytes, spec
from tradewatch.config import load_settings
from tradewatch.errors import ConfigError, SourceError
from tradewatch.fetch import Fetcher
from tradewatch.sources import _offload
from tradewatch.sources.html import HtmlSource, _Linker, canonical

HTML = {"Content-Type": "text/html; charset=utf-8"}
NEW_YORK = ZoneInfo("America/New_York")


def _press(server: LocalServer) -> None:
    server.routes["/press/index.html"] = Response(200, data_bytes("html/press-list-page1.html"), HTML)
    server.routes["/press/page2.html"] = Response(200, data_bytes("html/press-list-page2.html"), HTML)
    for path in (
        "/press/2026/05/section-301-action.html",
        "/press/2026/05/rare-earth-talks.html",
        "/press/2026/04/tariff-truce.html",
    ):
        server.routes[path] = Response(200, data_bytes("html/press-detail.html"), HTML)


async def test_list_only(server: LocalServer, fetcher: Fetcher) -> None:
    """Without `body`, entries become documents from the list alone; nav links are not entries."""
    _press(server)
    source = HtmlSource(
        spec(
            "html",
            url=server.url("/press/index.html"),
            timezone="America/New_York",
            date_format="%m/%d/%Y",
            select={"item": "ul.listing li", "date": "span.date"},
        )
    )
    result = await source.fetch(fetcher)
    assert [d.title for d in result.documents] == [
        "USTR Announces Section 301 Action on Chinese Semiconductors",
        "Readout of Trade Talks on Rare Earth Magnets & Critical Minerals",
    ]
    first = result.documents[0]
    assert first.id == first.url == server.url("/press/2026/05/section-301-action.html")  # fragment dropped
    assert first.published_at == datetime(2026, 5, 12, tzinfo=NEW_YORK)
    assert first.text == ""
    assert server.hits("/press/2026/05/section-301-action.html") == 0


async def test_a_date_selector_that_finds_nothing_falls_back_to_the_entrys_date(
    server: LocalServer, fetcher: Fetcher
) -> None:
    """A mistyped `date` selector reads the entry's first date, as without one; before, every
    entry came out undated, counted as new on the first poll, and alerted however old it was."""
    page = '<ul class="n"><li><a href="/a.html">商务部公告</a> <span class="date">2025年10月09日</span></li>'
    server.routes["/notices.html"] = Response(200, page.encode(), HTML)
    source = HtmlSource(
        spec(
            "html",
            url=server.url("/notices.html"),
            timezone="Asia/Shanghai",
            select={"item": "ul.n li", "date": "span.dat"},
        )
    )
    result = await source.fetch(fetcher)
    assert result.documents[0].published_at == datetime(2025, 10, 9, tzinfo=ZoneInfo("Asia/Shanghai"))


async def test_a_failing_older_list_page_keeps_the_newer_entries(
    server: LocalServer, fetcher: Fetcher
) -> None:
    """The next list page answering 404 ends the pagination; the first page's entries are kept."""
    _press(server)
    del server.routes["/press/page2.html"]
    source = HtmlSource(
        spec(
            "html",
            url=server.url("/press/index.html"),
            date_format="%m/%d/%Y",
            select={"item": "ul.listing li", "date": "span.date"},
            pagination={"next": "a.next@href", "max_pages": 3},
        )
    )
    result = await source.fetch(fetcher)
    assert len(result.documents) == 2


async def test_pagination_and_detail_bodies(server: LocalServer, fetcher: Fetcher) -> None:
    """Pagination follows `next`; bodies drop scripts, styles and excluded parts, keep line breaks."""
    _press(server)
    source = HtmlSource(
        spec(
            "html",
            url=server.url("/press/index.html"),
            date_format="%m/%d/%Y",
            select={
                "item": "ul.listing li",
                "date": "span.date",
                "body": "div.article-body",
                "exclude": ["div.share"],
            },
            pagination={"next": "a.next@href", "max_pages": 3},
        )
    )
    result = await source.fetch(fetcher)
    assert len(result.documents) == 3
    assert result.documents[2].title == "Joint Statement on the Extension of the Tariff Truce"
    text = result.documents[0].text
    assert text == (
        "WASHINGTON – The Office of the United States Trade Representative today announced action.\n"
        "Tariffs of 25%\ntake effect on June 1, 2026."
    )
    assert result.requests == 2 + 3


async def test_real_detail_page_by_selectors(server: LocalServer, fetcher: Fetcher) -> None:
    """A recorded ministry page read by plain selectors: title from the detail, Chinese dates in the list."""
    page = """<html><head><meta charset="utf-8"></head><body><ul class="l">
    <li><a href="/gss/t1.html">国务院关税税则委员会关于发布…</a>
    <em>2025年12月31日</em></li></ul></body></html>"""
    server.routes["/gss/list.html"] = Response(200, page.encode(), HTML)
    server.routes["/gss/t1.html"] = Response(
        200, fixture_bytes("mofcom/prc-tariff-schedule-2026-announcement.html")
    )
    source = HtmlSource(
        spec(
            "html",
            url=server.url("/gss/list.html"),
            timezone="Asia/Shanghai",
            select={"item": "ul.l li", "body": "div.my_doccontent", "detail_title": "h2.title_con"},
        )
    )
    (doc,) = (await source.fetch(fetcher)).documents
    assert doc.title == "国务院关税税则委员会关于发布《中华人民共和国进出口税则（2026）》的公告"
    assert doc.published_at is not None
    assert doc.published_at.isoformat() == "2025-12-31T00:00:00+08:00"
    assert doc.text.startswith("税委会公告2025年第12号")


async def test_malformed_html_still_reads(server: LocalServer, fetcher: Fetcher) -> None:
    """Unclosed tags and stray end tags are parsed the way browsers do."""
    server.routes["/bad.html"] = Response(
        200, b"<html><body><ul class=x><li><a href=/a>One<li><a href='/b'>Two</ul></div></span>", HTML
    )
    source = HtmlSource(spec("html", url=server.url("/bad.html"), select={"item": "ul.x li"}))
    docs = (await source.fetch(fetcher)).documents
    assert [d.title for d in docs] == ["One", "Two"]


async def test_entries_whose_link_is_no_web_link_are_skipped(server: LocalServer, fetcher: Fetcher) -> None:
    """`JavaScript:`, `java<newline>script:`, `data:`, `vbscript:` and `mailto:` links are no entries."""
    hrefs = [
        "JavaScript:alert(2)",
        "java\nscript:alert(3)",
        "data:text/html,x",
        "vbscript:x",
        "mailto:a@b",
        "/ok",
    ]
    items = "".join(f"<li><a href='{h}'>{i}</a></li>" for i, h in enumerate(hrefs))
    server.routes["/l.html"] = Response(200, f"<ul class=x>{items}</ul>".encode(), HTML)
    source = HtmlSource(spec("html", url=server.url("/l.html"), select={"item": "ul.x li"}))
    docs = (await source.fetch(fetcher)).documents
    assert [(d.title, d.url) for d in docs] == [("5", server.url("/ok"))]


async def test_markup_that_stalls_the_parser_fails_its_poll_not_the_worker(
    server: LocalServer, fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`<div>` nested 20,000 deep takes lexbor most of a second (60,000: seconds; it grows with
    the square): the poll fails at the parse deadline (here 20 ms, some 40 times less) while the
    parse goes on off the loop, and the source's next poll is refused at once."""
    monkeypatch.setattr(_offload, "PARSE_DEADLINE", 0.02)
    deep = b"<html><body>" + b"<div>" * 20_000 + b"<ul class=x><li><a href=/a>One</a></li></ul></body></html>"
    server.routes["/deep.html"] = Response(200, deep, HTML)
    source = HtmlSource(spec("html", url=server.url("/deep.html"), select={"item": "ul.x li"}))
    with pytest.raises(SourceError, match=r"parsing took longer than 0\.02s") as first:
        await source.fetch(fetcher)
    assert first.value.retry_after == _offload.RUNAWAY_RETRY_AFTER  # the worker defers its polls
    runaway = _offload._runaway[source.options.name]
    assert not runaway.done()  # the loop went on (the deadline fired) while lexbor still parsed
    with pytest.raises(SourceError, match="an earlier parse of this source is still running"):
        await source.fetch(fetcher)
    await asyncio.wrap_future(runaway)  # leave no parse running behind the test


async def test_a_big_page_is_read_off_the_event_loop(server: LocalServer, fetcher: Fetcher) -> None:
    """A 1 MB list page is parsed on the parse pool with the same result as ever."""
    rows = b"".join(b"<li><a href=/n/%d>Item %d</a></li>" % (i, i) for i in range(30_000))
    server.routes["/big.html"] = Response(
        200, b"<html><body><ul class=x>" + rows + b"</ul></body></html>", HTML
    )
    source = HtmlSource(spec("html", url=server.url("/big.html"), select={"item": "ul.x li"}, max_items=5))
    docs = (await source.fetch(fetcher)).documents
    assert [d.title for d in docs] == [f"Item {i}" for i in range(5)]


async def test_missing_body_fails_with_the_selector(server: LocalServer, fetcher: Fetcher) -> None:
    """A body selector that matches nothing on the detail page names itself in the error."""
    _press(server)
    source = HtmlSource(
        spec(
            "html",
            url=server.url("/press/index.html"),
            select={"item": "ul.listing li", "body": "div.nothing-here"},
        )
    )
    with pytest.raises(SourceError, match=r"body selector 'div\.nothing-here' matches nothing"):
        await source.fetch(fetcher)


def test_config_errors_name_the_key(tmp_path: object) -> None:
    """A source without `select.item` or with a bad timezone is a config error naming the key."""
    from pathlib import Path

    config = Path(str(tmp_path)) / "tw.yaml"
    config.write_text(
        "sources:\n  - {name: p, kind: html, url: 'https://x/', select: {title: a}, timezone: Mars/X}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_settings(config, env={})
    assert "sources[0].select.item: Field required" in str(err.value)
    assert "sources[0].timezone: unknown timezone" in str(err.value)


def test_an_invalid_css_selector_is_a_config_error(tmp_path: object) -> None:
    """lexbor's "Can't parse CSS selector" at the first poll was a message naming neither key nor selector."""
    from pathlib import Path

    config = Path(str(tmp_path)) / "tw.yaml"
    config.write_text("sources:\n  - {name: p, kind: html, url: 'https://x/', select: {item: 'ul >> li'}}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(config, env={})
    assert "sources[0].select.item: invalid CSS selector 'ul >> li'" in str(err.value)
    config.write_text(
        "sources:\n  - {name: p, kind: html, url: 'https://x/', select: {item: li},\n"
        "     pagination: {next: 'a >> b@href'}}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_settings(config, env={})
    assert "sources[0].pagination.next: invalid CSS selector 'a >> b'" in str(err.value)


BASES = [
    "https://www.mofcom.gov.cn/zcfb/",
    "https://www.mofcom.gov.cn/zcfb/index.html?page=2#top",
    "https://h",
    "https://h/a/b/../c/./d",
    "https://h/..//a//b/",
    "http://H:8080/a;p?q=1#f",
    "HTTPS://Ex.org/A/B",
    "https://h/中文/x.html",
    "",
    "foo/bar",
    "//h/a/",
    "mailto:x@y",
    "file:///a/b",
    "data:text/plain,x",
]
HREFS = [
    "art_1.html",
    "/zwgk/zcfb/art/2025/art_0.html",
    "./202512/t20251230_1.shtml",
    "a/b/",
    "/a//b",
    "a//b",
    ".",
    "..",
    "./",
    ".//a",
    "./..",
    ".hidden",
    "/.hidden",
    "a/./b",
    "a/../b",
    "../up.html",
    "x.html#frag",
    "x.html?q=1",
    "x;p",
    "a:b",
    "//other.example/x",
    "https://other.example/x#f",
    " spaced",
    "tab\there",
    "中文.html",
]


def test_links_resolve_as_urljoin_does() -> None:
    """A page's links resolve exactly as canonical(urljoin(base, href)), plain paths included."""
    rnd = random.Random(5)
    alphabet = [*"ab1/._-~%+=,@!$&'()*:;?#", "./", "../", "//", " ", "中"]
    hrefs = HREFS + ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 10))) for _ in range(2000)]
    for base in BASES:
        link = _Linker(base)
        for href in hrefs:
            assert link(href) == canonical(urljoin(base, href)), (base, href)
