"""Logging (structlog) and Prometheus metrics: every family named `tradewatch_*` once, here."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from typing import Any, ClassVar

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

__all__ = ["METRICS", "Metrics", "Progress", "configure_logging", "redact", "redact_text"]

# Only the families operations.md lists: no `*_created` timestamp series beside every counter.
disable_created_metrics()  # type: ignore[no-untyped-call]

_SECRET_KEYS = {"token", "password", "secret", "authorization", "webhook_url", "api_key"}
# user:password@ in URLs, and query parameters that carry credentials
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s:]+:[^/@\s]+@")
_SECRET_PARAM = re.compile(
    r"(?i)([?&](?:api[_-]?key|apikey|key|token|access_token|secret|password|passwd|sig|signature|auth)=)[^&#\s'\"]+"
)


def redact_text(text: str) -> str:
    """Hide credentials written into URLs (`user:pass@`, `?apikey=`) wherever a URL is shown."""
    if "://" not in text and "=" not in text:
        return text
    return _SECRET_PARAM.sub(r"\1***", _URL_USERINFO.sub("***@", text))


def redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Drop secrets from log events even when a caller passes them by mistake."""
    for key, value in list(event.items()):
        if key.lower() in _SECRET_KEYS and value:
            event[key] = "***"
        elif isinstance(value, str):
            event[key] = redact_text(value)
    return event


class _StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """JSON lines on stderr when not a TTY (or when asked), readable output on a TTY.

    Libraries that log through the standard library (APScheduler, uvicorn, httpx) go
    through the same renderer, so every line on stderr has one format.
    """
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
        _clear_progress_line,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info if use_json else structlog.processors.StackInfoRenderer(),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
    # One poll of a source at a time is the design (max_instances=1), not news worth a line.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)


class Metrics:
    """The metric families; one instance per process, on its own registry so tests can read it."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.polls = Counter("tradewatch_polls", "Source polls by outcome", ["source", "status"], registry=r)
        self.fetch_errors = Counter(
            "tradewatch_fetch_errors", "Failed fetches by source", ["source"], registry=r
        )
        self.fetch_seconds = Histogram(
            "tradewatch_fetch_seconds",
            "Duration of one successful source poll (fetch and parse)",
            ["source"],
            registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.documents = Counter(
            "tradewatch_documents",
            "Documents seen by source and state (new, updated, unchanged)",
            ["source", "state"],
            registry=r,
        )
        self.matches = Counter("tradewatch_matches", "Rule matches", ["rule"], registry=r)
        self.alerts_sent = Counter("tradewatch_alerts_sent", "Alerts delivered", ["notifier"], registry=r)
        self.alerts_failed = Counter(
            "tradewatch_alerts_failed", "Failed delivery attempts", ["notifier"], registry=r
        )
        self.alerts_pending = Gauge(
            "tradewatch_alerts_pending", "Alerts waiting in the outbox", ["notifier"], registry=r
        )
        self.alerts_dead = Counter(
            "tradewatch_alerts_dead_lettered",
            "Alerts parked after too many failures",
            ["notifier"],
            registry=r,
        )
        self.alerts_suppressed = Counter(
            "tradewatch_alerts_suppressed", "Alerts suppressed by reason", ["reason"], registry=r
        )
        self.delivery_latency = Histogram(
            "tradewatch_delivery_latency_seconds",
            "From document seen to alert accepted by the receiver",
            ["notifier"],
            registry=r,
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900),
        )
        self.reminders_sent = Counter("tradewatch_reminders_sent", "Deadline reminders queued", registry=r)
        self.redis_errors = Counter("tradewatch_redis_errors", "Redis operations that failed", registry=r)
        self.source_up = Gauge(
            "tradewatch_source_up",
            "1 when the last poll of the source (by any worker) succeeded",
            ["source"],
            registry=r,
        )


METRICS = Metrics()


def _clear_progress_line(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """A log line on a terminal first clears a progress line there (the next step redraws it),
    so the two never run together on one line."""
    if Progress.showing:
        sys.stderr.write("\r\x1b[K")
        Progress.showing = False
    return event


class Progress:
    """A one-line progress counter for long work on a terminal; silent in logs and CI.

    Redrawn at most ten times a second, so counting a million lines costs nothing.
    """

    showing: ClassVar[bool] = False  # a progress line is on the terminal, not yet ended

    def __init__(self, total: int, label: str, *, unit: str = "") -> None:
        self.total = total
        self.count = 0
        self.label = label
        self.unit = f" {unit}" if unit else ""
        self.enabled = sys.stderr.isatty() and total > 5 and not os.environ.get("CI")
        self._drawn = 0.0

    def step(self, amount: int = 1) -> None:
        self.count += amount
        if self.enabled and (time.monotonic() - self._drawn > 0.1 or self.count >= self.total):
            self._drawn = time.monotonic()
            sys.stderr.write(f"\r\x1b[K{self.label}: {self.count}/{self.total}{self.unit}")
            sys.stderr.flush()
            Progress.showing = True

    def done(self) -> None:
        if self.enabled:  # the final count, on a line of its own
            sys.stderr.write(f"\r\x1b[K{self.label}: {self.count}/{self.total}{self.unit}\n")
            Progress.showing = False
