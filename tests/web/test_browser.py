"""The status page in real headless Debian chromium (Playwright), on a phone-sized and a desktop screen."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.web.conftest import FakeWorker
from tests.web.seed import seed, write_rulebook
from tradewatch.store.keys import Keys
from tradewatch.web import create_app, serve

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")


def _chromium() -> str | None:
    """Debian's chromium, at its usual path or on PATH."""
    return str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")


ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
# Flags for this machine's closed network (docs: .library/env/machines/python.md); root needs --no-sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def page_url(worker: FakeWorker, redis_client: aioredis.Redis, tmp_path: Path) -> AsyncIterator[str]:
    """The seeded status page served by a real uvicorn on 127.0.0.1."""
    now = datetime.now(UTC)
    await seed(redis_client, Keys(worker.settings.key_prefix), now)
    worker.rulebook = write_rulebook(tmp_path / "rules", now)
    stop = asyncio.Event()
    ports: asyncio.Queue[int] = asyncio.Queue()
    task = asyncio.create_task(serve(create_app(worker), "127.0.0.1", 0, stop, started=ports.put_nowait))
    port = await asyncio.wait_for(ports.get(), timeout=5)
    ARTIFACTS.mkdir(exist_ok=True)
    yield f"http://127.0.0.1:{port}/"
    stop.set()
    await asyncio.wait_for(task, timeout=10)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's chromium driven by Playwright; skipped (a failure in CI) when chromium is not installed."""
    executable = _chromium()
    if executable is None:
        pytest.skip(
            "needs Debian's chromium at /usr/bin/chromium (apt-get install chromium; .ci/run installs it)"
        )
    playwright_api = pytest.importorskip(
        "playwright.async_api", reason="needs the playwright package (dev extras)"
    )
    async with playwright_api.async_playwright() as p:
        instance = await p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield instance
        await instance.close()


async def _open(browser: Any, url: str, width: int, height: int) -> tuple[Any, Any, list[str]]:
    context = await browser.new_context(viewport={"width": width, "height": height}, java_script_enabled=True)
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    response = await page.goto(url, wait_until="load")
    assert response is not None
    assert response.status == 200
    return context, page, problems


async def test_status_page_renders_on_a_phone(browser: Any, page_url: str) -> None:
    """On a phone the page shows sources, alerts, deadlines and the timeline, with no sideways scroll."""
    context, page, problems = await _open(browser, page_url, 390, 844)
    try:
        assert await page.title() == "tradewatch status"
        assert await page.locator('[data-source="ustr-press"] .pill').inner_text() == "failing"
        assert await page.locator('[data-source="mofcom-announcements"] .pill').inner_text() == "ok"
        assert await page.locator("li.alert").count() == 5
        await page.get_by_text("商务部 海关总署公告2025年第18号", exact=False).first.wait_for(state="visible")
        assert await page.locator("li.deadline").count() == 2
        assert await page.locator("li.suppressed").count() == 2
        svg = page.locator("#timeline svg")
        box = await svg.bounding_box()
        assert box is not None
        assert box["width"] > 300
        assert box["height"] > 100
        assert await page.locator("#timeline rect.bar").count() == 5
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"page is {overflow}px wider than the phone"
        await page.screenshot(path=str(ARTIFACTS / "status-page-phone.png"), full_page=True)
        assert problems == []
    finally:
        await context.close()


async def test_hostile_content_stays_inert_in_the_browser(browser: Any, page_url: str) -> None:
    """Markup from documents runs no script, changes no title, and yields no javascript: link."""
    context, page, problems = await _open(browser, page_url, 1280, 900)
    try:
        assert await page.evaluate("typeof window.__pwned") == "undefined"
        assert await page.title() == "tradewatch status"
        protocols = await page.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.protocol)")
        assert set(protocols) <= {"http:", "https:"}
        hostile = page.get_by_text('<script>document.title="pwned"', exact=False)
        assert await hostile.count() >= 3
        assert (
            await page.locator("#alerts details summary").first.inner_text()
            == "2 sources reported this event"
        )
        await page.locator("#alerts details summary").first.click()
        await page.get_by_text("China tightens rare earth export controls").first.wait_for(state="visible")
        await page.screenshot(path=str(ARTIFACTS / "status-page-desktop.png"), full_page=True)
        assert problems == []
    finally:
        await context.close()
