"""Source health in a real Redis: records, and once-only failing/recovered transitions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from tradewatch.models import Alert
from tradewatch.observe import Metrics
from tradewatch.store.health import SourceHealth
from tradewatch.store.keys import Keys
from tradewatch.store.validators import RedisValidatorCache, Validators
from tradewatch.worker import Worker


async def test_failing_raised_once_and_recovered_once(client: aioredis.Redis) -> None:
    """The operator hears 'failing' exactly when the streak reaches the threshold, and 'recovered' once."""
    health = SourceHealth(client, Keys("tw"))
    failures = [await health.record_failure("mofcom", f"HTTP 500 #{i}", threshold=3) for i in range(5)]
    assert [f.streak for f in failures] == [1, 2, 3, 4, 5]
    seen = [f.transition for f in failures]
    assert [t.kind if t else None for t in seen] == [None, None, "failing", None, None]
    assert seen[2] is not None
    assert seen[2].consecutive_failures == 3
    assert seen[2].error == "HTTP 500 #2"
    back = await health.record_success("mofcom", status=200, documents=4, duration=0.25, next_poll=None)
    assert back is not None
    assert back.kind == "recovered"
    assert back.consecutive_failures == 5
    again = await health.record_success("mofcom", status=304, documents=0, duration=0.1, next_poll=None)
    assert again is None


async def test_a_transition_queues_its_operator_alert_in_the_same_step(client: aioredis.Redis) -> None:
    """The script that records "failing" (raised once) also queues its operator alert, so no
    crash or Redis error between two steps can record the one and lose the other."""
    keys = Keys("tw")
    health = SourceHealth(client, keys)
    for i in range(2):
        await health.record_failure("mofcom", f"HTTP 500 #{i}", threshold=2, url="https://www.mofcom.gov.cn/")
    await health.record_success("mofcom", status=200, documents=1, duration=0.1, next_poll=None, url="u")
    entries = await client.xrange(keys.outbox())
    alerts = [Alert.model_validate_json(fields["alert"]) for _, fields in entries]
    assert [(a.kind, a.severity, a.rule_title) for a in alerts] == [
        ("operator", "warning", "Source mofcom is failing"),
        ("operator", "info", "Source mofcom recovered"),
    ]
    assert alerts[0].title == "mofcom: 2 failed polls in a row; last error: HTTP 500 #1"
    assert alerts[0].url == "https://www.mofcom.gov.cn/"
    assert alerts[0].tags == ["operator"]
    assert alerts[0].id.startswith("operator:mofcom:failing:")


async def test_short_streak_never_alerts(client: aioredis.Redis) -> None:
    """Failures below the threshold followed by a success raise nothing."""
    health = SourceHealth(client, Keys("tw"))
    assert (await health.record_failure("fr", "timed out", threshold=3)).transition is None
    assert await health.record_success("fr", status=200, documents=1, duration=1.0, next_poll=None) is None


async def test_records_read_back(client: aioredis.Redis) -> None:
    """all() returns every source's record with typed fields."""
    health = SourceHealth(client, Keys("tw"))
    nxt = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    await health.record_success("a", status=200, documents=3, duration=0.5, next_poll=nxt)
    await health.record_success("a", status=200, documents=2, duration=0.4, next_poll=nxt)
    await health.record_success("a", status=304, documents=0, duration=0.1, next_poll=nxt)  # list unread
    await health.record_failure("b", "connection failed", threshold=1)
    records = await health.all()
    assert set(records) == {"a", "b"}
    a, b = records["a"], records["b"]
    assert (a.items_seen, a.last_documents, a.last_status, a.next_poll) == (5, 2, 304, nxt)
    assert a.last_success is not None
    assert a.consecutive_failures == 0
    assert not a.failing
    assert b.last_error == "connection failed"
    assert b.consecutive_failures == 1
    assert b.failing
    assert b.last_error_at is not None
    assert b.last_success is None


