"""One poll of one source for the worker: its lease, the fetch, the pipeline, health and backoff.

Every failure stays inside its source: a source error, content no parser or pipeline step
foresaw, a server's Retry-After, a streak of failures (polled less and less often), each is
logged once and counted in the source's health; a Redis failure is not the source's fault
and is counted apart. The worker (`worker.py`) decides when to poll; this module, how.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from datetime import timedelta

import structlog
from redis.exceptions import RedisError

from tradewatch.config import Settings, SourceSpec
from tradewatch.errors import SourceError, StoreError
from tradewatch.fetch import Fetcher
from tradewatch.observe import Metrics
from tradewatch.pipeline import Pipeline, utcnow
from tradewatch.sources import Source
from tradewatch.store.health import SourceHealth
from tradewatch.store.leases import Leases

__all__ = ["FAILURE_BACKOFF_MAX", "MAX_RETRY_AFTER", "Poller", "failure_backoff"]

log = structlog.get_logger(__name__)

MAX_RETRY_AFTER = 86400.0  # a source's Retry-After defers its polls at most a day, whatever it asks
# A source failing poll after poll is polled less often once it is reported failing
# (`failure_alert_after` polls in a row): each further failure doubles the gap, up to half an
# hour, so a dead site is not hit at its full rate (plus retries) for days; its first success
# brings the normal schedule back.
FAILURE_BACKOFF_MAX = 1800.0


class Poller:
    """Polls the worker's sources, one call per poll."""

    def __init__(
        self,
        settings: Settings,
        sources: dict[str, Source],
        fetcher: Fetcher,
        pipeline: Pipeline,
        health: SourceHealth,
        leases: Leases,
        *,
        metrics: Metrics,
        reschedule: Callable[[str, float], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.sources = sources
        self.fetcher = fetcher
        self.pipeline = pipeline
        self.health = health
        self.leases = leases
        self.metrics = metrics
        self.reschedule = reschedule  # move a source's next scheduled poll to `seconds` from now

    async def poll(self, spec: SourceSpec, *, use_lease: bool, first_try: bool = False) -> None:
        """Poll one source once; every failure stays inside this source and is logged once.

        With `use_lease`, only the worker holding the source's lease polls it; the lease
        lives 90% of the interval from acquisition (renewed while a slow poll runs), so
        exactly one worker polls each source per interval. `first_try`: this worker's first
        poll of the source since it started.
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
            if first_try:
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
        if not 0 < left < every or self.reschedule is None:
            return  # no lease any more (the next tick polls), or a hold for backoff: the schedule waits
        delay = left + random.uniform(0.05, max(0.1, min(5.0, every * 0.05)))  # spread the workers
        if self.reschedule(spec.name, delay):
            log.debug("poll_moved_to_lease_end", source=spec.name, in_seconds=round(delay, 1))

    async def _poll_once(self, spec: SourceSpec) -> float | None:
        """One poll; returns the seconds to leave the source alone after a failure: the server's
        Retry-After or a runaway parse's hour, or the backoff of a streak of failures."""
        bound = log.bind(source=spec.name)
        started = time.perf_counter()
        try:
            result = await self.sources[spec.name].fetch(self.fetcher)
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
            **counts.as_dict(),
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
