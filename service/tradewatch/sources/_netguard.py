"""Connect-time address check for the shared HTTP client: a socket only goes to an address that passed.

`fetch.py` checks each URL's host before a request (for clear errors and for
redirects). This resolver checks again when the connection pool opens a connection,
and the pool then connects to the very addresses it checked, so a DNS answer that
changes between the two lookups (DNS rebinding) cannot reach a private address.
Which hosts may be private is set per request in the `ALLOWED_PRIVATE` context
variable; the pool resolves in the requesting task's context and keeps no DNS cache
of its own, so one request's allowance never serves another's connection.
"""

from __future__ import annotations

import ipaddress
import socket
from contextvars import ContextVar

import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

__all__ = [
    "ALLOWED_PRIVATE",
    "GuardedResolver",
    "RefusedAddress",
    "is_public",
    "odd_ipv4",
    "trusted_entries",
    "trusts",
]

ALLOWED_PRIVATE: ContextVar[frozenset[str]] = ContextVar("tradewatch_private_hosts", default=frozenset())


def trusted_entries(url: str) -> set[str]:
    """What a configured URL lets a source reach at a private address: its own host and port,
    and that host's web ports (an intranet page that moves to https), not its other ports."""
    parsed = httpx.URL(url)
    if not parsed.host:
        return set()
    own = parsed.port or (443 if parsed.scheme == "https" else 80)
    return {_entry(parsed.host, port) for port in (own, 80, 443)}


def _entry(host: str, port: int) -> str:
    # an IPv6 address in brackets: `fd00::1:80` must not read as the trusted `fd00::1` at port 80
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def trusts(trusted: frozenset[str], host: str, port: int) -> bool:
    """Whether `host:port` is trusted (a bare name or IPv4 address, as tests write it, trusts
    every port; an IPv6 address is never trusted bare)."""
    return _entry(host, port) in trusted or (":" not in host and host in trusted)


# Not reachable from the internet, whatever this Python's tables say (3.11's miss some):
# IETF protocol assignments, deprecated IPv6 site-local.
_NOT_PUBLIC = (ipaddress.ip_network("192.0.0.0/24"), ipaddress.ip_network("fec0::/10"))
# IPv6 prefixes that carry an IPv4 address a gateway forwards to: NAT64 (RFC 6052).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """False for private, loopback, link-local, multicast, reserved and unspecified addresses,
    also when an IPv6 address carries one (IPv4-mapped, 6to4, NAT64)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if any(ip in net for net in _NOT_PUBLIC if net.version == ip.version):
        return False
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def odd_ipv4(host: str) -> bool:
    """`2130706433`, `0x7f.1`, `127.1`: addresses C's inet_aton reads that are no dotted quad.

    `fetch.py` refuses them outright: they hide where a URL points, and aiohttp refuses them too.
    """
    if not host[:1].isdigit():
        return False
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return True
    return False


class RefusedAddress(Exception):
    """A connection to a non-public address the current request may not reach."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"refused: {host} resolves to non-public address {address}")
        self.host = host
        self.address = address


class GuardedResolver(AbstractResolver):
    """aiohttp's threaded getaddrinfo resolver, refusing non-public answers for hosts not allowed them.

    aiohttp connects to IP-literal hosts without asking a resolver; those cannot
    rebind, and `fetch.py` has already checked them before the request.
    """

    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        if not trusts(ALLOWED_PRIVATE.get(), host, port):
            for answer in answers:
                if not is_public(ipaddress.ip_address(answer["host"].split("%", 1)[0])):
                    raise RefusedAddress(host, answer["host"])
        return answers

    async def close(self) -> None:
        await self._inner.close()
