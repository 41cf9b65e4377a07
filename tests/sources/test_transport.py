"""The httpx transport over aiohttp's pool, against real local servers: headers, proxies, broken answers."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest

from tests.servers import LocalServer, Response
from tests.sources.helpers import _fast_retries, http_settings, raw_server, server
from tradewatch.errors import SourceError
from tradewatch.fetch import ACCEPT_ENCODING, Fetcher, RequestOptions
from tradewatch.sources._transport import AiohttpTransport

__all__ = ["_fast_retries", "server"]

OPTS = RequestOptions(source="s", trusted_hosts=frozenset({"127.0.0.1"}))


async def test_only_the_requests_own_headers_are_sent(server: LocalServer) -> None:
    """The wire carries httpx's request headers, not aiohttp's defaults (no library user agent)."""
    server.routes["/h"] = Response(200, b"ok")
    async with Fetcher(http_settings(user_agent="tradewatch-test/1")) as f:
        await f.get(server.url("/h"), OPTS, accept="application/rss+xml")
    headers = server.requests[0].headers
    assert headers["user-agent"] == "tradewatch-test/1"
    assert headers["accept"] == "application/rss+xml"
    assert headers["accept-encoding"] == ACCEPT_ENCODING
    assert headers["host"] == server.url("/").split("/")[2]


async def test_it_is_a_plain_httpx_transport(server: LocalServer) -> None:
    """Any httpx client can use it: status, headers and the decoded body come back as httpx objects."""
    server.routes["/t"] = Response(200, "认证 ok".encode(), {"Content-Type": "text/plain; charset=utf-8"})
    transport = AiohttpTransport(size=2, keepalive_expiry=5, tls=httpx.create_ssl_context(), guarded=False)
    async with httpx.AsyncClient(transport=transport) as client:
        resp = await client.get(server.url("/t"))
    assert resp.status_code == 200
    assert resp.reason_phrase == "OK"
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.text == "认证 ok"


async def test_proxy_credentials_go_in_proxy_authorization() -> None:
    """user:password in a proxy URL become a Proxy-Authorization header, never part of the request line."""
    with LocalServer() as proxy:
        proxy.routes["http://feeds.example/feed"] = Response(200, b"via proxy")
        url = proxy.base_url.replace("http://", "http://agent:s%40cret@")
        async with Fetcher(http_settings(allow_private=False)) as f:
            resp = await f.get("http://feeds.example/feed", RequestOptions(source="s", proxy=url))
    assert resp.content == b"via proxy"
    sent = proxy.requests[0].headers["proxy-authorization"]
    assert base64.b64decode(sent.removeprefix("Basic ")) == b"agent:s@cret"


async def test_no_proxy_hosts_are_fetched_directly(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY applies except to the hosts NO_PROXY lists."""
    server.routes["/direct"] = Response(200, b"direct")
    with LocalServer() as proxy:
        proxy.routes["http://feeds.example/feed"] = Response(200, b"via env proxy")
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        async with Fetcher(http_settings()) as f:
            direct = await f.get(server.url("/direct"), OPTS)
            proxied = await f.get("http://feeds.example/feed", RequestOptions(source="s"))
    assert (direct.content, proxied.content) == (b"direct", b"via env proxy")
    assert server.hits("/direct") == 1
    assert [r.path for r in proxy.requests] == ["http://feeds.example/feed"]


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nBad Header Line\r\n\r\nok", "connection closed early"),
        (b"NOT HTTP AT ALL\r\n\r\n", "connection closed early"),
        (b"", "connection closed early"),
    ],
)
async def test_a_malformed_answer_is_a_retried_source_error(answer: bytes, why: str) -> None:
    """A broken status line, header or an empty answer fails the poll after its retries, naming the cause."""
    calls = 0

    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        calls += 1
        writer.write(answer)
        await writer.drain()
        writer.close()

    async with raw_server(broken) as base, Fetcher(http_settings(retries=2)) as f:
        with pytest.raises(SourceError, match=why):
            await f.get(base + "/m", OPTS)
    # Transient: the first attempt and two retries, each one connection at least (aiohttp
    # itself asks once more, on a new connection, when a server closes without a word).
    assert calls >= 3
