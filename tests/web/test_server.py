"""serve(): a real uvicorn on 127.0.0.1 that lives on the caller's loop and stops on its event."""

from __future__ import annotations

import asyncio
import signal
import socket

import httpx
import pytest

from tests.web.conftest import FakeWorker
from tradewatch.errors import ConfigError
from tradewatch.web import create_app, serve


async def _start(worker: FakeWorker, stop: asyncio.Event) -> tuple[asyncio.Task[None], int]:
    ports: asyncio.Queue[int] = asyncio.Queue()
    task = asyncio.create_task(serve(create_app(worker), "127.0.0.1", 0, stop, started=ports.put_nowait))
    port = await asyncio.wait_for(ports.get(), timeout=5)
    return task, port


async def test_serves_over_real_http_and_stops_on_the_event(worker: FakeWorker) -> None:
    """The server answers real HTTP requests and returns once `stop` is set."""
    stop = asyncio.Event()
    task, port = await _start(worker, stop)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
        assert "server" not in (await client.get("/healthz")).headers
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))


async def test_leaves_signal_handlers_to_the_worker(worker: FakeWorker) -> None:
    """While serving, SIGTERM and SIGINT handlers are the worker's, not uvicorn's."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    stop = asyncio.Event()
    task, _ = await _start(worker, stop)
    during = {sig: signal.getsignal(sig) for sig in before}
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    assert during == before


async def test_taken_port_is_a_config_error(worker: FakeWorker) -> None:
    """A port already in use raises ConfigError naming server.port, not SystemExit."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=r"server\.port"):
            await serve(create_app(worker), "127.0.0.1", port, asyncio.Event())
