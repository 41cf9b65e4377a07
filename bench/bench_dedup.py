"""Dedup and clustering against a real redis-server: Redis commands and round trips per document,
seen-check cost per item, documents per second through the pipeline, and memory per tracked item.

Setup: SOURCES sources of ITEMS documents each (the shipped rulebook; a share of the
documents match, and groups of sources report the same announcement so events form).
Phases, each timed and counted (commands from INFO, round trips by wrapping the client):
  first   every source's first poll (baseline: half the items are older than the window)
  steady  the same polls again: every item unchanged (the common case; the ≤ 50 µs/item goal)
  fresh   each source lists NEW more items, some reporting events other sources reported
Memory: `used_memory` growth per seen record after `first`, and per event after `fresh`.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench.procs import REPO, RedisServer, progress_line
from tradewatch.config import Settings, SourceSpec
from tradewatch.matching.loader import load_rulebook
from tradewatch.models import Document
from tradewatch.pipeline import Pipeline
from tradewatch.sources import SourceResult
from tradewatch.store.keys import Keys

__all__ = ["run"]

SOURCES = int(os.environ.get("BENCH_DEDUP_SOURCES", "20"))
ITEMS = int(os.environ.get("BENCH_DEDUP_ITEMS", "200"))
NEW = int(os.environ.get("BENCH_DEDUP_NEW", "20"))
QUIET = 20_000  # items of a source matching nothing: memory of seen records alone
NOW = datetime(2025, 10, 9, 12, tzinfo=UTC)

_TOPICS = [
    "MOFCOM announcement No. {n} of 2025 on export control of rare earth items",
    "商务部 海关总署公告2025年第{n}号 关于对部分稀土相关物项实施出口管制的决定",
    "USTR announces tariff increase on Chinese goods, notice {n}",
    "Weather and markets roundup {n}",
    "Port congestion eases in Rotterdam, report {n}",
]


_WORDS = [
    "tariff",
    "port",
    "shipment",
    "license",
    "magnet",
    "alloy",
    "oxide",
    "ministry",
    "customs",
    "quota",
    "steel",
    "solar",
    "battery",
    "chip",
    "vessel",
    "freight",
    "market",
    "price",
    "supply",
    "demand",
    "export",
    "import",
    "agency",
    "notice",
    "review",
    "duty",
    "rate",
    "week",
    "official",
    "statement",
    "talks",
    "delegation",
    "agreement",
    "deadline",
    "extension",
    "buyer",
    "factory",
    "order",
]


def _doc(
    source: int, item: int, *, event: int | None = None, age: timedelta = timedelta(hours=1)
) -> Document:
    """An item of a source; with `event`, one of a few stories many sources report (lightly reworded)."""
    rnd = random.Random(item * 7919 + source if event is None else event)
    topic = _TOPICS[item % len(_TOPICS)] if event is None else _TOPICS[event % 3]
    number = item if event is None else 1000 + event
    words = [rnd.choice(_WORDS) for _ in range(60)]
    if event is not None:
        words[source % 60] = "reportedly"  # each source words the story a little differently
    return Document(
        id=f"s{source}-i{item}",
        source=f"src{source}",
        url=f"https://src{source}.example/{item}",
        title=topic.format(n=number),
        text=" ".join(words),
        published_at=NOW - age,
    )


class _Timed:
    """The rulebook, with the time spent matching counted (matching is bench_matching's subject)."""

    def __init__(self, book: Any) -> None:
        self.book = book
        self.seconds = 0.0
        self.rules = book.rules
        self.deadlines = book.deadlines
        self.deadline_rules = book.deadline_rules

    def match(self, doc: Document, **options: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.book.match(doc, **options)
        finally:
            self.seconds += time.perf_counter() - started

    def rule(self, rule_id: str) -> Any:
        return self.book.rule(rule_id)


class _Counting:
    """Counts round trips by wrapping the client's one way to the server."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.trips = 0
        inner = client.execute_command

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.trips += 1
            return await inner(*args, **kwargs)

        client.execute_command = counted  # type: ignore[method-assign]


async def _commands(client: aioredis.Redis) -> int:
    info = await client.info("stats")
    return int(info["total_commands_processed"])


async def _memory(client: aioredis.Redis) -> int:
    return int((await client.info("memory"))["used_memory"])


async def _phase(
    pipe: Pipeline, client: aioredis.Redis, counter: _Counting, polls: list[tuple[SourceSpec, SourceResult]]
) -> dict[str, Any]:
    timed: Any = pipe.rulebook
    timed.seconds = 0.0
    before_cmd = await _commands(client)
    counter.trips = 0
    docs = alerts = 0
    started = time.perf_counter()
    for spec, result in polls:
        counts = await pipe.process(spec, result)
        docs += len(result.documents)
        alerts += counts.alerts
    elapsed = time.perf_counter() - started
    trips = counter.trips
    commands = await _commands(client) - before_cmd - 1  # minus the INFO that measured
    return {
        "docs": docs,
        "alerts": alerts,
        "seconds": elapsed,
        "commands": commands,
        "round_trips": trips,
        "polls": len(polls),
        "without_matching": elapsed - timed.seconds,
    }


async def _run(url: str, progress: bool) -> dict[str, Any]:
    client = aioredis.from_url(url, decode_responses=True)
    counter = _Counting(client)
    settings = Settings.model_validate({"redis_url": url, "first_poll_window": "12h"})
    book = load_rulebook(REPO / "rules")
    matching = _Timed(book)
    pipe = Pipeline(settings, client, matching, keys=Keys("bench"), now=lambda: NOW)  # type: ignore[arg-type]
    specs = [SourceSpec(name=f"src{s}", kind="rss", official=(s % 5 == 0)) for s in range(SOURCES)]

    def listing(s: int, extra: int = 0) -> SourceResult:
        docs = [_doc(s, i, age=timedelta(hours=1 if i % 2 else 48)) for i in range(ITEMS)]
        docs += [_doc(s, ITEMS + j, event=(j % 4) if j % 2 == 0 else None) for j in range(extra)]
        return SourceResult(documents=docs)

    await client.flushdb()
    progress_line(progress, "dedup: seen records alone")
    base_mem = await _memory(client)
    quiet = [
        Document(
            id=f"q{i}",
            source="quiet",
            url=f"https://quiet.example/{i}",
            title=f"Weather report {i}",
            text="sunny",
            published_at=NOW,
        )
        for i in range(QUIET)
    ]
    quiet_counts = await pipe.process(SourceSpec(name="quiet", kind="rss"), SourceResult(documents=quiet))
    assert quiet_counts.alerts == 0
    per_seen = (await _memory(client) - base_mem) / QUIET
    base_mem = await _memory(client)
    progress_line(progress, "dedup: first polls")
    first = await _phase(pipe, client, counter, [(specs[s], listing(s)) for s in range(SOURCES)])
    events_first = len([k async for k in client.scan_iter(match="bench:event:*", count=1000)])
    progress_line(progress, "dedup: steady polls")
    steady_polls = [(specs[s], listing(s)) for s in range(SOURCES)]
    steady = await _phase(pipe, client, counter, steady_polls)
    # the seen-check alone: one MGET for a poll, without matching or Python decisions around it
    check_started = time.perf_counter()
    for spec, result in steady_polls:
        await pipe.seen.lookup(spec.name, result.documents)
    seen_check = time.perf_counter() - check_started
    progress_line(progress, "dedup: polls with new items")
    before_fresh = await _memory(client)
    fresh = await _phase(pipe, client, counter, [(specs[s], listing(s, NEW)) for s in range(SOURCES)])
    events = len([k async for k in client.scan_iter(match="bench:event:*", count=1000)])
    index_keys = len([k async for k in client.scan_iter(match="bench:evidx:*", count=1000)])
    after_fresh = await _memory(client)
    sample = [k async for k in client.scan_iter(match="bench:seen:*", count=100)][:50]
    usage = [int(await client.memory_usage(k) or 0) for k in sample]
    await client.aclose()
    progress_line(progress, "")
    new_docs = NEW * SOURCES
    fresh_events = max(events - events_first, 1)
    return {
        "sources": SOURCES,
        "items_per_source": ITEMS,
        "first_poll_docs_per_s": round(first["docs"] / first["seconds"], 1),
        "first_poll_docs_per_s_excl_matching": round(first["docs"] / first["without_matching"], 1),
        "first_poll_commands_per_doc": round(first["commands"] / first["docs"], 3),
        "first_poll_round_trips_per_poll": round(first["round_trips"] / first["polls"], 2),
        "steady_docs_per_s": round(steady["docs"] / steady["seconds"], 1),
        "steady_commands_per_doc": round(steady["commands"] / steady["docs"], 4),
        "steady_round_trips_per_poll": round(steady["round_trips"] / steady["polls"], 2),
        "seen_check_us_per_item": round(seen_check / steady["docs"] * 1e6, 2),
        "steady_pipeline_us_per_item": round(steady["seconds"] / steady["docs"] * 1e6, 2),
        "fresh_new_docs_per_s": round(new_docs / fresh["seconds"], 1),
        "fresh_new_docs_per_s_excl_matching": round(new_docs / fresh["without_matching"], 1),
        "fresh_commands_per_new_doc": round((fresh["commands"] - steady["commands"]) / new_docs, 2),
        "fresh_round_trips_per_poll": round(fresh["round_trips"] / fresh["polls"], 2),
        "fresh_alerts": fresh["alerts"],
        "events": events,
        "event_index_keys": index_keys,
        "memory_bytes_per_seen_item": round(per_seen, 1),
        "memory_usage_bytes_per_seen_key": round(sum(usage) / max(len(usage), 1), 1),
        "memory_bytes_per_new_item_incl_events_outbox": round((after_fresh - before_fresh) / new_docs, 1),
        "memory_bytes_per_new_event_incl_index_outbox": round(
            (after_fresh - before_fresh - new_docs * per_seen) / fresh_events, 1
        ),
    }


def run(progress: bool) -> dict[str, Any]:
    """Start a throwaway redis-server and measure; see the module docstring."""
    with (
        tempfile.TemporaryDirectory(prefix="tradewatch-bench-dedup-") as tmp,
        RedisServer(Path(tmp)) as server,
    ):
        return asyncio.run(_run(server.url, progress))


if __name__ == "__main__":
    import json
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(json.dumps(run(progress=True), indent=2))
