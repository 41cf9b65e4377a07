"""Deadlines and their reminders as plain data, the reminder alert, and the ICS calendar (pure: no I/O).

A deadline comes from a rule file (`deadlines:`) or from a match (`deadline_from:`);
`store/reminders.py` keeps the state (derived deadlines, resolutions, fired
reminders) in Redis and calls into this module for everything else.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import structlog
from icalendar import Alarm, Calendar, Event
from pydantic import BaseModel, ConfigDict

from tradewatch.durations import Duration, format_duration
from tradewatch.models import Alert, Deadline, Severity

__all__ = [
    "BEFORE_PLANNED",
    "CALENDAR_PAST",
    "PAST_GRACE",
    "SUPERSEDED",
    "Reminder",
    "due_from_facts",
    "format_listing",
    "from_match",
    "from_spec",
    "humanize",
    "ics_calendar",
    "reminder_alert",
    "reminders_of",
]

log = structlog.get_logger(__name__)

# The calendar keeps deadlines that passed within this window, so a subscriber sees what just expired.
CALENDAR_PAST = timedelta(days=30)
_CALENDAR_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f]{1,2000}", re.IGNORECASE)


class _SpecLike(Protocol):
    """The fields of `matching.schema.DeadlineSpec` this module reads (read-only: specs are frozen)."""

    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def due(self) -> datetime: ...
    @property
    def remind(self) -> list[timedelta]: ...
    @property
    def tags(self) -> list[str]: ...
    @property
    def notify(self) -> list[str]: ...
    @property
    def cancelled_by(self) -> list[str]: ...


def from_spec(spec: _SpecLike) -> Deadline:
    """A rule-file deadline."""
    return Deadline(
        id=spec.id,
        title=spec.title,
        due=spec.due,
        remind=list(spec.remind),
        tags=list(spec.tags),
        notify=list(spec.notify),
        cancelled_by=list(spec.cancelled_by),
        note=str(getattr(spec, "note", "") or ""),
    )


def _parse_day_or_instant(value: Any, tz: ZoneInfo) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime.combine(value, time(0, 0), tzinfo=tz)
    if not isinstance(value, str):
        return None
    try:
        if len(value.strip()) == 10:
            return datetime.combine(date.fromisoformat(value.strip()), time(0, 0), tzinfo=tz)
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def due_from_facts(facts: dict[str, Any], field: str, tz: ZoneInfo, now: datetime) -> datetime | None:
    """The instant a fact names: a date means its midnight in `tz`; of several dates, the next one ahead."""
    value = facts.get(field)
    values = value if isinstance(value, list) else [value]
    instants = sorted(d for d in (_parse_day_or_instant(v, tz) for v in values) if d is not None)
    if not instants:
        return None
    ahead = [d for d in instants if d >= now]
    return ahead[0] if ahead else instants[-1]


def from_match(
    *,
    rule_id: str,
    rule_title: str,
    field: str,
    remind: Sequence[timedelta],
    facts: dict[str, Any],
    event_id: str,
    doc_title: str = "",
    url: str = "",
    tags: Sequence[str] = (),
    notify: Sequence[str] = (),
    severity: Severity = "warning",
    tz: ZoneInfo,
    now: datetime,
) -> Deadline | None:
    """A deadline derived from a match (`deadline_from`); one per rule and event, so later docs re-plan it."""
    due = due_from_facts(facts, field, tz, now)
    if due is None:
        return None
    label = "Effective" if field == "effective_date" else "Date"
    title = f"{label}: {rule_title}" + (f" — {doc_title}" if doc_title else "")
    return Deadline(
        id=f"{rule_id}@{event_id}",
        title=title[:300],
        due=due,
        remind=list(remind),
        tags=list(tags),
        notify=list(notify),
        severity=severity,
        origin="match",
        rule=rule_id,
        event_id=event_id,
        url=url,
        planned_at=now,
    )


class Reminder(BaseModel):
    """One reminder of one deadline; `key` is stable for a (deadline, due, offset) and fires once."""

    model_config = ConfigDict(extra="forbid")

    deadline: Deadline
    offset: Duration
    fire_at: datetime

    @property
    def key(self) -> str:
        """Changes when the due date moves, so a re-planned deadline gets fresh reminders."""
        due = int(self.deadline.due.timestamp())
        return f"{self.deadline.id}|{due}|{int(self.offset.total_seconds())}"


def reminders_of(deadline: Deadline) -> list[Reminder]:
    """The deadline's reminders, earliest first (offsets deduplicated)."""
    offsets = sorted(set(deadline.remind), reverse=True)
    return [Reminder(deadline=deadline, offset=o, fire_at=deadline.due - o) for o in offsets]


def humanize(delta: timedelta) -> str:
    """`3 days`, `2 hours`, `45 minutes`, `now`; rounded, for reminder wording."""
    seconds = delta.total_seconds()
    if seconds < 60:
        return "now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = round(seconds / size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return "now"  # pragma: no cover - the loop always returns


