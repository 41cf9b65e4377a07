"""What the status page shows, gathered panel by panel so one failing store call blanks one panel only.

Each panel is a `Panel` holding rows or the reason it is unavailable; the page never
fails because Redis hiccupped or a store module changed. Rows are plain dataclasses
built from whatever the store modules return (models or dicts), so the template
depends on this module only.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import structlog

from tradewatch.store.keys import Keys
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
    "calendar_ics",
    "gather_status",
]

log = structlog.get_logger(__name__)

T = TypeVar("T")

RECENT_ALERTS = 25
RECENT_SUPPRESSED = 15
UPCOMING_DEADLINES = 20
PANEL_TIMEOUT = 3.0
"""Seconds one panel's store calls may take before it shows as unavailable."""


@dataclass
class Panel(Generic[T]):
    """Rows of one panel, or `error` saying why it is unavailable."""

    rows: list[T] = field(default_factory=list)
    error: str | None = None

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
    failures: int = 0
    error: str = ""


@dataclass(frozen=True)
class SourceLink:
    """One source that reported an alert's event."""

    source: str
    url: str
    title: str = ""
    official: bool = False


@dataclass(frozen=True)
class AlertRow:
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


@dataclass(frozen=True)
class SuppressedRow:
    """An alert that was not sent, and why."""

    when: datetime | None
    reason: str
    rule: str
    title: str
    url: str
    source: str


@dataclass(frozen=True)
class DeadlineRow:
    """A deadline that is coming (or just passed)."""

    id: str
    title: str
    due: datetime
    tags: list[str]
    remind: list[str]
    origin: str = "rules"


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


def _duration_text(value: Any) -> str:
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds and seconds % size == 0:
                return f"{seconds // size}{unit}"
        return f"{seconds}s"
    return str(value)


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [_duration_text(v) for v in value]


def _late_module(name: str) -> Any:
    """Import a store module written alongside this one; until it lands, its panel is unavailable."""
    return importlib.import_module(name)


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
    base = SourceRow(
        name=spec.name,
        kind=spec.kind,
        url=spec.url,
        every=_duration_text(spec.every),
        enabled=spec.enabled,
        status="unknown" if spec.enabled else "disabled",
    )
    if health is None:
        return base
    failures = int(_get(health, "consecutive_failures", _get(health, "failures", 0)) or 0)
    ok = _get(health, "ok")
    status = _get(health, "status")
    if not isinstance(status, str) or status not in ("ok", "failing"):
        status = (
            "failing"
            if failures or ok is False
            else ("ok" if ok or _get(health, "last_success") else "unknown")
        )
    return SourceRow(
        name=base.name,
        kind=base.kind,
        url=base.url,
        every=base.every,
        enabled=base.enabled,
        status=status if spec.enabled else "disabled",
        last_poll=_when(_get(health, "last_poll", _get(health, "last_attempt"))),
        last_success=_when(_get(health, "last_success", _get(health, "last_ok"))),
        failures=failures,
        error=str(_get(health, "last_error", _get(health, "error", "")) or ""),
    )


async def _sources(state: WorkerState, keys: Keys) -> list[SourceRow]:
    specs = list(state.settings.sources)
    if state.redis is None:
        raise ConnectionError("redis not connected")
    health_module: Any = _late_module("tradewatch.store.health")
    health: Any = await health_module.SourceHealth(state.redis, keys).all()
    by_name: Mapping[str, Any] = (
        health
        if isinstance(health, Mapping)
        else {str(_get(h, "source", _get(h, "name"))): h for h in health}
    )
    return [_source_row(spec, by_name.get(spec.name)) for spec in specs]


def _alert_row(alert: Any) -> AlertRow:
    sources = [
        SourceLink(
            source=str(_get(s, "source", "")),
            url=str(_get(s, "url", "") or ""),
            title=str(_get(s, "title", "") or ""),
            official=bool(_get(s, "official", False)),
        )
        for s in (_get(alert, "sources") or [])
    ]
    return AlertRow(
        when=_when(_get(alert, "seen_at"))
        or _when(_get(alert, "published_at"))
        or _when(_get(alert, "when")),
        severity=str(_get(alert, "severity", "info") or "info"),
        rule_title=str(_get(alert, "rule_title", "") or _get(alert, "rule", "") or ""),
        title=str(_get(alert, "title", "") or ""),
        url=str(_get(alert, "url", "") or ""),
        source=str(_get(alert, "source", "") or ""),
        tags=_strings(_get(alert, "tags")),
        event_id=str(_get(alert, "event_id", "") or ""),
        kind=str(_get(alert, "kind", "new") or "new"),
        sources=sources,
        facts=dict(_get(alert, "facts") or {}),
    )


