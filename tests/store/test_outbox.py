"""The outbox stream's counts as operators see them (real redis-server)."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from tradewatch.models import Alert
from tradewatch.store import outbox as outbox_module
from tradewatch.store.keys import Keys
from tradewatch.store.outbox import Outbox, entry_fields

KEYS = Keys("tw-outbox")


async def test_pending_counts_only_entries_addressed_to_the_notifier(client: Redis) -> None:
    """A re-driven alert for slack is pending for slack, not for webhook."""
    outbox = Outbox(client, KEYS)
    for group in ("slack", "webhook"):
        await outbox.ensure_group(group)
    await client.xadd(KEYS.outbox(), entry_fields(Alert(id="a1", title="T"), ["slack"]))
    await client.xadd(KEYS.outbox(), entry_fields(Alert(id="a2", title="T"), []))
    assert await outbox.pending_count("slack") == 2
    assert await outbox.pending_count("webhook") == 1


async def test_begin_reads_receipt_ownership_attempts_and_parent_in_one_call(client: Redis) -> None:
    """What a consumer checks before a send: delivered already? still mine? tries so far? root's receipt?"""
    keys = Keys("tw-begin")
    outbox = Outbox(client, keys)
    await outbox.ensure_group("slack")
    await client.xadd(keys.outbox(), entry_fields(Alert(id="root", title="R")))
    await client.xadd(keys.outbox(), entry_fields(Alert(id="reply", title="R2", thread_of="root")))
    root, reply = await outbox.read_new("slack", "w1", 10, None)

    first = await outbox.begin("slack", "w1", root)
    assert (first.previous, first.ours, first.attempts, first.parent) == (None, True, 0, None)
    assert not (await outbox.begin("slack", "w2", root)).ours, "another consumer's entry is not yours"

    waiting = await outbox.begin("slack", "w1", reply)
    assert waiting.parent is None, "the root is not delivered yet"
    await outbox.defer("slack", reply.id, 2, 0, waits=3)
    await outbox.delivered("slack", root, {"channel": "C1", "ts": "1.5"})
    again = await outbox.begin("slack", "w1", reply)
    assert (again.attempts, again.waits) == (2, 3), "waits for the root are counted apart from sends"
    assert again.parent == '{"channel": "C1", "ts": "1.5"}'
    done = await outbox.begin("slack", "w1", root)
    assert done.previous == '{"channel": "C1", "ts": "1.5"}'
    assert not done.ours, "acknowledged: no longer pending for anyone"


async def test_a_delivered_reply_renews_its_roots_receipt(client: Redis) -> None:
    """A thread that keeps getting replies keeps its root's receipt, so later replies still thread."""
    keys = Keys("tw-renew")
    outbox = Outbox(client, keys)
    await outbox.ensure_group("slack")
    await client.xadd(keys.outbox(), entry_fields(Alert(id="reply", title="R2", thread_of="root")))
    (reply,) = await outbox.read_new("slack", "w1", 10, None)
    await client.set(keys.receipt("slack", "root"), '{"ts": "1.5"}', px=60_000)
    await outbox.delivered("slack", reply, {"ts": "2.5"})
    assert await client.pttl(keys.receipt("slack", "root")) > 86_400_000


async def test_a_pending_entry_deleted_from_the_stream_is_settled(client: Redis) -> None:
    """An entry a worker had read is gone from the stream (trimmed by hand, XDEL): the restarted
    worker finds nothing to send and acknowledges it, so it is not pending for ever."""
    outbox = Outbox(client, KEYS)
    await outbox.ensure_group("slack")
    await outbox.enqueue_operator(Alert(id="a1", title="T"))
    [entry] = await outbox.read_new("slack", "w1", 10, None)
    await client.xdel(KEYS.outbox(), entry.id)
    assert await outbox.pending_count("slack") == 1
    assert await outbox.read_own_pending("slack", "w1", 10) == []
    assert await outbox.pending_count("slack") == 0


async def test_trim_forgets_consumers_of_exited_workers(
    client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consumer with nothing pending and idle past CONSUMER_IDLE_MS (an exited worker) is dropped
    from the group; one with an entry still pending is kept, whatever its idle time."""
    monkeypatch.setattr(outbox_module, "CONSUMER_IDLE_MS", 0)
    outbox = Outbox(client, KEYS)
    await outbox.ensure_group("slack")
    for n in range(2):
        await outbox.enqueue_operator(Alert(id=f"a{n}", title="T"))
    [done] = await outbox.read_new("slack", "gone", 1, None)
    await client.xack(KEYS.outbox(), "slack", done.id)
    await outbox.read_new("slack", "busy", 1, None)  # still pending: its worker may come back
    await asyncio.sleep(0.01)
    await outbox.trim()
    names = {str(c["name"]) for c in await client.xinfo_consumers(KEYS.outbox(), "slack")}
    assert names == {"busy"}
