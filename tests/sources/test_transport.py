"""The httpx transport over aiohttp's pool, against real local servers: headers, proxies, broken answers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.fakesmtp import self_signed_cert
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


async def test_httpx_read_timeouts_apply() -> None:
    """A client's httpx timeout reaches the pool: a server that never answers is a ReadTimeout."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    transport = AiohttpTransport(size=1, keepalive_expiry=5, tls=httpx.create_ssl_context(), guarded=False)
    async with raw_server(silent) as base, httpx.AsyncClient(transport=transport, timeout=0.2) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(base + "/never")


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


@contextlib.asynccontextmanager
async def _recording_server(answer: bytes) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A server that keeps each request head as sent (case and duplicates included) and answers `answer`."""
    heads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(answer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}", heads
    finally:
        srv.close()


def _header_lines(head: bytes) -> list[str]:
    return head.decode("latin-1").split("\r\n")[1:-2]


async def test_a_sources_headers_replace_the_defaults_whatever_their_case() -> None:
    """`accept`/`user-agent` in a source's headers replace Accept/User-Agent: one of each on the wire."""
    opts = RequestOptions(
        source="s",
        headers={"accept": "application/json", "user-agent": "custom/1", "X-Key": "k"},
        trusted_hosts=OPTS.trusted_hosts,
    )
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with _recording_server(answer) as (base, heads), Fetcher(http_settings()) as f:
        await f.get(base + "/h", opts)
    names = [line.split(":", 1)[0].lower() for line in _header_lines(heads[0])]
    assert sorted(names) == sorted(["host", "accept", "accept-encoding", "user-agent", "x-key"])
    assert "user-agent: custom/1" in _header_lines(heads[0])
    assert "X-Key: k" in _header_lines(heads[0]), "names go out as written"


async def test_an_oversized_response_header_fails_the_poll() -> None:
    """A header line over 16 KiB is refused as a broken answer instead of being held in memory."""
    answer = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (20 * 1024) + b"\r\nContent-Length: 2\r\n\r\nok"
    async with _recording_server(answer) as (base, _), Fetcher(http_settings(retries=0)) as f:
        with pytest.raises(SourceError, match="connection closed early"):
            await f.get(base + "/big", OPTS)


async def test_an_environment_proxy_without_scheme_is_http(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY=host:port is read as http://host:port, as httpx and curl read it."""
    with LocalServer() as proxy:
        proxy.routes["http://feeds.example/feed"] = Response(200, b"via env proxy")
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url.removeprefix("http://"))
        async with Fetcher(http_settings(allow_private=False)) as f:
            resp = await f.get("http://feeds.example/feed", RequestOptions(source="s"))
    assert resp.content == b"via env proxy"


async def test_a_socks_proxy_in_the_environment_is_ignored(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ALL_PROXY=socks5://… cannot be spoken: requests go direct instead of plain HTTP to a SOCKS port."""
    server.routes["/d"] = Response(200, b"direct")
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:9")
    async with Fetcher(http_settings()) as f:
        assert (await f.get(server.url("/d"), OPTS)).content == b"direct"


async def test_a_proxy_refusing_connect_is_named_and_carries_our_user_agent() -> None:
    """An https URL through a proxy: CONNECT says the configured User-Agent; a 407 names the proxy."""
    answer = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
    async with _recording_server(answer) as (proxy, heads):
        opts = RequestOptions(source="s", proxy=proxy)
        async with Fetcher(http_settings(allow_private=False, retries=0, user_agent="tw/1")) as f:
            with pytest.raises(SourceError, match="proxy answered 407 Proxy Authentication Required"):
                await f.get("https://feeds.example/feed", opts)
    assert heads[0].startswith(b"CONNECT feeds.example:443 HTTP/1.1\r\n")
    assert "User-Agent: tw/1" in _header_lines(heads[0])


async def test_https_verifies_certificates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An untrusted certificate fails the poll naming the cause; one trusted through SSL_CERT_FILE works."""
    cert, key = self_signed_cert(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the client refused our certificate
        finally:
            writer.close()

    srv = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=tls)
    url = f"https://127.0.0.1:{srv.sockets[0].getsockname()[1]}/"
    try:
        async with Fetcher(http_settings(retries=0)) as f:
            with pytest.raises(SourceError, match="certificate verify failed"):
                await f.get(url, OPTS)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        async with Fetcher(http_settings(retries=0)) as f:
            assert (await f.get(url, OPTS)).content == b"secret"
    finally:
        srv.close()
