"""HTTP validators (ETag / Last-Modified) per URL, so an unchanged page costs a 304 and no parsing.

Kept in Redis for the worker (shared by every worker that may take over a source's
lease) and in memory for one-off commands such as `sources test`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx
import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from tradewatch.store.keys import VALIDATORS_TTL, Keys

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


class MemoryValidatorCache:
    """Validators for one process's lifetime."""

    def __init__(self) -> None:
        self._data: dict[str, Validators] = {}

    async def get(self, url: str) -> Validators | None:
        return self._data.get(url)

    async def put(self, url: str, validators: Validators) -> None:
        self._data[url] = validators


class RedisValidatorCache:
    """Validators in a Redis hash per URL, with a TTL so removed sources leave nothing behind."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def get(self, url: str) -> Validators | None:
        raw = await self.redis.hgetall(self.keys.http_validators(url))
        if not raw:
            return None
        data = {_s(k): _s(v) for k, v in raw.items()}
        return Validators(data.get("etag") or None, data.get("last_modified") or None)

    async def put(self, url: str, validators: Validators) -> None:
        key = self.keys.http_validators(url)
        mapping: dict[FieldT, EncodableT] = {
            "etag": validators.etag or "",
            "last_modified": validators.last_modified or "",
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, VALIDATORS_TTL)
            await pipe.execute()


def _s(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
