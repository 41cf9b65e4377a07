"""The probes, metrics and auth of the web app, against a real Redis."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import Iterator

import httpx
import pytest
import redis.asyncio as aioredis
import structlog.testing
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.web.conftest import FakeWorker, client_for, make_settings
from tradewatch.web import app as web_app
from tradewatch.web.app import create_app

CONTRACT_FAMILIES = {
    "tradewatch_polls",
    "tradewatch_fetch_errors",
    "tradewatch_fetch_seconds",
    "tradewatch_documents",
    "tradewatch_matches",
    "tradewatch_alerts_sent",
    "tradewatch_alerts_failed",
    "tradewatch_alerts_pending",
    "tradewatch_alerts_dead_lettered",
    "tradewatch_delivery_latency_seconds",
    "tradewatch_reminders_sent",
    "tradewatch_redis_errors",
}


async def test_healthz_answers_ok(client: httpx.AsyncClient) -> None:
    """/healthz answers 200 while the process runs, whatever Redis does."""
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_ok_when_redis_rules_and_scheduler_are_up(client: httpx.AsyncClient) -> None:
    """/readyz is 200 when Redis answers PING, rules are loaded and the scheduler runs."""
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"redis": "ok", "rules": "ok", "scheduler": "ok"}


@pytest.mark.parametrize(
    ("attribute", "value", "failed"),
    [("rules_loaded", False, "rules"), ("scheduler_running", False, "scheduler"), ("redis", None, "redis")],
)
async def test_readyz_names_the_failed_check(
    worker: FakeWorker, attribute: str, value: object, failed: str
) -> None:
    """/readyz is 503 and its JSON names the check that failed."""
    setattr(worker, attribute, value)
    async with client_for(create_app(worker)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == [failed]


async def test_readyz_fails_when_redis_is_down(worker: FakeWorker) -> None:
    """A Redis that refuses connections makes /readyz 503 without leaking the URL."""
    port = free_port()
    worker.redis = aioredis.from_url(f"redis://:hunter2@127.0.0.1:{port}/0", socket_connect_timeout=0.5)
    try:
        async with client_for(create_app(worker)) as client:
            response = await client.get("/readyz")
    finally:
        await worker.redis.aclose()
    assert response.status_code == 503
    assert response.json()["failed"] == ["redis"]
    assert "hunter2" not in response.text


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung Redis)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


async def test_readyz_does_not_hang_on_a_silent_redis(
    worker: FakeWorker, silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Redis that never answers makes /readyz 503 within the PING timeout."""
    monkeypatch.setattr(web_app, "READY_TIMEOUT", 0.2)
    worker.redis = aioredis.from_url(f"redis://127.0.0.1:{silent_server}/0")
    try:
        async with client_for(create_app(worker)) as client:
            response = await asyncio.wait_for(client.get("/readyz"), timeout=5)
    finally:
        await worker.redis.aclose()
    assert response.status_code == 503
    assert "within" in response.json()["checks"]["redis"]


async def test_metrics_expose_every_family_named_tradewatch(
    client: httpx.AsyncClient, worker: FakeWorker
) -> None:
    """/metrics is Prometheus text with the contract's families, each named tradewatch_*."""
    worker.metrics.polls.labels("mofcom-announcements", "ok").inc()
    worker.metrics.delivery_latency.labels("slack").observe(1.5)
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert set(families) >= CONTRACT_FAMILIES
    assert all(name.startswith("tradewatch_") for name in families)
    polls = [s for s in families["tradewatch_polls"].samples if s.name == "tradewatch_polls_total"]
    assert polls[0].labels == {"source": "mofcom-announcements", "status": "ok"}
    assert polls[0].value == 1
    assert not [s.name for f in families.values() for s in f.samples if s.name.endswith("_created")]


async def test_page_open_without_auth_settings(client: httpx.AsyncClient) -> None:
    """With no token or password configured, the status page needs no credentials."""
    response = await client.get("/")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_token_guards_page_and_calendar_but_not_probes(worker: FakeWorker) -> None:
    """A configured token is required for / and /deadlines.ics; probes and metrics stay open."""
    worker.settings = make_settings(host="0.0.0.0", token="s3cret-token")
    async with client_for(create_app(worker)) as client:
        assert (await client.get("/")).status_code == 401
        assert (await client.get("/deadlines.ics")).status_code == 401
        assert (await client.get("/?token=wrong")).status_code == 401
        assert (await client.get("/?token=s3cret-token")).status_code == 200
        bearer = await client.get("/", headers={"Authorization": "Bearer s3cret-token"})
        assert bearer.status_code == 200
        for path in ("/healthz", "/readyz", "/metrics"):
            assert (await client.get(path)).status_code == 200


async def test_token_from_query_is_kept_on_the_calendar_link(worker: FakeWorker) -> None:
    """A page opened with ?token= links the calendar with the same token, so subscribing works."""
    worker.settings = make_settings(token="tok en&x")
    async with client_for(create_app(worker)) as client:
        response = await client.get("/", params={"token": "tok en&x"})
    assert 'href="deadlines.ics?token=tok%20en%26x"' in response.text


async def test_basic_auth_guards_the_page(worker: FakeWorker) -> None:
    """Basic auth with the configured username and password opens the page; anything else is 401."""
    worker.settings = make_settings(username="ops", password="pa:ss")
    good = base64.b64encode(b"ops:pa:ss").decode()
    bad = base64.b64encode(b"ops:nope").decode()
    async with client_for(create_app(worker)) as client:
        denied = await client.get("/")
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"].startswith("Basic")
        assert (await client.get("/", headers={"Authorization": f"Basic {bad}"})).status_code == 401
        assert (await client.get("/", headers={"Authorization": "Basic !!notbase64"})).status_code == 401
        assert (await client.get("/", headers={"Authorization": f"Basic {good}"})).status_code == 200


async def test_open_page_on_a_public_address_is_logged_and_secrets_never_are(worker: FakeWorker) -> None:
    """Binding beyond localhost without auth logs a warning; a guarded app never logs its token."""
    worker.settings = make_settings(host="0.0.0.0")
    with structlog.testing.capture_logs() as open_logs:
        create_app(worker)
    assert [e["event"] for e in open_logs] == ["status_page_unprotected"]
    worker.settings = make_settings(host="0.0.0.0", token="s3cret-token", username="ops", password="pw-123")
    worker.rules_loaded = False
    with structlog.testing.capture_logs() as logs:
        async with client_for(create_app(worker)) as client:
            await client.get("/?token=wrong")
            await client.get("/", headers={"Authorization": "Bearer s3cret-token"})
            await client.get("/readyz")
    assert "status_page_unprotected" not in [e["event"] for e in logs]
    assert "readiness_failed" in [e["event"] for e in logs]
    text = repr(logs)
    assert "s3cret-token" not in text
    assert "pw-123" not in text
