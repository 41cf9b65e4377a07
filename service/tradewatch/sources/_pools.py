"""The fetcher's connection pools: one small keep-alive pool per host, the proxy for each URL.

httpcore scanned every pooled connection on each request, and one big pool shared by
many hosts kept closing one host's idle connection to open another's; so each host gets
a pool of its own (`per_host` connections, which the per-host gate caps anyway) and a
poll reuses its keep-alive connection. Past MAX_HOST_POOLS hosts (links and redirects to
many sites) the rest share one pool. A pool is also keyed by its proxy and by whether its
requests may reach a private address at that host, so a connection opened under that
allowance is never lent to a request without it.
"""

from __future__ import annotations

import contextlib
import ssl
import time
import urllib.request
from collections.abc import Iterator

import httpx
import structlog

from tradewatch.sources._transport import AiohttpTransport

__all__ = ["KEEPALIVE_EXPIRY", "MAX_HOST_POOLS", "HostPools", "PoolKey", "env_proxies"]

log = structlog.get_logger(__name__)

# Hosts with a pool of their own; requests to further hosts share one pool. Bounds the idle
# keep-alive sockets held between polls.
MAX_HOST_POOLS = 128
KEEPALIVE_EXPIRY = 30.0  # seconds an idle connection (and, via close_idle, a host's pool) is kept
_BYPASS_CACHE = 4096  # hosts whose NO_PROXY verdict is remembered

# proxy, scheme, host, port (all None for the shared pool), and the private-address allowance.
PoolKey = tuple[str | None, str | None, str | None, int | None, bool]


def env_proxies() -> dict[str, str]:
    """The environment's proxies as httpx read them: `host:port` means http://; other schemes are ignored."""
    proxies: dict[str, str] = {}
    for scheme, url in urllib.request.getproxies().items():
        if scheme not in ("http", "https", "all"):
            continue
        if "://" not in url:
            url = f"http://{url}"
        if not url.startswith(("http://", "https://")):
            log.warning("environment_proxy_ignored", scheme=scheme, reason="not an http(s) proxy")
            continue
        proxies[scheme] = url
    return proxies


class HostPools:
    """The pools of one fetcher; `get` builds a host's pool on first use, `close_idle` drops unused ones."""

    def __init__(self, per_host: int, shared_size: int) -> None:
        self.per_host = per_host
        self.shared_size = shared_size
        self._pools: dict[PoolKey, AiohttpTransport] = {}
        self._busy: dict[PoolKey, int] = {}  # requests in flight per pool
        self._used: dict[PoolKey, float] = {}  # when each pool last finished a request
        self._tls: ssl.SSLContext | None = None  # one for all pools: each costs tens of ms
        self._env = env_proxies()  # HTTP(S)_PROXY, ALL_PROXY, read once as httpx did
        self._bypass: dict[str, bool] = {}  # host -> listed in NO_PROXY

    def keys(self) -> list[PoolKey]:
        return list(self._pools)

    def proxy_for(self, url: httpx.URL, configured: str | None) -> str | None:
        """The configured proxy, else the environment's for this URL (None: connect directly)."""
        if configured is not None or not self._env:
            return configured
        proxy = self._env.get(url.scheme) or self._env.get("all")
        if proxy is None:
            return None
        bypass = self._bypass.get(url.host)
        if bypass is None:
            if len(self._bypass) >= _BYPASS_CACHE:
                self._bypass.clear()
            bypass = self._bypass[url.host] = bool(urllib.request.proxy_bypass(url.host))
        return None if bypass else proxy

    def get(self, proxy: str | None, url: httpx.URL, private_ok: bool) -> tuple[PoolKey, AiohttpTransport]:
        """The pool for a request to `url` through `proxy`; mark it busy with `using` before any await."""
        key: PoolKey = (proxy, url.scheme, url.host, url.port, private_ok)
        pool = self._pools.get(key)
        if pool is not None:
            return key, pool
        shared = len(self._pools) >= MAX_HOST_POOLS
        if shared:
            key = (proxy, None, None, None, private_ok)
            pool = self._pools.get(key)
            if pool is not None:
                return key, pool
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        pool = AiohttpTransport(
            size=self.shared_size if shared else self.per_host,
            keepalive_expiry=KEEPALIVE_EXPIRY,
            tls=self._tls,
            proxy=proxy,
            guarded=proxy is None,  # direct connections get the connect-time address check
        )
        self._pools[key] = pool
        return key, pool

    @contextlib.contextmanager
    def using(self, key: PoolKey) -> Iterator[None]:
        """While a request runs on the pool: close_idle leaves it alone."""
        self._busy[key] = self._busy.get(key, 0) + 1
        try:
            yield
        finally:
            self._busy[key] -= 1
            self._used[key] = time.monotonic()

    async def close_idle(self, idle: float) -> int:
        """Close the pools unused for `idle` seconds; returns how many."""
        now = time.monotonic()
        stale = [
            key for key in self._pools if not self._busy.get(key) and now - self._used.get(key, now) >= idle
        ]
        pools = [self._pools.pop(key) for key in stale]  # all popped before the first await
        for key in stale:
            self._busy.pop(key, None)
            self._used.pop(key, None)
        for pool in pools:
            await pool.aclose()
        return len(pools)

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()
