"""Deadlines for the web: the `/deadlines.ics` feed and the page's upcoming list, from one source.

Both read `store.reminders.Reminders.deadlines()`, so the feed matches `tradewatch
deadlines --ics`: rule-file deadlines, deadlines derived from matches, resolutions.
The feed fails (503) rather than omit derived deadlines when Redis is down: calendar
apps keep their last copy on an error but delete events missing from a good answer.
The page, for people, falls back to the rule-file deadlines and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tradewatch.deadlines import CALENDAR_PAST, from_spec, ics_calendar
from tradewatch.durations import format_duration
from tradewatch.models import Deadline
from tradewatch.store.keys import Keys
from tradewatch.store.reminders import Reminders

if TYPE_CHECKING:
    from tradewatch.web.app import WorkerState

__all__ = ["UPCOMING", "DeadlineRow", "calendar_ics", "upcoming_deadlines"]

UPCOMING = 20
"""Deadlines the page lists; the calendar has them all."""

RECENTLY_PASSED = timedelta(days=1)
"""A deadline that just passed stays on the page a day, so a glance the morning after still shows it."""


@dataclass(frozen=True)
class DeadlineRow:
    """A deadline as the page lists it."""

    id: str
    title: str
    due: datetime
    tags: list[str]
    remind: list[str]
    origin: str = "rules"
    url: str = ""
    resolved_by: str | None = None


async def _planned(state: WorkerState, now: datetime, past: timedelta) -> list[Deadline]:
    """File + derived deadlines with resolutions; raises when Redis or the rules are not there."""
    if state.rulebook is None:
        raise LookupError("rules not loaded")
    if state.redis is None:
        raise ConnectionError("redis not connected")
    reminders = Reminders(state.redis, Keys(state.settings.key_prefix), state.settings, state.rulebook)
    return await reminders.deadlines(now, include_resolved=True, past=past)


async def calendar_ics(state: WorkerState, *, now: datetime) -> bytes:
    """The RFC 5545 feed of `tradewatch deadlines --ics` (deadlines due in the last 30 days or later)."""
    return ics_calendar(await _planned(state, now, CALENDAR_PAST), now)


def _row(d: Deadline) -> DeadlineRow:
    return DeadlineRow(
        id=d.id,
        title=d.title,
        due=d.due,
        tags=list(d.tags),
        remind=[format_duration(r) for r in sorted(set(d.remind), reverse=True)],
        origin=d.origin,
        url=d.url,
        resolved_by=d.resolved_by,
    )


async def upcoming_deadlines(state: WorkerState, now: datetime) -> tuple[list[DeadlineRow], str | None]:
    """Deadlines due from a day ago on, soonest first; with a note when only rule-file ones could be read."""
    note = None
    try:
        found = await _planned(state, now, RECENTLY_PASSED)
    except LookupError:
        raise
    except Exception as exc:  # Redis trouble: the rule files still say something useful
        if state.rulebook is None:
            raise
        note = f"deadlines derived from matches unavailable ({type(exc).__name__})"
        specs: Any = state.rulebook.deadlines
        found = sorted(
            (d for d in map(from_spec, specs) if d.due >= now - RECENTLY_PASSED), key=lambda d: d.due
        )
    return [_row(d) for d in found[:UPCOMING]], note
