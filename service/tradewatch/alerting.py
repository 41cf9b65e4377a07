"""What one new or changed document raises: a new event, a reply in an event, an update, or a suppression.

Pure decisions over what the pipeline read (no I/O): every write goes into the
poll's `Batch`, which the pipeline commits atomically. The first report of an
event raises a `new` alert and becomes the thread root; later reports raise
`also` replies (an official source confirming others is called out); a changed
item that alerted raises an `update` reply; silences and rules' dedup windows
suppress, each with its reason recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from tradewatch.config import SourceSpec
from tradewatch.models import Alert, AlertKind, Document, Match, Severity, severity_rank
from tradewatch.store import events as ev
from tradewatch.store.commit import Batch
from tradewatch.store.events import Event, EventSource, Probe
from tradewatch.store.keys import CLUSTER_WINDOW_MS, EVENT_TTL_MS, Keys
from tradewatch.store.outbox import Outbox
from tradewatch.store.seen import BASELINE, NO_EVENT, SUPPRESSED, SeenRecord
from tradewatch.store.silences import Silence
from tradewatch.store.suppressions import Suppressions

__all__ = ["Decider", "Plan", "PollCounts", "RuleLike", "RulebookLike", "Work", "baselined"]


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
    def match(self, doc: Document, *, facts_for: Container[str] | None = None) -> list[Match]: ...
    def rule(self, rule_id: str) -> RuleLike: ...
    def lead_line(self, doc: Document, facts: dict[str, Any]) -> str: ...


def digest(*parts: str) -> str:
    """Deterministic ids: a retried poll computes the same event and alert ids."""
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
class Work:
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
class Plan:
    """One attempt at a poll: what was read, what was decided; reported only once committed."""

    spec: SourceSpec
    now: datetime
    first_poll: bool = False
    window: timedelta = timedelta(0)
    batch: Batch = field(default_factory=Batch)
    counts: PollCounts = field(default_factory=PollCounts)
    alerts: list[Alert] = field(default_factory=list)
    suppressed: list[tuple[str, str, str]] = field(default_factory=list)  # reason, rule, doc id
    matched_rules: list[str] = field(default_factory=list)
    silences: list[Silence] = field(default_factory=list)
    index: dict[str, str | None] = field(default_factory=dict)  # index/dedup keys: as read, then written
    events: dict[str, Event] = field(default_factory=dict)
    event_raws: dict[str, str | None] = field(default_factory=dict)  # event keys as read (for the CAS)
    observed: list[tuple[Match, str, Document]] = field(default_factory=list)  # for deadlines: match, event


def baselined(plan: Plan, doc: Document) -> bool:
    """A first poll records what was published before its window without alerting (nor clustering)."""
    published = doc.published_at or plan.now
    return plan.first_poll and (plan.window <= timedelta(0) or published < plan.now - plan.window)


class Decider:
    """Decides each document of a plan, staging its writes."""

    def __init__(
        self,
        rulebook: RulebookLike,
        keys: Keys,
        outbox: Outbox,
        suppressions: Suppressions,
    ) -> None:
        self.rulebook = rulebook
        self.keys = keys
        self.outbox = outbox
        self.suppressions = suppressions

    def decide(self, plan: Plan, item: Work) -> str:
        """Decide one document; returns the event marker its seen record keeps."""
        record = item.record
        if record is not None and record.event != NO_EVENT:
            if record.alerted:
                self._update(plan, item)
            return record.event  # baselined and suppressed items stay quiet, even when changed
        if item.matches:
            plan.counts.matched += 1
            plan.matched_rules += [m.rule for m in item.matches]
        if baselined(plan, item.doc):
            plan.counts.baseline += 1
            return BASELINE
        if not item.matches:
            return NO_EVENT  # an unmatched item has no identities to join by and nothing to alert
        assert item.probe is not None
        event_id = ev.choose_event(item.probe, {m.rule for m in item.matches}, plan.index, plan.events)
        if event_id is not None:
            self._join(plan, item, plan.events[event_id])
            return event_id
        active = self._filter(plan, item)
        if not active:
            return SUPPRESSED  # every match was silenced or deduplicated
        return self._open(plan, item, active)

    def _filter(self, plan: Plan, item: Work) -> list[Match]:
        """Matches left after silences and the rules' dedup windows; each removal is recorded."""
        active = []
        for match in item.matches:
            silence = _silence(plan, match.rule, match.tags)
            dedup = item.dedup.get(match.rule)
            if silence is not None:
                self._suppress(plan, item.doc, match.rule, "silenced", silence)
            elif dedup is not None and plan.index.get(dedup[0]):
                why = f"same as alert {plan.index[dedup[0]]}"
                self._suppress(plan, item.doc, match.rule, "duplicate", why)
            else:
                active.append(match)
        return active

    def _suppress(self, plan: Plan, doc: Document, rule: str, reason: str, detail: str) -> None:
        plan.counts.suppressed += 1
        plan.suppressed.append((reason, rule, doc.id))
        self.suppressions.stage(
            plan.batch,
            reason=reason,
            rule=rule,
            source=plan.spec.name,
            title=doc.title,
            url=doc.url,
            detail=detail,
            at=plan.now,
        )

    def _open(self, plan: Plan, item: Work, active: list[Match]) -> str:
        """The first report of an event: a `new` alert, the event, its index and dedup keys."""
        spec, doc = plan.spec, item.doc
        lead = _lead(active)
        event_id = digest("event", spec.name, doc.id)
        alert_id = digest("alert", event_id, "new")
        signature = item.probe.signature if item.probe else None
        event = Event(
            id=event_id,
            root=alert_id,
            rule=lead.rule,
            severity=lead.severity,
            notify=_notify([self.rulebook.rule(m.rule).notify for m in active]),
            rules=[m.rule for m in active],
            created=plan.now.isoformat(),
            sources=[EventSource.of(spec.name, doc, official=spec.official)],
            signature=ev.dump_signature(signature) if signature else None,
            anns=list(item.probe.by_rule) if item.probe else [],
            docnums=list(item.probe.docnums) if item.probe else [],
            tokens=list(item.probe.tokens) if item.probe else [],
        )
        alert = self._alert(
            plan,
            doc,
            event,
            "new",
            alert_id,
            facts=_facts(active),
            tags=_tags(active, lead.rule),
            rule_title=lead.title,
        )
        plan.events[event_id] = event
        self._write_event(plan, item, event)
        for match in active:
            if match.rule in item.dedup:
                key, ms = item.dedup[match.rule]
                plan.batch.expect(key, None)
                plan.batch.set(key, alert_id, ms)
                plan.index[key] = alert_id
        self._queue(plan, alert)
        return event_id

    def _join(self, plan: Plan, item: Work, event: Event) -> None:
        """A later report of a known event: listed in it, and an `also` reply in the root's thread."""
        spec, doc = plan.spec, item.doc
        plan.batch.expect(self.keys.event(event.id), plan.event_raws.get(self.keys.event(event.id)))
        if doc.url and any(s.source == spec.name and s.url == doc.url for s in event.sources):
            self._write_event(plan, item, event)  # the same page listed twice by one source
            return
        confirmation = spec.official and not event.official
        event.add_report(EventSource.of(spec.name, doc, official=spec.official), item.probe)
        if item.probe is not None and any(plan.index.get(k) == event.id for k in item.probe.exact):
            # The same canonical URL or document number from another source: the same item,
            # listed among the event's sources but never a second alert (DESIGN, Identity).
            self._write_event(plan, item, event)
            return
        raise_to = _raises(plan, event, item.matches)
        tags = _tags(item.matches, raise_to.rule if raise_to else event.rule)
        reason, silence = _reply_muted(plan, event, tags)
        if silence is not None:
            self._write_event(plan, item, event)
            self._suppress(plan, doc, event.rule, reason, silence)
            return
        if raise_to is not None:
            self._escalate(event, raise_to)
        event.replies += 1
        self._write_event(plan, item, event)
        facts = _facts(item.matches)
        if confirmation:
            facts["confirmation"] = True
        alert_id = digest("alert", event.id, spec.name, doc.id)
        alert = self._alert(
            plan, doc, event, "also", alert_id, facts=facts, tags=tags, raises=raise_to is not None
        )
        self._queue(plan, alert)

    def _escalate(self, event: Event, lead: Match) -> None:
        """A later report fires a more severe rule (the official notice after a news story): the
        event takes that rule's severity, header and recipients; its reply says so in the channel."""
        if event.root_notify is None:
            event.root_notify = list(event.notify)
        event.severity = lead.severity
        event.rule = lead.rule
        if lead.rule not in event.rules:  # later copies firing only this rule join the event
            event.rules = [*event.rules, lead.rule]
        event.notify = _notify([event.notify, self.rulebook.rule(lead.rule).notify])

    def _update(self, plan: Plan, item: Work) -> None:
        """A changed item that alerted before: an `update` reply in its event's thread (counted as one)."""
        assert item.record is not None
        event = plan.events.get(item.record.event)
        if event is None:
            return  # the event expired (EVENT_TTL): too late for a thread reply
        raise_to = _raises(plan, event, item.matches)
        tags = _tags(item.matches, raise_to.rule if raise_to else event.rule)
        reason, silence = _reply_muted(plan, event, tags)
        if silence is not None:
            self._suppress(plan, item.doc, event.rule, reason, silence)
            return
        # Keyed by the page, not the source: one item carried by two sources changes once.
        page = ev.canonical_url(item.doc.url) or f"{plan.spec.name}\0{item.doc.id}"
        alert_id = digest("alert", event.id, page, item.content)
        if alert_id in event.updates:
            return  # the other source of the same page already raised this update
        plan.batch.expect(self.keys.event(event.id), plan.event_raws.get(self.keys.event(event.id)))
        event.replies += 1
        event.updates = [*event.updates, alert_id][-ev.MAX_SOURCES :]
        if raise_to is not None:
            self._escalate(event, raise_to)
        self._write_event(plan, item, event)
        facts = _facts(item.matches)
        alert = self._alert(
            plan, item.doc, event, "update", alert_id, facts=facts, tags=tags, raises=raise_to is not None
        )
        self._queue(plan, alert)

    def _alert(
        self,
        plan: Plan,
        doc: Document,
        event: Event,
        kind: AlertKind,
        alert_id: str,
        *,
        facts: dict[str, Any],
        tags: list[str],
        rule_title: str = "",
        raises: bool = False,
    ) -> Alert:
        if not rule_title:
            rule_title = str(getattr(self.rulebook.rule(event.rule), "title", "") or event.rule)
        return Alert(
            id=alert_id,
            kind=kind,
            event_id=event.id,
            rule=event.rule,
            rule_title=rule_title,
            severity=_severity(event.severity),
            tags=tags,
            title=doc.title,
            url=doc.url,
            source=plan.spec.name,
            lang=doc.lang,
            published_at=doc.published_at,
            seen_at=plan.now,
            facts=facts,
            lead=self.rulebook.lead_line(doc, facts) if doc.lang == "zh" else "",
            sources=event.refs(),
            notify=list(event.notify),
            thread_of=None if kind == "new" else event.root,
            raises=raises,
            first_poll=plan.first_poll,
            root_notify=None if kind == "new" or event.root_notify == event.notify else event.root_notify,
        )

    def _queue(self, plan: Plan, alert: Alert) -> None:
        self.outbox.stage(plan.batch, alert)
        plan.alerts.append(alert)
        plan.counts.alerts += 1

    def _write_event(self, plan: Plan, item: Work, event: Event) -> None:
        """Store the event and point every identity of this document at it (renewing the window)."""
        plan.batch.set(self.keys.event(event.id), event.dump(), EVENT_TTL_MS)
        probe = item.probe
        if probe is None:
            return
        for key in probe.all_keys():
            plan.batch.expect(key, plan.index.get(key))
            plan.batch.set(key, event.id, CLUSTER_WINDOW_MS)
            plan.index[key] = event.id