async def test_redis_validator_cache_round_trip(client: aioredis.Redis) -> None:
    """ETag and Last-Modified survive in Redis with a TTL."""
    cache = RedisValidatorCache(client, Keys("tw"))
    assert await cache.get("https://x/feed") is None
    await cache.put("https://x/feed", Validators('"e"', None))
    assert await cache.get("https://x/feed") == Validators('"e"', None)
    assert await client.ttl(Keys("tw").http_validators("https://x/feed")) > 0


async def test_concurrent_polls_share_pipelines_and_keep_their_own_answers(client: aioredis.Redis) -> None:
    """Validators and health of many polls at once: batched in Redis, yet each poll gets its own values."""
    keys = Keys("tw")
    cache = RedisValidatorCache(client, keys)
    urls = [f"https://x/{i}" for i in range(40)]
    await asyncio.gather(*(cache.put(u, Validators(f'"{i}"', None)) for i, u in enumerate(urls)))
    found = await asyncio.gather(*(cache.get(u) for u in [*urls, "https://x/none"]))
    assert found == [Validators(f'"{i}"', None) for i in range(40)] + [None]
    assert all(await asyncio.gather(*(client.ttl(keys.http_validators(u)) for u in urls)))

    health = SourceHealth(client, keys)
    await health.record_failure("s3", "boom", threshold=1)  # s3 is failing: its success is a recovery
    results = await asyncio.gather(
        *(
            health.record_success(f"s{i}", status=200, documents=i, duration=0.1, next_poll=None)
            for i in range(6)
        )
    )
    assert [t.kind if t else None for t in results] == [None, None, None, "recovered", None, None]
    records = await health.all()
    assert sorted(records) == [f"s{i}" for i in range(6)]
    assert [records[f"s{i}"].last_documents for i in range(6)] == list(range(6))


async def test_one_broken_key_in_a_batch_fails_only_its_own_poll(client: aioredis.Redis) -> None:
    """A key of the wrong type (say, a collision) fails its poll's health record, not its neighbours'."""
    keys = Keys("tw-broken")
    await client.set(keys.source_health("b"), "not a hash")
    health = SourceHealth(client, keys)
    results = await asyncio.gather(
        *(
            health.record_success(name, status=304, documents=0, duration=0.1, next_poll=None)
            for name in ("a", "b", "c")
        ),
        return_exceptions=True,
    )
    assert results[0] is None
    assert results[2] is None
    assert isinstance(results[1], Exception)
    assert "WRONGTYPE" in str(results[1])
    assert sorted(await health.all()) == ["a", "c"]

    cache = RedisValidatorCache(client, keys)
    await client.set(keys.http_validators("https://x/b"), "not a hash")
    puts = await asyncio.gather(
        *(cache.put(f"https://x/{n}", Validators(f'"{n}"', None)) for n in "abc"), return_exceptions=True
    )
    assert puts[0] is None
    assert puts[2] is None
    assert isinstance(puts[1], Exception)
    assert await cache.get("https://x/c") == Validators('"c"', None)


async def test_every_worker_reports_source_up_from_the_shared_health(client: aioredis.Redis) -> None:
    """A worker that polled a source once, before another took its lease, reports what that other
    worker recorded since, not its own old 1 (a `max by (source)` alert would never fire)."""
    health = SourceHealth(client, Keys("tw"))
    metrics = Metrics(CollectorRegistry())
    metrics.source_up.labels("mofcom").set(1)  # this worker's own poll, long ago
    specs = [SimpleNamespace(name=n) for n in ("mofcom", "fedreg", "never-polled")]
    worker = SimpleNamespace(health=health, metrics=metrics, _specs=specs)
    await health.record_failure("mofcom", "HTTP 500", threshold=3)  # another worker's poll
    await health.record_success("fedreg", status=200, documents=1, duration=0.1, next_poll=None)
    await Worker._refresh_source_up(worker)  # type: ignore[arg-type]
    assert metrics.source_up.labels("mofcom")._value.get() == 0
    assert metrics.source_up.labels("fedreg")._value.get() == 1
    assert "never-polled" not in {s.labels["source"] for m in metrics.source_up.collect() for s in m.samples}
