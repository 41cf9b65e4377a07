"""The `rss` kind against the recorded feeds served on 127.0.0.1."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.servers import LocalServer, Response
from tests.sources.helpers import conditional, fixture_bytes, spec
from tradewatch.errors import SourceError
from tradewatch.fetch import Fetcher
from tradewatch.sources.rss import RssSource

TRUTH = "truthsocial/feed-trumpstruth-2026-08-25-truncated.xml"
WHITEHOUSE = "rss/whitehouse-news-scraped-2026-06-29.xml"


async def test_truth_mirror_feed(server: LocalServer, fetcher: Fetcher) -> None:
    """The trumpstruth.org feed yields 26 posts with guid ids, UTC dates, text and original ids."""
    server.routes["/feed"] = Response(200, fixture_bytes(TRUTH), {"Content-Type": "application/rss+xml"})
    result = await RssSource(spec("rss", url=server.url("/feed"))).fetch(fetcher)
    docs = {d.id: d for d in result.documents}
    assert len(result.documents) == 26
    canada = docs["https://trumpstruth.org/statuses/41187"]
    assert canada.url == canada.id
    assert "400%" in canada.title + canada.text
    assert canada.published_at is not None
    assert canada.published_at.utcoffset() is not None
    assert canada.extra["original_url"].startswith("https://truthsocial.com/@realDonaldTrump/")
    assert canada.extra["original_id"].isdigit()
    media_only = docs["https://trumpstruth.org/statuses/41211"]
    assert media_only.text == ""
    assert media_only.published_at == datetime(2026, 8, 25, 18, 19, 49, tzinfo=UTC)


async def test_whitehouse_feed_without_guid(server: LocalServer, fetcher: Fetcher) -> None:
    """A feed without guid uses the link as id; curly punctuation survives."""
    server.routes["/wh"] = Response(200, fixture_bytes(WHITEHOUSE), {"Content-Type": "text/xml"})
    result = await RssSource(spec("rss", url=server.url("/wh"))).fetch(fetcher)
    assert result.documents
    for doc in result.documents:
        assert doc.id == doc.url
        assert doc.url.startswith("https://www.whitehouse.gov/")
        assert doc.published_at == datetime(2026, 6, 29, 21, 27, 53, tzinfo=UTC)
    assert any("/presidential-actions/" in d.url for d in result.documents)


async def test_304_creates_no_documents(server: LocalServer, fetcher: Fetcher) -> None:
    """A poll answered 304 parses nothing and yields no documents; the ETag is kept."""
    server.routes["/feed"] = conditional(fixture_bytes(TRUTH), "application/rss+xml", etag='"t1"')
    source = RssSource(spec("rss", url=server.url("/feed")))
    first = await source.fetch(fetcher)
    await fetcher.commit(first)
    second = await source.fetch(fetcher)
    assert second.not_modified
    assert second.status == 304
    assert second.documents == []
    assert server.requests[-1].headers["if-none-match"] == '"t1"'
    assert await fetcher.validators.get(server.url("/feed")) is not None


async def test_atom_and_rss1(server: LocalServer, fetcher: Fetcher) -> None:
    """Atom entries and RSS 1.0 (RDF) items are read with ids, links and dates."""
    atom = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
<entry><id>tag:ustr.gov,2026:1</id><title type="html">USTR &lt;b&gt;Section 301&lt;/b&gt;</title>
<link rel="alternate" href="https://ustr.gov/a"/><updated>2026-05-01T10:00:00-04:00</updated>
<summary>Tariff action</summary></entry></feed>"""
    rdf = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/"><channel rdf:about="x"><title>c</title></channel>
