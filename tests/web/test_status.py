"""The status page from real store data: every panel, hostile text escaped, panels degrade alone."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from tests.conftest import free_port
from tests.notify.alerts import make_alert
from tests.web.conftest import FakeWorker, client_for
from tests.web.seed import seed, write_rulebook
from tradewatch.store.health import SourceHealth
from tradewatch.store.keys import Keys
from tradewatch.store.outbox import Outbox
from tradewatch.web.app import create_app
from tradewatch.web.status import gather_status


@pytest.fixture
async def seeded(worker: FakeWorker, redis_client: aioredis.Redis, tmp_path: Path) -> FakeWorker:
    """A worker whose Redis holds a month of alerts, health and suppressions, and rules with deadlines."""
    now = datetime.now(UTC)
    await seed(redis_client, Keys(worker.settings.key_prefix), now)
    worker.rulebook = write_rulebook(tmp_path / "rules", now)
    return worker


async def _page(worker: FakeWorker) -> str:
    async with client_for(create_app(worker)) as client:
        response = await client.get("/")
    assert response.status_code == 200
    return response.text


def _section(html: str, name: str) -> str:
    match = re.search(rf'<section id="{name}">(.*?)</section>', html, re.S)
    assert match, name
    return match.group(1)


async def test_sources_show_health(seeded: FakeWorker) -> None:
    """Each configured source is listed with its health: ok, or failing with its streak and error."""
    sources = _section(await _page(seeded), "sources")
    ok = re.search(r'data-source="mofcom-announcements">\s*<span class="pill ok">ok</span>', sources)
    assert ok
    assert re.search(r'data-source="ustr-press">\s*<span class="pill failing">failing</span>', sources)
    assert "6 failures in a row, operators alerted" in sources
    assert "12 items seen" in sources


async def test_recent_alerts_show_events_sources_and_facts(seeded: FakeWorker) -> None:
    """Recent alerts list newest first, with the event's other sources and the extracted facts."""
    alerts = _section(await _page(seeded), "alerts")
    titles = re.findall(r'<li class="alert" data-event="([^"]*)">', alerts)
    assert titles == ["", "ev-rare-earth", "ev-tariff", "ev-hostile", "ev-truce"]
    assert "商务部 海关总署公告2025年第18号" in alerts
    assert "2 sources reported this event" in alerts
    assert "reuters-wire" in alerts
    assert "Announcement: No. 18 of 2025" in alerts  # as the Slack alert and the digest show it
    assert "ustr-press is failing" in alerts


async def test_derived_deadline_reminders_are_listed(
    worker: FakeWorker, redis_client: aioredis.Redis
) -> None:
    """A reminder of a deadline taken from a match names that match's event; it is still listed
    (before, every alert with an event but the event's first was left out)."""
    reminder = make_alert(
        id="reminder-1",
        kind="reminder",
        event_id="ev-tariff",
        title="Effective: US tariff action",
        source="deadlines",
        seen_at=datetime.now(UTC),
    )
    await Outbox(redis_client, Keys(worker.settings.key_prefix)).enqueue_operator(reminder)
    alerts = _section(await _page(worker), "alerts")
    assert "Effective: US tariff action" in alerts


async def test_operator_alerts_stay_listed_after_the_outbox_is_trimmed(
    worker: FakeWorker, redis_client: aioredis.Redis
) -> None:
    """ "Source failing" and "recovered", queued by the health script, stay on the page once
    delivered and trimmed from the outbox (before, they vanished within seconds)."""
    keys = Keys(worker.settings.key_prefix)
    health = SourceHealth(redis_client, keys)
    await health.record_failure("ustr-press", "HTTP 500", threshold=1)
    await health.record_success("ustr-press", status=200, documents=1, duration=0.1, next_poll=None)
    await redis_client.delete(keys.outbox())  # delivered and trimmed
    alerts = _section(await _page(worker), "alerts")
    assert "Source ustr-press is failing" in alerts
    assert "Source ustr-press recovered" in alerts


