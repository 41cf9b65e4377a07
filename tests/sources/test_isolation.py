"""One broken source never takes others down: a poll round over healthy and broken sources on one client."""

from __future__ import annotations

import asyncio

from tests.conftest import free_port
from tests.servers import LocalServer, Response
from tests.sources.helpers import fixture_bytes, http_settings, raw_server, spec
from tradewatch.errors import SourceError
from tradewatch.fetch import Fetcher
from tradewatch.sources import SOURCES, Source


async def _never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.Event().wait()


async def test_each_failure_stays_with_its_source(server: LocalServer) -> None:
    """Timeout, refusal, 500, 429, oversize, entity bomb and private redirect fail only their own source."""
    server.routes["/feed"] = Response(200, fixture_bytes("rss/whitehouse-news-scraped-2026-06-29.xml"))
    server.routes["/fr.json"] = Response(
        200, fixture_bytes("federal_register/documents-presdocu-newest-page1.json")
    )
    server.routes["/500"] = Response(500, b"down")
    server.routes["/429"] = Response(429, b"", {"Retry-After": "7200"})
    server.routes["/huge"] = Response(200, b"<rss>" + b" " * 300_000 + b"</rss>")
    server.routes["/bomb"] = Response(200, b'<!DOCTYPE r [<!ENTITY a "x">]><rss>&a;</rss>')
    server.routes["/hop"] = Response(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
    closed = free_port()
    async with raw_server(_never_answer) as silent:
        specs = [
            spec("rss", name="good-feed", url=server.url("/feed")),
            spec("federal_register", name="good-fr", url=server.url("/fr.json")),
            spec("rss", name="timeout", url=silent + "/x", timeout=0.2),
            spec("rss", name="refused", url=f"http://127.0.0.1:{closed}/x"),
            spec("rss", name="error-500", url=server.url("/500")),
            spec("rss", name="limited", url=server.url("/429")),
            spec("rss", name="oversize", url=server.url("/huge"), max_bytes=100_000),
            spec("rss", name="bomb", url=server.url("/bomb")),
            spec("rss", name="ssrf", url=server.url("/hop")),
        ]
        sources: list[Source] = [SOURCES[s.kind](s) for s in specs]
        async with Fetcher(http_settings(retries=1)) as fetcher:
            results = await asyncio.gather(*(s.fetch(fetcher) for s in sources), return_exceptions=True)
    outcome = dict(zip([s.name for s in specs], results, strict=True))
    assert not isinstance(outcome["good-feed"], BaseException)
    assert outcome["good-feed"].documents
    assert not isinstance(outcome["good-fr"], BaseException)
    assert len(outcome["good-fr"].documents) == 2
    reasons = {
        "timeout": "timed out",
        "refused": "connection failed",
        "error-500": "HTTP 500",
        "limited": "HTTP 429",
        "oversize": "over max_bytes",
        "bomb": "entity bomb",
        "ssrf": "non-public address 169.254.169.254",
    }
    for name, reason in reasons.items():
        err = outcome[name]
        assert isinstance(err, SourceError), (name, err)
        assert err.source == name
        assert reason in str(err), (name, str(err))
    limited = outcome["limited"]
    assert isinstance(limited, SourceError)
    assert limited.retry_after == 7200
