"""The floor of an all-304 cycle: bare httpx GETs with If-None-Match, no tradewatch around them.

Run as a child of bench_poll with a file of URLs. A first round learns each URL's ETag;
the timed round then asks every URL again with fresh clients (new connections, as a new
`run --once` process opens them), the same per-host pools, limits and shared TLS context
as the worker, and does nothing else with the answers. Prints {"wall": s, "cpu": s, "statuses": {...}}.
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

PER_HOST = 4
CONCURRENCY = 64


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _round(urls: list[str], etags: dict[str, str], tls: ssl.SSLContext) -> Counter[int]:
    clients: dict[str, httpx.AsyncClient] = {}
    slots = asyncio.Semaphore(CONCURRENCY)
    statuses: Counter[int] = Counter()

    async def one(url: str) -> None:
        host = httpx.URL(url).host
        client = clients.get(host)
        if client is None:
            limits = httpx.Limits(max_connections=PER_HOST, max_keepalive_connections=PER_HOST)
            client = clients[host] = httpx.AsyncClient(limits=limits, verify=tls)
        headers = {"If-None-Match": etags[url]} if url in etags else {}
        async with slots:
            response = await client.get(url, headers=headers)
        statuses[response.status_code] += 1
        if "etag" in response.headers:
            etags[url] = response.headers["etag"]

    await asyncio.gather(*(one(url) for url in urls))
    for client in clients.values():
        await client.aclose()
    return statuses


async def main(urls: list[str]) -> dict[str, object]:
    etags: dict[str, str] = {}
    tls = httpx.create_ssl_context()  # made once, as the worker does: each one costs tens of ms
    await _round(urls, etags, tls)
    cpu, wall = _cpu(), time.perf_counter()
    statuses = await _round(urls, etags, tls)
    return {
        "wall": time.perf_counter() - wall,
        "cpu": _cpu() - cpu,
        "requests": len(urls),
        "statuses": {str(k): v for k, v in statuses.items()},
    }


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        targets = [line.strip() for line in f if line.strip()]
    print(json.dumps(asyncio.run(main(targets))))
