"""Deadlines and reminders: rule-file and derived deadlines, exactly-once reminders, ICS, the CLI listing."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
import time_machine
from icalendar import Calendar

from tradewatch.config import Settings
from tradewatch.deadlines import due_from_facts, format_listing, ics_calendar, reminders_of
from tradewatch.matching import Rulebook, load_rulebook
from tradewatch.models import Alert, Deadline, Document, Match
from tradewatch.store.keys import Keys
from tradewatch.store.reminders import Reminders

DUE = datetime(2025, 11, 10, 5, 1, tzinfo=UTC)  # 2025-11-10T00:01:00-05:00

RULES = """
rules:
  - id: us-china-truce-extension
    title: US–China truce extended
    tags: [truce]
    severity: critical
    match: {any: [truce extended, extend the truce]}
    extract: [effective_date]
    deadline_from: effective_date
    remind: [7d, 1d]
    notify: [console]
  - id: mofcom-export-control
    title: MOFCOM export controls
    tags: [export-control]
    severity: warning
    match: {any: [export control]}
    extract: [effective_date]
    deadline_from: effective_date
    remind: [3d]
deadlines:
  - id: us-china-tariff-truce-2025-11
    title: US–China tariff truce expires unless extended
    due: 2025-11-10T00:01:00-05:00
    remind: [30d, 7d, 1d, 2h]
    tags: [truce]
    notify: [console]
    cancelled_by: [us-china-truce-extension]
"""


@pytest.fixture
def rulebook(tmp_path: Path) -> Rulebook:
    """A rules folder with one file deadline and two rules that derive deadlines."""
    (tmp_path / "truce.yaml").write_text(RULES, encoding="utf-8")
    return load_rulebook(tmp_path)


def _reminders(redis: aioredis.Redis, rulebook: Rulebook, **settings: object) -> Reminders:
    return Reminders(redis, Keys("t"), Settings.model_validate({"timezone": "UTC", **settings}), rulebook)


async def test_each_reminder_fires_once_at_its_offset(redis: aioredis.Redis, rulebook: Rulebook) -> None:
    """Ticking hourly through the month, each offset fires once, at its time, not late."""
    start = DUE - timedelta(days=31)
    reminders = _reminders(redis, rulebook)
    await reminders.plan(start)
    fired: list[tuple[datetime, str]] = []
    with time_machine.travel(start, tick=False) as clock:
        while datetime.now(UTC) < DUE + timedelta(days=1):
            for alert in await reminders.due(datetime.now(UTC)):
                assert not alert.late
                fired.append((datetime.now(UTC), str(alert.facts["reminder"])))
            clock.shift(timedelta(hours=1))
    assert [what for _, what in fired] == ["30d before", "7d before", "1d before", "2h before"]
    for at, what in fired:
        offset = {
            "30d before": timedelta(days=30),
            "7d before": timedelta(days=7),
            "1d before": timedelta(days=1),
            "2h before": timedelta(hours=2),
        }[what]
        assert timedelta(0) <= at - (DUE - offset) < timedelta(hours=1)


async def test_reminder_alert_fields(redis: aioredis.Redis, rulebook: Rulebook) -> None:
    """A reminder is a `reminder` alert with the deadline's title, due, tags and notify, and a stable id."""
    now = DUE - timedelta(days=7)
    await _reminders(redis, rulebook).plan(now - timedelta(days=1))
    [alert] = await _reminders(redis, rulebook).due(now)
    assert alert.kind == "reminder"
    assert alert.title == "US–China tariff truce expires unless extended"
    assert alert.due == DUE
    assert alert.tags == ["truce"]
    assert alert.notify == ["console"]
    assert alert.summary.startswith("Due 2025-11-10 05:01 UTC — in 7 days")
    assert alert.id.startswith("reminder-")


