"""`tradewatch deadlines [--ics]` and `tradewatch digest [--dry-run]` through the real CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import redis
import time_machine
from icalendar import Calendar
from typer.testing import CliRunner

from tests.fakesmtp import FakeSMTP
from tests.notify.alerts import make_alert
from tradewatch.cli import app
from tradewatch.store.keys import Keys

RULES = """
deadlines:
  - id: us-china-tariff-truce-2025-11
    title: US–China tariff truce expires unless extended
    due: 2025-11-10T00:01:00-05:00
    remind: [30d, 7d, 1d, 2h]
    tags: [truce]
"""
NOW = datetime(2025, 11, 3, 6, 0, tzinfo=UTC)


def _config(tmp_path: Path, redis_url: str, email: str = "") -> Path:
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "deadlines.yaml").write_text(RULES, encoding="utf-8")
    config = tmp_path / "tradewatch.yaml"
    config.write_text(
        f"redis_url: {redis_url}\nkey_prefix: cli\nrules: ./rules\ntimezone: UTC\n"
        f"notifiers:\n  console: {{}}\n{email}",
        encoding="utf-8",
    )
    return config


def test_deadlines_lists_upcoming(tmp_path: Path, redis_url: str) -> None:
    """The listing shows the deadline, time left and each reminder's state; nothing else on stdout."""
    with time_machine.travel(NOW, tick=False):
        result = CliRunner().invoke(app, ["deadlines", "--config", str(_config(tmp_path, redis_url))])
    assert result.exit_code == 0, result.output
    assert "2025-11-10 05:01 UTC  in 7 days" in result.stdout
    assert "US–China tariff truce expires unless extended" in result.stdout
    assert "remind  30d before  2025-10-11 05:01  missed" in result.stdout
    assert "remind   2h before  2025-11-10 03:01  planned" in result.stdout


def test_deadlines_ics(tmp_path: Path, redis_url: str) -> None:
    """`--ics` writes a calendar that parses, with one alarm per reminder."""
    with time_machine.travel(NOW, tick=False):
        config = str(_config(tmp_path, redis_url))
        result = CliRunner().invoke(app, ["deadlines", "--ics", "--config", config])
    assert result.exit_code == 0, result.output
    [event] = Calendar.from_ical(result.stdout_bytes).walk("VEVENT")
    assert str(event["UID"]) == "us-china-tariff-truce-2025-11@tradewatch"
    assert len(event.walk("VALARM")) == 4


def test_deadlines_without_redis_lists_the_files_but_writes_no_calendar(tmp_path: Path) -> None:
    """Redis down: the listing falls back to the rule files' deadlines; `--ics` fails with exit 1
    and writes nothing, since a calendar app would take a partial feed (no derived deadlines,
    resolved ones shown as confirmed) for the truth."""
    config = str(_config(tmp_path, "redis://127.0.0.1:1/0"))
    with time_machine.travel(NOW, tick=False):
        listing = CliRunner().invoke(app, ["deadlines", "--config", config])
        calendar = CliRunner().invoke(app, ["deadlines", "--ics", "--config", config])
    assert listing.exit_code == 0, listing.output
    assert "US–China tariff truce expires unless extended" in listing.stdout
    assert calendar.exit_code == 1
    assert calendar.stdout == ""
    assert "redis unavailable, no calendar written" in calendar.stderr


def test_digest_dry_run_then_send(tmp_path: Path, redis_url: str) -> None:
    """`--dry-run` prints the digest and keeps the alerts; `digest` then mails them once."""
    with FakeSMTP() as smtp:
        email = (
            f"  email: {{host: 127.0.0.1, port: {smtp.port}, starttls: false, from: tw@example.com, "
            "to: [buyers@example.com]}\n"
        )
        config = str(_config(tmp_path, redis_url, email))
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        alert = make_alert(seen_at=NOW)
        client.hset(Keys("cli").digest_items(), alert.id, alert.model_dump_json())
        client.zadd(Keys("cli").digest_index(), {alert.id: NOW.timestamp()})
        client.close()
        runner = CliRunner()
        with time_machine.travel(NOW, tick=False):
            dry = runner.invoke(app, ["digest", "--dry-run", "--config", config])
            html = runner.invoke(app, ["digest", "--dry-run", "--html", "--config", config])
            sent = runner.invoke(app, ["digest", "--config", config])
            again = runner.invoke(app, ["digest", "--config", config])
    assert dry.exit_code == 0, dry.output
    subject = "Subject: tradewatch digest 2025-11-03: 1 alert (1 critical), 1 deadline ahead"
    assert dry.stdout.startswith(subject)
    assert "MOFCOM export controls" in dry.stdout
    assert "US–China tariff truce expires" in dry.stdout
    assert html.stdout.startswith("<!DOCTYPE html>")
    assert sent.exit_code == 0, sent.output
    assert again.exit_code == 0, again.output
    assert len(smtp.messages) == 1


def test_digest_without_email_fails_clearly(tmp_path: Path, redis_url: str) -> None:
    """Sending with no email notifier configured exits 1 naming the key."""
    result = CliRunner().invoke(app, ["digest", "--config", str(_config(tmp_path, redis_url))])
    assert result.exit_code == 1
    assert "notifiers.email" in result.output
