"""Logging (structlog) and Prometheus metrics: every family named `tradewatch_*` once, here."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["METRICS", "Metrics", "configure_logging", "redact"]

_SECRET_KEYS = {"token", "password", "secret", "authorization", "webhook_url", "api_key"}


def redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Drop secrets from log events even when a caller passes them by mistake."""
    for key in list(event):
        if key.lower() in _SECRET_KEYS and event[key]:
            event[key] = "***"
    return event


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """JSON lines on stderr when not a TTY (or when asked), readable output on a TTY."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
        structlog.processors.format_exc_info if use_json else structlog.processors.StackInfoRenderer(),
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


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
            "Duration of one source poll",
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
            "tradewatch_source_up", "1 when the last poll of the source succeeded", ["source"], registry=r
        )


METRICS = Metrics()
