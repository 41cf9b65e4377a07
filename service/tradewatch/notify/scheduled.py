"""What the worker runs on a timer for this area: due reminders into the outbox, the digest at its slot.

`tick(worker, now)` is what `Worker._tick_deadlines` calls every 30 s and at the end of `run --once`;
both halves are exactly-once across workers (reminder claims, digest slot claims), so
every worker may tick.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from tradewatch.observe import METRICS
from tradewatch.store.digest import DigestBook
from tradewatch.store.reminders import Reminders

__all__ = ["tick"]

log = structlog.get_logger(__name__)


async def tick(worker: Any, now: datetime) -> None:
    """Queue due reminders, then mail the digest if its slot has come and no worker did yet."""
    reminders = Reminders(worker.redis, worker.keys, worker.settings, worker.rulebook)
    await reminders.plan(now)
    queued = await reminders.due(now, outbox=worker.keys.outbox())  # claim + XADD, atomically
    for alert in queued:
        log.info("alert_enqueued", kind=alert.kind, rule=alert.rule, alert_id=alert.id)
        METRICS.reminders_sent.inc()
    if worker.settings.notifiers.email is not None:
        book = DigestBook(worker.redis, worker.keys, worker.settings, reminders=reminders)
        await book.send_due(now)
