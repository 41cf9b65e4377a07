"""An httpx transport over an aiohttp connection pool: httpx requests and responses, a C parser.

Why not httpx's own pool: for each request httpcore runs h11 in Python and takes anyio
locks and cancel scopes, about 0.8 ms of CPU per conditional GET here, which was half of
an all-304 poll. The same request through aiohttp's pool (llhttp in C) costs about
0.3 ms including the httpx objects around it. aiohttp is already a dependency (slack-sdk
runs on it). Everything above the wire stays httpx: `fetch.py` builds `httpx.Request`s,
reads `httpx.Response`s, and decompresses the body on the stream itself (`_inflate.py`'s
bounded decoder), so the size cap counts decoded bytes.

The pool neither follows redirects, keeps cookies that outlive the process, reads proxies
from the environment (`fetch.py` decides the proxy per request) nor decompresses: each of
those is decided once, above.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx
from yarl import URL

from tradewatch.sources._netguard import GuardedResolver

__all__ = ["AiohttpTransport"]

_CHUNK = 64 * 1024
# Longest status line or header line accepted: twice aiohttp's 8 KiB default, for sites with big
# cookies. With aiohttp's cap of 128 headers a response's head stays under about 2 MiB.
_MAX_HEADER = 16 * 1024
_NO_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=None, sock_read=None)


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    """aiohttp's failures as the httpx exceptions `fetch.py` (and any httpx caller) already handles."""
    try:
        yield
    except aiohttp.ClientHttpProxyError as exc:  # the proxy refused CONNECT (407, 403, 502 …)
        raise httpx.ProxyError(f"proxy answered {exc.status} {exc.message}") from exc
    except aiohttp.ClientProxyConnectionError as exc:
        raise httpx.ProxyError(str(exc)) from exc
    except aiohttp.ConnectionTimeoutError as exc:
        raise httpx.ConnectTimeout(str(exc) or "connect timed out") from exc
    except aiohttp.ServerTimeoutError as exc:
        raise httpx.ReadTimeout(str(exc) or "read timed out") from exc
    except aiohttp.ClientConnectorError as exc:  # refused, unresolvable, TLS handshake or certificate
        raise httpx.ConnectError(str(exc)) from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
        raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__) from exc
    except aiohttp.ClientResponseError as exc:  # a malformed status line or header
        raise httpx.RemoteProtocolError(exc.message or str(exc)) from exc
    except aiohttp.ClientOSError as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
    except aiohttp.InvalidURL as exc:
        raise httpx.UnsupportedProtocol(str(exc)) from exc
    except aiohttp.ClientError as exc:
        raise httpx.TransportError(str(exc) or type(exc).__name__) from exc


class _Body(httpx.AsyncByteStream):
    """The raw (still encoded) body; closing it gives the connection back, or drops it if unread."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors():
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One connection pool (`size` connections) behind httpx's transport interface.

    `guarded`: resolve through `GuardedResolver`, for direct connections. A proxied pool
    resolves only the proxy's name, which the operator configured.
    """

    def __init__(
        self,
        *,
        size: int,
        keepalive_expiry: float,
        tls: ssl.SSLContext,
        proxy: str | None = None,
        guarded: bool = True,
    ) -> None:
        self._size = size
        self._keepalive = keepalive_expiry
        self._tls = tls
        self._guarded = guarded
        self._proxy = URL(proxy) if proxy is not None else None  # user:pass -> Proxy-Authorization
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        """Built on first use: aiohttp binds a pool to the running event loop."""
        connector = aiohttp.TCPConnector(
            limit=self._size,
            keepalive_timeout=self._keepalive,
            ssl=self._tls,
            resolver=GuardedResolver() if self._guarded else None,
            use_dns_cache=not self._guarded,  # a cached answer would skip the per-request allowance
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=_NO_TIMEOUT,  # fetch.py bounds each attempt as a whole
            auto_decompress=False,
            trust_env=False,
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent"),
            max_line_size=_MAX_HEADER,
            max_field_size=_MAX_HEADER,
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        # As written (case kept, a configured Host included); aiohttp adds Host only when absent.
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw]
        # A CONNECT to the proxy says who asks as the request does, not aiohttp's own User-Agent.
        agent = request.headers.get("user-agent")
        # httpx's per-request timeouts, when a client sets them (fetch.py bounds whole attempts).
        limits = request.extensions.get("timeout")
        timeout = (
            aiohttp.ClientTimeout(sock_connect=limits.get("connect"), sock_read=limits.get("read"))
            if limits
            else _NO_TIMEOUT
        )
        with _as_httpx_errors():
            response = await session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=headers,
                data=request.content or None,
                allow_redirects=False,
                timeout=timeout,
                proxy=self._proxy,
                proxy_headers={"User-Agent": agent} if self._proxy is not None and agent else None,
            )
        extensions: dict[str, object] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("latin-1", "replace")
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=_Body(response),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
