"""The floor of a cold cycle's own work: parse every page and match every item, and nothing else.

Run as a child of bench_poll with the tradewatch config of its 1,000 sources. It fetches each
source's page once (not timed), then times, in one process, what no cold cycle of tradewatch
can skip: each source kind's own parsing of the recorded answer into documents (its `fetch`,
handed the answer instead of a network) and matching every document with the config's
rulebook as a first poll does (an item older than `first_poll_window` only for the deadline
rules' facts), sources overlapping as the worker's polls do. No HTTP, Redis, decisions,
events, alerts, logs or metrics. Prints {"wall": s, "cpu": s, "documents": n, "matches": n};
bench_poll runs it once per repeat and takes the median.

If this alone takes longer than urlwatch's cold cycle, no cold cycle of the worker, with this
parser and matcher, can beat it.
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
from tradewatch.alerting import Plan, baselined
from tradewatch.config import Settings, SourceSpec, load_settings
from tradewatch.fetch import FetchResponse
from tradewatch.matching import Rulebook, load_rulebook
from tradewatch.observe import configure_logging
from tradewatch.sources import SOURCES


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


async def _round(settings: Settings, fetcher: _Recorded, book: Rulebook) -> tuple[int, int]:
    """Every enabled source read and matched; the sources' requests `http.concurrency` at a
    time, as the worker's fetcher admits them; each item matched as `Pipeline._match` matches
    a first poll's (`baselined`: only the deadline rules' facts)."""
    now = datetime.now(UTC)
    slots = asyncio.Semaphore(settings.http.concurrency)
    counts = [0, 0]

    async def one(spec: SourceSpec) -> None:
        window = settings.first_poll_window if spec.first_poll_window is None else spec.first_poll_window
        plan = Plan(spec=spec, now=now, first_poll=True, window=window)
        async with slots:
            result = await SOURCES[spec.kind](spec).fetch(fetcher)  # type: ignore[arg-type]
        for doc in result.documents:
            partial = book.deadline_rules if baselined(plan, doc) else None
            counts[1] += len(book.match(doc, facts_for=partial))
        counts[0] += len(result.documents)

    await asyncio.gather(*(one(spec) for spec in settings.sources if spec.enabled))
    return counts[0], counts[1]


def main(config: Path) -> dict[str, Any]:
    configure_logging("warning", "json")  # stdout carries the figures only
    settings = load_settings(config)
    book = load_rulebook(settings.rules)
    fetcher = _Recorded(_record([spec for spec in settings.sources if spec.enabled]))
    heap.settle()  # as the worker does once started (heap.py)
    cpu, wall = _cpu(), time.perf_counter()
    documents, matches = asyncio.run(_round(settings, fetcher, book))
    return {
        "wall": time.perf_counter() - wall,
        "cpu": _cpu() - cpu,
        "documents": documents,
        "matches": matches,
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
