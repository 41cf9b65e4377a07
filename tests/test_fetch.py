"""The shared HTTP client against real local servers: limits, retries, redirects, charsets, XML safety."""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
import tracemalloc

import brotli
import pytest
import stamina
import structlog

from tests.conftest import free_port
from tests.servers import LocalServer, Request, Response
from tests.sources.helpers import _fast_retries, http_settings, raw_server, server
from tradewatch.cli import printable
from tradewatch.config import SourceSpec
from tradewatch.errors import SourceError
from tradewatch.fetch import Fetcher, RequestOptions, decode_body, parse_xml
from tradewatch.sources import _pools
from tradewatch.sources._destination import Destinations
from tradewatch.sources._netguard import trusted_entries, trusts
from tradewatch.sources.base import SourceResult

__all__ = ["_fast_retries", "server"]

OPTS = RequestOptions(source="s", trusted_hosts=frozenset({"127.0.0.1"}))


async def test_conditional_get_sends_validators_after_commit(server: LocalServer) -> None:
    """After commit, the next GET carries If-None-Match and a 304 comes back as not_modified."""

    def handle(req: Request) -> Response:
        if req.headers.get("if-none-match") == '"e1"':
            return Response(304)
        return Response(200, b"hello", {"ETag": '"e1"', "Last-Modified": "Mon, 01 Jun 2026 00:00:00 GMT"})

    server.routes["/p"] = handle
    async with Fetcher(http_settings()) as f:
        first = await f.get(server.url("/p"), OPTS, conditional=True)
        assert first.status == 200
        assert first.validators is not None
        again = await f.get(server.url("/p"), OPTS, conditional=True)
        assert again.status == 200, "validators are stored only on commit"
        await f.commit(SourceResult(validators={server.url("/p"): first.validators}))
        third = await f.get(server.url("/p"), OPTS, conditional=True)
    assert third.not_modified
    assert third.content == b""
    assert server.requests[-1].headers["if-modified-since"] == "Mon, 01 Jun 2026 00:00:00 GMT"


async def test_a_304_keeps_its_connection_for_the_next_poll(server: LocalServer) -> None:
    """Polls of one host reuse one keep-alive connection, 304s included (an unread 304 would close it)."""

    def handle(req: Request) -> Response:
        if req.headers.get("if-none-match") == '"v"':
            return Response(304, headers={"ETag": '"v"'})
        return Response(200, b"body", {"ETag": '"v"'})

    server.routes["/k"] = handle
    async with Fetcher(http_settings()) as f:
        first = await f.get(server.url("/k"), OPTS, conditional=True)
        assert first.validators is not None
        await f.commit(SourceResult(validators={server.url("/k"): first.validators}))
        statuses = [(await f.get(server.url("/k"), OPTS, conditional=True)).status for _ in range(3)]
    assert statuses == [304, 304, 304]
    assert len({r.peer for r in server.requests}) == 1, "every request came over the first connection"


