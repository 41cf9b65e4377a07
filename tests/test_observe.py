"""Logging: secrets never reach a log line, library logs share the format."""

from __future__ import annotations

import json
import logging
import sys

import pytest
import structlog

from tradewatch.observe import Progress, configure_logging, redact_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:hunter2@feeds.example/x", "https://***@feeds.example/x"),
        (
            "cannot fetch https://api.example/v1?apikey=ABC123&q=tariff",
            "cannot fetch https://api.example/v1?apikey=***&q=tariff",
        ),
        ("https://h.example/?q=1&token=xoxb-1-2", "https://h.example/?q=1&token=***"),
        ("https://www.mofcom.gov.cn/zwgk/zcfb/index.html", "https://www.mofcom.gov.cn/zwgk/zcfb/index.html"),
    ],
)
def test_credentials_in_urls_are_hidden(text: str, expected: str) -> None:
    """user:password@ and credential query parameters are replaced by ***."""
    assert redact_text(text) == expected


def test_log_lines_carry_no_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    """A token field and a URL with a password are both masked in the JSON line."""
    configure_logging("info", "json")
    structlog.get_logger("t").warning(
        "source_poll_failed", token="xoxb-secret", error="GET https://u:pw@x.example/feed?key=K failed"
    )
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["token"] == "***"
    assert "pw" not in line["error"]
    assert "key=***" in line["error"]


def test_library_logs_are_json_too(capsys: pytest.CaptureFixture[str]) -> None:
    """A standard-library logger's record is rendered as the same JSON lines."""
    configure_logging("info", "json")
    logging.getLogger("uvicorn.error").warning("port %s busy", 8080)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "port 8080 busy"
    assert line["level"] == "warning"


def test_scheduler_skips_are_not_logged(capsys: pytest.CaptureFixture[str]) -> None:
    """APScheduler's 'maximum number of running instances' warning is by design and stays quiet."""
    configure_logging("info", "json")
    logging.getLogger("apscheduler.scheduler").warning("Execution of job skipped")
    assert capsys.readouterr().err == ""


def test_a_log_line_clears_the_progress_line_first(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal the progress line and a log line never share a line: the log line clears it,
    the next step redraws it, and the end writes the final count on its own line."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    configure_logging("info", "console")
    progress = Progress(10, "first poll", unit="sources")
    progress.step()
    structlog.get_logger("t").warning("source_poll_failed", source="x")
    progress.step(9)
    progress.done()
    err = capsys.readouterr().err
    poll_line = err.index("source_poll_failed")
    assert err[:poll_line].startswith("\r\x1b[Kfirst poll: 1/10 sources\r\x1b[K")
    assert err.endswith("\r\x1b[Kfirst poll: 10/10 sources\n")
    assert not Progress.showing
