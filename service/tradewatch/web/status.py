"""What the status page shows, gathered panel by panel so one failing store call blanks one panel only.

Each panel is a `Panel` holding rows or the reason it is unavailable; the page never
fails because Redis hiccupped or a store module changed. Rows are plain dataclasses
built from whatever the store modules return (models or dicts), so the template
depends on this module only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import redis.asyncio as aioredis
import structlog

from tradewatch.durations import format_duration
from tradewatch.store.keys import Keys
from tradewatch.web.calendar import DeadlineRow, upcoming_deadlines
from tradewatch.web.history import AlertRecord as AlertRow
from tradewatch.web.history import alert_history
from tradewatch.web.timeline import DAYS, Timeline, build_timeline

if TYPE_CHECKING:
    from tradewatch.web.app import WorkerState

__all__ = [
    "AlertRow",
    "DeadlineRow",
    "Panel",
    "SourceRow",
    "StatusData",
    "SuppressedRow",
    "gather_status",
]

log = structlog.get_logger(__name__)

T = TypeVar("T")

RECENT_ALERTS = 25
RECENT_SUPPRESSED = 15
PANEL_TIMEOUT = 3.0
"""Seconds one panel's store calls may take before it shows as unavailable."""


@dataclass
class Panel(Generic[T]):
    """Rows of one panel, or `error` saying why it is unavailable."""

    rows: list[T] = field(default_factory=list)
    error: str | None = None
    note: str | None = None  # rows shown, but partial: says what is missing

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class SourceRow:
    """A configured source and what its last polls said."""

    name: str
    kind: str
    url: str
    every: str
    enabled: bool
    status: str = "unknown"  # ok | failing | unknown | disabled
    last_poll: datetime | None = None
    last_success: datetime | None = None
    next_poll: datetime | None = None
    failures: int = 0
    alerted: bool = False  # operators were told it is failing
    error: str = ""
    items_seen: int = 0


@dataclass(frozen=True)
class SuppressedRow:
    """An alert that was not sent, and why."""

    when: datetime | None
    reason: str
    rule: str
    title: str
    url: str
    source: str
    detail: str = ""


@dataclass
class StatusData:
    """Everything the page renders."""

    now: datetime
    ready: dict[str, bool]
    sources: Panel[SourceRow]
    alerts: Panel[AlertRow]
    suppressed: Panel[SuppressedRow]
    deadlines: Panel[DeadlineRow]
    timeline: Panel[Timeline]


# --- reading models or dicts alike ----------------------------------------------------------------


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _when(value: Any) -> datetime | None:
    """A timezone-aware datetime from a datetime, an ISO string or epoch seconds; None otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), tz=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            try:
                return datetime.fromtimestamp(float(value), tz=UTC)
            except ValueError:
                return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _redis(state: WorkerState) -> aioredis.Redis:
    if state.redis is None:
        raise ConnectionError("redis not connected")
    return state.redis


# --- panels ---------------------------------------------------------------------------------------


async def _panel(name: str, load: Callable[[], Awaitable[list[T]]]) -> Panel[T]:
    """Run one panel's loader; any failure (or slowness) makes that panel unavailable, not the page."""
    try:
        return Panel(rows=await asyncio.wait_for(load(), timeout=PANEL_TIMEOUT))
    except TimeoutError:
        log.warning("status_panel_failed", panel=name, error="timeout")
        return Panel(error="unavailable (timed out)")
    except Exception as exc:  # a broken panel must not break the page
        log.warning("status_panel_failed", panel=name, error=type(exc).__name__)
        return Panel(error=f"unavailable ({type(exc).__name__})")


def _source_row(spec: Any, health: Any) -> SourceRow:
    """Merge a configured source with its health record (`store.health.SourceHealthRecord`)."""
    row = SourceRow(
        name=spec.name,
        kind=spec.kind,
        url=spec.url,
        every=format_duration(spec.every),
        enabled=spec.enabled,
        status="unknown" if spec.enabled else "disabled",
    )
    if health is None:
        return row
    failures = int(_get(health, "consecutive_failures", 0) or 0)
    last_success = _when(_get(health, "last_success"))
    last_error_at = _when(_get(health, "last_error_at"))
    polls = [t for t in (last_success, last_error_at) if t is not None]
    if not spec.enabled:
        status = "disabled"
    elif failures:
        status = "failing"
    else:
        status = "ok" if last_success else "unknown"
    return replace(
        row,
        status=status,
        last_poll=max(polls) if polls else None,
        last_success=last_success,
        next_poll=_when(_get(health, "next_poll")),
        failures=failures,
        alerted=bool(_get(health, "failing", False)),
        error=str(_get(health, "last_error", "") or "") if failures else "",
        items_seen=int(_get(health, "items_seen", 0) or 0),
    )


async def _sources(state: WorkerState, keys: Keys) -> list[SourceRow]:
    from tradewatch.store.health import SourceHealth

    health = await SourceHealth(_redis(state), keys).all()
    return [_source_row(spec, health.get(spec.name)) for spec in state.settings.sources]


async def _alert_history(state: WorkerState, keys: Keys, since: datetime) -> list[AlertRow]:
    """Alerts of the last 30 days, newest first (events joined with their outbox alerts)."""
    rules = state.rulebook.rules if state.rulebook is not None else ()
    return await alert_history(_redis(state), keys, since=since, rules=rules)


async def _suppressed(state: WorkerState, keys: Keys) -> list[SuppressedRow]:
    from tradewatch.store.suppressions import Suppressions

    found = await Suppressions(_redis(state), keys).recent(count=RECENT_SUPPRESSED)
    return [
        SuppressedRow(
            when=_when(s.at),
            reason=s.reason,
            rule=s.rule,
            title=s.title,
            url=s.url,
            source=s.source,
            detail=s.detail,
        )
        for s in found
    ]


async def _deadline_panel(state: WorkerState, now: datetime) -> Panel[DeadlineRow]:
    """Upcoming deadlines; with Redis down, the rule-file ones and a note saying what is missing."""
    notes: list[str] = []

    async def load() -> list[DeadlineRow]:
        rows, note = await upcoming_deadlines(state, now)
        notes.extend([note] if note else [])
        return rows

    panel = await _panel("deadlines", load)
    panel.note = notes[0] if notes else None
    return panel


async def gather_status(state: WorkerState, *, now: datetime) -> StatusData:
    """All panels, concurrently; each degrades on its own."""
    keys = Keys(state.settings.key_prefix)
    since = now - timedelta(days=DAYS)
    sources, suppressed, deadlines, history = await asyncio.gather(
        _panel("sources", lambda: _sources(state, keys)),
        _panel("suppressed", lambda: _suppressed(state, keys)),
        _deadline_panel(state, now),
        _panel("alerts", lambda: _alert_history(state, keys, since)),
    )
    timeline: Panel[Timeline]
    if history.ok:
        counted = ((r.when, r.tags) for r in history.rows if r.when is not None and r.kind != "operator")
        tl = build_timeline(counted, today=now.date())
        timeline = Panel(rows=[tl])
    else:
        timeline = Panel(error=history.error)
    recent = Panel(rows=history.rows[:RECENT_ALERTS], error=history.error)
    # Until the caller fills in its readiness checks, say only what is known without I/O.
    ready = {
        "redis": state.redis is not None,
        "rules": state.rules_loaded,
        "scheduler": state.scheduler_running,
    }
    return StatusData(
        now=now,
        ready=ready,
        sources=sources,
        alerts=recent,
        suppressed=suppressed,
        deadlines=deadlines,
        timeline=timeline,
    )
