"""One poll's way through tradewatch: seen? → baseline → match → event → dedup/silence → outbox.

Reads happen in at most three round trips per poll (seen records; event index and
dedup keys; events), decisions are pure Python, and every write of the poll (seen
records, events, index keys, dedup keys, suppressions and outbox entries) lands in
one compare-and-apply script. So an alert is queued exactly when its dedup record
is written; a worker that raced us re-reads and finds the item seen; a Redis outage
raises StoreError with nothing half-done, and the next poll catches up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import redis.asyncio as aioredis
import structlog

from tradewatch.config import Settings, SourceSpec
from tradewatch.errors import StoreError
from tradewatch.models import Alert, AlertKind, Document, Match, Severity, SourceRef, severity_rank
from tradewatch.observe import METRICS, Metrics
from tradewatch.sources import SourceResult
from tradewatch.store import events as ev
from tradewatch.store.commit import Batch, CommitConflict
from tradewatch.store.events import Event, EventSource, Probe
from tradewatch.store.keys import CLUSTER_WINDOW_MS, EVENT_TTL_MS, SEEN_TTL_MS, Keys
from tradewatch.store.outbox import Outbox
from tradewatch.store.seen import BASELINE, NO_EVENT, SUPPRESSED, SeenRecord, SeenStore, epoch_day
from tradewatch.store.suppressions import Suppressions, active_silence

__all__ = ["Pipeline", "PollCounts", "RuleLike", "RulebookLike"]

log = structlog.get_logger(__name__)

MAX_CONFLICT_RETRIES = 8  # concurrent workers on one source or event; each retry re-reads fresh state


class DedupLike(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def window(self) -> timedelta: ...


class RuleLike(Protocol):
    @property
    def notify(self) -> Sequence[str]: ...
    @property
    def dedup(self) -> DedupLike | None: ...


class RulebookLike(Protocol):
    def match(self, doc: Document) -> list[Match]: ...
    def rule(self, rule_id: str) -> RuleLike: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


def _digest(*parts: str) -> str:
    h = hashlib.blake2b(digest_size=10)
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass") + b"\x00")
    return h.hexdigest()


@dataclass
class PollCounts:
    """What one poll did, for the poll's log line and the tests."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    matched: int = 0
    alerts: int = 0
    suppressed: int = 0
    baseline: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class _Work:
    """One new or changed document and what was read for it."""

    doc: Document
    key: str
    raw: str | None
    record: SeenRecord | None
    content: str
    matches: list[Match] = field(default_factory=list)
    probe: Probe | None = None
    dedup: dict[str, tuple[str, int]] = field(default_factory=dict)  # rule → (dedup key, window ms)


@dataclass
class _Plan:
    """The decisions of one attempt; applied to counts and logs only after the commit landed."""

    batch: Batch = field(default_factory=Batch)
    counts: PollCounts = field(default_factory=PollCounts)
    alerts: list[Alert] = field(default_factory=list)
    suppressed: list[tuple[str, str, str]] = field(default_factory=list)  # reason, rule, doc id
    matched_rules: list[str] = field(default_factory=list)