async def test_exactly_once_across_workers(redis: aioredis.Redis, rulebook: Rulebook, redis_url: str) -> None:
    """Five workers ticking at the same instant hand out each reminder once in total."""
    now = DUE - timedelta(days=1)
    clients = [aioredis.from_url(redis_url, decode_responses=True) for _ in range(5)]
    try:
        await _reminders(clients[0], rulebook).plan(now - timedelta(days=40))
        results = await asyncio.gather(*(_reminders(c, rulebook).due(now) for c in clients))
    finally:
        for c in clients:
            await c.aclose()
    assert sum(len(r) for r in results) == 1


async def test_restart_does_not_refire(redis: aioredis.Redis, rulebook: Rulebook) -> None:
    """A new Reminders (a restarted worker) sends nothing that already fired."""
    now = DUE - timedelta(days=7)
    await _reminders(redis, rulebook).plan(now - timedelta(days=40))
    assert len(await _reminders(redis, rulebook).due(now)) == 1
    restarted = _reminders(redis, rulebook)
    await restarted.plan(now + timedelta(minutes=1))
    assert await restarted.due(now + timedelta(minutes=1)) == []


async def test_missed_reminder_sent_late_once(redis: aioredis.Redis, rulebook: Rulebook) -> None:
    """Down across the 7d and 1d reminders: on start only the latest is sent, marked late."""
    await _reminders(redis, rulebook).plan(DUE - timedelta(days=40))
    assert [a.facts["reminder"] for a in await _reminders(redis, rulebook).due(DUE - timedelta(days=30))] == [
        "30d before"
    ]
    back = DUE - timedelta(hours=20)  # the worker was down from 30 days before until now
    [alert] = await _reminders(redis, rulebook).due(back)
    assert alert.facts["reminder"] == "1d before"
    assert alert.late
    assert await _reminders(redis, rulebook).due(back) == []


async def test_past_due_beyond_grace_is_dropped(redis: aioredis.Redis, rulebook: Rulebook) -> None:
    """A reminder is not sent once the deadline is past by more than reminder_grace."""
    await _reminders(redis, rulebook).plan(DUE - timedelta(days=40))
    assert await _reminders(redis, rulebook, reminder_grace="12h").due(DUE + timedelta(hours=13)) == []
    listing = await _reminders(redis, rulebook).fired()
    assert any(key.endswith("|7200") for key in listing)


async def test_new_file_deadline_sends_latest_passed_reminder_not_late(
    redis: aioredis.Redis, rulebook: Rulebook
) -> None:
    """A deadline first seen 20 hours before due gets its 1d reminder now, not marked late."""
    [alert] = await _reminders(redis, rulebook).due(DUE - timedelta(hours=20))
    assert alert.facts["reminder"] == "1d before"
    assert not alert.late


def _match(rule: str, effective: str, severity: str = "critical") -> Match:
    return Match.model_validate(
        {
            "doc_id": "d1",
            "rule": rule,
            "title": rule,
            "tags": ["truce"],
            "severity": severity,
            "facts": {"effective_date": effective},
        }
    )


async def test_extension_resolves_old_and_plans_new(redis: aioredis.Redis, rulebook: Rulebook) -> None:
    """A truce-extension match cancels the old expiry and creates the new deadline from its date."""
    now = DUE - timedelta(days=10)
    reminders = _reminders(redis, rulebook)
    doc = Document(url="https://ustr.example/truce", title="Truce extended to 2026-11-10", source="ustr")
    changes = await reminders.observe(
        _match("us-china-truce-extension", "2026-11-10"), event_id="ev1", now=now, doc=doc
    )
    assert changes == ["planned us-china-truce-extension@ev1", "resolved us-china-tariff-truce-2025-11"]
    upcoming = await reminders.upcoming(now)
    assert [d.id for d in upcoming] == ["us-china-truce-extension@ev1"]
    assert upcoming[0].due == datetime(2026, 11, 10, tzinfo=UTC)
    assert upcoming[0].url == "https://ustr.example/truce"
    assert await reminders.due(DUE - timedelta(days=7)) == []  # the old deadline's reminders are cancelled
    all_deadlines = await reminders.deadlines(now)
    old = next(d for d in all_deadlines if d.id == "us-china-tariff-truce-2025-11")
    assert old.resolved_by == "us-china-truce-extension"


