"""The long-running process: scheduler, leases, polling, delivery, web server, graceful shutdown.

One asyncio loop carries everything (DESIGN.md): APScheduler fires one interval
job per source; a poll takes the source's lease, fetches, and hands the result
to the pipeline; the delivery consumers drain the outbox; the web server answers
health and metrics. SIGTERM/SIGINT stop new work, let in-flight polls finish (up
to a limit), then close everything and exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from redis.exceptions import RedisError

from tradewatch import heap
from tradewatch.config import Settings, SourceSpec
from tradewatch.errors import ConfigError, DeliveryError, SourceError, StoreError
from tradewatch.fetch import Fetcher
from tradewatch.matching import Rulebook, RuleProblems, load_rulebook
from tradewatch.notify import NOTIFIERS, Notifier
from tradewatch.observe import METRICS, Metrics, Progress
from tradewatch.sources import SOURCES, Source
from tradewatch.store.connection import RedisHandle, open_redis
from tradewatch.store.keys import Keys

__all__ = ["Worker", "run_worker"]

log = structlog.get_logger(__name__)

SHUTDOWN_GRACE = 30.0  # seconds in-flight polls and sends may take, together, to finish after SIGTERM
ONCE_DELIVERY_TIMEOUT = 120.0  # seconds `run --once` keeps retrying transient delivery errors
MAX_RETRY_AFTER = 86400.0  # a source's Retry-After defers its polls at most a day, whatever it asks
# A source failing poll after poll is polled less often once it is reported failing
# (`failure_alert_after` polls in a row): each further failure doubles the gap, up to half an
# hour, so a dead site is not hit at its full rate (plus retries) for days; its first success
# brings the normal schedule back.
FAILURE_BACKOFF_MAX = 1800.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def load_rules_or_report(settings: Settings) -> Rulebook:
    """Load the rulebook; defects raise RuleProblems, whose text is one `FILE:LINE: message` per line."""
    if not settings.rules.is_dir():
        raise ConfigError(f"directory {settings.rules.resolve()} does not exist", key="rules")
    return load_rulebook(settings.rules, slack_routes=settings.slack_routes())


def build_notifiers(settings: Settings, redis: Any, keys: Keys) -> dict[str, Notifier]:
    """One instance per configured notifier; `email` records into the digest, which mails on its schedule."""
    from tradewatch.store.digest import DigestBook, DigestRecorder

    notifiers: dict[str, Notifier] = {}
    for name in settings.notifiers.configured():
        if name == "email":
            notifiers[name] = DigestRecorder(DigestBook(redis, keys, settings))
            continue
        options = getattr(settings.notifiers, name)
        notifiers[name] = NOTIFIERS[name](options)
    return notifiers


class Worker:
    """Everything one `tradewatch run` process owns, and the state the web server reads."""

    def __init__(self, settings: Settings, *, metrics: Metrics = METRICS) -> None:
        self.settings = settings
        self.metrics = metrics
        self.keys = Keys(settings.key_prefix)
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self.redis_handle: RedisHandle | None = None
        self.rulebook: Rulebook | None = None
        self.rules_loaded = False
        self.scheduler_running = False
        self.settle_heap = False  # run_worker sets it: freeze the start-up heap (heap.settle)
        self.stop = asyncio.Event()
        self._inflight: set[asyncio.Task[Any]] = set()
        self._specs: list[SourceSpec] = []  # the enabled sources, in config order
        self._sources: dict[str, Source] = {}
        self._first_round = Progress(0, "first poll")
        self._first_round_done: set[str] = set()
        self._scheduler: AsyncIOScheduler | None = None

    @property
    def redis(self) -> Any:
        return self.redis_handle.client if self.redis_handle else None

    # --- lifecycle -------------------------------------------------------------------------------

    async def main(self, *, once: bool) -> int:
        # First of all: a SIGTERM while starting (or during `run --once`) must also end in an
        # orderly stop, which closes the embedded Redis, not in the default kill that left it running.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._request_stop, sig)
        self.rulebook = load_rules_or_report(self.settings)
        # not ready with nothing to match: an orchestrator holds back a worker that cannot alert
        self.rules_loaded = bool(self.rulebook.rules or self.rulebook.deadlines)
        self.redis_handle = await open_redis(self.settings.redis_url, self.settings.state_dir)
        try:
            return await self._serve(once=once)
        finally:
            await self.redis_handle.close()

    async def _serve(self, *, once: bool) -> int:
        from tradewatch.delivery import Delivery
        from tradewatch.pipeline import Pipeline
        from tradewatch.store.health import SourceHealth
        from tradewatch.store.leases import Leases
        from tradewatch.store.validators import RedisValidatorCache

        assert self.rulebook is not None
        redis = self.redis
        self._specs = [spec for spec in self.settings.sources if spec.enabled]
        self._sources = {spec.name: SOURCES[spec.kind](spec) for spec in self._specs}
        self.notifiers = build_notifiers(self.settings, redis, self.keys)
        self.pipeline = Pipeline(self.settings, redis, self.rulebook, keys=self.keys, now=utcnow)
        self.delivery = Delivery(self.settings, redis, self.notifiers, keys=self.keys, consumer=self.consumer)
        self.health = SourceHealth(redis, self.keys)
        self.leases = Leases(redis, self.keys)
        if self.settle_heap:
            heap.settle()
        log.info(
            "worker_started",
            sources=len(self._sources),
            notifiers=sorted(self.notifiers),
            once=once,
            consumer=self.consumer,
            redis="embedded" if self.redis_handle and self.redis_handle.embedded else "external",
        )
        async with Fetcher(self.settings.http, RedisValidatorCache(redis, self.keys)) as fetcher:
            self.fetcher = fetcher
            try:
                if once:
                    return await self._run_once()
                return await self._run_forever()
            finally:
                for notifier in self.notifiers.values():
                    with contextlib.suppress(Exception):
                        await notifier.aclose()

    async def _run_once(self) -> int:
        specs = self._specs
        progress = Progress(len(specs), "polling sources")

        async def one(spec: SourceSpec) -> None:
            if self.stop.is_set():
                return  # stopping: no poll starts any more
            try:
                with self._in_flight():  # a second signal cancels it
                    await self._guarded_poll(spec, use_lease=False)
            finally:
                progress.step()

        # the polls in flight finish after SIGTERM; a second signal cancels them
        await asyncio.gather(*(one(spec) for spec in specs), return_exceptions=True)
        progress.done()
        if self.stop.is_set():  # what was queued stays queued for the next run or a worker
            log.info("run_once_stopped", sources=len(specs))
            return 0
        await self._tick_deadlines()
        result = await self.delivery.drain(timeout=ONCE_DELIVERY_TIMEOUT)
        log.info(
            "run_once_finished",
            sources=len(specs),
            delivered=getattr(result, "delivered", None),
            pending=getattr(result, "pending", None),
        )
        return 0

    async def _run_forever(self) -> int:
        loop = asyncio.get_running_loop()
        web_task = self._start_web()
        self._first_round = Progress(len(self._sources), "first poll", unit="sources")
        scheduler = self._scheduler = AsyncIOScheduler(event_loop=loop, timezone="UTC")
        now = utcnow()
        for spec in self._specs:
            name = spec.name
            every = spec.every.total_seconds()
            jitter = spec.jitter.total_seconds() if spec.jitter is not None else min(every * 0.1, 30.0)
            scheduler.add_job(
                self._scheduled_poll,
                IntervalTrigger(seconds=every, jitter=jitter or None),
                args=[spec],
                id=f"poll:{name}",
                name=name,
                max_instances=1,
                coalesce=True,
                next_run_time=now,
                misfire_grace_time=None,
            )
        scheduler.add_job(
            self._scheduled_tick,
            IntervalTrigger(seconds=30),
            id="deadlines",
            max_instances=1,
            coalesce=True,
            next_run_time=now,
        )
        scheduler.start()
        self.scheduler_running = True
        delivery_task = asyncio.create_task(self.delivery.run(self.stop), name="delivery")
        await self.stop.wait()
        log.info("worker_stopping", inflight=len(self._inflight))
        # Pause first: APScheduler's asyncio executor cancels running jobs on shutdown, and
        # in-flight polls (and a deadline tick) must finish.
        scheduler.pause()
        self.scheduler_running = False
        # One budget for polls and delivery together (they finish side by side), so the worker
        # is out well inside the shipped stop grace periods (compose 45 s, systemd and k8s 60 s).
        deadline = time.monotonic() + SHUTDOWN_GRACE
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=SHUTDOWN_GRACE)
            for task in pending:
                task.cancel()
        scheduler.shutdown(wait=False)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(delivery_task, timeout=max(1.0, deadline - time.monotonic()))
        if web_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(web_task, timeout=5)
        log.info("worker_stopped")
        return 0

    def _start_web(self) -> asyncio.Task[Any] | None:
        """Bind the port now (a taken port stops the start with an error naming server.port)."""
        if not self.settings.server.enabled:
            return None
        from tradewatch.web.app import create_app
        from tradewatch.web.server import bind, serve

        server = self.settings.server
        sock = bind(server.host, server.port)
        app = create_app(self)
        return asyncio.create_task(serve(app, server.host, server.port, self.stop, sock=sock), name="web")

    def _request_stop(self, sig: signal.Signals) -> None:
        if self.stop.is_set():  # a second Ctrl-C: stop waiting for in-flight polls
            log.warning("shutdown_forced", signal=sig.name, inflight=len(self._inflight))
            for task in list(self._inflight):
                task.cancel()
            return
        log.info("shutdown_requested", signal=sig.name)
        self.stop.set()

    # --- polling ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _in_flight(self) -> Iterator[None]:
        """Count the running scheduled job as in flight: shutdown waits for it (SHUTDOWN_GRACE)."""
        task = asyncio.current_task()
        assert task is not None
        self._inflight.add(task)
        try:
            yield
        finally:
            self._inflight.discard(task)

    async def _guarded_poll(self, spec: SourceSpec, *, use_lease: bool) -> None:
        """`poll`, with an error that escaped its own guards (a gap in the worker) logged, not lost."""
        try:
            await self.poll(spec, use_lease=use_lease)
        except Exception as exc:
            log.error("source_poll_crashed", source=spec.name, error=repr(exc), exc_info=exc)

    async def _scheduled_poll(self, spec: SourceSpec) -> None:
        if self.stop.is_set():
            return
        try:
            with self._in_flight():
                await self._guarded_poll(spec, use_lease=True)
        finally:
            if spec.name not in self._first_round_done:  # the first round of many sources can take a while
                self._first_round_done.add(spec.name)
                self._first_round.step()
                if len(self._first_round_done) == len(self._sources):
                    self._first_round.done()

    async def _scheduled_tick(self) -> None:
        if self.stop.is_set():
            return
        with self._in_flight():  # a tick in progress finishes before shutdown, like a poll
            await self._tick_deadlines()
            await self.fetcher.close_idle()  # sockets of hosts not polled lately
            await self._refresh_source_up()

    async def _refresh_source_up(self) -> None:
        """`tradewatch_source_up` from the health all workers share, not only this worker's polls.

        With leases one worker polls a source; another that polled it once (before a
        failover) would go on reporting its old 1 while the source fails, and a
        `max by (source)` alert would never fire.
        """
        try:
            records = await self.health.all()
        except Exception as exc:
            log.debug("source_up_not_refreshed", error=str(exc))
            return
        for spec in self._specs:
            record = records.get(spec.name)
            if record is not None and (record.last_success or record.consecutive_failures):
                self.metrics.source_up.labels(spec.name).set(0 if record.consecutive_failures else 1)

    async def poll(self, spec: SourceSpec, *, use_lease: bool) -> None:
        """Poll one source once; every failure stays inside this source and is logged once.

        With `use_lease`, only the worker holding the source's lease polls it; the lease
        lives 90% of the interval from acquisition (renewed while a slow poll runs), so
        exactly one worker polls each source per interval.
        """
        if not use_lease:
            await self._poll_once(spec)
            return
        ttl_ms = max(int(spec.every.total_seconds() * 900), 500)
        try:
            lease = await self.leases.acquire(spec.name, ttl_ms)
        except (StoreError, RedisError, OSError) as exc:
            self.metrics.redis_errors.inc()
            log.warning("lease_unavailable", source=spec.name, error=str(exc))
            return
        if lease is None:
            log.debug("poll_skipped_lease_held", source=spec.name)
            if spec.name not in self._first_round_done:
                await self._retry_when_lease_ends(spec)
            return
        try:
            async with lease.held():
                wait = await self._poll_once(spec)
                if wait is not None and wait > spec.every.total_seconds():
                    wait = min(wait, MAX_RETRY_AFTER)
                    lease.hold(wait)  # no worker polls it before then (Retry-After, backoff)
                    log.info("source_polls_deferred", source=spec.name, retry_after=round(wait))
        except (StoreError, RedisError, OSError) as exc:  # finishing the lease; it expires on its own
            log.warning("lease_not_finished", source=spec.name, error=str(exc))

    async def _retry_when_lease_ends(self, spec: SourceSpec) -> None:
        """A lease held at this worker's first try of a source (left by the process it replaces,
        or by another worker) ends before the next interval: the source's next run moves to the
        lease's end, and the interval counts from there (a restarted worker left a 30-minute
        source unpolled for almost an hour; a one-off retry beside the old schedule only moved
        the gap, its own lease making the next scheduled run skip)."""
        every = spec.every.total_seconds()
        try:
            left = await self.leases.remaining_ms(spec.name) / 1000
        except StoreError:
            return
        if not 0 < left < every or self._scheduler is None:
            return  # no lease any more (the next tick polls), or a hold for backoff: the schedule waits
        delay = left + random.uniform(0.05, max(0.1, min(5.0, every * 0.05)))  # spread the workers
        with contextlib.suppress(JobLookupError):
            self._scheduler.modify_job(f"poll:{spec.name}", next_run_time=utcnow() + timedelta(seconds=delay))
            log.debug("poll_moved_to_lease_end", source=spec.name, in_seconds=round(delay, 1))

    async def _poll_once(self, spec: SourceSpec) -> float | None:
        """One poll; returns the seconds to leave the source alone after a failure: the server's
        Retry-After or a runaway parse's hour, or the backoff of a streak of failures."""
        bound = log.bind(source=spec.name)
        started = time.perf_counter()
        try:
            result = await self._sources[spec.name].fetch(self.fetcher)
        except (StoreError, RedisError) as exc:  # its stored validators unreadable: Redis, not the source
            self._not_processed(spec, exc, time.perf_counter() - started)
            return None
        except Exception as exc:  # SourceError, or content no parser foresaw: this source only
            return await self._failed_poll(spec, exc, time.perf_counter() - started)
        fetched = time.perf_counter() - started
        self.metrics.fetch_seconds.labels(spec.name).observe(fetched)
        try:
            counts = await self.pipeline.process(spec, result)
            await self.fetcher.commit(result)  # validators only after the documents are safe
            transition = await self.health.record_success(
                spec.name,
                status=result.status,
                documents=len(result.documents),
                duration=fetched,
                next_poll=utcnow() + spec.every,
                url=spec.url,
            )
        except (StoreError, RedisError, OSError) as exc:  # Redis outage: nothing sent; next poll catches up
            self._not_processed(spec, exc, fetched)
            return None
        except Exception as exc:  # content the pipeline did not foresee: this source fails, not the worker
            return await self._failed_poll(spec, exc, time.perf_counter() - started)
        self.metrics.polls.labels(spec.name, str(result.status)).inc()
        self.metrics.source_up.labels(spec.name).set(1)
        bound.info(
            "source_polled",
            status=result.status,
            duration=round(time.perf_counter() - started, 3),
            fetch_duration=round(fetched, 3),
            documents=len(result.documents),
            **_counts(counts),
        )
        if transition:
            _health_changed(spec, transition.kind, "")
        return None

    async def _failed_poll(self, spec: SourceSpec, exc: Exception, duration: float) -> float | None:
        """Count a failed poll in the source's health; the seconds to leave the source alone.

        Its validators and read cursors are not committed, so the next poll reads the same
        answer again."""
        error = str(exc) if isinstance(exc, SourceError) else f"unexpected {type(exc).__name__}: {exc}"
        self.metrics.polls.labels(spec.name, "error").inc()
        self.metrics.fetch_errors.labels(spec.name).inc()
        self.metrics.source_up.labels(spec.name).set(0)
        log.warning(
            "source_poll_failed",
            source=spec.name,
            error=error,
            duration=round(duration, 3),
            exc_info=not isinstance(exc, SourceError),  # a parser or pipeline gap: the stack says where
        )
        streak = await self._record_failure(spec, error)
        asked = exc.retry_after if isinstance(exc, SourceError) else None
        every = spec.every.total_seconds()
        wait = max(asked or 0.0, failure_backoff(every, streak, self.settings.failure_alert_after))
        with contextlib.suppress(Exception):  # only the status page's "next poll" is late
            later = min(max(wait, every), MAX_RETRY_AFTER)
            await self.health.note_next_poll(spec.name, utcnow() + timedelta(seconds=later))
        return wait or None

    def _not_processed(self, spec: SourceSpec, exc: Exception, duration: float) -> None:
        """Redis failed during the poll: not the source's fault, so not counted in its health."""
        self.metrics.redis_errors.inc()
        self.metrics.polls.labels(spec.name, "store_error").inc()
        log.error("source_poll_not_processed", source=spec.name, error=str(exc), duration=round(duration, 3))

    async def _record_failure(self, spec: SourceSpec, error: str) -> int:
        """Count the failure in the source's health; the streak it makes (0 when unrecorded)."""
        try:
            failure = await self.health.record_failure(
                spec.name, error, threshold=self.settings.failure_alert_after, url=spec.url
            )
        except Exception as exc:
            self.metrics.redis_errors.inc()
            log.warning("health_not_recorded", source=spec.name, error=str(exc))
            return 0
        if failure.transition:
            _health_changed(spec, failure.transition.kind, error)
        return failure.streak

    async def _tick_deadlines(self) -> None:
        """Reminders that are due, and the digest when its slot has come (both exactly once)."""
        from tradewatch.notify.scheduled import tick

        try:
            await tick(self, utcnow())
        except DeliveryError as exc:  # the digest's SMTP server, not Redis: its slot is retried
            self.metrics.alerts_failed.labels("email").inc()
            log.warning("digest_send_failed", error=str(exc))
        except Exception as exc:
            self.metrics.redis_errors.inc()
            log.warning("deadline_tick_failed", error=str(exc))


