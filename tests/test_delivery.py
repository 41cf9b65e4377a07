"""Delivery from the outbox against a real redis-server: ack after send, retries, dead letters, threads."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from typer.testing import CliRunner

from tests.store.helpers import Recorder, settings, stalls_until_cancelled, wait_for
from tradewatch.cli import app
from tradewatch.delivery import Delivery
from tradewatch.errors import DeliveryError, StoreError
from tradewatch.models import Alert
from tradewatch.notify import Notifier
from tradewatch.notify.guard import still_ours
from tradewatch.store.keys import Keys
from tradewatch.store.outbox import Entry, Outbox

KEYS = Keys("tw-test")


def alert(n: int, **over: Any) -> Alert:
    return Alert.model_validate({"id": f"a{n}", "rule": "r", "title": f"T{n}", "event_id": f"e{n}", **over})


def delivery(
    client: Redis, redis_url: str, notifiers: dict[str, Any], consumer: str = "w1", **over: Any
) -> Delivery:
    named: dict[str, Notifier] = notifiers
    return Delivery(settings(redis_url, **over), client, named, keys=KEYS, consumer=consumer)


async def test_drain_delivers_each_alert_once(client: Redis, redis_url: str) -> None:
    """Every queued alert reaches the notifier once; a second drain sends nothing."""
    outbox = Outbox(client, KEYS)
    for n in range(5):
        await outbox.enqueue_operator(alert(n))
    rec = Recorder()
    first = await delivery(client, redis_url, {"console": rec}).drain(5)
    second = await delivery(client, redis_url, {"console": rec}, consumer="w2").drain(5)
    assert rec.ids() == [f"a{n}" for n in range(5)]
    assert (first.delivered, first.pending, second.delivered) == (5, 0, 0)


async def test_duplicate_entry_of_one_alert_is_sent_once(client: Redis, redis_url: str) -> None:
    """Two entries with one idempotency key (an operator alert queued twice) deliver once."""
    outbox = Outbox(client, KEYS)
    await outbox.enqueue_operator(alert(1))
    await outbox.enqueue_operator(alert(1))
    rec = Recorder()
    result = await delivery(client, redis_url, {"console": rec}).drain(5)
    assert (rec.ids(), result.delivered, result.skipped) == (["a1"], 1, 1)


async def test_transient_failures_are_retried_within_drain(client: Redis, redis_url: str) -> None:
    """A receiver failing twice (Retry-After honoured) still gets the alert once within one drain."""
    await Outbox(client, KEYS).enqueue_operator(alert(1))
    rec = Recorder(fail_next=2, retry_after=0.05)
    result = await delivery(client, redis_url, {"console": rec}).drain(5)
    assert (rec.ids(), result.failed, result.delivered, result.pending) == (["a1"], 2, 1, 0)


async def test_failure_beyond_drain_budget_stays_queued(client: Redis, redis_url: str) -> None:
    """What still fails when the drain's time is up stays queued and goes out next run."""
    await Outbox(client, KEYS).enqueue_operator(alert(1))
    rec = Recorder(fail_next=1, retry_after=0.5)
    first = await delivery(client, redis_url, {"console": rec}).drain(0.1)
    assert (first.delivered, first.pending) == (0, 1)

    async def due() -> bool:
        return bool((await delivery(client, redis_url, {"console": rec}, consumer="w2").drain(0.1)).delivered)

    await wait_for(due)
    assert rec.ids() == ["a1"]


async def test_a_retry_an_earlier_run_scheduled_is_not_waited_for(client: Redis, redis_url: str) -> None:
    """`run --once` from cron waits out only its own retries: one an earlier run scheduled (not due
    yet) stays queued for a later run instead of holding this one for its backoff."""
    outbox = Outbox(client, KEYS)
    await outbox.enqueue_operator(alert(1))
    rec = Recorder(fail_next=1, retry_after=30)
    first = await delivery(client, redis_url, {"console": rec}).drain(0.1)
    assert (first.failed, first.pending) == (1, 1)
    await outbox.enqueue_operator(alert(2))
    loop = asyncio.get_running_loop()
    started = loop.time()
    second = await delivery(client, redis_url, {"console": rec}).drain(60)
    assert (second.delivered, second.failed, second.pending) == (1, 0, 1)
    assert rec.ids() == ["a2"]
    # nor once its own failure, retried, went out
    await outbox.enqueue_operator(alert(3))
    rec.fail_next, rec.retry_after = 1, 0.05
    third = await delivery(client, redis_url, {"console": rec}).drain(60)
    assert (third.delivered, third.failed, third.pending) == (1, 1, 1)
    assert rec.ids() == ["a2", "a3"]
    assert loop.time() - started < 30  # it did not sit out the earlier run's 30 s backoff


