"""Parsing off the event loop under a deadline (sources/_offload.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

import pytest

from tradewatch.errors import SourceError
from tradewatch.sources import _offload
from tradewatch.sources._offload import RUNAWAY_RETRY_AFTER, off_loop


async def test_result_and_errors_come_back() -> None:
    assert await off_loop("s", lambda: 42) == 42
    with pytest.raises(ValueError, match="bad page"):
        await off_loop("s", lambda: (_ for _ in ()).throw(ValueError("bad page")))


async def test_a_runaway_parse_fails_its_poll_and_blocks_only_its_source() -> None:
    """Past the deadline the poll fails (the worker then leaves the source an hour); while that
    parse still runs, the source's polls are refused at once and other sources parse as usual."""
    release = threading.Event()
    with pytest.raises(SourceError, match=r"parsing took longer than 0\.05s") as info:
        await off_loop("slow", release.wait, deadline=0.05)
    assert info.value.retry_after == RUNAWAY_RETRY_AFTER
    with pytest.raises(SourceError, match="an earlier parse of this source is still running"):
        await off_loop("slow", lambda: 1)
    assert await off_loop("other", lambda: 2) == 2
    release.set()
    await asyncio.wrap_future(_offload._runaway["slow"])
    assert await off_loop("slow", lambda: 3) == 3  # once it ended, the source parses again
    assert "slow" not in _offload._runaway


def test_a_runaway_parse_does_not_hold_up_the_exit() -> None:
    """A worker stopping (SIGTERM) exits even while a parse that will never end still runs."""
    code = (
        "import asyncio, threading\n"
        "from tradewatch.errors import SourceError\n"
        "from tradewatch.sources._offload import off_loop\n"
        "async def main():\n"
        "    try:\n"
        "        await off_loop('s', threading.Event().wait, deadline=0.05)\n"
        "    except SourceError:\n"
        "        print('refused')\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "refused\n"


async def test_threads_are_reused_and_a_runaway_one_is_not() -> None:
    """A finished parse's thread takes the next parse; a thread still stuck in a runaway parse
    is never handed another, so the next parse gets a fresh thread instead of queueing."""
    first = await off_loop("a", threading.get_ident)
    assert await off_loop("b", threading.get_ident) == first
    release = threading.Event()
    stuck: list[int] = []
    with pytest.raises(SourceError):
        await off_loop("slow", lambda: stuck.append(threading.get_ident()) or release.wait(), deadline=0.05)
    fresh = await off_loop("c", threading.get_ident)
    assert fresh != stuck[0]
    release.set()
    await asyncio.wrap_future(_offload._runaway["slow"])
    assert await off_loop("slow", lambda: 3) == 3


async def test_an_idle_thread_keeps_nothing_of_its_last_parse() -> None:
    """A page and its parse result are freed once the poll has them, not kept by the idle thread."""
    import gc
    import weakref

    class Page:
        pass

    page = await off_loop("s", Page)  # built on the parse thread, as a parse result is
    ref = weakref.ref(page)
    del page
    await asyncio.sleep(0.05)  # the thread is back waiting for work
    gc.collect()
    assert ref() is None


async def test_a_cancelled_job_leaves_its_thread_reusable() -> None:
    """A job nobody waits for any more is skipped, and its thread still waits for the next parse."""
    import concurrent.futures

    first = await off_loop("a", threading.get_ident)
    cancelled: concurrent.futures.Future[int] = concurrent.futures.Future()
    cancelled.cancel()
    _offload._threads.submit("x", threading.get_ident, cancelled)
    await asyncio.sleep(0.05)
    assert await off_loop("b", threading.get_ident) == first
