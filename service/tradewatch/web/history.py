"""Recent alerts for the status page: events (30 days in Redis) joined with their outbox alerts.

The outbox is trimmed once every notifier has delivered, so it cannot carry a 30-day
history; events can (EVENT_TTL is 30 days) and hold every source that reported them.
So the events are the list, and an outbox alert still present adds its facts and
wording. Alerts without an event (reminders, operator notices) come from their own capped
stream (`notices`), since the outbox keeps them only until delivered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from tradewatch.models import Alert
from tradewatch.store.keys import NOTICES_MAXLEN, Keys

__all__ = ["SCAN_LIMIT", "AlertRecord", "SourceLink", "alert_history"]

SCAN_LIMIT = 20_000
"""Events read at most per page view: bounds the cost of a page on a huge keyspace."""

OUTBOX_LOOKBACK = 500
"""Newest outbox entries read for facts and event-less alerts."""


@dataclass(frozen=True)
class SourceLink:
    """One source that reported an alert's event."""

    source: str
    url: str
    title: str = ""
    official: bool = False


@dataclass(frozen=True)
class AlertRecord:
    """One alert as a reader wants it: what, how bad, where from, which event."""

    when: datetime | None
    severity: str
    rule_title: str
    title: str
    url: str
    source: str
    tags: list[str]
    event_id: str
    kind: str = "new"
    sources: list[SourceLink] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


def _aware(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def _events(redis: aioredis.Redis, keys: Keys, since: datetime) -> list[Any]:
    from tradewatch.store.events import Event

    client: Any = redis
    names: list[str] = []
    async for name in client.scan_iter(match=keys.event("*"), count=1000):
        names.append(str(name))
        if len(names) >= SCAN_LIMIT:
            break
    events = []
    for start in range(0, len(names), 500):
        for raw in await client.mget(names[start : start + 500]):
            if not raw:
                continue
            try:
                event = Event.parse(str(raw))
            except (ValueError, TypeError, KeyError):
                continue  # one unreadable record must not hide the others
            created = _aware(event.created)
            if created is not None and created >= since:
                events.append(event)
    return events


def _from_event(event: Any, alert: Alert | None, rule: Any) -> AlertRecord:
    first = event.sources[0] if event.sources else None
    return AlertRecord(
        when=_aware(event.created),
        severity=(alert.severity if alert else event.severity) or "info",
        rule_title=(alert.rule_title if alert else "") or getattr(rule, "title", "") or event.rule,
        title=(alert.title if alert else "") or (first.title if first else ""),
        url=(alert.url if alert else "") or (first.url if first else ""),
        source=(alert.source if alert else "") or (first.source if first else ""),
        tags=list(alert.tags if alert and alert.tags else getattr(rule, "tags", []) or []),
        event_id=event.id,
        kind="new",
        sources=[SourceLink(s.source, s.url, s.title, s.official) for s in event.sources],
        facts=dict(alert.facts) if alert else {},
    )


def _from_alert(alert: Alert) -> AlertRecord:
    return AlertRecord(
        when=alert.seen_at or alert.published_at or alert.due,
        severity=alert.severity,
        rule_title=alert.rule_title or alert.rule,
        title=alert.title,
        url=alert.url,
        source=alert.source,
        tags=list(alert.tags),
        event_id=alert.event_id,
        kind=alert.kind,
        sources=[SourceLink(s.source, s.url, s.title, s.official) for s in alert.sources],
        facts=dict(alert.facts),
    )


async def _notices(redis: aioredis.Redis, keys: Keys) -> list[Alert]:
    from tradewatch.store.outbox import parse_alert

    client: Any = redis
    out = []
    for _entry_id, fields in await client.xrevrange(keys.notices(), count=NOTICES_MAXLEN) or []:
        raw = (fields or {}).get("alert") or (fields or {}).get(b"alert")
        try:
            out.append(parse_alert(raw or ""))
        except (ValueError, TypeError):
            continue  # one unreadable copy must not hide the others
    return out


def _rules_by_id(rules: Iterable[Any]) -> dict[str, Any]:
    return {str(getattr(rule, "id", "")): rule for rule in rules}


async def alert_history(
    redis: aioredis.Redis, keys: Keys, *, since: datetime, rules: Iterable[Any] = ()
) -> list[AlertRecord]:
    """Every alert since `since`, newest first: one per event, plus event-less outbox alerts."""
    from tradewatch.store.outbox import Outbox

    events = await _events(redis, keys, since)
    queued = await Outbox(redis, keys).recent(count=OUTBOX_LOOKBACK)
    roots: dict[str, Alert] = {}
    for _entry_id, alert in queued:  # newest first: keep each event's first-queued root alert
        if alert.event_id and alert.kind == "new":
            roots[alert.event_id] = alert
    # Operator alerts and reminders (a derived deadline's names its event) outlive the outbox's
    # trim in their own capped stream.
    loose = await _notices(redis, keys)
    by_rule = _rules_by_id(rules)
    records = [_from_event(e, roots.get(e.id), by_rule.get(e.rule)) for e in events]
    records += [r for r in map(_from_alert, loose) if r.when is None or r.when >= since]
    records.sort(key=lambda r: r.when or since, reverse=True)
    return records
