"""Coalescer: concurrent calls share one batch, each caller gets its own result or the batch's error."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from tradewatch.store import batching
from tradewatch.store.batching import Coalescer


async def test_calls_made_together_go_out_as_one_batch_in_order() -> None:
    batches: list[list[int]] = []

    async def run(requests: Sequence[int]) -> list[int]:
        batches.append(list(requests))
        await asyncio.sleep(0)
        return [r * 10 for r in requests]

    c: Coalescer[int, int] = Coalescer(run)
    results = await asyncio.gather(*(c.call(i) for i in range(5)))
    assert results == [0, 10, 20, 30, 40]
    assert batches == [[0, 1, 2, 3, 4]]
    assert await c.call(7) == 70  # a later call starts a new batch
    assert batches[-1] == [7]


async def test_big_bursts_are_split(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batching, "MAX_BATCH", 3)
    sizes: list[int] = []

    async def run(requests: Sequence[int]) -> list[int]:
        sizes.append(len(requests))
        return list(requests)

    c: Coalescer[int, int] = Coalescer(run)
    assert await asyncio.gather(*(c.call(i) for i in range(7))) == list(range(7))
    assert sizes == [3, 3, 1]


async def test_a_failed_batch_fails_every_caller_and_the_next_batch_works() -> None:
    fail = True

    async def run(requests: Sequence[str]) -> list[str]:
        if fail:
            raise ConnectionError("redis down")
        return [r.upper() for r in requests]

    c: Coalescer[str, str] = Coalescer(run)
    results = await asyncio.gather(c.call("a"), c.call("b"), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
    fail = False
    assert await c.call("c") == "C"


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    release = asyncio.Event()
    seen: list[list[int]] = []

    async def run(requests: Sequence[int]) -> list[int]:
        seen.append(list(requests))
        await release.wait()
        return list(requests)

    c: Coalescer[int, int] = Coalescer(run)
    first = asyncio.create_task(c.call(1))
    second = asyncio.create_task(c.call(2))
    await asyncio.sleep(0.01)
    first.cancel()
    release.set()
    assert await second == 2
    with pytest.raises(asyncio.CancelledError):
        await first
    assert seen == [[1, 2]]


async def test_a_window_gathers_calls_spread_over_time_and_a_full_batch_goes_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batching, "MAX_BATCH", 4)
    batches: list[list[int]] = []

    async def run(requests: Sequence[int]) -> list[int]:
        batches.append(list(requests))
        return list(requests)

    c: Coalescer[int, int] = Coalescer(run, window=0.05)

    async def later(i: int) -> int:
        await asyncio.sleep(0.005 * i)
        return await c.call(i)

    assert await asyncio.gather(*(later(i) for i in range(3))) == [0, 1, 2]
    assert batches == [[0, 1, 2]], "calls 0, 5 and 10 ms apart share one window"
    batches.clear()
    assert await asyncio.gather(*(later(0) for _ in range(5))) == [0] * 5
    assert batches == [[0, 0, 0, 0], [0]], "a full batch does not wait for the window"


async def test_an_exception_result_fails_only_its_caller_and_a_short_answer_fails_all() -> None:
    async def run(requests: Sequence[int]) -> list[int | Exception]:
        if len(requests) == 2:
            return [1]  # a broken batch function: one result for two calls
        return [ValueError(f"bad {r}") if r == 2 else r for r in requests]

    c: Coalescer[int, int] = Coalescer(run)
    results = await asyncio.gather(*(c.call(i) for i in (1, 2, 3)), return_exceptions=True)
    assert results[0] == 1
    assert results[2] == 3
    assert isinstance(results[1], ValueError)
    short = await asyncio.gather(c.call(8), c.call(9), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in short), "no caller is left waiting"
