"""The shared HTTP client: pooled keep-alive connections per host, polite, retried, capped and SSRF-safe.

Every source goes through `Fetcher.get`, so politeness (per-host concurrency and
minimum delay), retries (stamina: connect errors, timeouts, truncated bodies, 429
and 5xx, honouring Retry-After), size limits (counted on the body as it is decoded,
in bounded steps, so a compression bomb is cut too: `sources/_inflate.py`), redirect
safety and conditional GET live in one place.

Private addresses (`sources/_destination.py`, before each request and redirect hop): a
request whose host resolves into a private, loopback, link-local or otherwise non-public
range is refused, unless the source allows
private addresses (`allow_private`) *and* the host is one the operator wrote in
that source's config. A redirect or a link to any other host is checked strictly,
so a public page can never bounce the worker into the local network. A DNS answer
that changes between that check and the connection (DNS rebinding) is caught by
`sources/_netguard.py`, which resolves again at connect time and connects to the
address it checked.

Requests and responses are httpx's; the connection pools under them are aiohttp's
(`sources/_transport.py` says why), one per host (`sources/_pools.py`).
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx
import stamina
import structlog

from tradewatch.config import HttpSettings
from tradewatch.errors import SourceError
from tradewatch.sources._decode import decode_body, parse_json, parse_xml
from tradewatch.sources._destination import CannotResolve, Destinations
from tradewatch.sources._inflate import BoundedDecoder
from tradewatch.sources._netguard import ALLOWED_PRIVATE, RefusedAddress, trusts
from tradewatch.sources._pools import KEEPALIVE_EXPIRY, HostPools
from tradewatch.sources._transport import AiohttpTransport
from tradewatch.sources.base import RequestOptions, SourceResult
from tradewatch.store.validators import MemoryValidatorCache, ValidatorCache, Validators

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

__all__ = ["FetchResponse", "Fetcher", "RequestOptions", "decode_body", "parse_json", "parse_xml"]

log = structlog.get_logger(__name__)


def _log_retry(attempt: int, wait_for: float, error: BaseException, **request: str) -> None:
    """One info line per retry; the request (`source`, `url`) is given or in the structlog context."""
    wait = round(wait_for, 2)
    log.info("fetch_retry_scheduled", **request, attempt=attempt, wait_for=wait, error=str(error))


def _retry_scheduled(details: stamina.instrumentation.RetryDetails) -> None:
    """stamina's retries as our own line (its default: a warning naming `<context block>`)."""
    _log_retry(details.retry_num + 1, details.wait_for, details.caused_by)


stamina.instrumentation.set_on_retry_hooks([_retry_scheduled])

_REASON_JUNK = re.compile(r"[^\x20-\x7e]")
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# A Retry-After longer than this is not waited out inside a poll: the error carries it to the scheduler.
_MAX_INLINE_RETRY_AFTER = 60.0
# Backoff between attempts: exponential from _WAIT_INITIAL, capped, plus up to _WAIT_JITTER.
_WAIT_INITIAL = 0.5
_WAIT_MAX = 30.0
_WAIT_JITTER = 1.0
# What httpx's client asks for: every encoding the decoders read (brotli is a dependency).
ACCEPT_ENCODING = "gzip, deflate, br"


@dataclass
class FetchResponse:
    """A fully read response (or a 304); `url` is the final URL after redirects."""

    url: str
    requested_url: str
    status: int
    headers: httpx.Headers
    content: bytes
    elapsed: float
    source: str
    validators: Validators | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    def text(self) -> str:
        """The body as text: BOM, header charset, meta/XML declaration, then detection."""
        return decode_body(self.content, self.headers.get("content-type"))[0]

    def json(self) -> Any:
        return parse_json(self.content, source=self.source, url=self.url)

    def xml(self) -> Element:
        return parse_xml(self.content, source=self.source, url=self.url)


