"""The outbox stream's counts as operators see them (real redis-server)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.asyncio import Redis

from tradewatch.models import Alert
from tradewatch.store.keys import Keys
from tradewatch.store.outbox import Outbox, entry_fields

KEYS = Keys("tw-outbox")


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    c = aioredis.from_url(redis_url, decode_responses=True)
    yield c
    await c.aclose()


async def test_pending_counts_only_entries_addressed_to_the_notifier(client: Redis) -> None:
    """A re-driven alert for slack is pending for slack, not for webhook."""
    outbox = Outbox(client, KEYS)
    for group in ("slack", "webhook"):
        await outbox.ensure_group(group)
    await client.xadd(KEYS.outbox(), entry_fields(Alert(id="a1", title="T"), ["slack"]))
    await client.xadd(KEYS.outbox(), entry_fields(Alert(id="a2", title="T"), []))
    assert await outbox.pending_count("slack") == 2
    assert await outbox.pending_count("webhook") == 1