class Pipeline:
    """Turns a source's documents into queued alerts exactly once."""

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis,
        rulebook: RulebookLike,
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
        self.index = ev.EventIndex(redis, keys)
        self.outbox = Outbox(redis, keys)
        self.suppressions = Suppressions(redis, keys)

    async def process(self, spec: SourceSpec, result: SourceResult) -> PollCounts:
        """Record, match, cluster and queue one poll's documents; raises StoreError if Redis fails."""
        docs = _unique([d if d.source else d.model_copy(update={"source": spec.name})
                        for d in result.documents])
        if result.not_modified or not docs:
            return PollCounts()
        for attempt in range(MAX_CONFLICT_RETRIES):
            plan = await self._plan(spec, docs)
            try:
                await plan.batch.commit(self.redis)
            except CommitConflict as exc:
                log.info("pipeline_conflict_retry", source=spec.name, key=exc.key, attempt=attempt + 1)
                continue
            self._report(spec, plan)
            return plan.counts
        raise StoreError(f"{spec.name}: gave up after {MAX_CONFLICT_RETRIES} conflicting concurrent writes")

    def _report(self, spec: SourceSpec, plan: _Plan) -> None:
        c = plan.counts
        for state, n in (("new", c.new), ("updated", c.updated), ("unchanged", c.unchanged)):
            if n:
                self.metrics.documents.labels(spec.name, state).inc(n)
        for rule in plan.matched_rules:
            self.metrics.matches.labels(rule).inc()
        for reason, rule, doc_id in plan.suppressed:
            self.metrics.alerts_suppressed.labels(reason).inc()
            log.info("alert_suppressed", reason=reason, rule=rule, source=spec.name, doc_id=doc_id)
        for alert in plan.alerts:
            log.info("alert_enqueued", kind=alert.kind, rule=alert.rule, alert_id=alert.id,
                     event_id=alert.event_id, source=spec.name)
        if c.baseline:
            log.info("first_poll_baseline", source=spec.name, recorded=c.baseline)

    async def _plan(self, spec: SourceSpec, docs: list[Document]) -> _Plan:
        now = self.now()
        today = epoch_day(now)
        plan = _Plan()
        batch = plan.batch
        lookup = await self.seen.lookup(spec.name, docs)
        polled_key = self.keys.polled(spec.name)
        first_poll = not lookup.polled
        if first_poll or today - int(lookup.polled_raw or 0) >= 1:
            batch.expect(polled_key, lookup.polled_raw)
            batch.set(polled_key, str(today), SEEN_TTL_MS)
        window = spec.first_poll_window
        if window is None:
            window = self.settings.first_poll_window
        work: list[_Work] = []
        for i, doc in enumerate(docs):
            key = self.seen.key(spec.name, doc)
            record = lookup.record(i)
            content = doc.content_hash()
            if record is not None and record.content == content:
                plan.counts.unchanged += 1
                if record.stale(today):
                    batch.expect(key, lookup.raw[i])
                    batch.set(key, SeenRecord(content, record.event, today).dump(), SEEN_TTL_MS)
                continue
            if record is None:
                plan.counts.new += 1
            else:
                plan.counts.updated += 1
            work.append(_Work(doc, key, lookup.raw[i], record, content))
        if not work:
            return plan
        self._match(work)
        index, events, raws = await self._read_index(work)
        for item in work:
            batch.expect(item.key, item.raw)
            event_id = self._decide(spec, item, plan, index, events, raws, now=now, window=window,
                                    first_poll=first_poll)
            batch.set(item.key, SeenRecord(item.content, event_id, today).dump(), SEEN_TTL_MS)
        return plan

    def _match(self, work: list[_Work]) -> None:
        """Match the documents that may alert and compute their index and dedup keys (no I/O)."""
        for item in work:
            if item.record is not None and item.record.event != NO_EVENT:
                continue  # changed item that alerted, was baselined or suppressed: no new alert
            item.matches = self.rulebook.match(item.doc)
            item.probe = self.index.probe(item.doc, item.matches)
            for match in item.matches:
                dedup = self.rulebook.rule(match.rule).dedup
                if dedup is None:
                    continue
                value = _render(dedup.key, match)
                if value is not None:
                    ms = int(dedup.window.total_seconds() * 1000)
                    item.dedup[match.rule] = (self.keys.alert_dedup(match.rule, _digest(value)), ms)

    async def _read_index(
        self, work: list[_Work],
    ) -> tuple[dict[str, str | None], dict[str, Event], dict[str, str | None]]:
        keys: list[str] = []
        for item in work:
            if item.probe is not None:
                keys += item.probe.exact + item.probe.by_rule + item.probe.bands
            keys += [k for k, _ in item.dedup.values()]
        index = await self.index.read(keys)
        wanted = ev.event_ids_in({k: v for k, v in index.items() if "dedup" not in k})
        wanted |= {i.record.event for i in work if i.record is not None and i.record.alerted}
        raws = await self.index.read(self.keys.event(e) for e in sorted(wanted))
        events = {}
        for raw in raws.values():
            if raw is not None:
                event = Event.parse(raw)
                events[event.id] = event
        return index, events, raws

    def _decide(
        self, spec: SourceSpec, item: _Work, plan: _Plan, index: dict[str, str | None],
        events: dict[str, Event], raws: dict[str, str | None], *, now: datetime, window: timedelta,
        first_poll: bool,
    ) -> str:
        """Decide one document; returns the event marker its seen record keeps."""
        doc, record = item.doc, item.record
        if record is not None and record.event != NO_EVENT:
            if record.alerted:
                self._update(spec, item, plan, events, raws, now)
            return record.event
        if item.matches:
            plan.counts.matched += 1
            plan.matched_rules += [m.rule for m in item.matches]
        published = doc.published_at or now
        baseline = first_poll and (window <= timedelta(0) or published < now - window)
        if baseline:
            plan.counts.baseline += 1
            return BASELINE
        assert item.probe is not None
        event_id = ev.choose_event(item.probe, {m.rule for m in item.matches}, index, events)
        if event_id is not None:
            self._join(spec, item, plan, index, events[event_id], raws, now)
            return event_id
        active = self._filter(spec, item, plan, index, now)
        if not active:
            return SUPPRESSED if item.matches else NO_EVENT
        return self._open(spec, item, active, plan, index, events, now, late=first_poll)

    def _filter(
        self, spec: SourceSpec, item: _Work, plan: _Plan, index: dict[str, str | None], now: datetime,
    ) -> list[Match]:
        """Matches left after silences and the rules' dedup windows; each removal is recorded."""
        active = []
        for match in item.matches:
            silence = active_silence(self.settings.silences, rule=match.rule, tags=match.tags,
                                     source=spec.name, now=now)
            dedup = item.dedup.get(match.rule)
            if silence is not None:
                why = silence.reason or f"until {silence.until}"
                self._suppress(plan, spec, item.doc, match.rule, "silenced", why, now)
            elif dedup is not None and index.get(dedup[0]):
                why = f"same as alert {index[dedup[0]]}"
                self._suppress(plan, spec, item.doc, match.rule, "duplicate", why, now)
            else:
                active.append(match)
        return active

    def _suppress(
        self, plan: _Plan, spec: SourceSpec, doc: Document, rule: str, reason: str, detail: str,
        now: datetime,
    ) -> None:
        plan.counts.suppressed += 1
        plan.suppressed.append((reason, rule, doc.id))
        self.suppressions.stage(plan.batch, reason=reason, rule=rule, source=spec.name, title=doc.title,
                                url=doc.url, detail=detail, at=now)

    def _open(
        self, spec: SourceSpec, item: _Work, active: list[Match], plan: _Plan, index: dict[str, str | None],
        events: dict[str, Event], now: datetime, *, late: bool,
    ) -> str:
        """The first report of an event: a `new` alert, the event, its index and dedup keys."""
        doc = item.doc
        lead = max(active, key=lambda m: severity_rank(m.severity))
        event_id = _digest("event", spec.name, doc.id)
        alert_id = _digest("alert", event_id, "new")
        notify = _notify([self.rulebook.rule(m.rule).notify for m in active])
        event = Event(
            id=event_id, root=alert_id, rule=lead.rule, severity=lead.severity, notify=notify,
            rules=[m.rule for m in active], created=now.isoformat(), sources=[_source(spec, doc)],
            signature=ev.dump_signature(item.probe.signature)
            if item.probe and item.probe.signature else None,
        )
        facts: dict[str, Any] = {}
        for match in reversed(active):
            facts.update(match.facts)
        alert = self._alert(spec, doc, event, kind="new", alert_id=alert_id, facts=facts, now=now,
                            tags=sorted({t for m in active for t in m.tags}), title=lead.title)
        alert.late = late
        events[event_id] = event
        self._write_event(plan.batch, item, event, index, fresh=True)
        for match in active:
            if match.rule in item.dedup:
                key, ms = item.dedup[match.rule]
                plan.batch.expect(key, None)
                plan.batch.set(key, alert_id, ms)
                index[key] = alert_id
        self._queue(plan, alert)
        return event_id

    def _join(
        self, spec: SourceSpec, item: _Work, plan: _Plan, index: dict[str, str | None], event: Event,
        raws: dict[str, str | None], now: datetime,
    ) -> None:
        """A later report of a known event: listed in it, and an `also` reply in the root's thread."""
        doc = item.doc
        plan.batch.expect(self.keys.event(event.id), raws.get(self.keys.event(event.id)))
        if any(s.source == spec.name and s.url == doc.url and doc.url for s in event.sources):
            self._write_event(plan.batch, item, event, index, fresh=False)
            return
        confirmation = spec.official and not event.official
        event.sources.append(_source(spec, doc))
        self._write_event(plan.batch, item, event, index, fresh=False)
        tags = sorted({t for m in item.matches for t in m.tags})
        silence = self._silence(event.rule, tags, spec.name, now)
        if silence is not None:
            self._suppress(plan, spec, doc, event.rule, "silenced", silence, now)
            return
        facts: dict[str, Any] = {}
        for match in reversed(item.matches):
            facts.update(match.facts)
        if confirmation:
            facts["confirmation"] = True
        alert_id = _digest("alert", event.id, spec.name, doc.id)
        alert = self._alert(spec, doc, event, kind="also", alert_id=alert_id, facts=facts, now=now, tags=tags,
                            title="")
        self._queue(plan, alert)

    def _update(
        self, spec: SourceSpec, item: _Work, plan: _Plan, events: dict[str, Event],
        raws: dict[str, str | None], now: datetime,
    ) -> None:
        """A changed item that alerted before: an `update` reply in its event's thread."""
        assert item.record is not None
        event = events.get(item.record.event)
        if event is None:
            log.info("update_of_expired_event", source=spec.name, doc_id=item.doc.id,
                     event_id=item.record.event)
            return
        silence = self._silence(event.rule, [], spec.name, now)
        if silence is not None:
            self._suppress(plan, spec, item.doc, event.rule, "silenced", silence, now)
            return
        alert_id = _digest("alert", event.id, spec.name, item.doc.id, item.content)
        alert = self._alert(spec, item.doc, event, kind="update", alert_id=alert_id, facts={}, now=now,
                            tags=[], title="")
        self._queue(plan, alert)

    def _alert(
        self, spec: SourceSpec, doc: Document, event: Event, *, kind: AlertKind, alert_id: str,
        facts: dict[str, Any], now: datetime, tags: list[str], title: str,
    ) -> Alert:
        rule_title = title or (self._rule_title(event.rule))
        return Alert(
            id=alert_id, kind=kind, event_id=event.id, rule=event.rule, rule_title=rule_title,
            severity=_severity(event.severity), tags=tags, title=doc.title, url=doc.url,
            source=spec.name, lang=doc.lang, published_at=doc.published_at, seen_at=now, facts=facts,
            sources=[SourceRef(source=s.source, url=s.url, title=s.title, official=s.official,
                               published_at=_when(s.published_at)) for s in event.sources],
            notify=list(event.notify), thread_of=None if kind == "new" else event.root,
        )

    def _silence(self, rule: str, tags: list[str], source: str, now: datetime) -> str | None:
        """Why a reply is silenced, or None."""
        spec = active_silence(self.settings.silences, rule=rule, tags=tags, source=source, now=now)
        return None if spec is None else (spec.reason or f"until {spec.until}")

    def _rule_title(self, rule_id: str) -> str:
        title = getattr(self.rulebook.rule(rule_id), "title", "")
        return str(title or rule_id)

    def _queue(self, plan: _Plan, alert: Alert) -> None:
        self.outbox.stage(plan.batch, alert)
        plan.alerts.append(alert)
        plan.counts.alerts += 1

    def _write_event(
        self, batch: Batch, item: _Work, event: Event, index: dict[str, str | None], *, fresh: bool,
    ) -> None:
        """Store the event and point every identity of this document at it (renewing the window)."""
        batch.set(self.keys.event(event.id), event.dump(), EVENT_TTL_MS)
        probe = item.probe
        if probe is None:
            return
        for key in probe.exact + probe.by_rule + probe.bands:
            batch.expect(key, index.get(key))
            batch.set(key, event.id, CLUSTER_WINDOW_MS)
            index[key] = event.id
        _ = fresh


def _render(template: str, match: Match) -> str | None:
    """A rule's dedup key from the match's facts; None when a fact it names is missing."""
    values: dict[str, Any] = {"rule": match.rule, **match.facts}
    try:
        return template.format_map({k: ",".join(map(str, v)) if isinstance(v, list) else v
                                    for k, v in values.items()})
    except (KeyError, IndexError, ValueError):
        return None


def _notify(lists: list[Sequence[str]]) -> list[str]:
    """Union of the rules' notify lists; a rule without one means every notifier."""
    if any(not n for n in lists):
        return []
    return list(dict.fromkeys(t for n in lists for t in n))


def _severity(value: str) -> Severity:
    return "critical" if value == "critical" else "info" if value == "info" else "warning"


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _source(spec: SourceSpec, doc: Document) -> EventSource:
    return EventSource(source=spec.name, url=doc.url, title=doc.title[:300], official=spec.official,
                       published_at=doc.published_at.isoformat() if doc.published_at else None)


def _unique(docs: list[Document]) -> list[Document]:
    """A feed that lists one item twice is one item."""
    seen: set[str] = set()
    out = []
    for doc in docs:
        if doc.id not in seen:
            seen.add(doc.id)
            out.append(doc)
    return out
