"""/deadlines.ics: the contract's calendar from rule-file and derived deadlines, via real Redis."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from icalendar import Calendar

from tests.conftest import RedisServer, free_port
from tests.web.conftest import FakeWorker, client_for
from tests.web.seed import HOSTILE, write_rulebook
from tradewatch.models import Deadline
from tradewatch.store.keys import Keys
from tradewatch.web.app import create_app


async def _calendar(worker: FakeWorker) -> Calendar:
    async with client_for(create_app(worker)) as client:
        response = await client.get("/deadlines.ics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    return Calendar.from_ical(response.content)


async def test_calendar_has_one_event_per_deadline_with_alarms(
    worker: FakeWorker, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    """Rule-file and derived deadlines become VEVENTs: UID id@tradewatch, UTC start, a VALARM per reminder."""
    now = datetime.now(UTC).replace(microsecond=0)
    worker.rulebook = write_rulebook(tmp_path / "rules", now)
    derived = Deadline(
        id="us-tariff-change@ev-1",
        title="Effective: US tariff rates changed",
        origin="match",
        due=now + timedelta(days=3),
        remind=[timedelta(days=1)],
        rule="us-tariff-change",
    )
    keys = Keys(worker.settings.key_prefix)
    await redis_client.hset(keys.deadlines_derived(), derived.id, derived.model_dump_json())
    events = {str(e["UID"]): e for e in (await _calendar(worker)).walk("VEVENT")}
    assert set(events) == {
        "us-china-truce@tradewatch",
        "hostile-deadline@tradewatch",
        "us-tariff-change@ev-1@tradewatch",
    }
    truce = events["us-china-truce@tradewatch"]
    start = truce.decoded("DTSTART")
    assert start == now + timedelta(days=9)
    assert start.utcoffset() == timedelta(0)
    alarms = [a.decoded("TRIGGER") for a in truce.walk("VALARM")]
    assert sorted(alarms) == [-timedelta(days=7), -timedelta(days=1)]
    assert str(events["hostile-deadline@tradewatch"]["SUMMARY"]) == "Deadline " + HOSTILE


async def test_calendar_is_unavailable_rather_than_partial_when_redis_is_down(
    worker: FakeWorker, tmp_path: Path
) -> None:
    """Without Redis the feed answers 503, so subscribed calendars keep their last good copy."""
    port = free_port()
    worker.rulebook = write_rulebook(tmp_path / "rules", datetime.now(UTC))
    worker.redis = aioredis.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=0.5)
    try:
        async with client_for(create_app(worker)) as client:
            response = await client.get("/deadlines.ics")
    finally:
        await worker.redis.aclose()
    assert response.status_code == 503


async def test_page_falls_back_to_rule_file_deadlines_with_a_note(worker: FakeWorker, tmp_path: Path) -> None:
    """With Redis down the page still lists the rule-file deadlines and says derived ones are missing."""
    port = free_port()
    worker.rulebook = write_rulebook(tmp_path / "rules", datetime.now(UTC))
    worker.redis = aioredis.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=0.5)
    try:
        async with client_for(create_app(worker)) as client:
            html = (await client.get("/")).text
    finally:
        await worker.redis.aclose()
    assert (
        "deadlines derived from matches unavailable (StoreError)" in html
        or "unavailable (ConnectionError)" in html
    )
    assert 'data-id="us-china-truce"' in html


async def test_a_stalled_redis_answers_503_in_bounded_time(
    worker: FakeWorker, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis stalled (paused, not down): the calendar answers 503 instead of hanging a calendar app."""
    import tradewatch.web.app as app_module

    monkeypatch.setattr(app_module, "CALENDAR_TIMEOUT", 0.5)
    assert redis_server.process is not None
    redis_server.process.send_signal(signal.SIGSTOP)  # the real server, stalled mid-run
    try:
        async with client_for(create_app(worker)) as client:
            response = await client.get("/deadlines.ics")
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    assert response.status_code == 503
