"""Parsing off the event loop, under a deadline: hostile markup costs one thread, not the worker.

An HTML5 tree builder is quadratic on some markup: `<div>` nested 100,000 deep (1.3 MB)
took lexbor 26 s, and a few thousand re-opened formatting elements (`<p><b id=1></p>`…)
took seconds at 9,000 tags. No check short of the parser itself tells those pages from real
ones (a model of the tree builder was tried, and a review found a dozen ways past it), so
each poll's parsing runs on a thread instead. lexbor releases the GIL while it parses, so
the event loop, the other polls and the health endpoints go on meanwhile. The threads are
daemons, so a runaway parse never holds up the worker's exit. A thread that finished its
parse waits for the next one (starting a thread blocks the loop while it boots: a few
percent of a cold poll cycle), but a parse never waits for a thread: when none is idle, a
new one starts, so no parse queues behind another source's runaway one.

A parse that outlives its deadline (PARSE_DEADLINE; real pages take milliseconds) fails its
poll with a `retry_after` of an hour: the worker keeps the source's lease until then
(`Lease.hold`), so a hostile page is not parsed again and again. A thread cannot be stopped;
while such a runaway parse of a source still runs, that source's polls fail at once instead
of starting another.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from tradewatch.errors import SourceError

__all__ = ["PARSE_DEADLINE", "RUNAWAY_RETRY_AFTER", "off_loop"]

T = TypeVar("T")

PARSE_DEADLINE = 10.0  # seconds one page's or feed's parse may take (a 10 MB page: about 0.3 s)
RUNAWAY_RETRY_AFTER = 3600.0  # seconds a source that outlived its parse deadline is left alone
IDLE_THREADS = 8  # parse threads kept waiting for the next parse; more than that end

_runaway: dict[str, concurrent.futures.Future[object]] = {}  # source → a parse past its deadline


async def off_loop(source: str, parse: Callable[[], T], *, deadline: float | None = None) -> T:
    """`parse()` off the loop on a parse thread; SourceError when it takes longer than `deadline` seconds."""
    earlier = _runaway.get(source)
    if earlier is not None:
        if not earlier.done():
            raise SourceError(
                "an earlier parse of this source is still running (markup too costly to parse); refused",
                source=source,
                retry_after=RUNAWAY_RETRY_AFTER,
            )
        del _runaway[source]
    future: concurrent.futures.Future[T] = concurrent.futures.Future()
    _threads.submit(source, parse, future)
    limit = PARSE_DEADLINE if deadline is None else deadline
    try:
        return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), limit)
    except TimeoutError:
        _runaway[source] = future  # type: ignore[assignment]  # only its done() is read
        raise SourceError(
            f"parsing took longer than {limit:g}s (markup too costly to parse); refused",
            source=source,
            retry_after=RUNAWAY_RETRY_AFTER,
        ) from None


_Job = tuple[str, Callable[[], object], concurrent.futures.Future[object]]


class _Threads:
    """Daemon threads that each run one parse at a time and, between parses, wait for the next."""

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._idle: list[queue.SimpleQueue[_Job]] = []  # one inbox per waiting thread
        self._lock = threading.Lock()

    def submit(self, source: str, parse: Callable[[], T], future: concurrent.futures.Future[T]) -> None:
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(inbox,), name="parse", daemon=True).start()
        inbox.put((source, parse, future))  # type: ignore[arg-type]  # T is only handed back

    def _serve(self, inbox: queue.SimpleQueue[_Job]) -> None:
        me = threading.current_thread()
        while self._run(inbox.get(), inbox, me):
            pass  # nothing of a finished job stays referenced while this thread waits

    def _run(self, job: _Job, inbox: queue.SimpleQueue[_Job], me: threading.Thread) -> bool:
        """One parse; False when this thread should end instead of waiting for the next."""
        source, parse, future = job
        done: Callable[[], None] = _nothing  # a cancelled job: nobody waits for it any more
        if future.set_running_or_notify_cancel():
            me.name = f"parse {source}"  # what a thread dump or profiler shows
            try:
                result = parse()
            except BaseException as exc:  # handed to the poll that awaits it
                done = partial(future.set_exception, exc)
            else:
                done = partial(future.set_result, result)
            me.name = "parse"
        with self._lock:  # idle again before the poll learns of it, so its next parse finds it
            stay = len(self._idle) < self._keep
            if stay:
                self._idle.append(inbox)
        done()
        return stay


def _nothing() -> None:
    return None


_threads = _Threads(IDLE_THREADS)
