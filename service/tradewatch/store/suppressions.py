"""Suppressed alerts: why a match did not alert (silenced, duplicate, baseline), kept for operators.

Every suppression is logged as an event and appended to a capped stream that the
status page reads; the write rides in the pipeline's atomic batch, so the record
exists exactly when the suppression took effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from tradewatch.config import SilenceSpec
from tradewatch.errors import StoreError
from tradewatch.store.commit import Batch, redis_errors
from tradewatch.store.keys import SUPPRESSIONS_MAXLEN, Keys

__all__ = ["Suppression", "Suppressions", "active_silence", "silence_until"]


def silence_until(spec: SilenceSpec) -> datetime:
    """`until` as an aware instant (a date or naive time is taken as UTC)."""
    value = datetime.fromisoformat(spec.until.strip())
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def active_silence(
    silences: Sequence[SilenceSpec], *, rule: str, tags: Sequence[str], source: str, now: datetime,
) -> SilenceSpec | None:
    """The first silence covering this rule/tag/source now; every field it sets must fit."""
    for spec in silences:
        try:
            if silence_until(spec) <= now:
                continue
        except ValueError:
            continue  # config validation reports the bad date; an unreadable silence mutes nothing
        if spec.rule is not None and spec.rule != rule:
            continue
        if spec.tag is not None and spec.tag not in tags:
            continue
        if spec.source is not None and spec.source != source:
            continue
        if spec.rule is None and spec.tag is None and spec.source is None:
            continue
        return spec
    return None


@dataclass(frozen=True)
class Suppression:
    """One suppressed alert as the status page lists it."""

    id: str
    at: str
    reason: str
    rule: str
    source: str
    title: str
    url: str
    detail: str


class Suppressions:
    """Writes (staged into the pipeline's batch) and reads of the suppression log."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    def stage(
        self, batch: Batch, *, reason: str, rule: str, source: str, title: str, url: str, detail: str,
        at: datetime,
    ) -> None:
        batch.xadd(
            self.keys.suppressions(),
            {"at": at.isoformat(), "reason": reason, "rule": rule, "source": source,
             "title": title[:300], "url": url[:500], "detail": detail[:500]},
            maxlen=SUPPRESSIONS_MAXLEN,
        )

    async def recent(self, count: int = 50) -> list[Suppression]:
        """Newest first, for the status page and `alerts list`."""
        try:
            client: Any = self.redis  # replies are str (decode_responses=True); redis-py types the union
            items = await client.xrevrange(self.keys.suppressions(), count=count)
        except redis_errors as exc:
            raise StoreError(f"redis suppression read failed: {exc}") from exc
        return [
            Suppression(i, f.get("at", ""), f.get("reason", ""), f.get("rule", ""), f.get("source", ""),
                        f.get("title", ""), f.get("url", ""), f.get("detail", ""))
            for i, f in items
        ]
