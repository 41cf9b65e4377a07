"""The floor of a cold cycle's own work: parse every page and match every item, and nothing else.

Run as a child of bench_poll with the tradewatch config of its 1,000 sources. It fetches each
source's page once (not timed), then times, in one process, what no cold cycle can skip: each
source kind's own parsing of the recorded answer into documents (its `fetch`, handed the
answer instead of a network) and matching every document with the config's rulebook, as a
first poll does (an item older than `first_poll_window` only for the deadline rules' facts),
CONCURRENCY sources at a time as the worker's polls overlap. No HTTP, Redis, decisions,
events, alerts, logs or metrics. Prints {"wall": s, "cpu": s, "documents": n, "matches": n};
bench_poll runs it once per repeat and takes the median.

If this alone takes longer than urlwatch's cold cycle, no cold cycle of the worker can beat it.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tradewatch import heap
from tradewatch.config import SourceSpec, load_settings
from tradewatch.fetch import FetchResponse
from tradewatch.matching import load_rulebook
from tradewatch.observe import configure_logging
from tradewatch.sources import SOURCES

CONCURRENCY = 64  # as bench_poll's tradewatch config (`http.concurrency`)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Recorded:
    """A fetcher that answers every GET with the page recorded for its URL."""

    def __init__(self, pages: dict[str, FetchResponse]) -> None:
        self.pages = pages

    async def get(self, url: str, *_: Any, **__: Any) -> FetchResponse:
        return self.pages[url]


def _record(specs: list[SourceSpec]) -> dict[str, FetchResponse]:
    pages: dict[str, FetchResponse] = {}
    with httpx.Client(timeout=30) as client:
        for spec in specs:
            url = str(spec.url)
            answer = client.get(url)
            answer.raise_for_status()
            pages[url] = FetchResponse(
                url=url,
                requested_url=url,
                status=answer.status_code,
                headers=answer.headers,
                content=answer.content,
                elapsed=0.0,
                source=spec.name,
            )
    return pages


async def _round(specs: list[SourceSpec], fetcher: _Recorded, book: Any, window: Any) -> tuple[int, int]:
    cancelling = {rule for spec in book.deadlines for rule in spec.cancelled_by}
    deadline_rules = {r.id for r in book.rules if r.deadline_from or r.id in cancelling}
    now = datetime.now(UTC)
    slots = asyncio.Semaphore(CONCURRENCY)
    counts = [0, 0]

    async def one(spec: SourceSpec) -> None:
        async with slots:
            result = await SOURCES[spec.kind](spec).fetch(fetcher)  # type: ignore[arg-type]
        for doc in result.documents:
            old = doc.published_at is not None and doc.published_at < now - window
            counts[1] += len(book.match(doc, facts_for=deadline_rules if old else None))
        counts[0] += len(result.documents)

    await asyncio.gather(*(one(spec) for spec in specs))
    return counts[0], counts[1]


def main(config: Path) -> dict[str, Any]:
    configure_logging("warning", "json")  # stdout carries the figures only
    settings = load_settings(config)
    book = load_rulebook(settings.rules)
    specs = list(settings.sources)
    fetcher = _Recorded(_record(specs))
    heap.settle()  # as the worker does once started (heap.py)
    cpu, wall = _cpu(), time.perf_counter()
    documents, matches = asyncio.run(_round(specs, fetcher, book, settings.first_poll_window))
    return {
        "wall": time.perf_counter() - wall,
        "cpu": _cpu() - cpu,
        "documents": documents,
        "matches": matches,
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