async def test_hosts_past_the_pool_limit_share_one_guarded_pool(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_HOST_POOLS hosts, requests still work (one shared pool) and still pass the address check."""
    monkeypatch.setattr(_pools, "MAX_HOST_POOLS", 1)
    server.routes["/p"] = Response(200, b"ok")
    other = server.url("/p").replace("127.0.0.1", "localhost")
    opts = RequestOptions(source="s", trusted_hosts=frozenset({"127.0.0.1", "localhost"}))
    async with Fetcher(http_settings()) as f:
        assert (await f.get(server.url("/p"), opts)).content == b"ok"
        assert (await f.get(other, opts)).content == b"ok"
        assert (await f.get(other, opts)).content == b"ok"
        pools = f.pools.keys()
        assert len(pools) == 2
        assert pools[1][2] is None, "the second host went to the shared pool"
        with pytest.raises(SourceError, match="non-public"):
            await f.get(other, RequestOptions(source="s", trusted_hosts=frozenset({"127.0.0.1"})))


async def test_idle_host_pools_are_closed_and_busy_ones_kept(server: LocalServer) -> None:
    """close_idle frees the sockets of hosts not asked lately, never a pool with a request in flight."""
    arrived, release = threading.Event(), threading.Event()

    def slow(req: Request) -> Response:
        arrived.set()
        release.wait(5)
        return Response(200, b"slow")

    server.routes["/quick"] = Response(200, b"ok")
    server.routes["/slow"] = slow
    other = server.url("/slow").replace("127.0.0.1", "localhost")
    opts = RequestOptions(source="s", trusted_hosts=frozenset({"127.0.0.1", "localhost"}))
    async with Fetcher(http_settings()) as f:
        assert (await f.get(server.url("/quick"), opts)).content == b"ok"
        pending = asyncio.create_task(f.get(other, opts))
        assert await asyncio.to_thread(arrived.wait, 5)  # the slow request is in flight on the localhost pool
        assert await f.close_idle(idle=0) == 1, "only the idle 127.0.0.1 pool goes"
        release.set()
        assert (await pending).content == b"slow"
        assert (await f.get(server.url("/quick"), opts)).content == b"ok", "a new pool is built on demand"
        assert await f.close_idle(idle=60) == 0, "pools used within the last minute stay"
        assert await f.close_idle(idle=0) == 2


@pytest.mark.parametrize(("encoding", "compress"), [("gzip", gzip.compress), ("br", brotli.compress)])
async def test_compressed_bodies_are_decoded(server: LocalServer, encoding: str, compress: object) -> None:
    """gzip and brotli bodies arrive decoded, and the client asks for them."""
    body = "稀土 export controls".encode() * 100
    server.routes["/c"] = Response(200, compress(body), {"Content-Encoding": encoding})  # type: ignore[operator]
    async with Fetcher(http_settings()) as f:
        resp = await f.get(server.url("/c"), OPTS)
    assert resp.content == body
    assert encoding in server.requests[0].headers["accept-encoding"]


async def test_headers_and_user_agent_per_source(server: LocalServer) -> None:
    """A source's headers and user agent override the global ones."""
    server.routes["/h"] = Response(200, b"ok")
    opts = RequestOptions(
        source="s", headers={"X-Key": "k"}, user_agent="custom/1", trusted_hosts=OPTS.trusted_hosts
    )
    async with Fetcher(http_settings(user_agent="global/1")) as f:
        await f.get(server.url("/h"), opts)
        await f.get(server.url("/h"), OPTS)
    assert server.requests[0].headers["user-agent"] == "custom/1"
    assert server.requests[0].headers["x-key"] == "k"
    assert server.requests[1].headers["user-agent"] == "global/1"


async def test_timeout_is_a_source_error() -> None:
    """A server that never answers fails the poll with 'timed out' after the retries."""
    hits = 0

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal hits
        hits += 1
        await asyncio.Event().wait()

    async with raw_server(silent) as base, Fetcher(http_settings(timeout=0.2, retries=1)) as f:
        with pytest.raises(SourceError, match=r"timed out after 0\.2s") as err:
            await f.get(base + "/x", OPTS)
    assert err.value.source == "s"
    assert hits == 2


async def test_slow_server_cannot_hold_a_poll() -> None:
    """A server that drips bytes is cut at the attempt's deadline, not per read."""

    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        while True:
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.02)

    async with raw_server(drip) as base, Fetcher(http_settings(timeout=0.3, retries=0)) as f:
        started = time.monotonic()
        with pytest.raises(SourceError, match="timed out"):
            await f.get(base + "/slow", OPTS)
    assert time.monotonic() - started < 2


