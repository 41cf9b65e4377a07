"""Shared test helpers for the HTTP layer and source kinds: servers, settings, fixtures."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import stamina

from tests.conftest import FIXTURES, need_shared
from tests.servers import LocalServer, Request, Response
from tradewatch.config import HttpSettings, SourceSpec
from tradewatch.fetch import Fetcher
from tradewatch.sources import SOURCES

DATA = Path(__file__).resolve().parents[1] / "data"


def fixture_bytes(relative: str) -> bytes:
    """A recorded page from ../shared/fixtures (skips, or fails in strict mode, when absent)."""
    return need_shared(FIXTURES / relative).read_bytes()


def data_bytes(relative: str) -> bytes:
    """A hand-made page from tests/data (see tests/data/INDEX.md)."""
    return (DATA / relative).read_bytes()


def http_settings(**overrides: Any) -> HttpSettings:
    """Test manners: loopback allowed (the servers run on 127.0.0.1), short timeouts."""
    values: dict[str, Any] = {"allow_private": True, "timeout": 5.0, "retries": 2}
    values.update(overrides)
    return HttpSettings(**values)


def spec(kind: str, **values: Any) -> SourceSpec:
    """Validated options of `kind`, as the config loader would build them."""
    values.setdefault("name", f"test-{kind}")
    return SOURCES[kind].Options.model_validate({"kind": kind, **values})


def conditional(body: bytes, content_type: str, etag: str = '"v1"') -> Callable[[Request], Response]:
    """A handler that answers 304 when the client presents `etag`."""

    def handle(req: Request) -> Response:
        if req.headers.get("if-none-match") == etag:
            return Response(304, b"", {"ETag": etag})
        return Response(200, body, {"Content-Type": content_type, "ETag": etag})

    return handle


@pytest.fixture(autouse=True)
def _fast_retries() -> Iterator[None]:
    """stamina's test mode: no backoff waits, at most 3 attempts."""
    stamina.set_testing(True, attempts=3, cap=True)
    yield
    stamina.set_testing(False)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A real HTTP server on 127.0.0.1 for recorded pages (quick to stop: 50 ms shutdown poll)."""
    srv = LocalServer()
    srv.thread = threading.Thread(target=srv.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    with srv:
        yield srv


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    """The shared client with test manners."""
    async with Fetcher(http_settings()) as f:
        yield f


RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(handler: RawHandler) -> AsyncIterator[str]:
    """A socket server speaking whatever `handler` writes, for broken and slow HTTP."""

    tasks: set[asyncio.Task[Any]] = set()

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            tasks.add(task)
        try:
            await reader.readuntil(b"\r\n\r\n")
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(wrapped, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await srv.wait_closed()
