"""Seen items: has this source listed this item before, with which content, and did it alert?

One string key per item (not a hash per source) so each item expires on its own
TTL: memory stays bounded by what sources listed in the last SEEN_TTL, and a
poll's seen-check is one MGET (one round trip, whatever the batch size).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import redis.asyncio as aioredis

from tradewatch.errors import StoreError
from tradewatch.models import Document
from tradewatch.store.commit import redis_errors
from tradewatch.store.keys import SEEN_REFRESH_DAYS, Keys

__all__ = ["BASELINE", "NO_EVENT", "SUPPRESSED", "SeenRecord", "SeenStore", "item_digest"]

NO_EVENT = "-"  # seen, matched nothing: may still alert if a change makes it match
BASELINE = "b"  # recorded by a first poll without alerting: never alerts, not even when changed
SUPPRESSED = "x"  # matched, but silenced or deduplicated: counts as handled


def item_digest(item_id: str) -> str:
    """A short fixed-length key part for any item id (URLs can be kilobytes)."""
    return hashlib.blake2b(item_id.encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()


def epoch_day(now: datetime) -> int:
    return int(now.timestamp() // 86_400)


@dataclass(frozen=True)
class SeenRecord:
    """What we stored about an item: its content hash, its event (or a marker) and when written."""

    content: str
    event: str
    day: int

    @classmethod
    def parse(cls, raw: str) -> SeenRecord:
        content, _, rest = raw.partition("|")
        event, _, day = rest.rpartition("|")
        return cls(content, event or NO_EVENT, int(day or 0))

    def dump(self) -> str:
        return f"{self.content}|{self.event}|{self.day}"

    def stale(self, today: int) -> bool:
        """True when the TTL should be refreshed (the item is still listed)."""
        return today - self.day >= SEEN_REFRESH_DAYS

    @property
    def alerted(self) -> bool:
        return self.event not in (NO_EVENT, BASELINE, SUPPRESSED)


@dataclass(frozen=True)
class Lookup:
    """The stored state of one poll: was the source polled before, and each item's record."""

    polled: bool
    raw: list[str | None]
    polled_raw: str | None
    keys: list[str]  # each item's seen key, in the order of the documents

    def record(self, index: int) -> SeenRecord | None:
        raw = self.raw[index]
        return SeenRecord.parse(raw) if raw is not None else None


class SeenStore:
    """Reads seen records of a whole poll at once; writes go through the pipeline's Batch."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    def key(self, source: str, doc: Document) -> str:
        return self.keys.seen(source, item_digest(doc.id))

    async def lookup(self, source: str, docs: Sequence[Document]) -> Lookup:
        """One MGET for every item of the poll plus the source's first-poll marker."""
        keys = [self.key(source, doc) for doc in docs]
        try:
            values = await self.redis.mget([self.keys.polled(source), *keys])
        except redis_errors as exc:
            raise StoreError(f"redis seen lookup failed: {exc}") from exc
        texts = [str(v) if v is not None else None for v in values]
        return Lookup(polled=texts[0] is not None, raw=texts[1:], polled_raw=texts[0], keys=keys)
