"""Coalesce the small Redis calls that many concurrent polls make into one pipeline.

When a thousand sources are polled at once, each poll reads its validators and
records its health: a thousand commands, each costing a client round trip of a
few hundred microseconds of CPU. A `Coalescer` gathers the calls made while the
event loop is busy with other tasks and sends them as one pipeline, yet every
caller still awaits its own result (or its own error) as if it had called Redis
alone, so nothing about ordering or failure handling changes for the caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["WRITE_WINDOW", "Coalescer"]

Req = TypeVar("Req")
Res = TypeVar("Res")

MAX_BATCH = 500  # commands per pipeline: bounds one reply's size and one caller's wait
# Seconds a poll's closing writes (health, validators) wait for other polls' to share a pipeline:
# polls finish a few ms apart, and nothing waits on these writes but the poll's own log line.
WRITE_WINDOW = 0.02


class Coalescer(Generic[Req, Res]):
    """Runs `run(requests)` once per burst of `call`s; `run` returns one result per request, in order.

    A result that is an exception is raised to its own caller only (pipelines run with
    `raise_on_error=False`, so one bad command does not fail the polls batched with it).

    A burst is what was asked between two turns of the event loop, or within `window`
    seconds of the first call when a caller can wait that long (a write that no decision
    waits for, such as a poll's health record). An exception raised by `run` is given to
    every caller of that batch.
    """

    def __init__(
        self, run: Callable[[Sequence[Req]], Awaitable[Sequence[Res | Exception]]], *, window: float = 0.0
    ) -> None:
        self._run = run
        self._window = window
        self._waiting: list[tuple[Req, asyncio.Future[Res]]] = []
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def call(self, request: Req) -> Res:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Res] = loop.create_future()
        self._waiting.append((request, future))
        if len(self._waiting) >= MAX_BATCH:
            self._flush()
        elif self._timer is None:
            window = self._window
            self._timer = loop.call_later(window, self._flush) if window else loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self._waiting = self._waiting, []  # never more than MAX_BATCH: `call` flushes then
        task = asyncio.get_running_loop().create_task(self._send(waiting))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[Req, asyncio.Future[Res]]]) -> None:
        live = [(req, fut) for req, fut in batch if not fut.cancelled()]
        if not live:
            return
        try:
            results: Sequence[Res | Exception] = await self._run([req for req, _ in live])
        except asyncio.CancelledError:
            for _, fut in live:
                fut.cancel()
            raise
        except Exception as exc:  # every caller of the batch sees the failure as its own
            for _, fut in live:
                if not fut.done():
                    fut.set_exception(exc)
            return
        if len(results) != len(live):  # a bug in `run`: fail loudly rather than leave callers waiting
            error = RuntimeError(f"batch of {len(live)} calls answered with {len(results)} results")
            results = [error for _ in live]
        for (_, fut), result in zip(live, results, strict=True):
            if fut.done():
                continue
            if isinstance(result, Exception):  # one failed command fails only its own caller
                fut.set_exception(result)
            else:
                fut.set_result(result)
