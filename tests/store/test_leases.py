"""Per-source leases: one holder, renewal and release only by the holder, expiry frees it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import redis.asyncio as aioredis

from tests.store.helpers import stalls_until_cancelled, wait_for
from tradewatch.errors import StoreError
from tradewatch.polling import Poller
from tradewatch.store.keys import Keys
from tradewatch.store.leases import Leases

KEYS = Keys("tw-test")


async def test_one_holder_at_a_time(client: aioredis.Redis) -> None:
    """A second worker gets no lease while the first holds it, and gets it after release."""
    a, b = Leases(client, KEYS), Leases(client, KEYS)
    lease = await a.acquire("feed", 10_000)
    assert lease is not None
    assert await b.acquire("feed", 10_000) is None
    assert await a.acquire("other", 10_000) is not None
    assert await lease.release()
    assert await b.acquire("feed", 10_000) is not None


async def test_expired_lease_is_taken_and_old_holder_cannot_touch_it(client: aioredis.Redis) -> None:
    """After expiry another worker takes over; the stale holder can neither renew nor release it."""
    leases = Leases(client, KEYS)
    old = await leases.acquire("feed", 50)
    assert old is not None

    async def taken() -> bool:
        return await leases.acquire("feed", 10_000) is not None

    await wait_for(taken)
    assert not await old.renew()
    assert not await old.release()
    assert await leases.holder("feed") not in (None, old.token)


async def test_renew_extends(client: aioredis.Redis) -> None:
    """Renewing resets the TTL to the lease's length."""
    lease = await Leases(client, KEYS).acquire("feed", 1_000)
    assert lease is not None
    await client.pexpire(KEYS.lease("feed"), 10)
    assert await lease.renew()
    assert await client.pttl(KEYS.lease("feed")) > 500


async def test_held_renews_during_a_long_poll_and_ends_on_time(client: aioredis.Redis) -> None:
    """Inside `held()` the lease outlives its TTL; afterwards it ends at acquisition + TTL, not later."""
    leases = Leases(client, KEYS)
    lease = await leases.acquire("feed", 150)
    assert lease is not None
    async with lease.held():

        async def expired_if_not_renewed() -> bool:
            return (asyncio.get_running_loop().time() - started) > 0.4

        started = asyncio.get_running_loop().time()
        await wait_for(expired_if_not_renewed)
        assert await leases.holder("feed") == lease.token
    assert await leases.holder("feed") is None  # past acquisition + TTL: freed at once


async def test_finish_keeps_the_rest_of_the_interval(client: aioredis.Redis) -> None:
    """A quick poll leaves the lease until acquisition + TTL, so other workers skip this interval."""
    leases = Leases(client, KEYS)
    lease = await leases.acquire("feed", 60_000)
    assert lease is not None
    await lease.renew(600_000)
    await lease.finish()
    assert 0 < await client.pttl(KEYS.lease("feed")) <= 60_000


async def test_leaving_held_does_not_wait_on_a_renewal_that_swallowed_its_cancel(
    client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poll that ends while its lease renewal is in flight returns at once.

    redis-py can answer the renewal's cancellation with a connection error, which the
    renewal loop ignores (Redis may be down for a moment): the cancel must not get lost,
    or the poll, and that source's every later poll, would hang on leaving `held()`.
    """
    lease = await Leases(client, KEYS).acquire("s", 90)
    assert lease is not None
    renewing = asyncio.Event()
    error = StoreError("redis lease renew failed: Connection closed by server.")
    monkeypatch.setattr(lease, "renew", stalls_until_cancelled(renewing, error))

    async def poll() -> None:
        async with lease.held():
            await renewing.wait()

    await asyncio.wait_for(poll(), 5)


async def test_hold_keeps_the_lease_past_its_interval(client: aioredis.Redis) -> None:
    """A lease held for a server's Retry-After outlives its TTL, so no worker polls before then."""
    leases = Leases(client, KEYS)
    lease = await leases.acquire("busy", 100)
    assert lease is not None
    async with lease.held():
        lease.hold(60)
    assert 55_000 < await client.pttl(KEYS.lease("busy")) <= 60_000
    assert await leases.acquire("busy", 100) is None


async def test_a_first_try_that_meets_a_held_lease_moves_the_next_run_to_its_end(
    client: aioredis.Redis,
) -> None:
    """A restarted worker finds the lease its previous process left: the source's next run moves
    to that lease's end (and the interval counts from there), not a whole interval later; a hold
    longer than the interval (a backoff) is left to the schedule."""
    leases = Leases(client, KEYS)
    moved: dict[str, datetime] = {}

    def reschedule(source: str, seconds: float) -> bool:
        moved[f"poll:{source}"] = datetime.now(UTC) + timedelta(seconds=seconds)
        return True

    poller = SimpleNamespace(leases=leases, reschedule=reschedule)
    assert await leases.acquire("feed", 3_000) is not None  # the previous process's lease: 3 s left
    assert await leases.acquire("slow", 120_000) is not None  # a backoff hold beyond the interval
    before = datetime.now(UTC)
    for name in ("feed", "slow", "free"):
        spec = SimpleNamespace(name=name, every=timedelta(minutes=1))
        await Poller._retry_when_lease_ends(poller, spec)  # type: ignore[arg-type]
    assert list(moved) == ["poll:feed"]
    assert timedelta(seconds=2.5) < moved["poll:feed"] - before < timedelta(seconds=3 + 3.1)
