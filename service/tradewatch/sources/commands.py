"""What `tradewatch sources list` and `sources test` do, kept out of cli.py so the CLI stays thin."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import structlog

from tradewatch.config import Settings
from tradewatch.durations import format_duration
from tradewatch.errors import ConfigError, SourceError
from tradewatch.fetch import Fetcher
from tradewatch.models import Document
from tradewatch.observe import redact_text
from tradewatch.sources import SOURCES
from tradewatch.store.health import SourceHealth, SourceHealthRecord
from tradewatch.store.keys import Keys
from tradewatch.store.validators import MemoryValidatorCache

__all__ = ["document_line", "list_sources", "try_source"]

log = structlog.get_logger(__name__)

# `sources list` must answer even when Redis does not: health is then shown as unknown.
_HEALTH_TIMEOUT = 5.0


async def _health(settings: Settings) -> dict[str, SourceHealthRecord] | None:
    from tradewatch.store.connection import open_redis  # only when listing

    try:
        async with asyncio.timeout(_HEALTH_TIMEOUT):
            handle = await open_redis(settings.redis_url, settings.state_dir)
            try:
                return await SourceHealth(handle.client, Keys(settings.key_prefix)).all()
            finally:
                await handle.close()
    except Exception as exc:  # any Redis trouble only hides the health columns
        log.warning("source_health_unavailable", error=str(exc) or type(exc).__name__)
        return None


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "-"
    seconds = max(0, int((now - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _status(spec_enabled: bool, record: SourceHealthRecord | None, known: bool) -> str:
    if not spec_enabled:
        return "disabled"
    if not known:
        return "unknown"
    if record is None:
        return "never polled"
    if record.consecutive_failures:
        return f"failing x{record.consecutive_failures}"
    return f"ok {record.last_status}" if record.last_status else "ok"


async def list_sources(settings: Settings, *, now: datetime | None = None) -> list[str]:
    """One line per configured source: name, kind, interval, status, last success, last error, URL."""
    now = now or datetime.now(UTC)
    health = await _health(settings)
    rows = [("NAME", "KIND", "EVERY", "STATUS", "LAST SUCCESS", "LISTED", "LAST ERROR", "URL")]
    for spec in settings.sources:
        record = (health or {}).get(spec.name)
        error = (record.last_error or "-") if record and record.consecutive_failures else "-"
        rows.append(
            (
                spec.name,
                spec.kind,
                format_duration(spec.every),
                _status(spec.enabled, record, health is not None),
                _ago(record.last_success, now) if record else "-",
                str(record.last_documents) if record else "-",  # items the source lists now
                redact_text(error)[:60],
                redact_text(spec.url),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in rows]


async def try_source(settings: Settings, name: str) -> list[Document]:
    """Fetch one source once, no validators kept (always a full fetch), no dedup, no alerts."""
    spec = settings.source(name)
    if spec.kind not in SOURCES:  # pragma: no cover - config validation already refused it
        raise ConfigError(f"unknown kind {spec.kind!r}", key="sources")
    source = SOURCES[spec.kind](spec)
    async with Fetcher(settings.http, MemoryValidatorCache()) as fetcher:
        try:
            result = await source.fetch(fetcher)
        except SourceError:
            raise
        except Exception as exc:  # content no parser foresaw: stated like any fetch error
            raise SourceError(f"unexpected {type(exc).__name__}: {exc}", source=name) from exc
    log.info(
        "source_tested",
        source=name,
        status=result.status,
        documents=len(result.documents),
        held=len(result.held),
        requests=result.requests,
    )
    # what a poll would hold back for now (a Federal Register text not read yet) is shown too,
    # last: it is what the source read
    return [*result.documents, *result.held]


def document_line(doc: Document) -> str:
    """The contract JSON of a document on one line, Chinese kept readable."""
    return json.dumps(doc.contract_json(), ensure_ascii=False, sort_keys=False)
