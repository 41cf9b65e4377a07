"""Before each request and each redirect hop: may this URL's host be reached from the worker?

A host that resolves into a private, loopback, link-local or otherwise non-public range is
refused, unless the source allows private addresses (`allow_private`) *and* the operator
wrote that host in the source's config. Behind a proxy that alone resolves names, a name
that reads as an internal network's is refused instead. The connection itself is checked
again at connect time (`_netguard.GuardedResolver`), against DNS rebinding.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time

import httpx

from tradewatch.errors import SourceError
from tradewatch.sources._netguard import is_public, odd_ipv4, trusts
from tradewatch.sources.base import RequestOptions

__all__ = ["CannotResolve", "Destinations"]

# Names of internal networks: a single label (`metadata`, `intranet`) or a suffix no public
# registry hands out. Behind a proxy that alone resolves names, these are refused unless trusted.
_INTERNAL_NAME = re.compile(
    r"^[^.]+\.?$|\.(internal|local|localhost|localdomain|lan|home|corp|intranet|private|home\.arpa)\.?$",
    re.IGNORECASE,
)
# Resolved addresses are reused this long, so a busy host costs one getaddrinfo a minute.
_DNS_TTL = 60.0


class CannotResolve(Exception):
    """The host's name did not resolve: a transient failure, retried like a timeout."""


class Destinations:
    """The destination check of one client, with its DNS cache."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._dns: dict[tuple[str, int], tuple[float, list[str]]] = {}

    async def check(self, url: httpx.URL, opts: RequestOptions, *, proxied: bool) -> None:
        """Refuse (SourceError) a URL this source may not reach; CannotResolve when DNS fails."""
        if url.scheme not in ("http", "https"):
            raise SourceError(f"unsupported URL scheme {url.scheme!r} ({url})", source=opts.source)
        if odd_ipv4(url.host):
            raise SourceError(
                f"refused: {url.host} is an IPv4 address in a non-canonical form ({url})", source=opts.source
            )
        allow = self.allow_private if opts.allow_private is None else opts.allow_private
        port = url.port or (443 if url.scheme == "https" else 80)
        if allow and trusts(opts.trusted_hosts, url.host, port):
            return
        addresses = await self._resolve(url.host, port, proxied)
        if not addresses and _INTERNAL_NAME.search(url.host):
            # only the proxy knows this name, and it reads as a name of an internal network
            why = "not a configured host of this source" if allow else "allow_private is off"
            raise SourceError(
                f"refused: {url.host} looks like an internal host name and resolves only through the proxy "
                f"({why}) ({url})",
                source=opts.source,
            )
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if not is_public(ip):
                why = "not a configured host of this source" if allow else "allow_private is off"
                raise SourceError(
                    f"refused: {url.host} resolves to non-public address {ip} ({why}) ({url})",
                    source=opts.source,
                )

    async def _resolve(self, host: str, port: int, proxied: bool) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            pass
        now = time.monotonic()
        hit = self._dns.get((host, port))
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            if proxied:
                return []  # the proxy resolves it; nothing to check here
            raise CannotResolve(f"cannot resolve host {host}") from None
        addresses = sorted({str(info[4][0]) for info in infos})
        self._dns[(host, port)] = (now + _DNS_TTL, addresses)
        return addresses
