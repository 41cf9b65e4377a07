"""Fixtures for the web app: a worker state built from real parts (Settings, Metrics, real Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from starlette.applications import Starlette

from tradewatch.config import ServerSettings, Settings
from tradewatch.observe import Metrics
from tradewatch.web.app import create_app


@dataclass
class FakeRulebook:
    """What the web app reads of a Rulebook, for tests that need no rules."""

    rules: list[Any] = field(default_factory=list)
    deadlines: list[Any] = field(default_factory=list)

    def rule(self, rule_id: str) -> Any:
        """The rule with this id (KeyError when absent), like Rulebook.rule."""
        return {r.id: r for r in self.rules}[rule_id]


@dataclass
class FakeWorker:
    """What the worker passes to create_app, with plain attributes a test can flip."""

    settings: Settings
    metrics: Metrics
    redis: aioredis.Redis | None
    rules_loaded: bool = True
    scheduler_running: bool = True
    rulebook: FakeRulebook | None = field(default_factory=FakeRulebook)


def make_settings(**server: Any) -> Settings:
    """Settings with two sources, the server section overridden by `server`."""
    return Settings.model_validate(
        {
            "sources": [
                {
                    "name": "mofcom-announcements",
                    "kind": "rss",
                    "url": "https://www.mofcom.gov.cn/feed",
                    "every": "5m",
                },
                {"name": "ustr-press", "kind": "rss", "url": "https://ustr.gov/feed", "every": "30m"},
            ],
            "server": ServerSettings(**server).model_dump(),
        }
    )


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """An async client on the run's real redis-server, flushed for this test."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def worker(redis_client: aioredis.Redis) -> FakeWorker:
    """A ready worker state: Redis answers, rules loaded, scheduler running."""
    return FakeWorker(settings=make_settings(), metrics=Metrics(), redis=redis_client)


def client_for(app: Starlette) -> httpx.AsyncClient:
    """An httpx client that calls the ASGI app in-process."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
async def client(worker: FakeWorker) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the app built around `worker`."""
    async with client_for(create_app(worker)) as c:
        yield c