async def test_redirects_share_the_attempts_deadline() -> None:
    """Each hop of a redirect chain answers within `timeout`, the chain does not: the attempt
    times out, instead of holding the host for `timeout` per hop."""
    hops: list[int] = []

    async def slow_redirects(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hops.append(len(hops))
        await asyncio.sleep(0.25)
        nxt = f"/hop{len(hops)}"
        writer.write(f"HTTP/1.1 302 Found\r\nLocation: {nxt}\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    async with raw_server(slow_redirects) as base, Fetcher(http_settings(timeout=0.6, retries=0)) as f:
        with pytest.raises(SourceError, match=r"timed out after 0\.6s"):
            await f.get(base + "/start", OPTS)
    assert len(hops) == 3  # the third hop's answer would come after the deadline (0.75 s > 0.6 s)


async def test_waiting_for_the_host_between_redirects_is_not_the_requests_time(server: LocalServer) -> None:
    """The shared deadline counts the requests, not the waits for a host slot: a redirect whose
    next hop queues behind another poll's slow request still succeeds."""
    first_hop = threading.Event()
    go_on = threading.Event()

    def hop(req: Request) -> Response:
        first_hop.set()
        go_on.wait(5)
        return Response(302, b"", {"Location": "/there"})

    def slow(req: Request) -> Response:
        time.sleep(0.7)
        return Response(200, b"slow")

    server.routes["/here"] = hop
    server.routes["/there"] = Response(200, b"arrived")
    server.routes["/slow"] = slow
    async with Fetcher(http_settings(per_host=1, timeout=1.0, retries=0)) as f:
        redirected = asyncio.create_task(f.get(server.url("/here"), OPTS))
        await asyncio.to_thread(first_hop.wait, 5)
        other = asyncio.create_task(f.get(server.url("/slow"), OPTS))  # queues for the host's slot
        await asyncio.sleep(0.4)  # the first hop takes 0.4 s of the redirect's 1 s
        go_on.set()  # its next hop now waits 0.7 s behind the other request for the slot
        assert (await redirected).content == b"arrived"
        assert (await other).content == b"slow"


async def test_a_hostile_reason_phrase_reaches_no_terminal() -> None:
    """The server's reason phrase goes into the error (shown by `sources test`, kept for
    `sources list`): its terminal controls (clear screen, window title) are dropped."""

    async def hostile(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 418 \x1b[2J\x1b[31mFAKE\x1b]0;owned\x07 X\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async with raw_server(hostile) as base, Fetcher(http_settings(retries=0)) as f:
        with pytest.raises(SourceError) as err:
            await f.get(base + "/x", OPTS)
    assert str(err.value).startswith("HTTP 418 [2J[31mFAKE]0;owned X (")
    assert printable("a\x1b]0;owned\x07b\u202ec\n") == "a?]0;owned?b?c\n"


async def test_connection_refused_is_a_source_error() -> None:
    """A closed port fails with 'connection failed' naming the URL."""
    port = free_port()
    async with Fetcher(http_settings()) as f:
        with pytest.raises(SourceError, match=r"connection failed.*127\.0\.0\.1"):
            await f.get(f"http://127.0.0.1:{port}/", OPTS)


async def test_500_is_retried_then_succeeds(server: LocalServer) -> None:
    """A 5xx is retried; a later 200 is the answer."""
    answers = iter([Response(503), Response(500), Response(200, b"fine")])
    server.routes["/r"] = lambda req: next(answers)
    async with Fetcher(http_settings()) as f:
        resp = await f.get(server.url("/r"), OPTS)
    assert resp.content == b"fine"
    assert server.hits("/r") == 3


async def test_500_that_persists_fails_after_retries(server: LocalServer) -> None:
    """Persisting 500s fail the poll with the status after retries + 1 attempts."""
    server.routes["/r"] = Response(500, b"oops")
    async with Fetcher(http_settings(retries=2)) as f:
        with pytest.raises(SourceError, match="HTTP 500"):
            await f.get(server.url("/r"), OPTS)
    assert server.hits("/r") == 3


async def test_outside_test_mode_a_failed_first_attempt_is_retried_on_schedule(server: LocalServer) -> None:
    """The bare first attempt, then stamina's loop for the rest: retries + 1 attempts in all.

    Retry-After: 0 keeps the waits at zero without stamina's test mode (the autouse fixture's).
    """
    stamina.set_testing(False)
    calls = {"n": 0}

    def flaky(req: Request) -> Response:
        calls["n"] += 1
        return Response(503, b"busy", {"Retry-After": "0"}) if calls["n"] < 3 else Response(200, b"ok")

    server.routes["/flaky"] = flaky
    server.routes["/down"] = Response(503, b"down", {"Retry-After": "0"})
    async with Fetcher(http_settings(retries=2)) as f:
        assert (await f.get(server.url("/flaky"), OPTS)).content == b"ok"
        with pytest.raises(SourceError, match="HTTP 503"):
            await f.get(server.url("/down"), OPTS)
    async with Fetcher(http_settings(retries=0)) as f:
        with pytest.raises(SourceError, match="HTTP 503"):
            await f.get(server.url("/down"), OPTS)
    assert calls["n"] == 3
    assert server.hits("/down") == 3 + 1


async def test_retry_log_lines_name_the_source_and_url(server: LocalServer) -> None:
    """Every retry's log line (the first one's and stamina's) says which source and URL it is for."""
    stamina.set_testing(False)
    server.routes["/down"] = Response(503, b"down", {"Retry-After": "0"})
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        async with Fetcher(http_settings(retries=2)) as f:
            with pytest.raises(SourceError, match="HTTP 503"):
                await f.get(server.url("/down"), OPTS)
    retries = [e for e in logs if "retry" in e["event"]]
    assert [(e["event"], e["log_level"], e["attempt"]) for e in retries] == [
        ("fetch_retry_scheduled", "info", 1),
        ("fetch_retry_scheduled", "info", 2),
    ]  # one event name and level for every retry, not stamina's warning naming "<context block>"
    assert all(e["source"] == "s" and e["url"] == server.url("/down") for e in retries)
    assert all("HTTP 503" in e["error"] for e in retries)


async def test_404_is_not_retried(server: LocalServer) -> None:
    """A 4xx other than 429 fails at once."""
    async with Fetcher(http_settings()) as f:
        with pytest.raises(SourceError, match="HTTP 404"):
            await f.get(server.url("/missing"), OPTS)
    assert server.hits("/missing") == 1


async def test_429_with_short_retry_after_is_retried(server: LocalServer) -> None:
    """A 429 whose Retry-After fits in a poll is waited out and retried."""
    answers = iter([Response(429, b"", {"Retry-After": "2"}), Response(200, b"ok")])
    server.routes["/l"] = lambda req: next(answers)
    async with Fetcher(http_settings()) as f:
        resp = await f.get(server.url("/l"), OPTS)
    assert resp.content == b"ok"


async def test_429_with_long_retry_after_hands_it_to_the_scheduler(server: LocalServer) -> None:
    """A long Retry-After is not waited inline: the error carries it and no retry is made."""
    server.routes["/l"] = Response(429, b"", {"Retry-After": "3600"})
    async with Fetcher(http_settings()) as f:
        with pytest.raises(SourceError, match="HTTP 429") as err:
            await f.get(server.url("/l"), OPTS)
    assert err.value.retry_after == 3600
    assert server.hits("/l") == 1


async def test_truncated_body_is_a_source_error() -> None:
    """A body shorter than its Content-Length fails as truncated."""

    async def short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n<rss><channel>")
        await writer.drain()

    async with raw_server(short) as base, Fetcher(http_settings()) as f:
        with pytest.raises(SourceError, match="truncated"):
            await f.get(base + "/t", OPTS)


async def test_declared_size_over_max_bytes_is_refused(server: LocalServer) -> None:
    """A Content-Length over max_bytes is refused before reading the body."""
    server.routes["/big"] = Response(200, b"x" * 5000)
    async with Fetcher(http_settings(max_bytes=2048)) as f:
        with pytest.raises(SourceError, match="over max_bytes=2048"):
            await f.get(server.url("/big"), OPTS)


async def test_streamed_size_over_max_bytes_stops_reading() -> None:
    """A chunked body is cut as soon as it passes max_bytes, never read whole."""
    sent = 0

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while sent < 50_000_000:
            writer.write(b"400\r\n" + b"y" * 1024 + b"\r\n")
            sent += 1024
            await writer.drain()

    async with raw_server(endless) as base, Fetcher(http_settings(max_bytes=4096)) as f:
        with pytest.raises(SourceError, match="over max_bytes=4096, stopped reading"):
            await f.get(base + "/stream", OPTS)
    assert sent < 5_000_000


async def test_gzip_bomb_is_cut_by_max_bytes(server: LocalServer) -> None:
    """max_bytes counts decoded bytes, so a small gzip of a huge body is refused."""
    server.routes["/bomb"] = Response(200, gzip.compress(b"\0" * 20_000_000), {"Content-Encoding": "gzip"})
    async with Fetcher(http_settings(max_bytes=100_000)) as f:
        with pytest.raises(SourceError, match="over max_bytes"):
            await f.get(server.url("/bomb"), OPTS)


async def test_brotli_bomb_is_cut_without_inflating_it(server: LocalServer) -> None:
    """A 64 MB brotli bomb (a few hundred bytes) stops at max_bytes holding about that much, not 64 MB."""
    bomb = brotli.compress(b"\0" * (64 << 20), quality=5)
    server.routes["/br"] = Response(200, bomb, {"Content-Encoding": "br"})
    async with Fetcher(http_settings(max_bytes=1 << 20)) as f:
        tracemalloc.start()
        try:
            with pytest.raises(SourceError, match="over max_bytes"):
                await f.get(server.url("/br"), OPTS)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 16 << 20, f"peak {peak} bytes for a 1 MB limit"


async def test_redirect_within_the_configured_host_is_followed(server: LocalServer) -> None:
    """A redirect to another path of the same trusted host is followed."""
    server.routes["/old"] = Response(301, b"", {"Location": "/new"})
    server.routes["/new"] = Response(200, b"moved")
    async with Fetcher(http_settings()) as f:
        resp = await f.get(server.url("/old"), OPTS)
    assert resp.content == b"moved"
    assert resp.url.endswith("/new")
    assert resp.requested_url == server.url("/old")


@pytest.mark.parametrize(
    "target", ["http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/", "http://[::1]:1/"]
)
async def test_redirect_to_private_address_is_refused(server: LocalServer, target: str) -> None:
    """Even with allow_private, a redirect to a host the source did not name is checked and refused."""
    server.routes["/go"] = Response(302, b"", {"Location": target})
    async with Fetcher(http_settings()) as f:
        with pytest.raises(SourceError, match="non-public address"):
            await f.get(server.url("/go"), OPTS)


async def test_a_trusted_private_host_is_trusted_at_its_own_port_only(server: LocalServer) -> None:
    """allow_private trusts the configured host at its port (and that host's web ports 80/443): a
    redirect from the intranet page to another port of that host (Redis, an admin port) is refused."""
    with LocalServer() as other:
        other.routes["/admin"] = Response(200, b"admin")
        server.routes["/go"] = Response(302, b"", {"Location": other.url("/admin")})
        server.routes["/feed"] = Response(200, b"feed")
        source = SourceSpec.model_validate({"name": "intranet", "kind": "rss", "url": server.url("/feed")})
        opts = RequestOptions.for_source(source)
        async with Fetcher(http_settings()) as f:
            assert (await f.get(server.url("/feed"), opts)).content == b"feed"
            with pytest.raises(SourceError, match=r"refused: 127\.0\.0\.1 resolves to non-public address"):
                await f.get(server.url("/go"), opts)
        assert other.hits("/admin") == 0
    assert trusted_entries("http://intranet/feed") == {"intranet:80", "intranet:443"}
    # an IPv6 host in brackets: `fd00::1:80` (another address) is not the trusted `fd00::1` at port 80
    v6 = frozenset(trusted_entries("http://[fd00::1]:8080/feed"))
    assert trusts(v6, "fd00::1", 8080)
    assert not trusts(v6, "fd00::1:80", 6379)
    assert not trusts(v6, "fd00::1", 6379)


async def test_redirect_to_localhost_by_name_is_refused(server: LocalServer) -> None:
    """A name that resolves to loopback is refused like the literal address."""
    port = server.url("/").rsplit(":", 1)[1].rstrip("/")
    server.routes["/go"] = Response(302, b"", {"Location": f"http://localhost:{port}/secret"})
    server.routes["/secret"] = Response(200, b"internal")
    async with Fetcher(http_settings()) as f:
        with pytest.raises(SourceError, match="refused: localhost"):
            await f.get(server.url("/go"), OPTS)
    assert server.hits("/secret") == 0


async def test_dns_rebinding_is_caught_at_connect_time(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that looked public at the check but resolves to loopback when connecting is refused."""
    port = server.url("/").rsplit(":", 1)[1].rstrip("/")
    server.routes["/secret"] = Response(200, b"internal")

    async def first_answer_public(self: Destinations, host: str, port: int, proxied: bool) -> list[str]:
        return ["93.184.216.34"]  # the attacker's DNS answers public first, loopback next

    monkeypatch.setattr(Destinations, "_resolve", first_answer_public)
    async with Fetcher(http_settings()) as f:
        with pytest.raises(
            SourceError, match=r"refused: localhost resolves to non-public address .* at connect time"
        ):
            await f.get(f"http://localhost:{port}/secret", OPTS)
    assert server.hits("/secret") == 0


async def test_private_host_refused_without_allow_private(server: LocalServer) -> None:
    """Without allow_private even the configured URL may not be private."""
    server.routes["/p"] = Response(200, b"x")
    async with Fetcher(http_settings(allow_private=False)) as f:
        with pytest.raises(SourceError, match="allow_private is off"):
            await f.get(server.url("/p"), OPTS)
    assert server.hits("/p") == 0


async def test_redirect_loop_is_cut(server: LocalServer) -> None:
    """More than max_redirects redirects fail the poll."""
    server.routes["/a"] = Response(302, b"", {"Location": "/a"})
    async with Fetcher(http_settings(max_redirects=3)) as f:
        with pytest.raises(SourceError, match="more than 3 redirects"):
            await f.get(server.url("/a"), OPTS)
    assert server.hits("/a") == 4


async def test_per_host_concurrency_and_min_delay(server: LocalServer) -> None:
    """No more than per_host requests run at once on a host, and starts are min_delay apart."""
    lock = threading.Lock()
    state = {"now": 0, "max": 0}
    starts: list[float] = []

    def slow(req: Request) -> Response:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
            starts.append(time.monotonic())
        time.sleep(0.05)  # the server being slow is the scenario, not a wait of the test
        with lock:
            state["now"] -= 1
        return Response(200, b"ok")

    server.routes["/s"] = slow
    async with Fetcher(http_settings(per_host=2, min_delay=0.03)) as f:
        await asyncio.gather(*(f.get(server.url("/s"), OPTS) for _ in range(6)))
    assert state["max"] <= 2
    starts.sort()
    assert starts[-1] - starts[0] >= 5 * 0.03 * 0.9  # arrival order jitters; the schedule cannot be beaten


async def test_per_source_proxy_is_used() -> None:
    """A source's proxy receives the absolute-URL request; an unresolvable host is left to the proxy."""
    with LocalServer() as proxy:
        proxy.routes["http://feeds.example/feed"] = Response(200, b"via proxy")
        opts = RequestOptions(source="s", proxy=proxy.base_url)
        async with Fetcher(http_settings(allow_private=False)) as f:
            resp = await f.get("http://feeds.example/feed", opts)
    assert resp.content == b"via proxy"
    assert proxy.requests[0].headers["host"] == "feeds.example"


async def test_behind_a_proxy_a_redirect_to_an_internal_name_is_refused() -> None:
    """Only the proxy resolves names here, so the address cannot be checked: a redirect to a name of
    an internal network (`metadata.internal`, a single label) is refused instead of followed."""
    with LocalServer() as proxy:
        for target in ("http://metadata.internal/latest/meta-data/", "http://intranet/admin"):
            proxy.routes["http://feeds.example/feed"] = Response(302, b"", {"Location": target})
            proxy.routes[target] = Response(200, b"secret")
            opts = RequestOptions(source="s", proxy=proxy.base_url)
            async with Fetcher(http_settings(allow_private=False)) as f:
                with pytest.raises(SourceError, match="looks like an internal host name"):
                    await f.get("http://feeds.example/feed", opts)
        assert all(r.headers["host"] == "feeds.example" for r in proxy.requests)


async def test_environment_proxy_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no proxy configured, HTTP_PROXY from the environment is used and resolves the host itself."""
    with LocalServer() as proxy:
        proxy.routes["http://feeds.example/feed"] = Response(200, b"via env proxy")
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
        async with Fetcher(http_settings(allow_private=False)) as f:
            resp = await f.get("http://feeds.example/feed", RequestOptions(source="s"))
    assert resp.content == b"via env proxy"


def test_wrong_charset_header_gbk_body() -> None:
    """A GBK page served as UTF-8 is still read right (the header cannot decode it)."""
    page = '<html><head><meta charset="gb2312"></head><body>商务部公告2025年第18号 稀土</body></html>'
    text, codec = decode_body(page.encode("gbk"), "text/html; charset=utf-8")
    assert "商务部公告2025年第18号 稀土" in text
    assert codec == "gb18030"


def test_latin_header_loses_to_utf8_chinese() -> None:
    """A UTF-8 Chinese page labelled ISO-8859-1 (a common server default) is read as UTF-8."""
    text, codec = decode_body(
        "关于对部分中重稀土相关物项实施出口管制".encode(), "text/html; charset=ISO-8859-1"
    )
    assert text == "关于对部分中重稀土相关物项实施出口管制"
    assert codec == "utf-8"


def test_gbk_header_on_a_utf8_page() -> None:
    """A UTF-8 page served as GBK (its meta says UTF-8) is not turned into mojibake."""
    page = '<meta charset="utf-8"><p>公布《进口许可证管理货物目录（2026年）》</p>'.encode()
    text, codec = decode_body(page, "text/html; charset=GBK")
    assert "公布《进口许可证管理货物目录（2026年）》" in text
    assert codec == "utf-8"


def test_undeclared_gb18030_is_detected() -> None:
    """With no header and no meta, GB-encoded Chinese is detected, not read as Latin-1."""
    body = (
        "<p>" + "商务部 海关总署公告 关于对镓、锗、锑、超硬材料相关物项加强出口管制的公告。" * 5 + "</p>"
    ).encode("gb18030")
    text, codec = decode_body(body, "text/html")
    assert "海关总署公告" in text
    assert codec.startswith("gb")


def test_gb2312_label_with_gbk_only_characters() -> None:
    """A page labelled GB2312 that uses GBK-only characters (镕) decodes fully."""
    text, _ = decode_body("朱镕基".encode("gbk"), "text/html; charset=GB2312")
    assert text == "朱镕基"


def test_entity_bomb_is_refused() -> None:
    """An XML document declaring entities (billion laughs) is refused, not expanded."""
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b"<rss><channel><item><title>&lol2;</title></item></channel></rss>"
    )
    with pytest.raises(SourceError, match="entity bomb"):
        parse_xml(bomb, source="s", url="u")


def test_external_entity_is_refused() -> None:
    """An external entity (XXE) never reads a local file."""
    xxe = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    with pytest.raises(SourceError, match="refused"):
        parse_xml(xxe, source="s", url="u")


def test_malformed_xml_names_the_problem() -> None:
    """Broken XML fails with 'malformed XML' and the parser's position."""
    with pytest.raises(SourceError, match=r"malformed XML: mismatched tag: line 1"):
        parse_xml(b"<rss><channel><item></channel></rss>", source="s", url="u")


def test_gb2312_xml_declaration_is_honoured() -> None:
    """An XML feed declared as GB2312 parses (expat alone knows only UTF-8/16 and Latin-1)."""
    xml = (
        '<?xml version="1.0" encoding="gb2312"?><rss><channel><item><title>出口管制</title></item></channel>'
    )
    xml += "</rss>"
    root = parse_xml(xml.encode("gb2312"), source="s", url="u")
    assert root.findtext("channel/item/title") == "出口管制"


async def test_a_connection_opened_under_allowance_is_not_lent_to_a_strict_request(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection a source opened to its trusted `localhost` is not reused by another source."""
    port = server.url("/").rsplit(":", 1)[1].rstrip("/")
    server.routes["/x"] = Response(200, b"internal")
    trusting = RequestOptions(source="a", trusted_hosts=frozenset({"localhost"}))
    strict = RequestOptions(source="b", trusted_hosts=frozenset({"127.0.0.1"}))
    async with Fetcher(http_settings()) as f:
        assert (await f.get(f"http://localhost:{port}/x", trusting)).content == b"internal"

        async def public(self: Destinations, host: str, port: int, proxied: bool) -> list[str]:
            return ["93.184.216.34"]  # the pre-check is fooled; the connection must not be

        monkeypatch.setattr(Destinations, "_resolve", public)
        with pytest.raises(SourceError, match="at connect time"):
            await f.get(f"http://localhost:{port}/x", strict)
    assert server.hits("/x") == 1


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1", "017700000001"])
async def test_numeric_hosts_in_odd_forms_are_refused(host: str) -> None:
    """Integer, hex and short forms of IPv4 addresses are refused before any lookup, not retried."""
    async with Fetcher(http_settings()) as f:
        with pytest.raises(SourceError, match="non-canonical form"):
            await f.get(f"http://{host}/", OPTS)
