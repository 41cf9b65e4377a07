"""HTTP validators (ETag / Last-Modified) per URL, so an unchanged page costs a 304 and no parsing;
and read cursors (how far a paged listing was read), so the next poll reads back just to there.

Kept in Redis for the worker (shared by every worker that may take over a source's
lease, and kept across restarts) and in memory for one-off commands such as `sources test`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx
import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from tradewatch.store.batching import WRITE_WINDOW, Coalescer
from tradewatch.store.keys import VALIDATORS_TTL, Keys

REWRITE_AFTER = 86_400.0  # seconds: renew the key's TTL at least daily while unchanged

_FORWARD = """
local old = redis.call('HGET', KEYS[1], 'cursor')
local a, b = tonumber(ARGV[1]), old and tonumber(old)
if not (a and b and a <= b) then redis.call('HSET', KEYS[1], 'cursor', ARGV[1]) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
"""

__all__ = ["MemoryValidatorCache", "RedisValidatorCache", "ValidatorCache", "Validators"]


@dataclass(frozen=True)
class Validators:
    """What the server gave us to ask "changed since?" next time."""

    etag: str | None = None
    last_modified: str | None = None

    @classmethod
    def from_headers(cls, headers: httpx.Headers) -> Validators | None:
        found = cls(headers.get("etag"), headers.get("last-modified"))
        return found if found.etag or found.last_modified else None


class ValidatorCache(Protocol):
    async def get(self, url: str) -> Validators | None: ...

    async def put(self, url: str, validators: Validators) -> None: ...

    async def cursor(self, url: str) -> str | None: ...

    async def put_cursor(self, url: str, value: str) -> None: ...


class MemoryValidatorCache:
    """Validators for one process's lifetime."""

    def __init__(self) -> None:
        self._data: dict[str, Validators] = {}
        self._cursors: dict[str, str] = {}

    async def get(self, url: str) -> Validators | None:
        return self._data.get(url)

    async def put(self, url: str, validators: Validators) -> None:
        self._data[url] = validators

    async def cursor(self, url: str) -> str | None:
        return self._cursors.get(url)

    async def put_cursor(self, url: str, value: str) -> None:
        self._cursors[url] = value


class RedisValidatorCache:
    """Validators in a Redis hash per URL, with a TTL so removed sources leave nothing behind.

    Reads of polls that start together (a worker's first round, `run --once`) go out
    as one pipeline, and so do the writes of polls that finish together.
    """

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._read: dict[str, tuple[Validators, float]] = {}  # what get() found, and when
        self._cursor_read: dict[str, str] = {}  # a cursor get() found beside the validators, until asked
        self._reads = Coalescer(self._hgetall)
        self._writes: Coalescer[tuple[str, Validators], None] = Coalescer(self._hset, window=WRITE_WINDOW)

    async def _hgetall(self, urls: Sequence[str]) -> list[dict[bytes | str, bytes | str] | Exception]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for url in urls:
                pipe.hgetall(self.keys.http_validators(url))
            return list(await pipe.execute(raise_on_error=False))

    async def get(self, url: str) -> Validators | None:
        raw = await self._reads.call(url)
        self._cursor_read.pop(url, None)  # only this read's cursor may answer the next cursor()
        if not raw:
            self._read.pop(url, None)
            return None
        data = {_s(k): _s(v) for k, v in raw.items()}
        if data.get("cursor"):  # the same hash: the poll that asks for it next needs no read of its own
            self._cursor_read[url] = data["cursor"]
        found = Validators(data.get("etag") or None, data.get("last_modified") or None)
        self._read[url] = (found, time.monotonic())
        return found

    async def put(self, url: str, validators: Validators) -> None:
        """Store new validators; a 304 that repeats what was just read writes nothing.

        The read copy is trusted for a day, so the key's TTL is still renewed daily while
        a source keeps answering 304.
        """
        seen = self._read.get(url)
        if seen is not None and seen[0] == validators and time.monotonic() - seen[1] < REWRITE_AFTER:
            return
        await self._writes.call((url, validators))

    async def cursor(self, url: str) -> str | None:
        if url in self._cursor_read:
            return self._cursor_read.pop(url)
        raw = await self.redis.hget(self.keys.http_validators(url), "cursor")
        return _s(raw) if raw else None

    async def put_cursor(self, url: str, value: str) -> None:
        """Kept in the URL's validators hash, so the daily renewal of a source answering 304 keeps
        it too; a numeric cursor only moves forward (a `run --once` beside the worker, or an older
        poll committed late, cannot send the next poll back over posts already read)."""
        await self.redis.eval(_FORWARD, 1, self.keys.http_validators(url), value, VALIDATORS_TTL)

    async def _hset(self, puts: Sequence[tuple[str, Validators]]) -> list[Exception | None]:
        async with self.redis.pipeline(transaction=True) as pipe:
            for url, validators in puts:
                key = self.keys.http_validators(url)
                mapping: dict[FieldT, EncodableT] = {
                    "etag": validators.etag or "",
                    "last_modified": validators.last_modified or "",
                }
                pipe.hset(key, mapping=mapping)
                pipe.expire(key, VALIDATORS_TTL)
            replies = await pipe.execute(raise_on_error=False)
        out: list[Exception | None] = []
        for i in range(len(puts)):  # two replies per URL; either error fails that URL's caller only
            failed = [r for r in replies[2 * i : 2 * i + 2] if isinstance(r, Exception)]
            out.append(failed[0] if failed else None)
        return out


def _s(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
