"""Parse cost: feed parsers side by side, and a 100 KB MOFCOM-style list page through the `mofcom` kind.

Parsing is the poll cycle's main CPU cost once 304s take care of unchanged pages, so
the feed parser is chosen by this table. Each parser reads the same bytes: the
recorded trumpstruth.org feed (26 items) and a 50-item RSS 2.0 and Atom feed built
from it. "tradewatch" is the whole path a poll takes (expat tree → Documents with
HTML-to-text and pydantic models); "tradewatch tree" is its XML step alone. The tree is
built by the C tree builder when the bytes hold no DOCTYPE (nothing to refuse) and by
defusedxml otherwise, as parse_xml does.
Each parser is also given a small entity-expansion document: "expands entities"
says whether it would have expanded a billion-laughs bomb.

Optional parsers (fastfeedparser, feedparser-rs, lxml) are in the `bench` extra;
a missing one is reported as such, never silently dropped.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["run"]

FIXTURE = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "fixtures"
    / "truthsocial"
    / ("feed-trumpstruth-2026-08-25-truncated.xml")
)
LIST_BYTES = 100_000
_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "lollollollollollollollollollol">'
    b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    b'<rss version="2.0"><channel><title>t</title><item><title>&c;</title><guid>x</guid></item>'
    b"</channel></rss>"
)


def _progress(enabled: bool, text: str) -> None:
    if enabled:
        sys.stderr.write("\r\033[K" + text)
        sys.stderr.flush()


def _feeds() -> dict[str, bytes]:
    """The recorded feed, and 50-item RSS and Atom feeds made from its items."""
    if FIXTURE.exists():
        recorded = FIXTURE.read_bytes()
    else:  # the shared fixtures are absent: a generated stand-in of the same shape
        item = (
            "<item><title><![CDATA[Post {n} about tariffs &amp; rare earths]]></title>"
            "<link>https://trumpstruth.org/statuses/{n}</link><guid>https://trumpstruth.org/statuses/{n}</guid>"
            "<description><![CDATA[<p>Tariffs on Canada will go to 400% &mdash; post {n}</p>]]></description>"
            "<pubDate>Tue, 25 Aug 2026 18:32:56 +0000</pubDate></item>"
        )
        recorded = (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>'
            + "".join(item.format(n=n) for n in range(26))
            + "</channel></rss>"
        ).encode()
    text = recorded.decode("utf-8")
    items = re.findall(r"<item>.*?</item>", text, flags=re.S)
    head, tail = text.split("<item>", 1)[0], "</channel></rss>"
    fifty = [
        re.sub(r"statuses/(\d+)", lambda m, i=i: f"statuses/{m.group(1)}{i}", items[i % len(items)])
        for i in range(50)
    ]
    entries = []
    for i, item in enumerate(fifty):
        title = re.search(r"<title>(.*?)</title>", item, flags=re.S)
        desc = re.search(r"<description>(.*?)</description>", item, flags=re.S)
        entries.append(
            f'<entry><id>tag:bench,2026:{i}</id><title type="html">{title.group(1) if title else ""}</title>'
            f'<link rel="alternate" href="https://example.org/{i}"/><updated>2026-08-25T18:32:56Z</updated>'
            f'<content type="html">{desc.group(1) if desc else ""}</content></entry>'
        )
    atom = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>b</title>'
        + "".join(entries)
        + "</feed>"
    )
    return {
        "recorded-26": recorded,
        "rss-50": (head + "".join(fifty) + tail).encode("utf-8"),
        "atom-50": atom.encode("utf-8"),
    }


def _parsers() -> dict[str, Callable[[bytes], int] | str]:
    """Name → function returning the number of entries, or the reason it is unavailable."""
    from tradewatch.sources._decode import parse_xml
    from tradewatch.sources._feed import parse_feed

    out: dict[str, Callable[[bytes], int] | str] = {
        "tradewatch": lambda b: len(parse_feed(parse_xml(b, source="b", url="u"), source="b")),
        "tradewatch tree": lambda b: len(parse_xml(b, source="b", url="u")),
    }
    try:
        import feedparser

        out["feedparser"] = lambda b: len(feedparser.parse(b).entries)
    except ImportError as exc:
        out["feedparser"] = f"not installed ({exc})"
    try:
        import fastfeedparser

        out["fastfeedparser"] = lambda b: len(fastfeedparser.parse(b)["entries"])
    except ImportError as exc:
        out["fastfeedparser"] = f"not installed ({exc})"
    try:
        import feedparser_rs

        out["feedparser-rs"] = lambda b: len(feedparser_rs.parse(b).entries)
    except ImportError as exc:
        out["feedparser-rs"] = f"not installed ({exc})"
    try:
        from lxml import etree

        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)

        def lxml_walk(b: bytes) -> int:
            root = etree.fromstring(b, parser)
            items = root.findall(".//item") or root.findall(".//{http://www.w3.org/2005/Atom}entry")
            for item in items:  # read the fields a poll needs, like the others do
                for child in item:
                    "".join(child.itertext())
            return len(items)

        out["lxml (entities off)"] = lxml_walk
    except ImportError as exc:
        out["lxml (entities off)"] = f"not installed ({exc})"
    return out


def _time(fn: Callable[[], object], budget: float = 0.4) -> float:
    """Median seconds of one call, repeated for about `budget` seconds (at least 5 times)."""
    fn()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < 5 or time.perf_counter() - started < budget:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 2000:
            break
    return statistics.median(times)


def _expands(fn: Callable[[bytes], int], name: str) -> str:
    """'no' when the parser refuses or leaves the entities alone, 'yes' when it expanded them."""
    if name.startswith("tradewatch"):
        try:
            fn(_BOMB)
        except Exception:
            return "no (refused)"
        return "yes"
    probe: dict[str, Any] = {}
    try:
        if name == "feedparser":
            import feedparser

            probe["title"] = feedparser.parse(_BOMB).entries[0].get("title", "")
        elif name == "fastfeedparser":
            import fastfeedparser

            probe["title"] = fastfeedparser.parse(_BOMB)["entries"][0].get("title", "")
        elif name == "feedparser-rs":
            import feedparser_rs

            probe["title"] = feedparser_rs.parse(_BOMB).entries[0].title or ""
        else:
            from lxml import etree

            root = etree.fromstring(_BOMB, etree.XMLParser(resolve_entities=False, no_network=True))
            probe["title"] = "".join(root.find(".//title").itertext())
    except Exception as exc:
        return f"no (refused: {type(exc).__name__})"
    return "yes" if probe["title"].count("lol") >= 100 else "no"


def _list_page(target: int = LIST_BYTES) -> bytes:
    """A MOFCOM-style 政策发布 list page of about `target` bytes (ul.txtList_01, title attributes, dates)."""
    head = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>政策发布</title></head><body>'
        '<div class="nav"><ul><li><a href="/">首页</a></li><li><a href="/zwgk/">政务公开</a></li></ul></div>'
        '<div class="list-con"><ul class="txtList_01">'
    )
    rows, n = [], 0
    while len(head) + sum(len(r.encode()) for r in rows) < target:
        title = f"商务部 海关总署公告2025年第{n}号 关于对部分中重稀土相关物项实施出口管制的决定"
        rows.append(
            f'<li><a href="/zwgk/zcfb/art/2025/art_{n:032x}.html" title="{title}" target="_blank">'
            f"{title[:24]}...</a><span>2025-{1 + n % 12:02d}-{1 + n % 28:02d}</span></li>\n"
        )
        n += 1
    return (head + "".join(rows) + "</ul></div></body></html>").encode("utf-8")


def _mofcom_list() -> dict[str, Any]:
    from tradewatch.sources._select import parse_html
    from tradewatch.sources.mofcom import MofcomOptions, MofcomSource

    page = _list_page()
    source = MofcomSource(
        MofcomOptions(name="bench", kind="mofcom", url="https://www.mofcom.gov.cn/zcfb/", max_items=10_000)
    )
    items = source.parse_list(parse_html(page.decode("utf-8")), "https://www.mofcom.gov.cn/zcfb/")
    seconds = _time(
        lambda: source.parse_list(parse_html(page.decode("utf-8")), "https://www.mofcom.gov.cn/zcfb/")
    )
    default = MofcomSource(MofcomOptions(name="bench", kind="mofcom", url="https://www.mofcom.gov.cn/zcfb/"))
    capped = _time(
        lambda: default.parse_list(parse_html(page.decode("utf-8")), "https://www.mofcom.gov.cn/zcfb/")
    )
    result: dict[str, Any] = {
        "bytes": len(page),
        "items": len(items),
        "ms_all_items": round(seconds * 1000, 2),
        "ms_default_max_items_30": round(capped * 1000, 2),
    }
    detail = FIXTURE.parents[1] / "mofcom" / "prc-dual-use-regulation-792.html"
    if detail.exists():
        html = detail.read_text(encoding="utf-8")
        result["detail_page_bytes"] = len(html.encode())
        result["ms_detail_page"] = round(
            _time(lambda: source.read_detail(parse_html(html), "https://x/")) * 1000, 2
        )
    return result


def run(progress: bool) -> dict[str, Any]:
    """Median milliseconds per feed for each parser and feed, entity safety, and the list-page figure."""
    feeds = _feeds()
    parsers = _parsers()
    table: dict[str, Any] = {}
    for name, fn in parsers.items():
        if isinstance(fn, str):
            table[name] = {"unavailable": fn}
            continue
        row: dict[str, Any] = {}
        for feed, data in feeds.items():
            _progress(progress, f"bench_parse: {name} on {feed}")
            try:
                row[f"{feed}_entries"] = fn(data)
                row[f"{feed}_ms"] = round(_time(lambda fn=fn, data=data: fn(data)) * 1000, 3)
            except Exception as exc:
                row[f"{feed}_error"] = f"{type(exc).__name__}: {exc}"[:200]
        row["expands_entities"] = _expands(fn, name)
        table[name] = row
    _progress(progress, "bench_parse: mofcom list page")
    listing = _mofcom_list()
    _progress(progress, "")
    base = table.get("feedparser", {}).get("rss-50_ms")
    for row in table.values():
        if base and "rss-50_ms" in row:
            row["speedup_vs_feedparser_rss50"] = round(base / row["rss-50_ms"], 1)
    return {
        "feeds": {k: len(v) for k, v in feeds.items()},
        "parsers": table,
        "mofcom_list_page": listing,
        "choice": "tradewatch (stdlib expat tree, defusedxml for any DOCTYPE + own RSS/Atom mapping): "
        "entities refused, strict XML errors reported per source; see docs/sources.md",
    }


if __name__ == "__main__":
    print(json.dumps(run(sys.stderr.isatty()), indent=2, ensure_ascii=False))
