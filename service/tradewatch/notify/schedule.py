"""When digests are due: the slot at `at` in the digest's timezone, daily, on weekdays or weekly.

Pure functions of `now`, so the schedule is tested with controlled time and every
worker computes the same slot (the slot's instant is the claim's name in Redis).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from tradewatch.config import DigestSchedule

__all__ = ["latest_slot", "next_slot"]


def _fits(schedule: DigestSchedule, day: datetime) -> bool:
    if schedule.every == "weekdays":
        return day.weekday() < 5
    if schedule.every == "weekly":
        return day.weekday() == schedule.weekday
    return True


def _slot_on(schedule: DigestSchedule, day: datetime, tz: ZoneInfo) -> datetime:
    hour, minute = (int(part) for part in schedule.at.split(":"))
    return datetime.combine(day.date(), time(hour, minute), tzinfo=tz)


def latest_slot(schedule: DigestSchedule, now: datetime) -> datetime:
    """The most recent scheduled instant at or before `now`."""
    tz = ZoneInfo(schedule.timezone)
    local = now.astimezone(tz)
    for back in range(8):
        day = local - timedelta(days=back)
        slot = _slot_on(schedule, day, tz)
        if _fits(schedule, day) and slot <= now:
            return slot
    raise AssertionError("a weekly schedule has a slot within 8 days")  # pragma: no cover


def next_slot(schedule: DigestSchedule, now: datetime) -> datetime:
    """The first scheduled instant strictly after `now` (for the worker's timer)."""
    tz = ZoneInfo(schedule.timezone)
    local = now.astimezone(tz)
    for ahead in range(9):
        day = local + timedelta(days=ahead)
        slot = _slot_on(schedule, day, tz)
        if _fits(schedule, day) and slot > now:
            return slot
    raise AssertionError("a weekly schedule has a slot within 8 days")  # pragma: no cover
