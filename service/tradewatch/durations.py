"""Durations as users write them (`30s`, `5m`, `2h`, `7d`), parsed once at load."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

__all__ = ["Duration", "format_duration", "parse_duration"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> timedelta:
    """Parse `1s`/`5m`/`2h`/`7d` (or a timedelta); a bare number other than 0 is refused.

    `remind: [7]` most likely means seven days, not seven seconds: a unit is required.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m, 2h or 7d")
    if isinstance(value, int | float):
        if value == 0:
            return timedelta(0)
        raise ValueError(f"{value!r} has no unit; write it with s, m, h or d (e.g. {value:g}s or {value:g}d)")
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            try:
                return timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[m.group(2)])
            except OverflowError:
                raise ValueError(f"{value.strip()!r} is too long a duration") from None
    raise ValueError(f"{value!r} is not a duration; write a number and a unit s, m, h or d (e.g. 5m, 7d)")


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling of a duration, for display and round-trips."""
    seconds = value.total_seconds()
    for unit in ("d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