<item rdf:about="https://example.org/1"><title>Export controls</title><link>https://example.org/1</link>
<dc:date>2026-05-02T08:00:00+08:00</dc:date></item></rdf:RDF>"""
    server.routes["/atom"] = Response(200, atom)
    server.routes["/rdf"] = Response(200, rdf)
    (a,) = (await RssSource(spec("rss", url=server.url("/atom"))).fetch(fetcher)).documents
    (r,) = (await RssSource(spec("rss", url=server.url("/rdf"))).fetch(fetcher)).documents
    assert (a.id, a.url, a.title, a.text) == (
        "tag:ustr.gov,2026:1",
        "https://ustr.gov/a",
        "USTR Section 301",
        "Tariff action",
    )
    assert a.published_at is not None
    assert a.published_at.isoformat() == "2026-05-01T10:00:00-04:00"
    assert r.id == "https://example.org/1"
    assert r.published_at is not None
    assert r.published_at.isoformat() == "2026-05-02T08:00:00+08:00"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<rss><channel><item><title>x</channel></rss>", "malformed XML"),
        (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><rss>&b;</rss>',
            "entity bomb",
        ),
        (b"<html><body>not a feed</body></html>", "not an RSS or Atom feed"),
    ],
)
async def test_bad_feeds_fail_only_their_source(
    server: LocalServer,
    fetcher: Fetcher,
    body: bytes,
    message: str,
) -> None:
    """Malformed XML, an entity bomb or an HTML page fail with a SourceError naming the source."""
    server.routes["/bad"] = Response(200, body)
    server.routes["/good"] = Response(200, fixture_bytes(WHITEHOUSE))
    with pytest.raises(SourceError, match=message) as err:
        await RssSource(spec("rss", name="broken", url=server.url("/bad"))).fetch(fetcher)
    assert err.value.source == "broken"
    good = await RssSource(spec("rss", name="fine", url=server.url("/good"))).fetch(fetcher)
    assert good.documents


async def test_relative_links_are_resolved(server: LocalServer, fetcher: Fetcher) -> None:
    """A relative item link becomes absolute against the feed URL, and is the id without a guid."""
    feed = b"""<rss version="2.0"><channel><title>t</title>
<item><title>Notice</title><link>/news/2026/notice-1.html</link></item></channel></rss>"""
    server.routes["/agency/feed.xml"] = Response(200, feed)
    (doc,) = (await RssSource(spec("rss", url=server.url("/agency/feed.xml"))).fetch(fetcher)).documents
    assert doc.url == doc.id == server.url("/news/2026/notice-1.html")


async def test_only_the_first_max_items_are_read(server: LocalServer, fetcher: Fetcher) -> None:
    """A feed of 600 items gives 500 by default (a huge feed's cost is bounded), or `max_items`."""
    items = "".join(
        f"<item><title>n{i}</title><link>https://example.org/{i}</link></item>" for i in range(600)
    )
    server.routes["/big"] = Response(200, f"<rss version='2.0'><channel>{items}</channel></rss>".encode())
    docs = (await RssSource(spec("rss", url=server.url("/big"))).fetch(fetcher)).documents
    assert [d.title for d in docs] == [f"n{i}" for i in range(500)]
    few = RssSource(spec("rss", url=server.url("/big"), max_items=3))
    assert [d.title for d in (await few.fetch(fetcher)).documents] == ["n0", "n1", "n2"]


async def test_dates_without_offset_are_read_in_the_source_timezone(
    server: LocalServer, fetcher: Fetcher
) -> None:
    """A Chinese agency feed writes Beijing wall time with no offset: `timezone` says so (default UTC)."""
    feed = """<?xml version="1.0" encoding="gb2312"?><rss version="2.0"><channel><title>t</title>
<item><title>商务部公告</title><link>https://example.org/1</link><pubDate>2025-10-09 15:30:00</pubDate></item>
<item><title>With offset</title><link>https://example.org/2</link>
<pubDate>Thu, 09 Oct 2025 15:30:00 +0000</pubDate></item>
</channel></rss>""".encode("gb2312")
    server.routes["/cn.xml"] = Response(200, feed)

    async def dates(**options: str) -> list[str]:
        docs = (await RssSource(spec("rss", url=server.url("/cn.xml"), **options)).fetch(fetcher)).documents
        return [d.published_at.astimezone(UTC).isoformat() if d.published_at else "" for d in docs]

    assert await dates(timezone="Asia/Shanghai") == ["2025-10-09T07:30:00+00:00", "2025-10-09T15:30:00+00:00"]
    assert await dates() == ["2025-10-09T15:30:00+00:00", "2025-10-09T15:30:00+00:00"]
