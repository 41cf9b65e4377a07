"""Suppressed alerts: why a match did not alert (silenced, duplicate), kept for operators.

Every suppression is logged as an event and appended to a capped stream that the
status page reads; the write rides in the pipeline's atomic batch, so the record
exists exactly when the suppression took effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from tradewatch.errors import StoreError
from tradewatch.models import Match
from tradewatch.store.commit import Batch, redis_errors
from tradewatch.store.keys import SUPPRESSIONS_MAXLEN, Keys

__all__ = ["Suppression", "Suppressions", "dedup_value"]


def dedup_value(template: str, match: Match) -> str | None:
    """A rule's dedup key (`{announcement}`, `{rule}`…) from the match's facts; None if a fact is missing."""
    values: dict[str, Any] = {"rule": match.rule, **match.facts}
    flat = {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in values.items()}
    try:
        return template.format_map(flat)
    except (KeyError, IndexError, ValueError, AttributeError):
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
        self,
        batch: Batch,
        *,
        reason: str,
        rule: str,
        source: str,
        title: str,
        url: str,
        detail: str,
        at: datetime,
    ) -> None:
        batch.xadd(
            self.keys.suppressions(),
            {
                "at": at.isoformat(),
                "reason": reason,
                "rule": rule,
                "source": source,
                "title": title[:300],
                "url": url[:500],
                "detail": detail[:500],
            },
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
            Suppression(
                i,
                f.get("at", ""),
                f.get("reason", ""),
                f.get("rule", ""),
                f.get("source", ""),
                f.get("title", ""),
                f.get("url", ""),
                f.get("detail", ""),
            )
            for i, f in items
        ]