def _counts(counts: Any) -> dict[str, Any]:
    if counts is None:
        return {}
    if hasattr(counts, "as_dict"):
        return dict(counts.as_dict())
    if hasattr(counts, "__dataclass_fields__"):
        return {k: getattr(counts, k) for k in counts.__dataclass_fields__}
    if hasattr(counts, "model_dump"):
        return dict(counts.model_dump())
    return {}


def run_worker(settings: Settings, *, once: bool) -> int:
    """Run until stopped (or one cycle with `once`); rule defects print and return 1."""
    worker = Worker(settings)
    worker.settle_heap = True  # this process is the worker's own, not a test's or a command's
    try:
        return asyncio.run(worker.main(once=once))
    except RuleProblems as exc:
        for problem in exc.problems:
            print(str(problem), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def failure_backoff(every: float, streak: int, after: int) -> float:
    """Seconds until the next poll of a source that failed `streak` polls in a row; 0 (its
    schedule) until the streak makes it "failing" (`after`), so that alert is not delayed."""
    if streak < after:
        return 0.0
    doublings = min(streak - after + 1, 40)  # 2**40 polls' gaps are past any cap; no overflow
    return float(min(every * 2**doublings, max(every, FAILURE_BACKOFF_MAX)))


def _health_changed(spec: SourceSpec, transition: str, error: str) -> None:
    """Source failing/recovered: the health script already queued its operator alert (one step)."""
    if transition == "recovered":
        log.info("source_health_changed", source=spec.name, transition=transition)
    else:
        log.warning("source_health_changed", source=spec.name, transition=transition, error=error[:300])
