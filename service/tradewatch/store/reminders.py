"""Deadline state in Redis: deadlines derived from matches, resolutions, and reminders fired exactly once.

Rule-file deadlines come from the rulebook on every call (never copied into Redis,
so a worker started on an edited file re-plans them); Redis holds only what the files cannot: derived
deadlines, which deadlines a match resolved, when a file deadline was first seen,
and which reminders fired. `HSETNX` on the reminder's key is the exactly-once claim
across workers and restarts; given the outbox stream, `due()` claims and queues in one
Lua script, so a crash can never claim a reminder without queueing it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
import structlog

from tradewatch.config import Settings
from tradewatch.deadlines import (
    BEFORE_PLANNED,
    CALENDAR_PAST,
    PAST_GRACE,
    SUPERSEDED,
    from_match,
    from_spec,
    reminder_alert,
    reminders_of,
)
from tradewatch.models import Alert, Deadline, Document, Match
from tradewatch.store.keys import DEADLINE_KEEP, NOTICES_MAXLEN, Keys
from tradewatch.store.outbox import entry_fields

__all__ = ["Reminders"]

log = structlog.get_logger(__name__)

# KEYS: fired hash, outbox stream, notices stream (the status page's copy). ARGV: reminder key,
# fired mark, the notices cap, then the entry's field/value pairs.
_CLAIM_AND_QUEUE = """
if redis.call('hsetnx', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('xadd', KEYS[2], '*', unpack(ARGV, 4))
redis.call('xadd', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
return 1
"""


class _RuleLike(Protocol):
    id: str
    title: str
    tags: list[str]
    severity: Any
    notify: list[str]
    deadline_from: str | None
    remind: list[timedelta]


class _RulebookLike(Protocol):
    """What this module needs of `matching.engine.Rulebook`."""

    @property
    def deadlines(self) -> Sequence[Any]: ...

    def rule(self, rule_id: str) -> Any: ...


def _epoch(when: datetime) -> int:
    return int(when.timestamp())


class Reminders:
    """Plans deadlines and hands out due reminders as alerts, each exactly once."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        settings: Settings,
        rulebook: _RulebookLike,
        *,
        late_after: timedelta = timedelta(minutes=10),
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.rulebook = rulebook
        self.tz = ZoneInfo(settings.timezone)
        self.late_after = late_after

    async def _note_first_seen(self, now: datetime) -> None:
        """Remember when a file deadline was first planned: reminders due before that are not "late"."""
        first_seen = self.keys.deadlines_first_seen()
        for spec in self.rulebook.deadlines:
            await self.redis.hsetnx(first_seen, spec.id, str(_epoch(now)))

    async def plan(self, now: datetime) -> None:
        """Each tick: note file deadlines seen for the first time and prune state older than DEADLINE_KEEP."""
        await self._note_first_seen(now)
        horizon = _epoch(now - timedelta(seconds=DEADLINE_KEEP))
        derived = await self.redis.hgetall(self.keys.deadlines_derived())
        for deadline_id, raw in derived.items():
            if _epoch(Deadline.model_validate_json(raw).due) < horizon:
                await self.redis.hdel(self.keys.deadlines_derived(), deadline_id)
                await self.redis.hdel(self.keys.deadlines_resolved(), deadline_id)
        for key in await self.redis.hkeys(self.keys.reminders_fired()):
            parts = str(key).rsplit("|", 2)
            if len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < horizon:
                await self.redis.hdel(self.keys.reminders_fired(), key)

    async def observe(
        self, match: Match, *, event_id: str, now: datetime, doc: Document | None = None
    ) -> list[str]:
        """Apply one match: derive or re-plan its deadline, resolve what it cancels; say what changed."""
        changes: list[str] = []
        try:
            rule: _RuleLike | None = self.rulebook.rule(match.rule)
        except KeyError:
            rule = None
        if rule is not None and rule.deadline_from:
            derived = from_match(
                rule_id=rule.id,
                rule_title=rule.title,
                field=rule.deadline_from,
                remind=rule.remind,
                facts=match.facts,
                event_id=event_id,
                doc_title=doc.title if doc else "",
                url=doc.url if doc else "",
                tags=rule.tags,
                notify=rule.notify,
                severity=match.severity,
                tz=self.tz,
                now=now,
            )
            if derived is not None:
                changes.extend(await self._upsert(derived))
        for deadline in await self.deadlines(now, include_resolved=False):
            if match.rule in deadline.cancelled_by:
                record = json.dumps({"by": match.rule, "at": now.isoformat(), "event_id": event_id})
                if await self.redis.hsetnx(self.keys.deadlines_resolved(), deadline.id, record):
                    log.info("deadline_resolved", deadline=deadline.id, rule=match.rule)
                    changes.append(f"resolved {deadline.id}")
        return changes

    async def _upsert(self, derived: Deadline) -> list[str]:
        key = self.keys.deadlines_derived()
        raw = await self.redis.hget(key, derived.id)
        if raw is not None:
            old = Deadline.model_validate_json(raw)
            if old.due == derived.due:
                return []
            log.info(
                "deadline_replanned",
                deadline=derived.id,
                old_due=old.due.isoformat(),
                due=derived.due.isoformat(),
            )
            await self.redis.hset(key, derived.id, derived.model_dump_json())
            return [f"replanned {derived.id}"]
        await self.redis.hset(key, derived.id, derived.model_dump_json())
        log.info("deadline_planned", deadline=derived.id, due=derived.due.isoformat())
        return [f"planned {derived.id}"]

    async def deadlines(
        self, now: datetime, *, include_resolved: bool = True, past: timedelta = CALENDAR_PAST
    ) -> list[Deadline]:
        """File and derived deadlines due after `now - past`, with resolutions applied, by due time."""
        resolved_raw = await self.redis.hgetall(self.keys.deadlines_resolved())
        first_seen = await self.redis.hgetall(self.keys.deadlines_first_seen())
        items: list[Deadline] = []
        for spec in self.rulebook.deadlines:
            d = from_spec(spec)
            if spec.id in first_seen:
                d.planned_at = datetime.fromtimestamp(int(first_seen[spec.id]), UTC)
            items.append(d)
        for raw in (await self.redis.hgetall(self.keys.deadlines_derived())).values():
            items.append(Deadline.model_validate_json(raw))
        out = []
        for d in items:
            if d.id in resolved_raw:
                info = json.loads(resolved_raw[d.id])
                d.resolved_by = str(info.get("by"))
                d.resolved_at = datetime.fromisoformat(info["at"]) if info.get("at") else None
            if d.due < now - past or (d.resolved and not include_resolved):
                continue
            out.append(d)
        return sorted(out, key=lambda x: x.due)

    async def upcoming(self, now: datetime, within: timedelta | None = None) -> list[Deadline]:
        """Unresolved deadlines not yet due (and due within `within` when given), soonest first."""
        found = await self.deadlines(now, include_resolved=False, past=timedelta(0))
        return [d for d in found if d.due >= now and (within is None or d.due <= now + within)]

    async def _claim(self, fired_key: str, field: str, value: str, alert: Alert, outbox: str | None) -> bool:
        if outbox is None:
            return bool(await self.redis.hsetnx(fired_key, field, value))
        fields = entry_fields(alert)
        args: list[str | int] = [field, value, NOTICES_MAXLEN, *(x for kv in fields.items() for x in kv)]
        notices = self.keys.notices()
        return bool(await self.redis.eval(_CLAIM_AND_QUEUE, 3, fired_key, outbox, notices, *args))

    async def fired(self) -> set[str]:
        """Keys of reminders already handled (fired or skipped)."""
        return {str(k) for k in await self.redis.hkeys(self.keys.reminders_fired())}

    async def marks(self) -> dict[str, str]:
        """How each handled reminder was handled (`fired:…` or `skipped:…:reason`), for listings."""
        return {str(k): str(v) for k, v in (await self.redis.hgetall(self.keys.reminders_fired())).items()}

    async def due(self, now: datetime, *, outbox: str | None = None) -> list[Alert]:
        """Reminders whose time has come, claimed exactly once; several overdue ones of a deadline
        collapse into the latest, which is marked late when a worker should have sent it earlier.

        With `outbox` (the stream key), each claim and its XADD to that stream are one
        atomic script, so no crash can claim a reminder without queueing it.
        """
        await self._note_first_seen(now)
        fired_key = self.keys.reminders_fired()
        fired = await self.fired()
        grace = self.settings.reminder_grace
        alerts: list[Alert] = []
        for d in await self.deadlines(now, include_resolved=False, past=grace + timedelta(days=1)):
            pending = [r for r in reminders_of(d) if r.fire_at <= now and r.key not in fired]
            if not pending:
                continue
            latest = pending[-1]
            for r in pending[:-1]:
                await self.redis.hsetnx(fired_key, r.key, f"skipped:{_epoch(now)}:{SUPERSEDED}")
            if now > d.due + grace:
                await self.redis.hsetnx(fired_key, latest.key, f"skipped:{_epoch(now)}:{PAST_GRACE}")
                log.info("reminder_expired", deadline=d.id, offset=latest.offset.total_seconds())
                continue
            known_since = d.planned_at or now
            if latest.fire_at < known_since and d.origin == "match":
                # The match alert that created this deadline already told readers; no stale reminder.
                await self.redis.hsetnx(fired_key, latest.key, f"skipped:{_epoch(now)}:{BEFORE_PLANNED}")
                continue
            late = latest.fire_at >= known_since and now - latest.fire_at > self.late_after
            alert = reminder_alert(latest, now, late=late, tz=self.tz)
            if await self._claim(fired_key, latest.key, f"fired:{_epoch(now)}", alert, outbox):
                alerts.append(alert)
                log.info("reminder_due", deadline=d.id, offset=latest.offset.total_seconds(), late=late)
        return alerts