async def test_deadlines_upcoming_in_order_past_ones_left_out(seeded: FakeWorker) -> None:
    """Upcoming deadlines are listed soonest first; one long past is not."""
    section = _section(await _page(seeded), "deadlines")
    assert re.findall(r'data-id="([^"]+)"', section) == ["us-china-truce", "hostile-deadline"]
    assert "reminders 7d, 1d before" in section
    assert 'href="deadlines.ics"' in section


async def test_suppressed_alerts_show_reasons(seeded: FakeWorker) -> None:
    """Suppressed alerts are listed with their reason and detail."""
    section = _section(await _page(seeded), "suppressed")
    assert re.findall(r'<span class="pill warning">(\w+)</span>', section) == ["silenced", "duplicate"]
    assert "same announcement as ev-rare-earth" in section


async def test_timeline_draws_one_row_per_tag(seeded: FakeWorker) -> None:
    """The SVG timeline has a row per tag with its 30-day total; operator notices are not counted."""
    section = _section(await _page(seeded), "timeline")
    assert "<svg" in section
    rows = dict(re.findall(r'data-tag="([^"]+)">\s*<text[^>]*>[^<(]*\((\d+)\)', section))
    assert rows == {"tariff-change": "2", "export-control": "1", "trade-talks": "1", "truce": "1"}
    assert section.count('class="bar"') == 5


async def test_hostile_text_is_escaped_and_unsafe_links_dropped(seeded: FakeWorker) -> None:
    """Markup in titles, facts, errors and deadlines is shown as text; javascript: URLs get no link."""
    html = await _page(seeded)
    assert "<script" not in html
    assert "<img" not in html
    assert not re.search(r'href="\s*javascript:', html, re.I)
    assert "&lt;script&gt;document.title=&#34;pwned&#34;" in html
    assert html.count("&lt;img src=x onerror=") >= 5


async def test_a_failing_store_blanks_only_its_panel(
    seeded: FakeWorker, redis_client: aioredis.Redis
) -> None:
    """A broken suppression log makes that panel unavailable; the other panels still render."""
    key = Keys(seeded.settings.key_prefix).suppressions()
    await redis_client.delete(key)
    await redis_client.set(key, "not a stream")
    html = await _page(seeded)
    assert "Suppressed alerts unavailable (StoreError)" in _section(html, "suppressed")
    assert "商务部" in _section(html, "alerts")
    assert "pill ok" in _section(html, "sources")


async def test_without_redis_the_page_still_answers(worker: FakeWorker, tmp_path: Path) -> None:
    """With Redis unreachable every Redis panel says unavailable, deadlines from the rules still show."""
    port = free_port()
    worker.redis = aioredis.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=0.5)
    worker.rulebook = write_rulebook(tmp_path / "rules", datetime.now(UTC))
    try:
        html = await _page(worker)
    finally:
        await worker.redis.aclose()
    for name in ("sources", "alerts", "suppressed", "timeline"):
        assert "unavailable" in _section(html, name), name
    assert "us-china-truce" in _section(html, "deadlines")
    assert 'data-check="redis">redis down</span>' in html
    assert 'data-check="rules">rules ok</span>' in html


async def test_unreadable_event_records_are_skipped(seeded: FakeWorker, redis_client: aioredis.Redis) -> None:
    """A corrupt event record is skipped, not fatal to the alerts panel."""
    await redis_client.set(Keys(seeded.settings.key_prefix).event("broken"), "{not json")
    data = await gather_status(seeded, now=datetime.now(UTC))
    assert data.alerts.ok
    assert "broken" not in {row.event_id for row in data.alerts.rows}


async def test_page_is_phone_sized_and_self_contained(client: httpx.AsyncClient) -> None:
    """The page declares a mobile viewport and loads nothing from elsewhere (no src, no stylesheet links)."""
    html = (await client.get("/")).text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert " src=" not in html
    assert "<link" not in html
