"""The long-running process: scheduler, polling, delivery, web server, graceful shutdown.

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
import signal
import socket
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import structlog
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from tradewatch import heap
from tradewatch.config import Settings, SourceSpec
from tradewatch.errors import ConfigError, DeliveryError
from tradewatch.fetch import Fetcher
from tradewatch.matching import Rulebook, RuleProblems, load_rulebook
from tradewatch.notify import NOTIFIERS, Notifier
from tradewatch.observe import METRICS, Metrics, Progress
from tradewatch.pipeline import utcnow
from tradewatch.polling import Poller
from tradewatch.sources import SOURCES, Source
from tradewatch.store.connection import RedisHandle, open_redis
from tradewatch.store.keys import Keys

__all__ = ["Worker", "run_worker"]

log = structlog.get_logger(__name__)

SHUTDOWN_GRACE = 30.0  # seconds in-flight polls and sends may take, together, to finish after SIGTERM
ONCE_DELIVERY_TIMEOUT = 120.0  # seconds `run --once` keeps retrying transient delivery errors


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
            self.poller = Poller(
                self.settings,
                self._sources,
                fetcher,
                self.pipeline,
                self.health,
                self.leases,
                metrics=self.metrics,
                reschedule=self._move_next_run,
            )
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
            delivered=result.delivered,
            pending=result.pending,
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
        """Poll one source once (polling.Poller); every failure stays inside this source."""
        await self.poller.poll(spec, use_lease=use_lease, first_try=spec.name not in self._first_round_done)

    def _move_next_run(self, source: str, seconds: float) -> bool:
        """Move a source's next scheduled poll to `seconds` from now; False when it has none."""
        if self._scheduler is None:
            return False
        try:
            self._scheduler.modify_job(f"poll:{source}", next_run_time=utcnow() + timedelta(seconds=seconds))
        except JobLookupError:
            return False
        return True

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
