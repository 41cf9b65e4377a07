"""Delivery: outbox consumers that hand alerts to notifiers, once, whatever crashes in between.

One consumer group per notifier on the outbox stream. An entry is acknowledged
only together with its receipt, after the receiver accepted it; a failure is
retried with exponential backoff (or the receiver's Retry-After), the entry
staying pending meanwhile; a dead worker's pending entries are taken over with
XAUTOCLAIM and redelivered with `redelivery=True`, so the notifier checks for an
earlier post (Slack: metadata in the channel history) before posting again. After
`max_attempts` (or a permanent error) the alert is parked in the dead-letter stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from tradewatch.config import Settings
from tradewatch.errors import DeliveryError, StoreError, TakenOver
from tradewatch.notify import Notifier, Receipt, addressed
from tradewatch.notify.guard import SEND_GUARD
from tradewatch.observe import METRICS, Metrics
from tradewatch.store.connection import open_redis
from tradewatch.store.keys import Keys
from tradewatch.store.leases import renewed
from tradewatch.store.outbox import DEAD, Entry, Outbox
from tradewatch.store.suppressions import Suppressions

__all__ = ["Delivery", "DrainResult", "alerts_listing", "requeue_dead"]

log = structlog.get_logger(__name__)

BATCH = 10  # entries read per XREADGROUP (each is re-checked as ours before its send)
BLOCK_MS = 1000  # how long one read waits for new alerts; bounds how late `stop` is noticed
TRIM_EVERY = 60.0  # seconds between outbox trims (and pending gauges)
STORE_RETRY = 2.0  # seconds to wait after a Redis error before trying again
GAUGE_EVERY = 5.0  # seconds between refreshes of the pending gauge while alerts come and go
CLOSE_GRACE = 5.0  # seconds `run` waits for its consumers to end once stopped or cancelled


@dataclass
class DrainResult:
    """What `drain` did: delivered now, attempts that failed, parked, and still queued after."""

    delivered: int = 0
    failed: int = 0
    dead: int = 0
    skipped: int = 0
    pending: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Delivery:
    """Consumes the outbox for every configured notifier."""

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis,
        notifiers: dict[str, Notifier],
        *,
        keys: Keys,
        consumer: str,
        clock: Callable[[], float] = time.time,
        metrics: Metrics = METRICS,
    ) -> None:
        self.settings = settings
        self.notifiers = notifiers
        self.outbox = Outbox(redis, keys)
        self.consumer = consumer
        self.clock = clock
        self.metrics = metrics
        self.max_attempts = settings.delivery.max_attempts
        self.claim_idle_ms = int(settings.delivery.claim_idle.total_seconds() * 1000)
        self._groups_ready: set[str] = set()
        self._closing = False
        self._stop: asyncio.Event | None = None  # the long-running loop's stop, once it runs

    # --- long-running -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; Redis outages are waited out, never fatal.

        Once `stop` is set, the send in flight finishes and no other starts: what was read but
        not sent stays pending, for this consumer's restart or another worker's claim.
        """
        self._stop = stop
        tasks = [
            asyncio.create_task(self._consume(name, stop), name=f"deliver:{name}") for name in self.notifiers
        ]
        tasks.append(asyncio.create_task(self._housekeeping(stop), name="outbox-housekeeping"))
        try:
            await asyncio.gather(*tasks)
        finally:
            self._closing = True  # loops end at their next turn even if a library swallowed the cancel
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                _done, pending = await asyncio.wait(tasks, timeout=CLOSE_GRACE)
                for task in pending:
                    log.warning("delivery_task_did_not_stop", task=task.get_name())

    async def _consume(self, name: str, stop: asyncio.Event) -> None:
        last_claim = 0.0
        gauged = 0.0
        resumed = False
        while not stop.is_set() and not self._closing:
            try:
                await self._ensure(name)
                if not resumed:  # entries this consumer name read before a restart come first
                    for entry in await self.outbox.read_own_pending(name, self.consumer, 1000):
                        if self._stopping():
                            break
                        if await self.outbox.claimable(name, entry.id, self._now_ms()):
                            await self._deliver(name, entry)
                    resumed = True
                worked = await self._due(name)
                if time.monotonic() - last_claim >= self.claim_idle_ms / 2000:
                    last_claim = time.monotonic()
                    worked += await self._claim_dead(name)
                block = BLOCK_MS if not worked else None
                next_due = await self.outbox.next_due_ms(name)
                if next_due is not None and block is not None:
                    block = max(1, min(block, next_due - self._now_ms()))
                if self._stopping():
                    break  # reading would take entries this exiting consumer will not send
                entries = await self.outbox.read_new(name, self.consumer, BATCH, block)
                for entry in entries:
                    if self._stopping():
                        break
                    await self._deliver(name, entry)
                if (worked or entries) and time.monotonic() - gauged >= GAUGE_EVERY:
                    gauged = time.monotonic()  # the pending gauge follows delivery, not only housekeeping
                    self.metrics.alerts_pending.labels(name).set(await self.outbox.pending_count(name))
            except (StoreError, RedisError, OSError) as exc:
                self.metrics.redis_errors.inc()
                log.warning("delivery_store_unavailable", notifier=name, error=str(exc))
                if "NOGROUP" in str(exc):  # Redis came back without its data: make the group again
                    self._groups_ready.discard(name)
                await self._pause(stop)
            except Exception as exc:  # a bug must not silently end delivery for this notifier
                log.exception("delivery_loop_error", notifier=name, error=str(exc))
                await self._pause(stop)

    def _stopping(self) -> bool:
        return self._closing or (self._stop is not None and self._stop.is_set())

    @staticmethod
    async def _pause(stop: asyncio.Event, seconds: float | None = None) -> None:
        """Sleep until `stop` or the time is up; asyncio.timeout, as 3.11's wait_for can swallow a cancel."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STORE_RETRY if seconds is None else seconds):
                await stop.wait()

    async def _housekeeping(self, stop: asyncio.Event) -> None:
        """Pending gauges at start and every TRIM_EVERY, with a trim of what every group settled."""
        while not stop.is_set() and not self._closing:
            try:
                for name in self.notifiers:  # every group exists before a trim measures their progress
                    await self._ensure(name)
                    self.metrics.alerts_pending.labels(name).set(await self.outbox.pending_count(name))
                await self.outbox.trim()
            except Exception as exc:  # housekeeping must never stop delivery
                log.warning("outbox_housekeeping_failed", error=str(exc), error_type=type(exc).__name__)
            await self._pause(stop, TRIM_EVERY)

    # --- one-shot -------------------------------------------------------------------------------

    async def drain(self, timeout: float) -> DrainResult:  # noqa: ASYNC109 - the worker's API: a budget, not a cancel
        """Deliver everything due now (for `run --once`), waiting out short retry delays until `timeout`."""
        result = DrainResult()
        deadline = time.monotonic() + timeout
        try:
            for name in self.notifiers:  # every group exists before any reads: none starts past another
                await self._ensure(name)
            await asyncio.gather(*(self._drain_one(name, deadline, result) for name in self.notifiers))
            for name in self.notifiers:
                count = await self.outbox.pending_count(name)
                self.metrics.alerts_pending.labels(name).set(count)
                result.pending += count
            try:  # what every notifier settled: cron runs keep the outbox bounded too
                await self.outbox.trim()
            except (RedisError, OSError, StoreError) as exc:  # delivered all the same; the next run trims
                log.warning("outbox_not_trimmed", error=str(exc))
        except (RedisError, OSError) as exc:  # what was not acknowledged stays queued
            self.metrics.redis_errors.inc()
            raise StoreError(f"redis unavailable while delivering: {exc}") from exc
        log.info("outbox_drained", **result.as_dict())
        return result

    async def _drain_one(self, name: str, deadline: float, result: DrainResult) -> None:
        """Deliver what is due for one notifier; wait out retry delays only of this run's failures.

        A retry an earlier run scheduled is not due yet and is left for a later run: a `run
        --once` from cron must not sit out another run's backoff.
        """
        await self._ensure(name)
        mine: set[str] = set()  # entries this run tried and scheduled again (failed, or a reply waiting)

        async def deliver(entry: Entry) -> None:
            outcome = await self._deliver(name, entry)
            self._tally(result, outcome)
            if outcome in ("failed", "waiting"):
                mine.add(entry.id)
            else:
                mine.discard(entry.id)

        claimed = await self.outbox.read_own_pending(name, self.consumer, 1000)
        claimed += await self.outbox.claim_idle(name, self.consumer, self.claim_idle_ms, 1000)
        for entry in claimed:
            if await self.outbox.claimable(name, entry.id, self._now_ms()):
                await deliver(entry)
        while time.monotonic() < deadline:
            worked = 0
            for due in await self.outbox.take_due(name, self.consumer, self._now_ms()):
                await deliver(due)
                worked += 1
            for entry in await self.outbox.read_new(name, self.consumer, BATCH, None):
                await deliver(entry)
                worked += 1
            if worked:
                continue
            next_due = await self.outbox.next_due_ms(name)
            if next_due is None or not mine:
                return
            wait = (next_due - self._now_ms()) / 1000
            if time.monotonic() + wait > deadline:
                return  # what still fails stays queued for the next run
            await asyncio.sleep(max(wait, 0.0))  # a retry delay the receiver asked for, not a poll

    @staticmethod
    def _tally(result: DrainResult, outcome: str) -> None:
        if outcome == "delivered":
            result.delivered += 1
        elif outcome == "failed":
            result.failed += 1
        elif outcome == "dead":
            result.dead += 1
        elif outcome == "skipped":
            result.skipped += 1
        # "waiting" (a reply whose thread's first alert is not delivered yet) stays pending

    # --- one entry ------------------------------------------------------------------------------

    async def _ensure(self, name: str) -> None:
        if name not in self._groups_ready:
            await self.outbox.ensure_group(name)
            self._groups_ready.add(name)

    async def _due(self, name: str) -> int:
        done = 0
        if self._stopping():
            return 0  # nothing more is taken off the schedule once the worker stops
        for entry in await self.outbox.take_due(name, self.consumer, self._now_ms()):
            if self._stopping():
                break
            await self._deliver(name, entry)
            done += 1
        return done

    async def _claim_dead(self, name: str) -> int:
        """Take over entries a dead worker left pending; those waiting for a retry keep their time."""
        done = 0
        if self._stopping():
            return 0
        for entry in await self.outbox.claim_idle(name, self.consumer, self.claim_idle_ms):
            if self._stopping():
                break
            if not await self.outbox.claimable(name, entry.id, self._now_ms()):
                continue
            log.info("delivery_claimed", notifier=name, entry=entry.id, alert_id=entry.alert.id)
            await self._deliver(name, entry)
            done += 1
        return done

    def _targets(self, name: str, entry: Entry) -> bool:
        """Is this notifier meant: a re-drive names it, else the alert's `notify` (empty: all)."""
        if entry.to:
            return name in entry.to
        return addressed(name, entry.alert.notify)

    async def _deliver(self, name: str, entry: Entry) -> str:
        """Deliver one entry to one notifier; returns delivered, failed, dead or skipped."""
        alert = entry.alert
        bound = log.bind(notifier=name, alert_id=alert.id, entry=entry.id, kind=alert.kind)
        if not self._targets(name, entry):
            await self.outbox.skip(name, [entry.id])
            return "skipped"
        begin = await self.outbox.begin(name, self.consumer, entry)
        if begin.previous is not None and begin.previous != DEAD:
            bound.info("delivery_already_done")
            await self.outbox.skip(name, [entry.id])
            return "skipped"
        if not begin.ours:
            bound.info("delivery_taken_over")  # another worker claimed it while it waited here
            return "skipped"
        attempts = begin.attempts
        thread: Receipt | None = None
        if alert.thread_of:
            parent = begin.parent
            root_here = alert.root_notify is None or addressed(name, alert.root_notify)
            if parent is None and root_here and begin.waits < 2 * self.max_attempts:
                # The thread's first alert is not delivered yet (its own retries may run for a
                # while): wait on the same schedule without using this reply's attempts. Once it
                # is dead-lettered, or after twice its attempts in waits, the reply posts unthreaded.
                delay = await self._retry(name, entry, attempts, None, waits=begin.waits + 1)
                bound.info("delivery_waits_for_thread", thread_of=alert.thread_of, retry_in=round(delay, 3))
                return "waiting"
            if parent not in (None, DEAD):
                thread = json.loads(str(parent)) or None
        guard = SEND_GUARD.set(lambda: self.outbox.keep(name, self.consumer, entry.id))
        try:
            async with self._heartbeat(name, entry):
                again = entry.redelivery or attempts > 0 or alert.first_poll  # may have been sent before
                receipt = await self.notifiers[name].send(entry.alert, thread, redelivery=again)
        except TakenOver:
            bound.warning("delivery_taken_over", during="send")  # the other worker sends it
            return "skipped"
        except DeliveryError as exc:
            return await self._failed(name, entry, attempts + 1, exc, bound, waits=begin.waits)
        except Exception as exc:  # a notifier bug or an unmapped library error: retried, then parked
            err = DeliveryError(f"{type(exc).__name__}: {exc}", notifier=name)
            return await self._failed(name, entry, attempts + 1, err, bound, waits=begin.waits)
        finally:
            SEND_GUARD.reset(guard)
        await self.outbox.delivered(name, entry, receipt)
        self.metrics.alerts_sent.labels(name).inc()
        if alert.seen_at is not None:
            latency = max(0.0, self.clock() - alert.seen_at.timestamp())
            self.metrics.delivery_latency.labels(name).observe(latency)
        bound.info("alert_delivered", attempts=attempts + 1, threaded=thread is not None)
        return "delivered"

    @contextlib.asynccontextmanager
    async def _heartbeat(self, name: str, entry: Entry) -> AsyncIterator[None]:
        """While a send runs (receivers can be slow, with their own retries), keep the entry ours:
        XAUTOCLAIM takes only entries idle for `claim_idle`, so a live sender is never doubled."""

        async with renewed(
            self.claim_idle_ms / 3000,
            lambda: self.outbox.keep(name, self.consumer, entry.id),  # False: taken over, stop claiming
            (RedisError, OSError),
        ):
            yield

    async def _failed(
        self, name: str, entry: Entry, attempts: int, exc: DeliveryError, bound: Any, *, waits: int = 0
    ) -> str:
        self.metrics.alerts_failed.labels(name).inc()
        if exc.permanent or attempts >= self.max_attempts:
            await self.outbox.dead_letter(name, entry, str(exc), attempts)
            self.metrics.alerts_dead.labels(name).inc()
            bound.error("alert_dead_lettered", attempts=attempts, permanent=exc.permanent, error=str(exc))
            return "dead"
        delay = await self._retry(name, entry, attempts, exc.retry_after, waits=waits)
        bound.warning("delivery_failed", attempt=attempts, retry_in=round(delay, 3), error=str(exc))
        return "failed"

    async def _retry(
        self, name: str, entry: Entry, attempts: int, retry_after: float | None, *, waits: int = 0
    ) -> float:
        base = self.settings.delivery.backoff.total_seconds()
        cap = self.settings.delivery.max_backoff.total_seconds()
        doublings = min(max(attempts, waits) - 1, 40)  # 2**40 × base is past any cap; no overflow
        delay: float = min(cap, base * 2**doublings) * random.uniform(0.8, 1.0)
        if retry_after is not None:
            delay = retry_after  # the receiver said when; earlier is refused, later is slow
        await self.outbox.defer(name, entry.id, attempts, self._now_ms() + int(delay * 1000), waits=waits)
        return delay

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)