async def _alert_history(state: WorkerState, keys: Keys, since: datetime) -> list[AlertRow]:
    """Alerts put in the outbox since `since`, newest first."""
    if state.redis is None:
        raise ConnectionError("redis not connected")
    outbox: Any = _late_module("tradewatch.store.outbox")
    found: Sequence[Any] = await outbox.recent(state.redis, keys, since=since)
    rows = [_alert_row(a) for a in found]
    rows.sort(key=lambda r: r.when or since, reverse=True)
    return rows


def _suppressed_row(item: Any) -> SuppressedRow:
    alert = _get(item, "alert", item)
    return SuppressedRow(
        when=_when(_get(item, "at", _get(item, "when"))) or _when(_get(alert, "seen_at")),
        reason=str(_get(item, "reason", "") or ""),
        rule=str(_get(alert, "rule_title", "") or _get(alert, "rule", "") or ""),
        title=str(_get(alert, "title", "") or ""),
        url=str(_get(alert, "url", "") or ""),
        source=str(_get(alert, "source", "") or ""),
    )


async def _suppressed(state: WorkerState, keys: Keys) -> list[SuppressedRow]:
    if state.redis is None:
        raise ConnectionError("redis not connected")
    suppressions: Any = _late_module("tradewatch.store.suppressions")
    found: Sequence[Any] = await suppressions.recent(state.redis, keys, limit=RECENT_SUPPRESSED)
    return [_suppressed_row(s) for s in found][:RECENT_SUPPRESSED]


async def _deadlines(state: WorkerState, now: datetime) -> list[DeadlineRow]:
    rulebook = state.rulebook
    if rulebook is None:
        raise LookupError("rules not loaded")
    rows = []
    for d in rulebook.deadlines:
        due = _when(_get(d, "due"))
        if due is None or due < now - timedelta(days=1):
            continue
        rows.append(
            DeadlineRow(
                id=str(_get(d, "id", "")),
                title=str(_get(d, "title", "")),
                due=due,
                tags=_strings(_get(d, "tags")),
                remind=_strings(_get(d, "remind")),
            )
        )
    rows.sort(key=lambda r: r.due)
    return rows[:UPCOMING_DEADLINES]


async def gather_status(state: WorkerState, *, now: datetime) -> StatusData:
    """All panels, concurrently; each degrades on its own."""
    keys = Keys(state.settings.key_prefix)
    since = now - timedelta(days=DAYS)
    history_task = asyncio.ensure_future(_panel("alerts", lambda: _alert_history(state, keys, since)))
    sources, suppressed, deadlines, history = await asyncio.gather(
        _panel("sources", lambda: _sources(state, keys)),
        _panel("suppressed", lambda: _suppressed(state, keys)),
        _panel("deadlines", lambda: _deadlines(state, now)),
        history_task,
    )
    timeline: Panel[Timeline]
    if history.ok:
        tl = build_timeline(((r.when, r.tags) for r in history.rows if r.when is not None), today=now.date())
        timeline = Panel(rows=[tl])
    else:
        timeline = Panel(error=history.error)
    recent = Panel(rows=history.rows[:RECENT_ALERTS], error=history.error)
    ready = {
        "rules": state.rules_loaded,
        "scheduler": state.scheduler_running,
        "redis": state.redis is not None,
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


async def calendar_ics(state: WorkerState, *, now: datetime) -> bytes:
    """The RFC 5545 calendar of `tradewatch deadlines --ics`, from `tradewatch.deadlines`."""
    deadlines: Any = _late_module("tradewatch.deadlines")
    body: Any = deadlines.ics_calendar(state.rulebook.deadlines if state.rulebook else [], now=now)
    if asyncio.iscoroutine(body):
        body = await body
    return body if isinstance(body, bytes) else str(body).encode("utf-8")
