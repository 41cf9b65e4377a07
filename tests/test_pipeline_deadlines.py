"""The pipeline feeds the deadline book and the English lead line (real redis-server)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from redis.asyncio import Redis

from tests.store.helpers import NOW, Clock, doc, result, rulebook, settings, spec
from tradewatch.models import Alert
from tradewatch.pipeline import Pipeline
from tradewatch.store.keys import Keys
from tradewatch.store.outbox import Outbox
from tradewatch.store.reminders import Reminders

KEYS = Keys("tw-deadlines")

RULES = """
rules:
  - id: tariff-effective
    title: Tariff change with an effective date
    tags: [tariff-change]
    severity: critical
    match: {any: [tariff*, 关税]}
    extract: [effective_date, rates, announcement]
    deadline_from: effective_date
    remind: [7d, 1d]
  - id: truce-extension
    title: Truce extended
    tags: [truce]
    severity: warning
    match: {all: [{any: [truce]}, {any: [extend*]}]}
deadlines:
  - id: truce-expiry
    title: Truce expires unless extended
    due: 2025-11-10T00:01:00-05:00
    remind: [7d, 1d]
    tags: [truce]
    cancelled_by: [truce-extension]
"""


async def test_match_derives_replans_and_cancels_deadlines(
    client: Redis, redis_url: str, tmp_path: Path
) -> None:
    """An effective date becomes a deadline, a later report moves it, and an extension resolves the expiry."""
    book = rulebook(tmp_path, RULES)
    pipe = Pipeline(settings(redis_url), client, book, keys=KEYS, now=Clock())
    reminders = Reminders(client, KEYS, settings(redis_url), book)
    first = doc("t1", "New tariff on magnets effective November 20, 2025", url="https://example.org/t1")
    await pipe.process(spec(), result(first))
    derived = [d for d in await reminders.deadlines(NOW) if d.id != "truce-expiry"]
    assert [d.due.date().isoformat() for d in derived] == ["2025-11-20"]

    moved = doc("t1", "New tariff on magnets effective December 1, 2025", url="https://example.org/t1")
    await pipe.process(spec(), result(moved))
    derived = [d for d in await reminders.deadlines(NOW) if d.id != "truce-expiry"]
    assert [d.due.date().isoformat() for d in derived] == ["2025-12-01"]

    expiry = next(d for d in await reminders.deadlines(NOW) if d.id == "truce-expiry")
    assert not expiry.resolved
    await pipe.process(spec(), result(doc("x1", "US and China extend the tariff truce by 90 days")))
    expiry = next(d for d in await reminders.deadlines(NOW) if d.id == "truce-expiry")
    assert expiry.resolved_by == "truce-extension"


async def test_baselined_extension_still_resolves_the_expiry(
    client: Redis, redis_url: str, tmp_path: Path
) -> None:
    """A truce extension seen only as history on a first poll resolves the deadline without an alert."""
    book = rulebook(tmp_path, RULES)
    pipe = Pipeline(settings(redis_url), client, book, keys=KEYS, now=Clock())
    old = doc("x0", "Truce extended to November", published_at=NOW - timedelta(days=30))
    counts = await pipe.process(spec(), result(old))
    assert counts.alerts == 0
    reminders = Reminders(client, KEYS, settings(redis_url), book)
    expiry = next(d for d in await reminders.deadlines(NOW) if d.id == "truce-expiry")
    assert expiry.resolved_by == "truce-extension"


async def test_baselined_match_still_derives_its_deadline(
    client: Redis, redis_url: str, tmp_path: Path
) -> None:
    """A first poll's old item matching a deadline rule is not alerted, but its effective date is kept."""
    book = rulebook(tmp_path, RULES)
    pipe = Pipeline(settings(redis_url), client, book, keys=KEYS, now=Clock())
    old = doc("t0", "Tariff on magnets effective November 20, 2025", published_at=NOW - timedelta(days=30))
    counts = await pipe.process(spec(), result(old))
    assert (counts.baseline, counts.matched, counts.alerts) == (1, 1, 0)
    reminders = Reminders(client, KEYS, settings(redis_url), book)
    derived = [d for d in await reminders.deadlines(NOW) if d.id != "truce-expiry"]
    assert [d.due.date().isoformat() for d in derived] == ["2025-11-20"]


async def test_a_changed_baselined_item_still_moves_and_resolves_deadlines(
    client: Redis, redis_url: str, tmp_path: Path
) -> None:
    """An item recorded without an alert (baselined) and later edited stays quiet, but the date it
    moves moves its deadline, and an extension added to it resolves the expiry. Before, a changed
    item that had not alerted was never matched again."""
    book = rulebook(tmp_path, RULES)
    pipe = Pipeline(settings(redis_url), client, book, keys=KEYS, now=Clock())
    old = NOW - timedelta(days=30)
    first = doc("t0", "Tariff on magnets effective November 20, 2025", published_at=old)
    assert (await pipe.process(spec(), result(first))).baseline == 1
    edited = doc(
        "t0",
        "Tariff on magnets effective December 1, 2025",
        text="The truce was extended as well.",
        published_at=old,
    )
    counts = await pipe.process(spec(), result(edited))
    assert (counts.updated, counts.alerts) == (1, 0)
    reminders = Reminders(client, KEYS, settings(redis_url), book)
    found = await reminders.deadlines(NOW)
    assert [d.due.date().isoformat() for d in found if d.id != "truce-expiry"] == ["2025-12-01"]
    assert next(d for d in found if d.id == "truce-expiry").resolved_by == "truce-extension"


async def test_chinese_alert_carries_an_english_lead_line(
    client: Redis, redis_url: str, tmp_path: Path
) -> None:
    """A Chinese document's alert starts with an English line built from the glossary and facts."""
    book = rulebook(tmp_path, RULES)
    pipe = Pipeline(settings(redis_url), client, book, keys=KEYS, now=Clock())
    zh = doc("z1", "国务院关税税则委员会公告2025年第4号 关于对原产于美国的进口商品加征34%关税的公告")
    await pipe.process(spec(), result(zh))
    alerts: list[Alert] = [a for _, a in await Outbox(client, KEYS).recent(10)]
    assert len(alerts) == 1
    assert alerts[0].lang == "zh"
    assert "Announcement No. 4 of 2025" in alerts[0].lead
    assert "34%" in alerts[0].lead
