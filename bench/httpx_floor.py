"""The floor of an all-304 cycle: bare httpx GETs with If-None-Match, no tradewatch around them.

Run as a child of bench_poll with a file of URLs. A first round learns each URL's ETag;
the timed round then asks every URL again with fresh clients (new connections, as a new
`run --once` process opens them), the same per-host pools, limits and shared TLS context
as the worker, and does nothing else with the answers. Prints {"wall": s, "cpu": s, "statuses": {...}}.

`--transport tradewatch` sends the same requests as the worker's fetcher does: an
`httpx.Request` handed straight to tradewatch's transport over aiohttp's pools
(`sources/_transport.py`), one per host; the default is httpx's own client and pool.
"""

from __future__ import annotations

import asyncio
import json
import resource
import ssl
import sys
import time
from collections import Counter

import httpx

from tradewatch.sources._transport import AiohttpTransport

PER_HOST = 4
CONCURRENCY = 64


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _round(urls: list[str], etags: dict[str, str], tls: ssl.SSLContext, mode: str) -> Counter[int]:
    clients: dict[str, httpx.AsyncClient | AiohttpTransport] = {}
    slots = asyncio.Semaphore(CONCURRENCY)
    statuses: Counter[int] = Counter()

    async def one(url: str) -> None:
        host = httpx.URL(url).host
        client = clients.get(host)
        if client is None:
            if mode == "tradewatch":
                client = AiohttpTransport(size=PER_HOST, keepalive_expiry=30.0, tls=tls, guarded=False)
            else:
                limits = httpx.Limits(max_connections=PER_HOST, max_keepalive_connections=PER_HOST)
                client = httpx.AsyncClient(limits=limits, verify=tls)
            clients[host] = client
        headers = {"If-None-Match": etags[url]} if url in etags else {}
        async with slots:
            if isinstance(client, AiohttpTransport):
                response = await client.handle_async_request(httpx.Request("GET", url, headers=headers))
                await response.aread()
                await response.aclose()
            else:
                response = await client.get(url, headers=headers)
        statuses[response.status_code] += 1
        if "etag" in response.headers:
            etags[url] = response.headers["etag"]

    await asyncio.gather(*(one(url) for url in urls))
    for client in clients.values():
        await client.aclose()
    return statuses


async def main(urls: list[str], mode: str) -> dict[str, object]:
    etags: dict[str, str] = {}
    tls = httpx.create_ssl_context()  # made once, as the worker does: each one costs tens of ms
    await _round(urls, etags, tls, mode)
    cpu, wall = _cpu(), time.perf_counter()
    statuses = await _round(urls, etags, tls, mode)
    return {
        "wall": time.perf_counter() - wall,
        "cpu": _cpu() - cpu,
        "requests": len(urls),
        "statuses": {str(k): v for k, v in statuses.items()},
    }


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        targets = [line.strip() for line in f if line.strip()]
    kind = sys.argv[3] if sys.argv[2:3] == ["--transport"] else "httpx"
    print(json.dumps(asyncio.run(main(targets, kind))))
