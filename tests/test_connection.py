"""Redis connections: the embedded server persists and stops; Sentinel URLs follow the master."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RedisServer, free_port
from tradewatch.errors import StoreError
from tradewatch.store.connection import EmbeddedRedis, close_client, connect, open_redis, redis_server_binary

pytestmark = pytest.mark.integration


async def test_embedded_redis_persists_across_restarts(tmp_path: Path) -> None:
    """Data written through the embedded server is there after it stops and starts again."""
    handle = await open_redis(None, tmp_path)
    assert handle.embedded is not None
    await handle.client.set("tradewatch:probe", "kept")
    await handle.close()
    assert handle.embedded.process is not None
    assert handle.embedded.process.poll() is not None
    again = await open_redis(None, tmp_path)
    try:
        assert await again.client.get("tradewatch:probe") == "kept"
        assert (tmp_path / "redis").is_dir()
    finally:
        await again.close()


async def test_embedded_redis_stays_up_while_a_sibling_uses_it(tmp_path: Path) -> None:
    """Two workers on one state dir share the embedded server: the one that started it may stop
    first without taking Redis from the other, and the last one out stops it."""
    first = await open_redis(None, tmp_path)
    second = await open_redis(None, tmp_path)  # reuses the first one's server
    assert first.embedded is not None
    assert second.embedded is not None
    assert second.embedded.process is None
    await second.client.set("tradewatch:probe", "written")  # a worker keeps its connections open
    await first.close()
    await second.client.set("tradewatch:probe", "still here")
    assert await second.client.get("tradewatch:probe") == "still here"
    await second.close()
    assert not second.embedded._answers()
    assert first.embedded.process is not None
    first.embedded.process.wait(timeout=15)  # the server it started is gone, after saving
    again = await open_redis(None, tmp_path)
    try:
        assert await again.client.get("tradewatch:probe") == "still here"
    finally:
        await again.close()


async def test_a_stalled_embedded_redis_is_waited_for_not_replaced(tmp_path: Path) -> None:
    """A command started while the worker's embedded server stalls (a slow fsync, a pause) must
    not start a second server on the same socket: it waited 0.5 s, then took the socket away
    from the worker for good. It waits for the running one instead; snapshots (RDB) are on."""
    handle = await open_redis(None, tmp_path)
    other = EmbeddedRedis(tmp_path / "redis")
    try:
        assert handle.embedded is not None
        server = handle.embedded.process
        assert server is not None
        server.send_signal(signal.SIGSTOP)
        loop = asyncio.get_running_loop()
        loop.call_later(1.5, server.send_signal, signal.SIGCONT)
        await asyncio.to_thread(other.start)
        assert other.process is None  # reused, not a second server
        assert await handle.client.ping()
        assert await handle.client.config_get("save") == {"save": "60 1"}
    finally:
        await handle.close()
        if other.process is not None:  # the old behaviour: a second server, not left running
            other.process.kill()


def test_embedded_redis_reports_a_failed_start(tmp_path: Path) -> None:
    """A server that exits at start raises StoreError instead of hanging the worker."""
    server = EmbeddedRedis(tmp_path / "redis", binary=shutil.which("false") or "/bin/false")
    with pytest.raises(StoreError, match="exited at start"):
        server.start(timeout=5)
    server.stop()


@pytest.fixture
def sentinel_port(tmp_path: Path, redis_server: RedisServer, redis_url: str) -> Iterator[int]:
    """A real redis-server in Sentinel mode watching the test server as master `tw`."""
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\nsentinel monitor tw 127.0.0.1 {redis_server.port} 1\n",
        encoding="utf-8",
    )
    with subprocess.Popen(
        [redis_server_binary(), str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as proc:
        yield port
        proc.terminate()
        proc.wait(timeout=10)


async def test_sentinel_url_reaches_the_master(sentinel_port: int, redis_url: str) -> None:
    """redis+sentinel://host:port/service asks a real Sentinel for the master and talks to it."""
    client = connect(f"redis+sentinel://127.0.0.1:{sentinel_port}/tw/0")
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                await client.set("tradewatch:sentinel", "ok")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        direct = connect(redis_url)
        assert await direct.get("tradewatch:sentinel") == "ok"
        await direct.aclose()
    finally:
        await close_client(client)


def test_sentinel_url_needs_a_service_name() -> None:
    """A Sentinel URL without the service name is a clear error."""
    with pytest.raises(StoreError, match="service name"):
        connect("redis+sentinel://127.0.0.1:26379")


async def test_many_concurrent_commands_wait_for_a_connection(redis_url: str) -> None:
    """Thousands of concurrent commands (a first poll of many sources) queue instead of failing."""
    client = connect(redis_url)
    try:
        await asyncio.gather(*(client.incr("tradewatch:concurrent") for _ in range(1000)))
        assert await client.get("tradewatch:concurrent") == "1000"
    finally:
        await close_client(client)