async def test_a_drain_trims_what_every_notifier_settled(client: Redis, redis_url: str) -> None:
    """`run --once` from cron never ran the worker's minutely trim, so its outbox grew with every
    alert ever sent; now a drain ends by dropping what every notifier settled, and keeps what one
    has still to send."""
    outbox = Outbox(client, KEYS)
    for n in range(3):
        await outbox.enqueue_operator(alert(n))
    await delivery(client, redis_url, {"console": Recorder(), "webhook": Recorder()}).drain(5)
    assert await client.xlen(KEYS.outbox()) == 0
    await outbox.enqueue_operator(alert(9))
    failing = Recorder(fail_next=1, retry_after=60)
    result = await delivery(client, redis_url, {"console": Recorder(), "webhook": failing}).drain(0.2)
    assert (result.delivered, result.pending) == (1, 1)
    assert await client.xlen(KEYS.outbox()) == 1  # the webhook's retry is still in it


async def test_permanent_failure_dead_letters_and_retry_redrives(client: Redis, redis_url: str) -> None:
    """A permanent error parks the alert; `retry_dead` re-drives it to that notifier only."""
    outbox = Outbox(client, KEYS)
    await outbox.enqueue_operator(alert(1))
    bad, good = Recorder(fail_next=1, permanent=True), Recorder()
    result = await delivery(client, redis_url, {"console": bad, "webhook": good}).drain(5)
    assert (result.dead, result.delivered) == (1, 1)
    [letter] = await outbox.dead()
    assert (letter.notifier, letter.alert.id, letter.attempts) == ("console", "a1", 1)
    assert await outbox.retry_dead() == 1
    again = await delivery(client, redis_url, {"console": bad, "webhook": good}).drain(5)
    assert (again.delivered, bad.ids(), good.ids()) == (1, ["a1"], ["a1"])
    assert await outbox.dead() == []


async def test_redriven_reply_threads_on_its_redriven_root(client: Redis, redis_url: str) -> None:
    """A root and its update both parked (the update first): re-driven together, the root goes
    first and the update threads on it, instead of posting unthreaded before it."""
    outbox = Outbox(client, KEYS)
    await outbox.ensure_group("console")
    await outbox.enqueue_operator(alert(1))
    await outbox.enqueue_operator(alert(2, kind="update", thread_of="a1"))
    root, reply = await outbox.read_new("console", "w0", 10, None)
    for entry in (reply, root):  # Slack down: the update's attempts ran out first
        await outbox.dead_letter("console", entry, "slack down", 8)
    assert [d.alert.id for d in await outbox.dead()] == ["a2", "a1"]
    assert await outbox.retry_dead() == 2
    # the root is queued first (a running worker reads it first), and no receipt says "dead"
    assert [a.id for _, a in reversed(await outbox.recent(2))] == ["a1", "a2"]
    assert await client.exists(KEYS.receipt("console", "a1"), KEYS.receipt("console", "a2")) == 0
    up = Recorder()
    await delivery(client, redis_url, {"console": up}).drain(5)
    assert up.ids() == ["a1", "a2"]
    assert up.sent[1][1] == {"ts": "a1"}


