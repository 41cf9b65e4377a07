"""Leases: which worker polls a source this interval (SET NX PX with a random token).

Only the holder's token can renew or release a lease (checked in Lua), so a worker
that stalled past its TTL cannot cut short the lease another worker took since.
A worker that dies simply lets its lease expire; the next tick elsewhere takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import redis.asyncio as aioredis
import structlog

from tradewatch.errors import StoreError
from tradewatch.store.commit import redis_errors
from tradewatch.store.keys import Keys

__all__ = ["Lease", "Leases"]

log = structlog.get_logger(__name__)

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_SHORTEN = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) <= 0 then return redis.call('DEL', KEYS[1]) end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    """A held lease; `renew` extends it by its TTL, `release` frees it early."""

    def __init__(self, redis: aioredis.Redis, key: str, token: str, ttl_ms: int) -> None:
        self.redis = redis
        self.key = key
        self.token = token
        self.ttl_ms = ttl_ms
        self.acquired = time.monotonic()
        self.hold_until: float | None = None  # monotonic; set by `hold`

    def hold(self, seconds: float) -> None:
        """Keep the lease `seconds` from now when the block ends, so no worker polls the source
        before then (a server's long Retry-After); `finish` applies it."""
        self.hold_until = time.monotonic() + seconds

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[Lease]:
        """Keep the lease while the block runs (renewed every third of its TTL), then `finish()`.

        A poll that outlives its TTL stays the only one; a quick poll still leaves the
        lease to expire at acquisition + TTL, so the next interval's tick finds it free.
        """

        try:
            async with renewed(self.ttl_ms / 3000, self.renew, StoreError):
                yield self
        finally:
            with contextlib.suppress(StoreError):
                await self.finish()

    async def finish(self) -> None:
        """Let the lease end where it would have without renewals (acquisition + TTL), or now if
        past; or at the time `hold` asked for, when later."""
        now = time.monotonic()
        left = int(self.ttl_ms - (now - self.acquired) * 1000)
        if self.hold_until is not None:
            left = max(left, int((self.hold_until - now) * 1000))
        try:
            await self.redis.eval(_SHORTEN, 1, self.key, self.token, max(left, 0))
        except redis_errors as exc:
            raise StoreError(f"redis lease finish failed: {exc}") from exc

    async def renew(self, ttl_ms: int | None = None) -> bool:
        """False when the lease was lost (expired and maybe taken): stop acting as its holder."""
        try:
            ok = await self.redis.eval(_RENEW, 1, self.key, self.token, ttl_ms or self.ttl_ms)
        except redis_errors as exc:
            raise StoreError(f"redis lease renew failed: {exc}") from exc
        if not ok:
            log.warning("lease_lost", key=self.key)
        return bool(ok)

    async def release(self) -> bool:
        try:
            ok = await self.redis.eval(_RELEASE, 1, self.key, self.token)
        except redis_errors as exc:
            raise StoreError(f"redis lease release failed: {exc}") from exc
        return bool(ok)


@contextlib.asynccontextmanager
async def renewed(
    interval: float,
    renew: Callable[[], Awaitable[bool]],
    errors: type[Exception] | tuple[type[Exception], ...],
) -> AsyncIterator[None]:
    """Call `renew` every `interval` seconds while the block runs, until it returns False.

    `errors` (Redis down for a moment) are ignored: the next renewal tries again. A cancel
    that arrives mid-call can come back from redis-py as a connection error; the task's
    pending cancellation is checked after each call, so leaving the block never waits on
    a renewal loop that swallowed its own cancel.
    """

    async def loop() -> None:
        me = asyncio.current_task()
        while True:
            await asyncio.sleep(interval)
            try:
                if not await renew():
                    return
            except errors:
                pass
            if me is not None and me.cancelling():
                return

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class Leases:
    """Acquires per-source leases."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def acquire(self, source: str, ttl_ms: int) -> Lease | None:
        """The lease, or None when another worker holds it."""
        key = self.keys.lease(source)
        token = secrets.token_hex(12)
        try:
            ok = await self.redis.set(key, token, nx=True, px=max(int(ttl_ms), 1))
        except redis_errors as exc:
            raise StoreError(f"redis lease acquire failed: {exc}") from exc
        return Lease(self.redis, key, token, int(ttl_ms)) if ok else None

    async def remaining_ms(self, source: str) -> int:
        """Milliseconds until the source's lease ends (0: no lease, or one without expiry)."""
        try:
            left = await self.redis.pttl(self.keys.lease(source))
        except redis_errors as exc:
            raise StoreError(f"redis lease read failed: {exc}") from exc
        return max(int(left), 0)

    async def holder(self, source: str) -> str | None:
        """The current token (for the status page: is anyone polling this source?)."""
        value = await self.redis.get(self.keys.lease(source))
        return str(value) if value is not None else None
