"""The worker's timer hook: due reminders land in the outbox once, and the digest goes at its slot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import redis.asyncio as aioredis
import structlog
from prometheus_client import CollectorRegistry

from tests.fakesmtp import FakeSMTP
from tests.notify.alerts import make_alert
from tradewatch.config import Settings
from tradewatch.matching import load_rulebook
from tradewatch.models import Alert
from tradewatch.notify.scheduled import tick
from tradewatch.observe import Metrics
from tradewatch.store.digest import DigestBook
from tradewatch.store.keys import Keys
from tradewatch.worker import Worker

RULES = """
deadlines:
  - id: truce-expiry
    title: Truce expires
    due: 2025-11-10T05:01:00+00:00
    remind: [7d, 1d]
    notify: [slack]
"""


async def test_tick_queues_reminders_and_mails_digest(redis: aioredis.Redis, tmp_path: Path) -> None:
    """A tick 7 days before due queues the 7d reminder and mails the digest; the next adds nothing."""
    (tmp_path / "d.yaml").write_text(RULES, encoding="utf-8")
    with FakeSMTP() as smtp:
        settings = Settings.model_validate(
            {
                "notifiers": {
                    "email": {
                        "host": "127.0.0.1",
                        "port": smtp.port,
                        "starttls": False,
                        "from": "tw@example.com",
                        "to": ["b@example.com"],
                        "digest": {"at": "05:00", "timezone": "UTC"},
                    }
                }
            }
        )
        keys = Keys("tick")
        worker = SimpleNamespace(redis=redis, keys=keys, settings=settings, rulebook=load_rulebook(tmp_path))
        early = datetime(2025, 11, 3, 1, tzinfo=UTC)
        await DigestBook(redis, keys, settings).record(make_alert(seen_at=early))
        now = datetime(2025, 11, 3, 5, 2, tzinfo=UTC)
        await tick(worker, now - timedelta(days=1))  # the worker ran the day before
        await tick(worker, now)
        await tick(worker, now + timedelta(seconds=30))
    entries = await redis.xrange(keys.outbox())
    alerts = [Alert.model_validate_json(fields["alert"]) for _, fields in entries]
    assert [(a.kind, a.facts["reminder"]) for a in alerts] == [("reminder", "7d before")]
    assert alerts[0].notify == ["slack"]
    assert await redis.xlen(keys.notices()) == 1  # the status page's copy, kept after the outbox trim
    assert len(smtp.messages) == 1  # the day before had nothing to report: no mail
    text = smtp.messages[0].get_body(("plain",))
    assert text is not None
    assert "Truce expires" in text.get_content()


async def test_a_failed_digest_mail_is_an_email_failure_not_a_redis_one(
    redis: aioredis.Redis, tmp_path: Path
) -> None:
    """SMTP down at the digest's slot: counted as a failed email delivery and logged as
    `digest_send_failed`; before, it counted as a Redis error (paging the Redis alert)."""
    (tmp_path / "d.yaml").write_text(RULES, encoding="utf-8")
    with FakeSMTP() as smtp:
        port = smtp.port  # closed once the block ends: nothing listens there
    email = {
        "host": "127.0.0.1",
        "port": port,
        "starttls": False,
        "from": "tw@example.com",
        "to": ["b@e.com"],
    }
    settings = Settings.model_validate(
        {"notifiers": {"email": {**email, "digest": {"at": "00:00", "timezone": "UTC"}}}}
    )
    keys = Keys("tick")
    await redis.set(keys.digest_last(), datetime(2020, 1, 1, tzinfo=UTC).isoformat())
    await DigestBook(redis, keys, settings).record(make_alert())
    metrics = Metrics(CollectorRegistry())
    worker = SimpleNamespace(
        redis=redis, keys=keys, settings=settings, rulebook=load_rulebook(tmp_path), metrics=metrics
    )
    with structlog.testing.capture_logs() as logs:
        await Worker._tick_deadlines(worker)  # type: ignore[arg-type]
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["digest_send_failed"]
    assert metrics.alerts_failed.labels("email")._value.get() == 1
    assert metrics.redis_errors._value.get() == 0
