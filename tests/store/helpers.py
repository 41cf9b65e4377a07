"""Shared pieces of the store, pipeline and delivery tests: rules, documents, settings, notifiers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from tradewatch.config import Settings, SourceSpec
from tradewatch.errors import DeliveryError
from tradewatch.matching.engine import Rulebook
from tradewatch.matching.loader import load_rulebook
from tradewatch.models import Alert, Document
from tradewatch.sources import SourceResult

RULES = """
rules:
  - id: rare-earth-export-control
    title: Export controls on rare-earth items
    tags: [export-control]
    severity: critical
    match:
      all:
        - any: [稀土, rare earth]
        - any: [出口管制, export control*]
    extract: [announcement]
  - id: tariff-change
    title: Tariff changes
    tags: [tariff-change]
    severity: warning
    match:
      any: [tariff*]
  - id: truce-throttled
    title: Truce news (one alert a day)
    tags: [truce]
    severity: info
    match:
      any: [truce]
    dedup: {key: "{rule}", window: 1d}
"""

NOW = datetime(2025, 10, 9, 12, 0, tzinfo=UTC)


def rulebook(tmp_path: Path, text: str = RULES) -> Rulebook:
    """The test rules, loaded by the real loader."""
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / "test.yaml").write_text(text, encoding="utf-8")
    return load_rulebook(folder)


def settings(redis_url: str, **over: Any) -> Settings:
    """Settings with fast delivery retries for tests."""
    data: dict[str, Any] = {
        "redis_url": redis_url,
        "delivery": {"max_attempts": 4, "backoff": "0.05s", "max_backoff": "0.2s", "claim_idle": "0.3s"},
    }
    data.update(over)
    return Settings.model_validate(data)


def spec(name: str = "feed", **over: Any) -> SourceSpec:
    return SourceSpec.model_validate({"name": name, "kind": "rss", "url": f"http://127.0.0.1/{name}", **over})


def doc(
    item: str,
    title: str,
    *,
    source: str = "feed",
    text: str = "",
    url: str | None = None,
    published_at: datetime | None = NOW,
    **extra: Any,
) -> Document:
    return Document(
        id=item,
        source=source,
        title=title,
        text=text,
        url=url if url is not None else f"https://example.com/{source}/{item}",
        published_at=published_at,
        **extra,
    )


def result(*docs: Document) -> SourceResult:
    return SourceResult(documents=list(docs))


class Clock:
    """A settable `now` for the pipeline."""

    def __init__(self, now: datetime = NOW) -> None:
        self.value = now

    def __call__(self) -> datetime:
        return self.value

    def advance(self, delta: timedelta) -> None:
        self.value += delta


@dataclass
class Recorder:
    """A notifier that records what it accepted, and fails on demand (transient or permanent)."""

    name: ClassVar[str] = "console"
    sent: list[tuple[Alert, dict[str, str] | None]] = field(default_factory=list)
    fail_next: int = 0
    permanent: bool = False
    retry_after: float | None = None
    calls: int = 0
    redeliveries: int = 0

    async def send(
        self, alert: Alert, thread: dict[str, str] | None = None, *, redelivery: bool = False
    ) -> dict[str, str]:
        self.calls += 1
        if redelivery:
            self.redeliveries += 1
            for earlier, _ in self.sent:
                if earlier.id == alert.id:
                    return {"ts": earlier.id}
        if self.fail_next:
            self.fail_next -= 1
            raise DeliveryError(
                "receiver said no", notifier=self.name, permanent=self.permanent, retry_after=self.retry_after
            )
        self.sent.append((alert, thread))
        return {"ts": alert.id}

    async def aclose(self) -> None:
        return None

    def ids(self) -> list[str]:
        return [a.id for a, _ in self.sent]


async def wait_for(check: Callable[[], Awaitable[bool]] | Callable[[], bool], limit: float = 10.0) -> None:
    """Poll `check` until true or fail after `limit` seconds (no fixed sleeps)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


def stalls_until_cancelled(started: asyncio.Event, error: Exception) -> Callable[..., Awaitable[bool]]:
    """A Redis call that hangs until cancelled and then raises `error`, as redis-py can turn a
    cancelled command into a connection error; `started` is set when it is called."""

    async def call(*_args: object, **_kwargs: object) -> bool:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            raise error from None
        return True

    return call
