"""The email digest end to end: real Redis, real SMTP (aiosmtpd), controlled time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import structlog
import time_machine

from tests.fakesmtp import FakeSMTP, self_signed_cert
from tests.notify.alerts import HOSTILE, make_alert
from tradewatch.config import Settings
from tradewatch.errors import DeliveryError
from tradewatch.models import Deadline
from tradewatch.store.digest import DigestBook, DigestRecorder
from tradewatch.store.keys import Keys
from tradewatch.store.outbox import Outbox

MORNING = datetime(2025, 11, 3, 6, 30, tzinfo=UTC)  # Monday 07:30 Europe/Berlin


@pytest.fixture
def smtp() -> Iterator[FakeSMTP]:
    """A fresh SMTP server per test."""
    with FakeSMTP() as server:
        yield server


def _body(msg: EmailMessage, kind: str) -> str:
    part = msg.get_body((kind,))
    assert part is not None, f"no {kind} part"
    return str(part.get_content())


def _settings(smtp: FakeSMTP, **digest: Any) -> Settings:
    return Settings.model_validate(
        {
            "timezone": "Europe/Berlin",
            "notifiers": {
                "email": {
                    "host": "127.0.0.1",
                    "port": smtp.port,
                    "starttls": False,
                    "from": "tradewatch@example.com",
                    "to": ["buyers@example.com", "ops@example.com"],
                    "digest": {"at": "07:30", "timezone": "Europe/Berlin", "every": "daily", **digest},
                }
            },
        }
    )


class _Upcoming:
    """Stands in for Reminders: a fixed list of upcoming deadlines."""

    def __init__(self, deadlines: list[Deadline]) -> None:
        self.deadlines = deadlines

    async def upcoming(self, now: datetime, within: timedelta | None = None) -> list[Deadline]:
        return [d for d in self.deadlines if now <= d.due <= now + (within or timedelta(days=9999))]


def _book(redis: aioredis.Redis, settings: Settings, deadlines: list[Deadline] | None = None) -> DigestBook:
    return DigestBook(redis, Keys("t"), settings, reminders=_Upcoming(deadlines or []))


async def _running_since(redis: aioredis.Redis, when: datetime) -> None:
    """The digest as a worker first saw it at `when` (its last mail, or its first start)."""
    await redis.set(Keys("t").digest_last(), when.isoformat())


async def test_digest_is_multipart_grouped_with_deadlines(redis: aioredis.Redis, smtp: FakeSMTP) -> None:
    """One mail: text and HTML, sections new/updates, grouped by severity and tag, deadlines at the end."""
    book = _book(
        redis,
        _settings(smtp),
        [
            Deadline(id="truce", title="US–China tariff truce expires", due=MORNING + timedelta(days=7)),
            Deadline(id="far", title="Far away", due=MORNING + timedelta(days=40)),
        ],
    )
    await book.record(make_alert(id="a1", seen_at=MORNING - timedelta(hours=5)))
    await book.record(
        make_alert(
            id="a2",
            severity="info",
            tags=["tariff-change"],
            lang="en",
            title="USTR modifies Section 301 tariffs",
            rule_title="US tariff changes",
            seen_at=MORNING - timedelta(hours=4),
        )
    )
    await book.record(
        make_alert(id="a3", kind="also", source="reuters", seen_at=MORNING - timedelta(hours=3))
    )
    assert await book.send_now(MORNING)
    [msg] = smtp.messages
    assert smtp.envelopes[0] == ("tradewatch@example.com", ["buyers@example.com", "ops@example.com"])
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Subject"] == "tradewatch digest 2025-11-03: 3 alerts (2 critical), 1 deadline ahead"
    text = _body(msg, "plain")
    html = _body(msg, "html")
    new, rest = text.split("UPDATES AND FURTHER SOURCES")
    assert new.index("CRITICAL · export-control") < new.index("Info · tariff-change")
    assert "Effective date: 2025-04-04" in new
    assert "Also reported by" not in new
    updates, deadlines = rest.split("DEADLINES IN THE NEXT 14 DAYS")
    assert "MOFCOM export controls" in updates
    assert "2025-11-10 07:30 CET (in 7 days): US–China tariff truce expires" in deadlines
    assert "Far away" not in deadlines
    assert '<a href="https://www.mofcom.gov.cn/zwgk/zcfb/art/2025/art_18.html">' in html
    assert "Deadlines in the next 14 days" in html


async def test_a_reminder_routed_to_the_digest_is_mailed(redis: aioredis.Redis, smtp: FakeSMTP) -> None:
    """A reminder whose deadline is beyond the 14-day list (`remind: [21d]`) is named in a section
    of its own and makes the digest go out; before, it was recorded and then left out, and the
    digest counted as empty."""
    book = _book(redis, _settings(smtp))
    due = MORNING + timedelta(days=21)
    await book.record(
        make_alert(
            id="r1",
            kind="reminder",
            title="Truce <expires> unless extended",
            summary="Due 2025-11-24 07:30 CET — in 3 weeks",
            due=due,
            facts={},
            seen_at=MORNING - timedelta(hours=1),
        )
    )
    assert await book.send_now(MORNING)
    [msg] = smtp.messages
    assert msg["Subject"] == "tradewatch digest 2025-11-03: 1 alert"
    text = _body(msg, "plain")
    reminders = text.split("REMINDERS")[1].split("DEADLINES IN THE NEXT 14 DAYS")[0]
    assert "Reminder: Truce <expires> unless extended" in reminders
    assert "Due 2025-11-24 07:30 CET — in 3 weeks" in reminders
    html = _body(msg, "html")
    assert "Reminders</h2>" in html
    assert ">Truce &lt;expires&gt; unless extended</a> — Due 2025-11-24" in html
    assert await book.pending(MORNING + timedelta(minutes=1)) == []


async def test_sent_alerts_are_not_sent_twice(redis: aioredis.Redis, smtp: FakeSMTP) -> None:
    """After a digest, the next one holds only what arrived since; an empty one mails nothing."""
    book = _book(redis, _settings(smtp))
    await book.record(make_alert(id="a1", title="first"))
    assert await book.send_now(MORNING)
    await book.record(make_alert(id="a2", title="second"))
    assert await book.send_now(MORNING + timedelta(days=1))
    assert not await book.send_now(MORNING + timedelta(days=2))
    first, second = (_body(m, "plain") for m in smtp.messages)
    assert "first" in first
    assert "second" not in first
    assert "second" in second
    assert "first" not in second
    assert "Alerts since 2025-11-03 07:30 CET" in second


async def test_record_is_idempotent(redis: aioredis.Redis, smtp: FakeSMTP) -> None:
    """A redelivered alert is recorded once (the recorder is the outbox's `email` notifier)."""
    recorder = DigestRecorder(_book(redis, _settings(smtp)))
    assert await recorder.send(make_alert()) == {"digest": "recorded"}
    assert await recorder.send(make_alert(), redelivery=True) == {"digest": "already"}
    assert len(await recorder.book.pending(MORNING)) == 1


async def test_empty_digest_sends_only_when_configured(redis: aioredis.Redis, smtp: FakeSMTP) -> None:
    """No alerts → no mail, unless send_empty; the empty mail says so."""
    assert not await _book(redis, _settings(smtp)).send_now(MORNING)
    assert smtp.messages == []
    assert await _book(redis, _settings(smtp, send_empty=True)).send_now(MORNING)
    assert "Nothing new arrived" in _body(smtp.messages[0], "plain")


async def test_dry_run_moves_nothing(redis: aioredis.Redis, smtp: FakeSMTP) -> None:
    """build() reads only: the same alerts are still there for the real send."""
    book = _book(redis, _settings(smtp))
    await book.record(make_alert())
    subject, text, _ = book.render(await book.build(MORNING))
    assert "1 alert" in subject
    assert "MOFCOM export controls" in text
    assert len(await book.pending(MORNING)) == 1
    assert smtp.messages == []


async def test_smtp_failure_keeps_alerts(redis: aioredis.Redis, smtp: FakeSMTP) -> None:
    """A refused mail raises a transient DeliveryError and the alerts wait for the next try."""
    book = _book(redis, _settings(smtp))
    await book.record(make_alert())
    smtp.fail_next = 1
    with pytest.raises(DeliveryError) as info:
        await book.send_now(MORNING)
    assert not info.value.permanent
    assert await book.send_now(MORNING)
    assert len(smtp.messages) == 1


async def test_slot_sent_once_across_workers(redis: aioredis.Redis, smtp: FakeSMTP) -> None:
    """Two workers ticking at the slot mail one digest; a later tick in the same period mails none."""
    await _running_since(redis, MORNING - timedelta(days=7))
    settings = _settings(smtp)
    one, two = _book(redis, settings), _book(redis, settings)
    await one.record(make_alert())
    with time_machine.travel(MORNING + timedelta(seconds=5), tick=False):
        now = datetime.now(UTC)
        results = [await one.send_due(now), await two.send_due(now)]
    assert results == [True, False]
    await one.record(make_alert(id="later"))
    assert not await two.send_due(MORNING + timedelta(hours=6))
    assert len(smtp.messages) == 1
    assert await two.send_due(MORNING + timedelta(days=1))  # next morning's slot
    assert len(smtp.messages) == 2


async def test_missed_slot_sent_once_at_start(redis: aioredis.Redis, smtp: FakeSMTP) -> None:
    """A slot missed while no worker ran is mailed once by the first worker to start, not per missed day."""
    await _running_since(redis, MORNING - timedelta(days=7))
    book = _book(redis, _settings(smtp))
    await book.record(make_alert())
    start = MORNING + timedelta(days=3, hours=5)  # three slots passed with nobody running
    assert await book.send_due(start)
    assert not await _book(redis, _settings(smtp)).send_due(start + timedelta(minutes=1))
    assert len(smtp.messages) == 1


async def test_failed_slot_is_retried(redis: aioredis.Redis, smtp: FakeSMTP) -> None:
    """When mailing the slot fails, the slot is tried again after a pause, not on every tick."""
    await _running_since(redis, MORNING - timedelta(days=7))
    book = _book(redis, _settings(smtp))
    await book.record(make_alert())
    smtp.fail_next = 1
    with pytest.raises(DeliveryError):
        await book.send_due(MORNING)
    assert not await book.send_due(MORNING + timedelta(seconds=30))
    await redis.delete(Keys("t").digest_slot("20251103T0630Z"))  # the pause (a Redis TTL) is over
    assert await book.send_due(MORNING + timedelta(minutes=6))
    assert len(smtp.messages) == 1


async def test_a_digest_that_keeps_failing_tells_the_operators(redis: aioredis.Redis, smtp: FakeSMTP) -> None:
    """After failure_alert_after refused sends in a row, an operator alert goes to every notifier but
    the digest (once, whatever the further failures), and a "mailed again" one when a slot completes."""
    keys = Keys("t")
    await _running_since(redis, MORNING - timedelta(days=7))
    settings = _settings(smtp).model_copy(update={"failure_alert_after": 3})
    book = _book(redis, settings)
    await book.record(make_alert())
    smtp.fail_next = 4
    with structlog.testing.capture_logs() as logs:
        for n in range(4):
            with pytest.raises(DeliveryError):
                await book.send_due(MORNING + timedelta(minutes=6 * n))
            await redis.delete(keys.digest_slot("20251103T0630Z"))  # the retry pause is over
    # also in the log, once: with email the only notifier, that is where it shows
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["digest_failing"]
    operator = [a for _, a in await Outbox(redis, keys).recent(10) if a.kind == "operator"]
    assert [(a.rule, a.severity, a.notify) for a in operator] == [
        ("tradewatch-digest-health", "warning", ["console", "slack", "webhook"])
    ]
    assert "failed 3 times in a row" in operator[0].title
    await book.record(make_alert(id="a2"))
    assert await book.send_now(MORNING + timedelta(minutes=30))  # mailed by hand: the streak is over
    operator = [a for _, a in reversed(await Outbox(redis, keys).recent(10)) if a.kind == "operator"]
    assert [a.title for a in operator][1:] == ["The email digest is mailed again"]
    assert await redis.get(keys.digest_failures()) is None


async def test_a_slot_due_while_a_manual_digest_mails_is_not_lost(
    redis: aioredis.Redis, smtp: FakeSMTP
) -> None:
    """The schedule finds `tradewatch digest` mailing (its lock held): the slot stays open for the
    next tick instead of being marked done, so what arrives meanwhile still goes out in it."""
    keys = Keys("t")
    await _running_since(redis, MORNING - timedelta(days=7))
    book = _book(redis, _settings(smtp))
    await book.record(make_alert())
    await redis.set(keys.digest_lock(), "someone", px=60_000)  # a digest by hand is being mailed
    assert not await book.send_due(MORNING)
    await redis.delete(keys.digest_lock())
    assert await book.send_due(MORNING + timedelta(seconds=30))
    assert len(smtp.messages) == 1


async def test_first_start_and_a_moved_at_mail_nothing_off_schedule(
    redis: aioredis.Redis, smtp: FakeSMTP
) -> None:
    """The first worker ever to see the digest does not mail yesterday's slot at once (no worker
    missed it); nor does moving `at` past a digest just mailed. The next slot mails as usual."""
    book = _book(redis, _settings(smtp))
    await book.record(make_alert())
    start = MORNING + timedelta(hours=5)  # today's 07:30 slot passed before tradewatch existed
    assert not await book.send_due(start)
    assert not await book.send_due(start + timedelta(minutes=1))
    assert await book.send_due(MORNING + timedelta(days=1))  # tomorrow's slot
    moved = _book(redis, _settings(smtp, at="09:00"))  # 09:00 Berlin: yesterday's 09:00 < the mail just sent
    assert not await moved.send_due(MORNING + timedelta(days=1, minutes=5))
    assert len(smtp.messages) == 1


async def test_hostile_content_is_escaped_in_html(redis: aioredis.Redis, smtp: FakeSMTP) -> None:
    """Script tags and javascript: links in fetched text never become markup in the HTML part."""
    book = _book(redis, _settings(smtp))
    await book.record(
        make_alert(
            title=HOSTILE + "<img src=x onerror=alert(1)>",
            url="javascript:alert(1)",
            facts={"items": ["<b>bold</b>"]},
            lead="<script>lead()</script>",
        )
    )
    assert await book.send_now(MORNING)
    html = _body(smtp.messages[0], "html")
    assert "<script>" not in html
    assert "<img" not in html
    assert "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript' not in html
    assert "&amp;amp;" in html
    assert smtp.messages[0]["Subject"].startswith("tradewatch digest")


async def test_smtp_auth(redis: aioredis.Redis) -> None:
    """With username and password the digest logs in before sending."""
    with FakeSMTP(auth={"robot": "s3cret"}) as smtp:
        settings = Settings.model_validate(
            {
                "notifiers": {
                    "email": {
                        "host": "127.0.0.1",
                        "port": smtp.port,
                        "starttls": False,
                        "from": "tw@example.com",
                        "to": ["b@example.com"],
                        "username": "robot",
                        "password": "s3cret",
                    }
                }
            }
        )
        book = _book(redis, settings)
        await book.record(make_alert())
        assert await book.send_now(MORNING)
        assert smtp.logins == ["robot"]


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
async def test_smtp_tls(
    mode: str, redis: aioredis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STARTTLS on a plain port, or implicit TLS, with the server's certificate verified."""
    cert = self_signed_cert(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
    with FakeSMTP(tls=mode, cert=cert) as smtp:  # type: ignore[arg-type]
        settings = Settings.model_validate(
            {
                "notifiers": {
                    "email": {
                        "host": "127.0.0.1",
                        "port": smtp.port,
                        "starttls": mode == "starttls",
                        "tls": mode == "implicit",
                        "from": "tw@example.com",
                        "to": ["b@example.com"],
                    }
                }
            }
        )
        book = _book(redis, settings)
        await book.record(make_alert())
        assert await book.send_now(MORNING)
        assert len(smtp.messages) == 1