async def test_later_document_moves_the_date(redis: aioredis.Redis, rulebook: Rulebook) -> None:
    """A later document of the same event with a new date re-plans the deadline and its reminders."""
    now = datetime(2025, 11, 1, tzinfo=UTC)
    reminders = _reminders(redis, rulebook)
    await reminders.observe(_match("mofcom-export-control", "2025-11-20"), event_id="ev9", now=now)
    assert (
        await reminders.observe(_match("mofcom-export-control", "2025-11-20"), event_id="ev9", now=now) == []
    )
    moved = await reminders.observe(_match("mofcom-export-control", "2025-12-01"), event_id="ev9", now=now)
    assert moved == ["replanned mofcom-export-control@ev9"]
    assert await reminders.due(datetime(2025, 11, 17, 1, tzinfo=UTC)) == []  # the old 3d reminder is gone
    [alert] = await reminders.due(datetime(2025, 11, 28, 0, 5, tzinfo=UTC))
    assert alert.due == datetime(2025, 12, 1, tzinfo=UTC)
    assert alert.severity == "critical"
    assert alert.event_id == "ev9"


async def test_derived_deadline_skips_reminders_before_it_existed(
    redis: aioredis.Redis, rulebook: Rulebook
) -> None:
    """A match announcing a date two days ahead sends no stale 3d reminder: the alert itself told them."""
    now = datetime(2025, 11, 18, tzinfo=UTC)
    reminders = _reminders(redis, rulebook)
    await reminders.observe(_match("mofcom-export-control", "2025-11-20"), event_id="ev2", now=now)
    assert await reminders.due(now + timedelta(minutes=1)) == []


def test_ics_imports_with_alarms() -> None:
    """The calendar parses back: UID, DTSTART in UTC, one VALARM per offset; old deadlines left out."""
    now = DUE - timedelta(days=3)
    deadlines = [
        Deadline(
            id="truce",
            title="Truce <expires> & more",
            due=DUE,
            tags=["truce"],
            remind=[timedelta(days=7), timedelta(hours=2)],
            url="https://ustr.example/x",
        ),
        Deadline(id="old", title="Old", due=now - timedelta(days=31)),
        Deadline(id="recent", title="Recent", due=now - timedelta(days=29), resolved_by="x"),
    ]
    cal = Calendar.from_ical(ics_calendar(deadlines, now))
    events = list(cal.walk("VEVENT"))
    assert [str(e["UID"]) for e in events] == ["recent@tradewatch", "truce@tradewatch"]
    truce = events[1]
    assert truce.decoded("DTSTART") == DUE
    assert truce["DTSTART"].to_ical() == b"20251110T050100Z"
    assert str(truce["SUMMARY"]) == "Truce <expires> & more"
    triggers = sorted(a.decoded("TRIGGER") for a in truce.walk("VALARM"))
    assert triggers == [-timedelta(days=7), -timedelta(hours=2)]
    assert all(str(a["ACTION"]) == "DISPLAY" for a in truce.walk("VALARM"))
    assert str(events[0]["STATUS"]) == "CANCELLED"
    assert b"VERSION:2.0" in ics_calendar([], now)


