"""Seen records: parsing, refresh rule, the one-round-trip lookup."""

from __future__ import annotations

import redis.asyncio as aioredis

from tradewatch.models import Document
from tradewatch.store.keys import SEEN_REFRESH_DAYS, Keys
from tradewatch.store.seen import BASELINE, NO_EVENT, SeenRecord, SeenStore, item_digest


def test_record_round_trip_and_markers() -> None:
    """A record dumps and parses back; markers are not alerted events."""
    record = SeenRecord("abc", "ev1", 20000)
    assert SeenRecord.parse(record.dump()) == record
    assert record.alerted
    assert not SeenRecord("abc", BASELINE, 1).alerted
    assert not SeenRecord("abc", NO_EVENT, 1).alerted


def test_refresh_only_when_stale() -> None:
    """An unchanged item's TTL is rewritten only every SEEN_REFRESH_DAYS."""
    record = SeenRecord("abc", NO_EVENT, 100)
    assert not record.stale(100 + SEEN_REFRESH_DAYS - 1)
    assert record.stale(100 + SEEN_REFRESH_DAYS)


def test_item_digest_is_short_and_stable() -> None:
    """Any item id maps to a fixed 20-hex key part."""
    long_id = "https://example.com/" + "x" * 5000
    assert item_digest(long_id) == item_digest(long_id)
    assert len(item_digest(long_id)) == 20


async def test_lookup_is_one_round_trip(client: aioredis.Redis) -> None:
    """A poll's seen-check is a single MGET whatever the number of items."""
    keys = Keys("tw-test")
    store = SeenStore(client, keys)
    docs = [Document(id=f"i{n}", title="t") for n in range(200)]
    await client.set(store.key("feed", docs[3]), SeenRecord("h", NO_EVENT, 1).dump())
    before = int((await client.info("stats"))["total_commands_processed"])
    found = await store.lookup("feed", docs)
    after = int((await client.info("stats"))["total_commands_processed"])
    assert after - before == 2  # the MGET and the first INFO
    assert not found.polled
    assert [i for i in range(200) if found.record(i) is not None] == [3]