class _Transient(Exception):
    """A failure worth retrying; `retry_after` is the server's wish in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _HostGate:
    """Per-host politeness: at most `per_host` requests at once and `min_delay` between starts."""

    def __init__(self, per_host: int, min_delay: float) -> None:
        self.slots = asyncio.Semaphore(per_host)
        self.min_delay = min_delay
        self.next_start = 0.0

    async def wait_turn(self) -> None:
        if self.min_delay <= 0:
            return
        now = time.monotonic()
        start = max(now, self.next_start)
        self.next_start = start + self.min_delay
        if start > now:
            await asyncio.sleep(start - now)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _retry_hook(exc: Exception) -> bool | float:
    """Retry transient failures; wait what Retry-After asks when that fits in a poll."""
    if not isinstance(exc, _Transient):
        return False
    if exc.retry_after is None:
        return True
    if exc.retry_after > _MAX_INLINE_RETRY_AFTER:
        return False
    return exc.retry_after


class Fetcher:
    """One long-lived client for all sources; create once per worker and close on shutdown."""

    def __init__(self, http: HttpSettings, validators: ValidatorCache | None = None) -> None:
        self.http = http
        self.validators: ValidatorCache = validators if validators is not None else MemoryValidatorCache()
        self.pools = HostPools(per_host=http.per_host, shared_size=http.concurrency)
        self._gates: dict[str, _HostGate] = {}
        self._global = asyncio.Semaphore(http.concurrency)
        self.destinations = Destinations(allow_private=http.allow_private)

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.pools.aclose()

    async def close_idle(self, idle: float = KEEPALIVE_EXPIRY) -> int:
        """Close the pools of hosts unused for `idle` seconds; returns how many.

        An idle keep-alive connection is dropped only when its pool is used again, so a
        host polled every few hours would hold its sockets until then. The worker calls
        this every 30 s; a later request to the host builds a new pool.
        """
        return await self.pools.close_idle(idle)

    def _gate(self, host: str) -> _HostGate:
        gate = self._gates.get(host)
        if gate is None:
            gate = self._gates[host] = _HostGate(self.http.per_host, self.http.min_delay)
        return gate

    async def commit(self, result: SourceResult) -> None:
        """Store the validators and read cursors of a poll once its documents are safely processed.

        Kept apart from `get` on purpose: storing an ETag before the pipeline has the
        documents would turn the next poll into a 304 and lose them after a crash.
        """
        for url, validators in result.validators.items():
            await self.validators.put(url, validators)
        for url, cursor in result.cursors.items():
            await self.validators.put_cursor(url, cursor)

    async def cursor(self, url: str) -> str | None:
        """How far the paged listing at `url` was read by the last committed poll (any worker's)."""
        return await self.validators.cursor(url)

    async def get(
        self,
        url: str,
        opts: RequestOptions,
        *,
        conditional: bool = False,
        accept: str | None = None,
    ) -> FetchResponse:
        """GET `url` with retries; returns a 200/2xx or (when `conditional`) a 304 response.

        Raises SourceError naming the source and the reason for anything else.
        """
        cached = await self.validators.get(url) if conditional else None
        # httpx.Headers: a source's `user-agent` replaces the default `User-Agent`, whatever its case.
        headers = httpx.Headers(
            {
                "Accept": accept or "*/*",
                "Accept-Encoding": ACCEPT_ENCODING,
                "User-Agent": self.http.user_agent,
            }
        )
        headers.update(opts.headers)
        if opts.user_agent:
            headers["User-Agent"] = opts.user_agent
        if cached is not None:
            if cached.etag:
                headers["If-None-Match"] = cached.etag
            if cached.last_modified:
                headers["If-Modified-Since"] = cached.last_modified
        started = time.monotonic()
        try:
            resp = await self._attempts(url, headers, opts)
        except _Transient as exc:
            raise SourceError(f"{exc} ({url})", source=opts.source, retry_after=exc.retry_after) from exc
        resp.elapsed = time.monotonic() - started
        if resp.status != 304:
            resp.validators = Validators.from_headers(resp.headers)
        return resp

    async def _attempts(self, url: str, headers: httpx.Headers, opts: RequestOptions) -> FetchResponse:
        """Up to `retries` + 1 attempts with exponential backoff and jitter (0.5 s, 1 s, 2 s … ≤ 30 s).

        Nearly every request succeeds at once, so the first attempt runs bare (and with
        `retries: 0` it is the only one): building stamina's retry loop costs about 65 µs,
        a noticeable share of an all-304 poll. A transient failure
        waits the first backoff (or the server's Retry-After), then stamina makes the rest,
        starting where the schedule left off. In stamina's test mode the whole loop is
        stamina's, so tests see its attempt cap and no waits.
        """
        retries = self.http.retries
        if retries == 0 and not stamina.is_testing():
            return await self._follow(url, headers, opts)  # one attempt: no retry loop to build
        if retries > 0 and not stamina.is_testing():
            try:
                return await self._follow(url, headers, opts)
            except _Transient as exc:
                wait = _retry_hook(exc)
                if wait is False:
                    raise
                jitter = random.uniform(0, _WAIT_JITTER)  # backoff jitter, not a secret
                delay = _WAIT_INITIAL + jitter if wait is True else float(wait)
                _log_retry(1, delay, exc, source=opts.source, url=url)
                await asyncio.sleep(delay)
            attempts, wait_initial = retries, 2 * _WAIT_INITIAL
        else:
            attempts, wait_initial = retries + 1, _WAIT_INITIAL
        # the retry lines (`_retry_scheduled`) name the request through these context fields
        with structlog.contextvars.bound_contextvars(source=opts.source, url=url):
            return await self._retrying(url, headers, opts, attempts=attempts, wait_initial=wait_initial)

    async def _retrying(
        self, url: str, headers: httpx.Headers, opts: RequestOptions, *, attempts: int, wait_initial: float
    ) -> FetchResponse:
        async for attempt in stamina.retry_context(
            on=_retry_hook,
            attempts=attempts,
            timeout=None,
            wait_initial=wait_initial,
            wait_max=_WAIT_MAX,
            wait_jitter=_WAIT_JITTER,
        ):
            with attempt:
                return await self._follow(url, headers, opts)
        raise AssertionError("retry loop ended without a response")  # pragma: no cover - stamina re-raises

    async def _follow(self, url: str, headers: httpx.Headers, opts: RequestOptions) -> FetchResponse:
        """One attempt, following at most `max_redirects` redirects, each destination checked."""
        current = httpx.URL(url)
        spent = 0.0  # seconds the attempt's requests took so far (its waits for a slot left out)
        for _ in range(self.http.max_redirects + 1):
            proxy = self.pools.proxy_for(current, opts.proxy or self.http.proxy)
            try:
                await self.destinations.check(current, opts, proxied=proxy is not None)
            except CannotResolve as exc:
                raise _Transient(str(exc)) from None
            resp, location, spent = await self._once(current, headers, opts, proxy, spent)
            if location is None:
                resp.requested_url = url
                return resp
            try:
                nxt = current.join(location)
            except (httpx.InvalidURL, ValueError) as exc:
                raise SourceError(
                    f"redirect to an invalid URL {location[:200]!r}: {exc} ({url})", source=opts.source
                ) from exc
            if nxt.scheme not in ("http", "https"):
                raise SourceError(
                    f"redirect to unsupported scheme {nxt.scheme!r} ({url})", source=opts.source
                )
            log.debug("redirect_followed", source=opts.source, status=resp.status, location=str(nxt))
            current = nxt
        raise SourceError(f"more than {self.http.max_redirects} redirects ({url})", source=opts.source)

    async def _once(
        self,
        url: httpx.URL,
        headers: httpx.Headers,
        opts: RequestOptions,
        proxy: str | None,
        spent: float = 0.0,
    ) -> tuple[FetchResponse, str | None, float]:
        """One request under the global and per-host limits; returns the attempt's time spent.

        The whole attempt, its redirects included, has one `timeout` for its requests (`spent`
        is what earlier hops took; the waits for a host slot are left out), so a chain of slow
        redirects cannot hold a host slot for `timeout` per hop.
        """
        timeout = opts.timeout or self.http.timeout
        limit = opts.max_bytes or self.http.max_bytes
        gate = self._gate(url.host)
        allow = self.http.allow_private if opts.allow_private is None else opts.allow_private
        # The host slot first: waiting for a busy host must not hold one of the global slots.
        async with gate.slots:
            await gate.wait_turn()
            async with self._global:
                trusted = opts.trusted_hosts if allow else frozenset()
                token = ALLOWED_PRIVATE.set(trusted)
                # Taken after the waits and marked busy at once, so close_idle cannot close it under us.
                port = url.port or (443 if url.scheme == "https" else 80)
                pool, client = self.pools.get(proxy, url, trusts(trusted, url.host, port))
                loop = asyncio.get_running_loop()
                started = loop.time()
                try:
                    if spent >= timeout:
                        raise TimeoutError
                    with self.pools.using(pool):
                        async with asyncio.timeout_at(started + timeout - spent):
                            resp, location = await self._read(client, url, headers, limit, opts.source)
                            return resp, location, spent + loop.time() - started
                except TimeoutError:
                    raise _Transient(f"timed out after {timeout:g}s") from None
                except httpx.TimeoutException:
                    raise _Transient(f"timed out after {timeout:g}s") from None
                except httpx.ConnectError as exc:
                    raise _Transient(f"connection failed: {exc or type(exc).__name__}") from exc
                except httpx.DecodingError as exc:
                    raise SourceError(
                        f"cannot decode the response body: {exc} ({url})", source=opts.source
                    ) from exc
                except httpx.UnsupportedProtocol as exc:  # e.g. a numeric host that is no canonical IPv4
                    raise SourceError(f"cannot request this URL: {exc} ({url})", source=opts.source) from exc
                except httpx.RemoteProtocolError as exc:
                    raise _Transient(f"connection closed early, body truncated: {exc}") from exc
                except httpx.TransportError as exc:
                    raise _Transient(f"transport error: {exc or type(exc).__name__}") from exc
                except RefusedAddress as exc:
                    raise SourceError(f"{exc} at connect time ({url})", source=opts.source) from exc
                finally:
                    ALLOWED_PRIVATE.reset(token)

    async def _read(
        self,
        client: AiohttpTransport,
        url: httpx.URL,
        headers: httpx.Headers,
        limit: int,
        source: str,
    ) -> tuple[FetchResponse, str | None]:
        r = await client.handle_async_request(httpx.Request("GET", url, headers=headers))
        try:
            if r.status_code in _REDIRECT_STATUSES and "location" in r.headers:
                return self._response(r, b"", source), r.headers["location"]
            if r.status_code in _RETRY_STATUSES:
                raise _Transient(
                    f"HTTP {r.status_code}", retry_after=_retry_after(r.headers.get("retry-after"))
                )
            if r.status_code == 304:
                await r.aread()  # no body, but reading to its end keeps the connection for reuse
                return self._response(r, b"", source), None
            if not 200 <= r.status_code < 300:
                reason = _REASON_JUNK.sub("", r.reason_phrase)[:80]  # the server's words: printable only
                raise SourceError(f"HTTP {r.status_code} {reason} ({url})", source=source)
            declared = r.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise SourceError(
                    f"response of {declared} bytes is over max_bytes={limit} ({url})", source=source
                )
            body = bytearray()
            decoder = BoundedDecoder(r.headers.get("content-encoding"))

            def take(pieces: Iterator[bytes]) -> None:
                for piece in pieces:
                    body.extend(piece)
                    if len(body) > limit:
                        raise SourceError(
                            f"response is over max_bytes={limit}, stopped reading ({url})", source=source
                        )

            async for chunk in r.aiter_raw():
                take(decoder.feed(chunk))
            take(decoder.finish())
            return self._response(r, bytes(body), source), None
        finally:
            await r.aclose()  # an unread body drops its connection instead of returning it

    @staticmethod
    def _response(r: httpx.Response, body: bytes, source: str) -> FetchResponse:
        return FetchResponse(
            url=str(r.url),
            requested_url=str(r.url),
            status=r.status_code,
            headers=r.headers,
            content=body,
            elapsed=0.0,
            source=source,
        )
