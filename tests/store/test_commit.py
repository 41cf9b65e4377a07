"""Compare-and-apply batches: all writes or none, conflicts detected."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from tradewatch.errors import StoreError
from tradewatch.store.commit import Batch, CommitConflict


async def test_applies_when_unchanged(client: aioredis.Redis) -> None:
    """Checks that hold let every write land, stream entries included."""
    batch = Batch()
    batch.expect("k1", None)
    batch.set("k1", "v", 60_000)
    batch.xadd("s", {"a": "1"})
    ids = await batch.commit(client)
    assert len(ids) == 1
    assert await client.get("k1") == "v"
    assert await client.xlen("s") == 1


async def test_conflict_writes_nothing(client: aioredis.Redis) -> None:
    """A changed value aborts the whole batch before any write."""
    await client.set("k1", "theirs")
    batch = Batch()
    batch.expect("k1", None)
    batch.set("k2", "v", 60_000)
    batch.xadd("s", {"a": "1"})
    with pytest.raises(CommitConflict) as info:
        await batch.commit(client)
    assert info.value.key == "k1"
    assert await client.exists("k2", "s") == 0


async def test_capped_stream(client: aioredis.Redis) -> None:
    """`maxlen` keeps a log stream bounded."""
    for n in range(300):
        batch = Batch()
        batch.xadd("log", {"n": str(n)}, maxlen=100)
        await batch.commit(client)
    assert await client.xlen("log") < 300


async def test_unreachable_redis_is_store_error() -> None:
    """A commit against a dead server raises StoreError, not a redis-py exception."""
    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    batch = Batch()
    batch.set("k", "v", 1000)
    with pytest.raises(StoreError):
        await batch.commit(dead)
    await dead.aclose()


async def test_a_write_the_script_does_not_know_fails_before_any_write(client: aioredis.Redis) -> None:
    """A batch from a newer worker with a kind of write this script lacks fails as a whole
    (StoreError) instead of applying the writes it knows and silently skipping the other."""
    batch = Batch()
    batch.set("k1", "v", 60_000)
    batch.ops.append(["pexpire", 1, 60_000])
    with pytest.raises(StoreError, match="unknown write pexpire"):
        await batch.commit(client)
    assert await client.exists("k1") == 0
