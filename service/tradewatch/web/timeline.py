"""The 30-day alerts-per-tag timeline: counts per day and the geometry of its inline SVG.

Geometry is computed here and drawn by the template, so tag names reach the SVG only
through Jinja's autoescaping. One row of bars per tag (small multiples) reads on a
phone better than a stacked chart: each row is scaled to the busiest day overall, so
rows compare at a glance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

__all__ = ["DAYS", "Bar", "Timeline", "TimelineRow", "build_timeline"]

DAYS = 30
MAX_TAGS = 8
"""More rows than this stop being glanceable; the rest are summed into `other`."""

WIDTH = 320.0
LABEL_W = 96.0
ROW_H = 28.0
BAR_GAP = 1.0
AXIS_H = 16.0


@dataclass(frozen=True)
class Bar:
    """One day of one tag."""

    day: date
    count: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class TimelineRow:
    """One tag's 30 bars and its total."""

    tag: str
    total: int
    y: float
    bars: list[Bar]


@dataclass(frozen=True)
class Timeline:
    """Everything the template needs to draw the SVG."""

    start: date
    end: date
    width: float
    height: float
    label_width: float
    row_height: float
    peak: int
    rows: list[TimelineRow] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.rows


def build_timeline(
    alerts: Iterable[tuple[datetime, Iterable[str]]], *, today: date, days: int = DAYS
) -> Timeline:
    """Count alerts per (tag, day) for the `days` ending `today`; an untagged alert counts as `untagged`."""
    start = today - timedelta(days=days - 1)
    counts: dict[str, Counter[date]] = {}
    for when, tags in alerts:
        day = when.date()
        if not start <= day <= today:
            continue
        for tag in set(tags) or {"untagged"}:
            counts.setdefault(tag, Counter())[day] += 1
    ranked = sorted(counts, key=lambda t: (-sum(counts[t].values()), t))
    if len(ranked) > MAX_TAGS:
        other: Counter[date] = Counter()
        for tag in ranked[MAX_TAGS - 1 :]:
            other.update(counts.pop(tag))
        ranked = [*ranked[: MAX_TAGS - 1], "other"]
        counts["other"] = other
    peak = max((n for c in counts.values() for n in c.values()), default=0)
    bar_w = (WIDTH - LABEL_W) / days
    rows = []
    for index, tag in enumerate(ranked):
        top = index * ROW_H
        bars = []
        for offset in range(days):
            day = start + timedelta(days=offset)
            n = counts[tag][day]
            h = 0.0 if n == 0 else max(2.0, (ROW_H - 6) * n / peak)
            bars.append(
                Bar(
                    day=day,
                    count=n,
                    x=round(LABEL_W + offset * bar_w, 2),
                    y=round(top + ROW_H - 3 - h, 2),
                    width=round(bar_w - BAR_GAP, 2),
                    height=round(h, 2),
                )
            )
        rows.append(TimelineRow(tag=tag, total=sum(counts[tag].values()), y=top, bars=bars))
    return Timeline(
        start=start,
        end=today,
        width=WIDTH,
        height=len(rows) * ROW_H + AXIS_H,
        label_width=LABEL_W,
        row_height=ROW_H,
        peak=peak,
        rows=rows,
    )