def _silence(plan: Plan, rule: str, tags: list[str]) -> str | None:
    """Why an alert of this rule and tags from this source would be muted now, or None."""
    if not plan.silences:
        return None  # the usual case: no Alert model to build for nothing to compare
    probe = Alert(id="-", rule=rule, tags=tags, source=plan.spec.name)
    return next((s.describe() for s in plan.silences if s.matches(probe, plan.now)), None)


def _reply_muted(plan: Plan, event: Event, tags: list[str]) -> tuple[str, str | None]:
    """Why a thread reply is muted (a silence, or the thread at its cap) as (reason, why); why None: not."""
    silence = _silence(plan, event.rule, tags)
    if silence is None and event.replies >= ev.MAX_REPLIES:
        return "thread_full", f"thread of event {event.id} has {ev.MAX_REPLIES} replies already"
    return "silenced", silence


def _facts(matches: Sequence[Match]) -> dict[str, Any]:
    """Facts of the lead match and the others of its severity, the lead's winning on conflicts:
    a side rule of lower severity (an info-level "tariffs mentioned") adds no figures to it."""
    if not matches:
        return {}
    lead = _lead(matches)
    facts: dict[str, Any] = {}
    for match in reversed([lead, *(m for m in matches if m is not lead and m.severity == lead.severity)]):
        facts.update(match.facts)
    return facts


