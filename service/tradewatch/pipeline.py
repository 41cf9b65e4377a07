"""One poll's way through tradewatch: seen? → baseline → match → event → dedup/silence → outbox.

Reads happen in few round trips per poll (seen records: one MGET; and only when
something is new or changed: silences, event index and dedup keys, events), the
decisions are pure Python (alerting.py), and every write of the poll (seen records,
events, index and dedup keys, suppressions, outbox entries) lands in one
compare-and-apply script. So an alert is queued exactly when its dedup record is
written; a worker that raced us re-reads and finds the item seen; a Redis outage
raises StoreError with nothing half-done, and the next poll catches up.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import redis.asyncio as aioredis
import structlog

from tradewatch.alerting import Decider, Plan, PollCounts, Work, baselined, digest
from tradewatch.config import Settings, SourceSpec
from tradewatch.errors import StoreError
from tradewatch.matching.engine import Rulebook
from tradewatch.models import Document, Match
from tradewatch.observe import METRICS, Metrics
from tradewatch.sources import SourceResult
from tradewatch.store.commit import CommitConflict, redis_errors
from tradewatch.store.events import Event, EventIndex
from tradewatch.store.keys import SEEN_TTL_MS, Keys
from tradewatch.store.outbox import Outbox
from tradewatch.store.reminders import Reminders
from tradewatch.store.seen import NO_EVENT, SeenRecord, SeenStore, epoch_day
from tradewatch.store.silences import Silences
from tradewatch.store.suppressions import Suppressions, dedup_value

__all__ = ["Pipeline"]

log = structlog.get_logger(__name__)

MAX_CONFLICT_RETRIES = 8  # concurrent workers on one source or event; each retry re-reads fresh state
YIELD_AFTER = 0.05  # seconds of matching after which the event loop gets a turn


def utcnow() -> datetime:
    return datetime.now(UTC)


class Pipeline:
    """Turns a source's documents into queued alerts exactly once."""

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis,
        rulebook: Rulebook,
        *,
        keys: Keys,
        now: Callable[[], datetime] = utcnow,
        metrics: Metrics = METRICS,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.rulebook = rulebook
        self.keys = keys
        self.now = now
        self.metrics = metrics
        self.seen = SeenStore(redis, keys)
        self.index = EventIndex(redis, keys)
        self.silences = Silences(redis, keys, settings)
        self.decider = Decider(rulebook, keys, Outbox(redis, keys), Suppressions(redis, keys))
        self._commit_lock = asyncio.Lock()  # one poll's read-decide-commit at a time per worker
        self.reminders = Reminders(redis, keys, settings, rulebook)

    async def process(self, spec: SourceSpec, result: SourceResult) -> PollCounts:
        """Record, match, cluster and queue one poll's documents; raises StoreError if Redis fails."""
        docs = _unique(
            [d if d.source else d.model_copy(update={"source": spec.name}) for d in result.documents]
        )
        listed = {d.id for d in docs}
        held = _unique(
            [
                d if d.source else d.model_copy(update={"source": spec.name})
                for d in result.held
                if d.id not in listed
            ]
        )
        if result.not_modified or not (docs or held):
            return PollCounts()
        matches: dict[tuple[str, str, bool], list[Match]] = {}  # a retry re-reads state, not re-matches
        async with self._commit_lock:
            for attempt in range(MAX_CONFLICT_RETRIES):
                plan = await self._plan(spec, docs, matches, held)
                await self._observe_deadlines(plan)
                try:
                    await plan.batch.commit(self.redis)
                except CommitConflict as exc:
                    log.info("pipeline_conflict_retry", source=spec.name, key=exc.key, attempt=attempt + 1)
                    continue
                self._report(plan)
                return plan.counts
        raise StoreError(f"{spec.name}: gave up after {MAX_CONFLICT_RETRIES} conflicting concurrent writes")

    def _report(self, plan: Plan) -> None:
        c, source = plan.counts, plan.spec.name
        for state, n in (("new", c.new), ("updated", c.updated), ("unchanged", c.unchanged)):
            if n:
                self.metrics.documents.labels(source, state).inc(n)
        for rule, n in Counter(plan.matched_rules).items():
            self.metrics.matches.labels(rule).inc(n)
        for reason, rule, doc_id in plan.suppressed:
            self.metrics.alerts_suppressed.labels(reason).inc()
            log.info("alert_suppressed", reason=reason, rule=rule, source=source, doc_id=doc_id)
        for alert in plan.alerts:
            log.info(
                "alert_enqueued",
                kind=alert.kind,
                rule=alert.rule,
                alert_id=alert.id,
                event_id=alert.event_id,
                thread_of=alert.thread_of,
                source=source,
            )
        if c.baseline:
            log.info("first_poll_baseline", source=source, recorded=c.baseline)

    async def _plan(
        self,
        spec: SourceSpec,
        docs: list[Document],
        matches: dict[tuple[str, str, bool], list[Match]],
        held: Sequence[Document] = (),
    ) -> Plan:
        """What this poll does. `held` are documents the source holds back for a later poll (a
        part of them not read yet): only a first poll records those it baselines, as it would
        have, so that a later poll does not take an old one for news."""
        now = self.now()
        today = epoch_day(now)
        window = spec.first_poll_window
        plan = Plan(spec=spec, now=now, window=self.settings.first_poll_window if window is None else window)
        batch = plan.batch
        lookup = await self.seen.lookup(spec.name, [*docs, *held])
        plan.first_poll = not lookup.polled
        polled_key = self.keys.polled(spec.name)
        if plan.first_poll or today - int(lookup.polled_raw or 0) >= 1:
            batch.expect(polled_key, lookup.polled_raw)
            batch.set(polled_key, str(today), SEEN_TTL_MS)
        work: list[Work] = []
        for i, doc in enumerate([*docs, *held]):
            key = lookup.keys[i]
            record = lookup.record(i)
            if i >= len(docs) and (record is not None or not baselined(plan, doc)):
                continue  # held back: its later poll decides (a first poll's old one is recorded now)
            content = doc.content_hash()
            if record is not None and record.content == content:
                plan.counts.unchanged += 1
                if record.stale(today):  # still listed: keep it remembered
                    batch.expect(key, lookup.raw[i])
                    batch.set(key, SeenRecord(content, record.event, today).dump(), SEEN_TTL_MS)
                continue
            if record is None:
                plan.counts.new += 1
            else:
                plan.counts.updated += 1
            work.append(Work(doc, key, lookup.raw[i], record, content))
        if not work:
            return plan
        await self._match(plan, work, matches)
        if any(_may_alert(item) for item in work):  # else no decision consults a silence
            try:
                plan.silences = await self.silences.active(now)
            except redis_errors as exc:
                raise StoreError(f"redis silences read failed: {exc}") from exc
        await self._read_state(plan, work)
        for item in work:
            batch.expect(item.key, item.raw)
            marker = self.decider.decide(plan, item)
            batch.set(item.key, SeenRecord(item.content, marker, today).dump(), SEEN_TTL_MS)
            observed = [m for m in item.matches if m.rule in self.rulebook.deadline_rules]
            if observed:
                event_id = marker if marker in plan.events else digest("event", spec.name, item.doc.id)
                plan.observed += [(m, event_id, item.doc) for m in observed]
        return plan

    async def _observe_deadlines(self, plan: Plan) -> None:
        """Derive, re-plan or resolve deadlines from this poll's matches, before its commit.

        Before, so a crash between the two repeats the (idempotent) observation on the
        next poll instead of losing it. Baselined and suppressed items count too: a
        truce extension resolves the old expiry even if nobody was alerted of it.
        """
        for match, event_id, doc in plan.observed:
            try:
                await self.reminders.observe(match, event_id=event_id, now=plan.now, doc=doc)
            except redis_errors as exc:
                raise StoreError(f"redis deadline update failed: {exc}") from exc

    async def _match(
        self, plan: Plan, work: list[Work], memo: dict[tuple[str, str, bool], list[Match]]
    ) -> None:
        """Match the new and changed documents; for matched ones that may alert, index and dedup keys.

        A baselined item, or a changed one that was baselined or suppressed, is matched (its
        counts and deadline observations need the matches) but reads no index or dedup key: it
        neither alerts nor joins an event; and only its deadline rules' facts are extracted,
        the only ones read. Matching runs on the event loop, so it lets the loop run every
        YIELD_AFTER seconds: a poll of many long documents must not stall health checks and
        other polls (the commit's compare-and-apply makes the pause safe).
        """
        turn = time.perf_counter()

        def matched(doc: Document, content: str, *, partial: bool = False) -> list[Match]:
            key = (doc.id, content, partial)  # a retry may no longer baseline the item
            if key not in memo:
                facts_for = self.rulebook.deadline_rules if partial else None
                memo[key] = self.rulebook.match(doc, facts_for=facts_for)
            return list(memo[key])

        for item in work:
            if time.perf_counter() - turn > YIELD_AFTER:
                await asyncio.sleep(0)
                turn = time.perf_counter()
            if item.record is not None and item.record.event != NO_EVENT:
                if item.record.alerted:  # its update reply shows the facts of the new text
                    item.matches = matched(item.doc, item.content)
                else:  # baselined or suppressed: quiet, but a date it moves or an extension counts
                    item.matches = matched(item.doc, item.content, partial=True)
                continue  # changed item that alerted, was baselined or suppressed: no new alert
            if baselined(plan, item.doc):
                item.matches = matched(item.doc, item.content, partial=True)
                continue
            item.matches = matched(item.doc, item.content)
            if not item.matches:
                continue  # decided NO_EVENT: nothing to cluster or deduplicate
            item.probe = self.index.probe(item.doc, item.matches)
            for match in item.matches:
                dedup = self.rulebook.rule(match.rule).dedup
                value = dedup_value(dedup.key, match) if dedup is not None else None
                if dedup is not None and value is not None:
                    ms = int(dedup.window.total_seconds() * 1000)
                    item.dedup[match.rule] = (self.keys.alert_dedup(match.rule, digest(value)), ms)

    async def _read_state(self, plan: Plan, work: list[Work]) -> None:
        """Event index and dedup keys (one MGET), then the events they and updated items name (one MGET)."""
        index_keys: list[str] = []
        dedup_keys: list[str] = []
        for item in work:
            if item.probe is not None:
                index_keys += item.probe.all_keys()
            dedup_keys += [k for k, _ in item.dedup.values()]
        values = await self.index.read(index_keys + dedup_keys)
        plan.index = values
        dedup = set(dedup_keys)
        wanted = {v for k, v in values.items() if v and k not in dedup}
        wanted |= {i.record.event for i in work if i.record is not None and i.record.alerted}
        plan.event_raws = await self.index.read(self.keys.event(e) for e in sorted(wanted))
        for raw in plan.event_raws.values():
            if raw is not None:
                event = Event.parse(raw)
                plan.events[event.id] = event


def _may_alert(item: Work) -> bool:
    """Whether deciding this item can raise or mute an alert: an update of an alerted item,
    or a match that is neither baselined nor a change of a handled item (those have no probe)."""
    record = item.record
    return (record is not None and record.alerted) or (item.probe is not None and bool(item.matches))


def _unique(docs: list[Document]) -> list[Document]:
    """A feed that lists one item twice is one item."""
    seen: set[str] = set()
    out = []
    for doc in docs:
        if doc.id not in seen:
            seen.add(doc.id)
            out.append(doc)
    return out