# --- operator commands (`tradewatch alerts list|retry`) ------------------------------------------


async def alerts_listing(settings: Settings, *, limit: int = 20) -> list[str]:
    """Pending counts per notifier, dead letters, recent alerts and suppressions, one line each."""
    handle = await open_redis(settings.redis_url, settings.state_dir)
    keys = Keys(settings.key_prefix)
    outbox = Outbox(handle.client, keys)
    try:
        lines = ["# pending (per notifier)"]
        for name in settings.notifiers.configured():
            lines.append(f"{name}\t{await outbox.pending_count(name)}")
        lines.append("# dead letters (re-drive with: tradewatch alerts retry ID | --all)")
        for d in await outbox.dead(count=1000):
            lines.append(
                f"{d.id}\t{d.notifier}\tattempts={d.attempts}\t{d.alert.rule}\t{d.alert.title[:80]}"
                f"\t{d.error[:120]}"
            )
        lines.append("# recent alerts (newest first)")
        for entry_id, alert in await outbox.recent(limit):
            lines.append(
                f"{entry_id}\t{alert.kind}\t{alert.severity}\t{alert.rule}\t{alert.source}"
                f"\t{alert.title[:80]}"
            )
        lines.append("# recent suppressions (newest first)")
        for s in await Suppressions(handle.client, keys).recent(limit):
            lines.append(f"{s.at}\t{s.reason}\t{s.rule}\t{s.source}\t{s.title[:80]}\t{s.detail[:80]}")
        return lines
    finally:
        await handle.close()


async def requeue_dead(settings: Settings, ids: list[str] | None) -> int:
    """Put parked alerts back in the outbox for the notifier that gave up; None means all."""
    handle = await open_redis(settings.redis_url, settings.state_dir)
    try:
        return await Outbox(handle.client, Keys(settings.key_prefix)).retry_dead(ids)
    finally:
        await handle.close()