def reminder_alert(reminder: Reminder, now: datetime, *, late: bool, tz: ZoneInfo | None = None) -> Alert:
    """The alert a reminder sends; its id is the reminder key, so redeliveries stay harmless."""
    d = reminder.deadline
    zone = tz or ZoneInfo("UTC")
    left = d.due - now
    when = d.due.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
    summary = f"Due {when} — in {humanize(left)}" if left.total_seconds() > 0 else f"Due {when} — now past"
    if d.note:
        summary += f". {d.note}"
    key_hash = hashlib.blake2b(reminder.key.encode(), digest_size=10).hexdigest()
    return Alert(
        id=f"reminder-{key_hash}",
        kind="reminder",
        event_id=d.event_id,
        rule=d.rule or d.id,
        rule_title=d.title,
        severity=d.severity,
        tags=list(d.tags),
        title=d.title,
        url=d.url,
        source="deadlines",
        seen_at=now,
        summary=summary,
        notify=list(d.notify),
        late=late,
        due=d.due,
        facts={"reminder": format_duration(reminder.offset) + " before"},  # `due` is a field of its own
    )


def ics_calendar(deadlines: Iterable[_SpecLike | Deadline], now: datetime) -> bytes:
    """RFC 5545 calendar: one VEVENT per deadline due in the last 30 days or later, one VALARM per reminder.

    Contract (DESIGN "HTTP endpoints"): UID `<id>@tradewatch`, DTSTART the due instant in UTC.
    Resolved deadlines stay in the feed as STATUS:CANCELLED so subscribed calendars update.
    """
    cal = Calendar()
    cal.add("prodid", "-//tradewatch//deadlines//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", "tradewatch deadlines")
    stamp = now.astimezone(UTC).replace(microsecond=0)
    for d in sorted(deadlines, key=lambda x: x.due):
        if d.due < now - CALENDAR_PAST:
            continue
        event = Event()
        event.add("uid", f"{d.id}@tradewatch")
        event.add("dtstamp", stamp)
        event.add("dtstart", d.due.astimezone(UTC))
        event.add("summary", d.title)
        lines = [d.title]
        if d.tags:
            event.add("categories", list(d.tags))
            lines.append("Tags: " + ", ".join(d.tags))
        url = getattr(d, "url", "")
        if url and _CALENDAR_URL.fullmatch(url):  # a source's link, so hostile: only a plain http(s) URL
            event.add("url", url)
            lines.append(url)
        note = getattr(d, "note", "")
        if note:
            lines.append(note)
        resolved_by = getattr(d, "resolved_by", None)
        if resolved_by:
            lines.append(f"Resolved by a match of rule {resolved_by}")
        event.add("description", "\n".join(lines))
        event.add("status", "CANCELLED" if resolved_by else "CONFIRMED")
        event.add("transp", "TRANSPARENT")
        for offset in sorted(set(d.remind), reverse=True):
            alarm = Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add("description", f"{d.title} (in {format_duration(offset)})")
            alarm.add("trigger", -offset)
            event.add_component(alarm)
        try:
            event.to_ical()  # a value the calendar cannot carry costs this event, not the whole feed
        except (ValueError, TypeError) as exc:
            log.warning("calendar_event_skipped", deadline=d.id, error=str(exc))
            continue
        cal.add_component(event)
    return bytes(cal.to_ical())


# Why a worker handled a reminder without sending it (store/reminders.py records the reason).
SUPERSEDED, PAST_GRACE, BEFORE_PLANNED = "superseded", "past-grace", "before-planned"
_SKIPPED = {
    SUPERSEDED: "skipped (a later one was due)",
    PAST_GRACE: "skipped (too late)",
    BEFORE_PLANNED: "skipped (before the deadline was known)",
}


def format_listing(
    deadlines: Sequence[Deadline], marks: Mapping[str, str], now: datetime, tz: ZoneInfo
) -> str:
    """The `tradewatch deadlines` table: due, time left, title, then each reminder with its state.

    `marks` says how each handled reminder was handled (`fired:…`, `skipped:…:reason`)."""
    if not deadlines:
        return "No upcoming deadlines.\n"
    out: list[str] = []
    for d in sorted(deadlines, key=lambda x: x.due):
        left = d.due - now
        state = (
            "resolved by " + str(d.resolved_by)
            if d.resolved
            else (f"in {humanize(left)}" if left.total_seconds() > 0 else "past")
        )
        due = d.due.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
        origin = f"from rule {d.rule}" if d.origin == "match" else "rule file"
        out.append(f"{due}  {state:<16}  {d.title}  [{d.id}; {origin}]")
        for r in reminders_of(d):
            handled = marks.get(r.key)
            if handled is not None:
                reason = handled.rpartition(":")[2]
                mark = _SKIPPED.get(reason, "skipped") if handled.startswith("skipped:") else "sent"
            elif d.resolved:
                mark = "cancelled"
            elif r.fire_at <= now:
                mark = "missed"
            else:
                mark = "planned"
            at = r.fire_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
            out.append(f"    remind {format_duration(r.offset):>4} before  {at}  {mark}")
    return "\n".join(out) + "\n"