def _lead(matches: Sequence[Match]) -> Match:
    """The most severe; among equals one whose terms are in the title, then rulebook order."""
    return max(matches, key=lambda m: (severity_rank(m.severity), m.in_title))


def _raises(plan: Plan, event: Event, matches: Sequence[Match]) -> Match | None:
    """The lead match of a later report when it is more severe than the event so far (and its
    rule is not silenced: a silenced rule raises nothing, here as in a first report)."""
    if not matches:
        return None
    lead = _lead(matches)
    if severity_rank(lead.severity) <= severity_rank(event.severity):
        return None
    return None if _silence(plan, lead.rule, list(lead.tags)) else lead


def _tags(matches: Sequence[Match], lead_rule: str) -> list[str]:
    """The leading rule's tags first (the digest groups by the first), then the others sorted."""
    first = [t for m in matches if m.rule == lead_rule for t in m.tags]
    return list(dict.fromkeys(first)) + sorted({t for m in matches for t in m.tags} - set(first))


def _notify(lists: list[Sequence[str]]) -> list[str]:
    """Union of the rules' notify lists; a rule without one means every notifier."""
    if any(not n for n in lists):
        return []
    return list(dict.fromkeys(t for n in lists for t in n))


def _severity(value: str) -> Severity:
    return "critical" if value == "critical" else "info" if value == "info" else "warning"