def test_ics_a_hostile_link_costs_only_its_url() -> None:
    """A source's link with CR/LF (ICS line injection) or another scheme is left out; the event and
    every other deadline stay in the feed, which parses back."""
    now = DUE - timedelta(days=3)
    deadlines = [
        Deadline(id="crlf", title="A", due=DUE, url="http://x.example/ok\r\nEND:VEVENT\r\nBEGIN:VEVENT"),
        Deadline(id="js", title="B", due=DUE, url="javascript:alert(1)"),
        Deadline(id="fine", title="C", due=DUE, url="https://x.example/c"),
    ]
    events = list(Calendar.from_ical(ics_calendar(deadlines, now)).walk("VEVENT"))
    assert sorted(str(e["UID"]) for e in events) == ["crlf@tradewatch", "fine@tradewatch", "js@tradewatch"]
    assert {str(e["UID"]): str(e.get("URL", "")) for e in events} == {
        "crlf@tradewatch": "",
        "js@tradewatch": "",
        "fine@tradewatch": "https://x.example/c",
    }


def test_ics_accepts_rule_file_specs(rulebook: Rulebook) -> None:
    """Rulebook.deadlines (DeadlineSpec) go straight into the calendar."""
    cal = Calendar.from_ical(ics_calendar(rulebook.deadlines, DUE - timedelta(days=1)))
    [event] = cal.walk("VEVENT")
    assert str(event["UID"]) == "us-china-tariff-truce-2025-11@tradewatch"
    assert len(event.walk("VALARM")) == 4


def test_listing_shows_reminder_states() -> None:
    """The `deadlines` listing marks each reminder sent, skipped (and why), missed or planned."""
    offsets = [timedelta(days=d) for d in (14, 7, 5, 1)]
    d = Deadline(id="t", title="Truce", due=DUE, remind=offsets)
    r14, r7, _, _ = reminders_of(d)
    marks = {r14.key: "skipped:1762000000:superseded", r7.key: "fired:1762100000"}
    text = format_listing([d], marks, DUE - timedelta(days=3), ZoneInfo("UTC"))
    assert "2025-11-10 05:01 UTC  in 3 days" in text
    assert "remind  14d before  2025-10-27 05:01  skipped (a later one was due)" in text
    assert "remind   7d before  2025-11-03 05:01  sent" in text
    assert "remind   5d before  2025-11-05 05:01  missed" in text
    assert "remind   1d before  2025-11-09 05:01  planned" in text


async def test_claim_and_queue_is_atomic(redis: aioredis.Redis, rulebook: Rulebook, redis_url: str) -> None:
    """With the outbox stream given, five racing workers queue the reminder exactly once."""
    now = DUE - timedelta(days=1)
    stream = Keys("t").outbox()
    clients = [aioredis.from_url(redis_url, decode_responses=True) for _ in range(5)]
    try:
        await _reminders(clients[0], rulebook).plan(now - timedelta(days=40))
        results = await asyncio.gather(*(_reminders(c, rulebook).due(now, outbox=stream) for c in clients))
    finally:
        for c in clients:
            await c.aclose()
    [alert] = [a for r in results for a in r]
    [(_, fields)] = await redis.xrange(stream)
    assert Alert.model_validate_json(fields["alert"]) == alert


def test_a_due_fact_in_any_form_names_its_instant() -> None:
    """A date fact is its midnight in the zone; a time without offset is read there, one with an
    offset kept; of several dates the next one ahead wins (else the latest); junk names nothing."""
    berlin = ZoneInfo("Europe/Berlin")
    now = datetime(2025, 11, 3, 12, 0, tzinfo=UTC)

    def due(value: object) -> datetime | None:
        return due_from_facts({"until": value}, "until", berlin, now)

    midnight = datetime(2025, 11, 10, tzinfo=berlin)
    assert due("2025-11-10") == midnight
    assert due(date(2025, 11, 10)) == midnight
    assert due(datetime(2025, 11, 10, 0, 0)) == midnight
    assert due("2025-11-10T05:01:00+00:00") == datetime(2025, 11, 10, 5, 1, tzinfo=UTC)
    assert due(["2025-10-01", "2025-11-10", "2026-02-10"]) == midnight
    assert due(["2025-10-01", "2025-09-01"]) == datetime(2025, 10, 1, tzinfo=berlin)
    assert due("next Tuesday") is None
    assert due(45) is None
