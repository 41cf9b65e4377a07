"""Connect-time address check for the shared HTTP client: a socket only goes to an address that passed.

`fetch.py` checks each URL's host before a request (for clear errors and for
redirects). This network backend checks again when httpx opens a connection and then
connects to the very address it checked, so a DNS answer that changes between the
two lookups (DNS rebinding) cannot reach a private address. Which hosts may be
private is set per request in the `ALLOWED_PRIVATE` context variable.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

import httpcore

__all__ = ["ALLOWED_PRIVATE", "GuardedBackend", "RefusedAddress", "is_public"]

ALLOWED_PRIVATE: ContextVar[frozenset[str]] = ContextVar("tradewatch_private_hosts", default=frozenset())


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """False for private, loopback, link-local, multicast, reserved and unspecified addresses."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


class RefusedAddress(Exception):
    """A connection to a non-public address the current request may not reach."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"refused: {host} resolves to non-public address {address}")
        self.host = host
        self.address = address


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's default backend, with name resolution and the address check done here."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise httpcore.ConnectError(f"cannot resolve host {host}: {exc}") from exc
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if host not in ALLOWED_PRIVATE.get():
            for address in addresses:
                if not is_public(ipaddress.ip_address(address.split("%", 1)[0])):
                    raise RefusedAddress(host, address)
        error: Exception = httpcore.ConnectError(f"no address for {host}")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("tradewatch does not fetch over unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
