"""Digest schedule: slots at `at` in the digest's timezone, daily, weekdays, weekly, across DST."""

from __future__ import annotations

from datetime import UTC, datetime

from tradewatch.config import DigestSchedule
from tradewatch.notify.schedule import latest_slot, next_slot


def _s(**kw: object) -> DigestSchedule:
    return DigestSchedule.model_validate({"at": "07:30", "timezone": "Europe/Berlin", **kw})


def test_daily_slots() -> None:
    """Before 07:30 Berlin the latest slot is yesterday's; after, today's."""
    before = datetime(2025, 11, 4, 6, 0, tzinfo=UTC)  # 07:00 CET
    assert latest_slot(_s(), before) == datetime(2025, 11, 3, 6, 30, tzinfo=UTC)
    assert next_slot(_s(), before) == datetime(2025, 11, 4, 6, 30, tzinfo=UTC)
    at = datetime(2025, 11, 4, 6, 30, tzinfo=UTC)
    assert latest_slot(_s(), at) == at
    assert next_slot(_s(), at) == datetime(2025, 11, 5, 6, 30, tzinfo=UTC)


def test_weekdays_skip_the_weekend() -> None:
    """On Monday morning before the slot, the latest weekday slot is Friday's."""
    monday_early = datetime(2025, 11, 3, 5, 0, tzinfo=UTC)
    assert latest_slot(_s(every="weekdays"), monday_early) == datetime(2025, 10, 31, 6, 30, tzinfo=UTC)
    saturday = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)
    assert next_slot(_s(every="weekdays"), saturday) == datetime(2025, 11, 3, 6, 30, tzinfo=UTC)


def test_weekly_on_the_configured_day() -> None:
    """Weekly digests go out on `weekday` (0 = Monday) only."""
    thursday = datetime(2025, 11, 6, 12, 0, tzinfo=UTC)
    assert latest_slot(_s(every="weekly", weekday=0), thursday) == datetime(2025, 11, 3, 6, 30, tzinfo=UTC)
    assert next_slot(_s(every="weekly", weekday=0), thursday) == datetime(2025, 11, 10, 6, 30, tzinfo=UTC)


def test_local_time_kept_across_dst() -> None:
    """07:30 Berlin is 05:30 UTC in summer and 06:30 UTC in winter."""
    winter = next_slot(_s(), datetime(2025, 10, 25, 12, 0, tzinfo=UTC))
    summer = next_slot(_s(), datetime(2025, 10, 24, 12, 0, tzinfo=UTC))
    assert winter == datetime(2025, 10, 26, 6, 30, tzinfo=UTC)
    assert summer == datetime(2025, 10, 25, 5, 30, tzinfo=UTC)