async def test_a_redrive_cut_short_changes_nothing(
    client: Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection drops while `alerts retry` writes: every letter stays parked with its
    "dead" receipt, so a second try re-drives root and reply together, in order."""
    outbox = Outbox(client, KEYS)
    await outbox.ensure_group("console")
    await outbox.enqueue_operator(alert(1))
    await outbox.enqueue_operator(alert(2, kind="update", thread_of="a1"))
    for entry in await outbox.read_new("console", "w0", 10, None):
        await outbox.dead_letter("console", entry, "slack down", 8)
    queued = await client.xlen(KEYS.outbox())

    async def dropped(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise RedisConnectionError("connection lost")

    with monkeypatch.context() as patch:
        patch.setattr(aioredis.client.Pipeline, "execute", dropped)
        with pytest.raises(RedisConnectionError):
            await outbox.retry_dead()
    assert [d.alert.id for d in await outbox.dead()] == ["a1", "a2"]
    assert await client.exists(KEYS.receipt("console", "a1"), KEYS.receipt("console", "a2")) == 2
    assert await client.xlen(KEYS.outbox()) == queued
    assert await outbox.retry_dead() == 2
    assert [a.id for _, a in reversed(await outbox.recent(2))] == ["a1", "a2"]


async def test_a_raised_reply_does_not_wait_where_its_root_never_went(client: Redis, redis_url: str) -> None:
    """The official notice raised a news story's event and added `email`; the story went only to
    Slack, so email has no thread to wait for and gets the reply at once."""
    outbox = Outbox(client, KEYS)
    reply = alert(
        2, kind="also", thread_of="a1", notify=["slack", "email"], root_notify=["slack"], raises=True
    )
    await outbox.enqueue_operator(reply)
    email = Recorder()
    result = await delivery(client, redis_url, {"email": email}).drain(5)
    assert (result.delivered, email.ids(), email.sent[0][1]) == (1, ["a2"], None)


async def test_backoff_of_a_long_streak_stays_at_the_cap(client: Redis, redis_url: str) -> None:
    """Thousands of attempts or waits (a large max_attempts) give max_backoff, not an overflow."""
    outbox = Outbox(client, KEYS)
    await outbox.ensure_group("console")
    await outbox.enqueue_operator(alert(1))
    [entry] = await outbox.read_new("console", "w1", 10, None)
    d = delivery(client, redis_url, {"console": Recorder()})
    assert 0.15 <= await d._retry("console", entry, 5000, None, waits=6000) <= 0.2


async def test_delivery_hints_ride_beside_the_alert_json(client: Redis) -> None:
    """`raises`, `first_poll`, `root_notify` travel in the entry, not in the alert's JSON, which
    an older worker (extra keys forbidden) would park as unreadable; a newer worker's unknown
    alert fields are ignored."""
    outbox = Outbox(client, KEYS)
    await outbox.ensure_group("console")
    await outbox.enqueue_operator(alert(1, first_poll=True, raises=True, root_notify=["slack"]))
    [(_, fields)] = await client.xrange(KEYS.outbox())
    assert set(json.loads(fields["alert"])) == {"id", "rule", "title", "event_id"}
    [entry] = await outbox.read_new("console", "w1", 10, None)
    assert (entry.alert.first_poll, entry.alert.raises, entry.alert.root_notify) == (True, True, ["slack"])
    newer = json.dumps({"id": "a9", "title": "T", "field_of_a_later_version": 1})
    await client.xadd(KEYS.outbox(), {"alert": newer, "to": ""})
    [later] = await outbox.read_new("console", "w1", 10, None)
    assert later.alert.id == "a9"


async def test_a_redriven_dead_letter_checks_history_first(client: Redis, redis_url: str) -> None:
    """The last attempt of a dead letter may have reached the receiver (its answer was lost):
    the re-drive is a redelivery, so the receiver's history check finds it and nothing is doubled."""

    class LostAnswer(Recorder):
        async def send(
            self, alert: Alert, thread: dict[str, str] | None = None, *, redelivery: bool = False
        ) -> dict[str, str]:
            receipt = await super().send(alert, thread, redelivery=redelivery)
            if self.calls == 1:  # stored by the receiver, then the answer was lost
                raise DeliveryError("read timed out", notifier=self.name)
            return receipt

    outbox = Outbox(client, KEYS)
    await outbox.enqueue_operator(alert(1))
    rec = LostAnswer()
    one_try = {"max_attempts": 1, "backoff": "0.05s", "max_backoff": "0.2s", "claim_idle": "0.3s"}
    result = await delivery(client, redis_url, {"console": rec}, delivery=one_try).drain(5)
    assert (result.dead, rec.ids()) == (1, ["a1"])
    assert await outbox.retry_dead() == 1
    again = await delivery(client, redis_url, {"console": rec}, delivery=one_try).drain(5)
    assert (again.delivered, rec.redeliveries, rec.ids()) == (1, 1, ["a1"])


async def test_max_attempts_dead_letters(client: Redis, redis_url: str) -> None:
    """After max_attempts transient failures the alert is parked, not dropped and not retried forever."""
    outbox = Outbox(client, KEYS)
    await outbox.enqueue_operator(alert(1))
    rec = Recorder(fail_next=100)
    result = await delivery(client, redis_url, {"console": rec}).drain(10)
    assert (result.failed, result.dead, rec.calls) == (3, 1, 4)
    assert [d.alert.id for d in await outbox.dead()] == ["a1"]


async def test_routing_by_notify(client: Redis, redis_url: str) -> None:
    """An alert goes to the notifiers its `notify` names; an empty list means all of them."""
    outbox = Outbox(client, KEYS)
    await outbox.enqueue_operator(alert(1, notify=["slack:critical"]))
    await outbox.enqueue_operator(alert(2))
    slack, console = Recorder(), Recorder()
    await delivery(client, redis_url, {"slack": slack, "console": console}).drain(5)
    assert (slack.ids(), console.ids()) == (["a1", "a2"], ["a2"])


async def test_digest_target_goes_to_the_email_recorder(client: Redis, redis_url: str) -> None:
    """`notify: [digest]` is delivered to the `email` notifier (which records the digest)."""
    await Outbox(client, KEYS).enqueue_operator(alert(1, notify=["digest"]))
    email, console = Recorder(), Recorder()
    await delivery(client, redis_url, {"email": email, "console": console}).drain(5)
    assert (email.ids(), console.ids()) == (["a1"], [])


async def test_replies_thread_on_the_root_receipt(client: Redis, redis_url: str) -> None:
    """An `also` reply is sent with the root alert's receipt as its thread."""
    outbox = Outbox(client, KEYS)
    await outbox.enqueue_operator(alert(1))
    await outbox.enqueue_operator(alert(2, kind="also", thread_of="a1"))
    rec = Recorder()
    await delivery(client, redis_url, {"console": rec}).drain(5)
    assert rec.sent[1][1] == {"ts": "a1"}


async def test_reply_waits_for_its_root(client: Redis, redis_url: str) -> None:
    """A reply read before its root was delivered waits and then threads on it."""
    outbox = Outbox(client, KEYS)
    await outbox.enqueue_operator(alert(2, kind="also", thread_of="a1"))
    await outbox.enqueue_operator(alert(1))
    rec = Recorder()
    await delivery(client, redis_url, {"console": rec}).drain(5)
    assert rec.ids() == ["a1", "a2"]
    assert rec.sent[1][1] == {"ts": "a1"}


class _SlowRoot(Recorder):
    """Refuses the root `a1` a few times (asking for a longer wait than the backoff) and then
    the reply's first sends: a receiver that comes back slowly."""

    root_refusals: int = 3
    reply_refusals: int = 2

    async def send(
        self, alert: Alert, thread: dict[str, str] | None = None, *, redelivery: bool = False
    ) -> dict[str, str]:
        if alert.id == "a1" and self.root_refusals:
            self.root_refusals -= 1
            raise DeliveryError("slack busy", notifier="console", retry_after=0.3)
        if alert.id == "a2" and self.reply_refusals:
            self.reply_refusals -= 1
            raise DeliveryError("slack busy", notifier="console")
        return await super().send(alert, thread, redelivery=redelivery)


async def test_reply_waits_out_its_roots_retries_without_using_its_attempts(
    client: Redis, redis_url: str
) -> None:
    """The root is retried for longer than the reply's backoff would last: the reply keeps
    waiting and then threads on it, and its own failed sends still get every attempt.

    Before, waiting used the reply's attempts: it was posted unthreaded before the root, and a
    single failed send then dead-lettered it."""
    outbox = Outbox(client, KEYS)
    await outbox.enqueue_operator(alert(1))
    await outbox.enqueue_operator(alert(2, kind="also", thread_of="a1"))
    rec = _SlowRoot()
    result = await delivery(client, redis_url, {"console": rec}).drain(10)
    assert rec.ids() == ["a1", "a2"]
    assert rec.sent[1][1] == {"ts": "a1"}
    assert (result.delivered, result.dead, result.pending) == (2, 0, 0)


async def test_run_delivers_until_stopped(client: Redis, redis_url: str) -> None:
    """The long-running consumer delivers new alerts as they come and stops on the event."""
    rec = Recorder()
    stop = asyncio.Event()
    task = asyncio.create_task(delivery(client, redis_url, {"console": rec}).run(stop))
    outbox = Outbox(client, KEYS)
    for n in range(3):
        await outbox.enqueue_operator(alert(n))
    await wait_for(lambda: len(rec.sent) == 3)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert rec.ids() == ["a0", "a1", "a2"]


async def test_a_restarted_worker_first_sends_what_it_had_read(client: Redis, redis_url: str) -> None:
    """A worker killed between reading a batch and sending it restarts under the same consumer
    name (a container restarted in place: same host name, pid 1): its own pending entries go
    out first, at once, instead of waiting for another worker's claim after `claim_idle`."""
    outbox = Outbox(client, KEYS)
    await outbox.ensure_group("console")
    for n in range(2):
        await outbox.enqueue_operator(alert(n))
    assert len(await outbox.read_new("console", "w1", 10, None)) == 2  # read, then the crash
    await outbox.enqueue_operator(alert(2))
    rec = Recorder()
    slow_claim = {"claim_idle": "1h"}  # no claim of idle entries could deliver them here
    stop = asyncio.Event()
    task = asyncio.create_task(delivery(client, redis_url, {"console": rec}, delivery=slow_claim).run(stop))
    await wait_for(lambda: len(rec.sent) == 3)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert rec.ids() == ["a0", "a1", "a2"]
    assert rec.redeliveries == 2  # they may have gone out before the crash: the history is checked
    assert await outbox.pending_count("console") == 0


async def test_stop_finishes_the_send_in_flight_and_starts_no_other(client: Redis, redis_url: str) -> None:
    """SIGTERM during a slow send: that send finishes, the rest of the batch is not started (the
    worker must exit inside its grace period) and stays pending, delivered later exactly once."""
    stop = asyncio.Event()
    outbox = Outbox(client, KEYS)
    for n in range(3):
        await outbox.enqueue_operator(alert(n))

    class Slow(Recorder):
        async def send(
            self, alert: Alert, thread: dict[str, str] | None = None, *, redelivery: bool = False
        ) -> dict[str, str]:
            stop.set()  # the worker is told to stop while this send runs
            await asyncio.sleep(0.05)
            return await super().send(alert, thread, redelivery=redelivery)

    slow = Slow()
    await asyncio.wait_for(delivery(client, redis_url, {"console": slow}).run(stop), 5)
    assert slow.ids() == ["a0"]
    assert await outbox.pending_count("console") == 2
    rec = Recorder()
    fast_claim = {"max_attempts": 4, "backoff": "0.05s", "max_backoff": "0.2s", "claim_idle": "0.01s"}
    await asyncio.sleep(0.02)
    await delivery(client, redis_url, {"console": rec}, consumer="w2", delivery=fast_claim).drain(5)
    assert rec.ids() == ["a1", "a2"]


async def test_pending_gauge_follows_delivery(client: Redis, redis_url: str) -> None:
    """While a receiver fails, the pending gauge shows the alert waiting, not a stale 0."""
    rec = Recorder(fail_next=100)
    d = delivery(client, redis_url, {"console": rec})
    readings: list[int] = []
    count = d.outbox.pending_count

    async def counted(group: str) -> int:
        readings.append(await count(group))
        return readings[-1]

    d.outbox.pending_count = counted  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(d.run(stop))
    await wait_for(lambda: readings == [0])  # housekeeping's first reading; its next is a minute away
    await Outbox(client, KEYS).enqueue_operator(alert(1))
    await wait_for(lambda: d.metrics.alerts_pending.labels("console")._value.get() == 1)
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_run_recreates_its_group_when_redis_lost_the_stream(client: Redis, redis_url: str) -> None:
    """Redis back without its data (no persistence, an old snapshot, a flush): the consumer group
    is made again and new alerts go out; before, delivery retried NOGROUP until a restart."""
    rec = Recorder()
    stop = asyncio.Event()
    task = asyncio.create_task(delivery(client, redis_url, {"console": rec}).run(stop))
    outbox = Outbox(client, KEYS)
    await outbox.enqueue_operator(alert(0))
    await wait_for(lambda: len(rec.sent) == 1)
    await client.delete(KEYS.outbox())  # the stream and its groups are gone
    await outbox.enqueue_operator(alert(1))
    await wait_for(lambda: len(rec.sent) == 2)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert rec.ids() == ["a0", "a1"]


async def test_dead_consumer_entries_are_claimed_without_resending(client: Redis, redis_url: str) -> None:
    """Entries a dead worker read (one sent, not acked) are claimed; the sent one is not sent twice."""
    outbox = Outbox(client, KEYS)
    await outbox.ensure_group("console")
    for n in range(2):
        await outbox.enqueue_operator(alert(n))
    rec = Recorder()
    taken = await outbox.read_new("console", "dead-worker", 10, None)
    await rec.send(taken[0].alert)  # the dead worker got as far as sending the first one
    stop = asyncio.Event()
    task = asyncio.create_task(delivery(client, redis_url, {"console": rec}, consumer="w2").run(stop))
    await wait_for(lambda: len(rec.sent) == 2 and rec.redeliveries == 2)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert rec.ids() == ["a0", "a1"]
    assert (await client.xpending(KEYS.outbox(), "console"))["pending"] == 0


class _Stalls(Recorder):
    """Stalls in its first send long enough for another worker to take the entry over, then,
    before posting, asks whether the entry is still its own (as Slack's 429 wait does)."""

    async def send(
        self, alert: Alert, thread: dict[str, str] | None = None, *, redelivery: bool = False
    ) -> dict[str, str]:
        if not self.calls:
            self.calls += 1
            await self.steal()
            await still_ours()
        return await super().send(alert, thread, redelivery=redelivery)

    async def steal(self) -> None:
        raise NotImplementedError


async def test_a_worker_that_lost_the_entry_while_stalled_does_not_send_it(
    client: Redis, redis_url: str
) -> None:
    """Another worker claimed the entry while this one stalled mid-send: this one sends nothing
    and leaves the entry to the other, which delivers it once."""
    outbox = Outbox(client, KEYS)
    await outbox.enqueue_operator(alert(1))
    rec = _Stalls()

    async def steal() -> None:
        [pending] = await client.xpending_range(KEYS.outbox(), "console", "-", "+", 1)
        await client.xclaim(KEYS.outbox(), "console", "w2", 0, [pending["message_id"]], justid=True)

    rec.steal = steal  # type: ignore[method-assign]
    first = await delivery(client, redis_url, {"console": rec}).drain(1)
    assert (first.delivered, first.failed, first.dead, rec.sent) == (0, 0, 0, [])
    second = await delivery(client, redis_url, {"console": rec}, consumer="w2").drain(5)
    assert (second.delivered, rec.ids()) == (1, ["a1"])


async def test_unreadable_entry_is_parked_not_fatal(client: Redis, redis_url: str) -> None:
    """A corrupt outbox entry goes to the dead-letter stream and the alerts after it still go out."""
    outbox = Outbox(client, KEYS)
    await client.xadd(KEYS.outbox(), {"alert": "{not json", "to": ""})
    await outbox.enqueue_operator(alert(1))
    rec = Recorder()
    result = await delivery(client, redis_url, {"console": rec}).drain(5)
    assert (rec.ids(), result.pending) == (["a1"], 0)
    [letter] = await outbox.dead()
    assert letter.alert.id.startswith("unreadable:")


def test_alerts_cli_lists_and_retries(redis_url: str, tmp_path: Path) -> None:
    """`alerts list` shows a dead letter; `alerts retry --all` puts it back in the outbox."""
    import redis

    config = tmp_path / "tradewatch.yaml"
    config.write_text(f"redis_url: {redis_url}\nkey_prefix: tw-test\n", encoding="utf-8")
    sync = redis.Redis.from_url(redis_url, decode_responses=True)
    dead_id = sync.xadd(
        KEYS.dead_letters(),
        {
            "alert": alert(7).model_dump_json(),
            "notifier": "console",
            "error": "boom",
            "attempts": "8",
            "entry": "1-0",
        },
    )
    runner = CliRunner()
    listed = runner.invoke(app, ["alerts", "list", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    assert f"{dead_id}\tconsole\tattempts=8" in listed.stdout
    assert runner.invoke(app, ["alerts", "retry", "--config", str(config)]).exit_code == 1
    retried = runner.invoke(app, ["alerts", "retry", "--all", "--config", str(config)])
    assert retried.exit_code == 0, retried.output
    assert sync.xlen(KEYS.dead_letters()) == 0
    [(_, fields)] = sync.xrange(KEYS.outbox())
    assert fields["to"] == "console"
    sync.close()


async def test_trim_keeps_pending_and_unread_entries(client: Redis, redis_url: str) -> None:
    """Trimming drops only entries every group settled; pending and unread ones stay."""
    outbox = Outbox(client, KEYS)
    for n in range(4):
        await outbox.enqueue_operator(alert(n))
    await outbox.ensure_group("console")
    await outbox.ensure_group("slack")
    rec = Recorder()
    await delivery(client, redis_url, {"console": rec}).drain(5)  # console settled all four
    taken = await outbox.read_new("slack", "w9", 2, None)  # slack read two, settled none
    await outbox.skip("slack", [taken[0].id])
    assert await outbox.trim() == 1
    assert await client.xlen(KEYS.outbox()) == 3


async def test_due_retry_is_taken_by_one_claimer_only(client: Redis, redis_url: str) -> None:
    """A due retry that a claimer also finds idle is delivered once: the schedule decides who takes it."""
    outbox = Outbox(client, KEYS)
    await outbox.ensure_group("console")
    await outbox.enqueue_operator(alert(1))
    [entry] = await outbox.read_new("console", "w-old", 10, None)
    await outbox.defer("console", entry.id, 1, 0)  # due long ago
    assert await outbox.claimable("console", entry.id, 10**13)  # the claimer took it off the schedule...
    assert await outbox.take_due("console", "w-new", 10**13) == []  # ...so the retry loop does not too
    await outbox.defer("console", entry.id, 1, 10**14)
    assert not await outbox.claimable("console", entry.id, 10**13)


async def test_a_taken_due_retry_is_owned_before_any_claimer_sees_it(client: Redis) -> None:
    """The retry loop takes due entries off the schedule and claims them in one step. Before, it
    only took them off, and claimed each when its turn came: meanwhile a dead-worker claimer found
    them idle and unscheduled, sent them, and the retry loop's claim then sent them a second time."""
    outbox = Outbox(client, KEYS)
    await outbox.ensure_group("console")
    for i in (1, 2):
        await outbox.enqueue_operator(alert(i))
    entries = await outbox.read_new("console", "w-old", 10, None)
    for entry in entries:
        await outbox.defer("console", entry.id, 1, 0)
    await asyncio.sleep(0.1)  # idle past the claimer's threshold below
    taken = await outbox.take_due("console", "w-x", 10**13)
    assert [e.id for e in taken] == [e.id for e in entries]
    assert all(e.redelivery for e in taken)  # a retry: the notifier's history check runs
    assert await outbox.claim_idle("console", "w-y", 50) == []  # owned, idle reset: not the claimer's
    assert (await outbox.begin("console", "w-x", taken[1])).ours


async def test_a_due_retry_deleted_from_the_stream_is_settled(client: Redis) -> None:
    """An entry deleted by hand while it waited for its retry is acknowledged, not left pending
    off the schedule (Redis 6.2 answers XCLAIM with nil for it)."""
    outbox = Outbox(client, KEYS)
    await outbox.ensure_group("console")
    await outbox.enqueue_operator(alert(1))
    [entry] = await outbox.read_new("console", "w-old", 10, None)
    await outbox.defer("console", entry.id, 1, 0)
    await client.xdel(KEYS.outbox(), entry.id)
    assert await outbox.take_due("console", "w-x", 10**13) == []
    assert (await client.xpending(KEYS.outbox(), "console"))["pending"] == 0
    assert await outbox.claim_idle("console", "w-y", 0) == []


async def test_drain_without_redis_is_a_store_error(redis_url: str) -> None:
    """`drain` against an unreachable Redis raises StoreError, not a redis-py error."""
    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    with pytest.raises(StoreError):
        await delivery(dead, redis_url, {"console": Recorder()}).drain(1)
    await dead.aclose()


async def test_heartbeat_stops_when_redis_turns_its_cancel_into_an_error(
    client: Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A send that ends while the claim renewal is in flight must not wait on it for ever.

    redis-py can turn the cancellation of a command into a connection error; the heartbeat
    swallows those (Redis may be down), and once swallowed the cancel was lost and the
    delivery of every later alert to that notifier waited behind it.
    """
    d = delivery(client, redis_url, {"console": Recorder()}, delivery={"claim_idle": "0.03s"})
    renewing = asyncio.Event()
    keep = stalls_until_cancelled(renewing, RedisConnectionError("Connection closed by server."))
    monkeypatch.setattr(d.outbox, "keep", keep)
    entry = Entry(id="1-0", alert=alert(1), to=["console"])

    async def slow_send() -> None:
        async with d._heartbeat("console", entry):
            await renewing.wait()  # the send ends while a renewal is in flight

    await asyncio.wait_for(slow_send(), 5)
