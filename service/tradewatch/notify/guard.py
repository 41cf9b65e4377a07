"""Is the alert being sent still this worker's? Asked again after a wait inside a send.

The outbox consumer sets `SEND_GUARD` around each send. A notifier that waits in-process
before posting again (Slack's short 429 wait) calls `still_ours()` first: a worker stalled
meanwhile (a paused VM, a frozen container, a long GC) may have lost the entry to another
worker, which has sent it, and a second post would double the alert.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from tradewatch.errors import TakenOver

__all__ = ["SEND_GUARD", "still_ours"]

SEND_GUARD: ContextVar[Callable[[], Awaitable[bool]] | None] = ContextVar("send_guard", default=None)


async def still_ours() -> None:
    """Raise TakenOver when the outbox entry being sent now belongs to another worker."""
    guard = SEND_GUARD.get()
    if guard is not None and not await guard():
        raise TakenOver("another worker took this alert over while this one waited")
