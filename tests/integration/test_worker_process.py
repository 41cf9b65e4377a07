"""The worker as `make run` starts it: built-in default, embedded Redis, clean stop on a signal."""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import tradewatch_env

pytestmark = pytest.mark.integration


def _reader(stream: object, out: queue.Queue[str]) -> None:
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        out.put(line)


def wait_for_event(
    lines: queue.Queue[str], seen: list[dict[str, object]], event: str, timeout: float
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        seen.append(record)
        if record.get("event") == event:
            return True
    return False


@contextlib.contextmanager
def running_worker(args: list[str], cwd: Path, env: dict[str, str]) -> Iterator[WorkerRun]:
    """A `tradewatch run` process whose JSON log lines arrive in `run.lines`; killed if left running."""
    lines: queue.Queue[str] = queue.Queue()
    with subprocess.Popen(
        [sys.executable, "-m", "tradewatch", "run", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        reader = threading.Thread(target=_reader, args=(proc.stderr, lines), daemon=True)
        reader.start()
        run = WorkerRun(proc, lines, [])
        try:
            yield run
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reader.join(timeout=5)
    while not lines.empty():
        wait_for_event(lines, run.seen, "__drain__", 0.01)


@dataclass
class WorkerRun:
    proc: subprocess.Popen[str]
    lines: queue.Queue[str]
    seen: list[dict[str, object]]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_default_worker_runs_reports_failing_sources_and_stops_cleanly(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """Without a config: embedded Redis, unreachable sources reported, exit 0 on a signal."""
    env = tradewatch_env(
        TRADEWATCH_LOG_FORMAT="json",
        TRADEWATCH_SERVER__PORT="0",
        TRADEWATCH_HTTP__TIMEOUT="2",
        TRADEWATCH_HTTP__RETRIES="0",
        # no internet here: point any proxy at a closed port so every real source fails fast
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
    )
    with running_worker([], tmp_path, env) as run:
        assert wait_for_event(run.lines, run.seen, "worker_started", 30), run.seen
        assert wait_for_event(run.lines, run.seen, "source_poll_failed", 30), run.seen
        assert run.proc.poll() is None
        run.proc.send_signal(sig)
        assert run.proc.wait(timeout=40) == 0
    events = [r.get("event") for r in run.seen]
    assert "worker_stopped" in events
    assert "embedded_redis_started" in events
    assert (tmp_path / "var" / "redis").is_dir()


def test_taken_port_stops_the_start_with_a_clear_error(tmp_path: Path, redis_url: str) -> None:
    """A server port already in use is an error naming server.port, exit 1, before any polling."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = tmp_path / "tradewatch.yaml"
        config.write_text(
            f"redis_url: {redis_url}\nserver: {{port: {port}}}\nsources: []\n", encoding="utf-8"
        )
        env = tradewatch_env()
        result = subprocess.run(
            [sys.executable, "-m", "tradewatch", "run", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
    assert result.returncode == 1
    assert "server.port" in result.stderr
    assert "Traceback" not in result.stderr


_FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
    b"<item><guid>a1</guid><title>Notice</title><link>http://127.0.0.1/a1</link></item>"
    b"</channel></rss>"
)


def _stopped_during_a_slow_poll(
    tmp_path: Path,
    config_head: str,
    args: list[str],
    sig: signal.Signals,
    stopping: str,
    *,
    twice: bool = False,
) -> WorkerRun:
    """A `tradewatch run` (with `args`) over one slow source, sent `sig` while the poll waits on it;
    the source answers once the worker has logged `stopping` (with `twice`, only after the worker
    got `sig` a second time and exited). Asserts it exits 0 and returns the run with its log."""
    from tests.servers import LocalServer, Request, Response

    arrived, answer = threading.Event(), threading.Event()

    def slow(req: Request) -> Response:
        arrived.set()
        answer.wait(30)
        return Response(200, _FEED, {"Content-Type": "application/rss+xml"})

    with LocalServer() as server:
        server.routes["/slow.xml"] = slow
        config = tmp_path / "tradewatch.yaml"
        config.write_text(
            f"{config_head}server: {{enabled: false}}\n"
            f"rules: {Path(__file__).resolve().parents[2] / 'rules'}\n"
            "http: {allow_private: true, retries: 0, timeout: 10}\n"
            f"sources:\n  - {{name: slow, kind: rss, url: '{server.url('/slow.xml')}', every: 1h}}\n",
            encoding="utf-8",
        )
        env = tradewatch_env(TRADEWATCH_LOG_FORMAT="json")
        with running_worker([*args, "--config", str(config)], tmp_path, env) as run:
            assert arrived.wait(30), "the worker never polled the slow source"
            run.proc.send_signal(sig)
            assert wait_for_event(run.lines, run.seen, stopping, 30), run.seen
            if twice:  # the operator presses Ctrl-C again: the worker stops waiting for the poll
                run.proc.send_signal(sig)
                try:
                    assert run.proc.wait(timeout=20) == 0
                finally:
                    answer.set()
            answer.set()
            assert run.proc.wait(timeout=40) == 0
    return run


def test_sigterm_lets_an_in_flight_poll_finish(tmp_path: Path, redis_url: str) -> None:
    """A poll that is waiting on a slow source when SIGTERM arrives completes, then the worker exits 0.

    (APScheduler's asyncio executor cancels running jobs when it is shut down, so the
    worker must pause it and wait for its polls before shutting it down.)
    """
    head = f"redis_url: {redis_url}\nkey_prefix: tw-sigterm\n"
    run = _stopped_during_a_slow_poll(tmp_path, head, [], signal.SIGTERM, "worker_stopping")
    seen = run.seen
    events = [r.get("event") for r in seen]
    assert "worker_stopping" in events
    stopping = events.index("worker_stopping")
    assert "source_polled" in events[stopping:], events
    assert [r for r in seen if r.get("level") == "error"] == []
    assert events[-1] == "worker_stopped"


def test_a_second_signal_stops_without_waiting_for_the_poll(tmp_path: Path, redis_url: str) -> None:
    """A second SIGINT (Ctrl-C again) while shutdown waits on a slow source: the poll is cancelled,
    nothing of it is recorded, and the worker exits 0 at once instead of after the source."""
    head = f"redis_url: {redis_url}\nkey_prefix: tw-forced\n"
    run = _stopped_during_a_slow_poll(tmp_path, head, [], signal.SIGINT, "worker_stopping", twice=True)
    events = [r.get("event") for r in run.seen]
    assert "shutdown_forced" in events
    assert "source_polled" not in events
    assert events[-1] == "worker_stopped"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_once_stops_on_a_signal_and_closes_its_embedded_redis(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """`run --once` on SIGTERM/SIGINT lets its in-flight poll finish, exits 0 (DESIGN) and stops the
    embedded Redis it started; before, SIGTERM killed it (exit 143) and left redis-server running."""
    state = f"state_dir: {tmp_path / 'state'}\n"
    run = _stopped_during_a_slow_poll(tmp_path, state, ["--once"], sig, "shutdown_requested")
    events = [r.get("event") for r in run.seen]
    assert (
        events.index("shutdown_requested") < events.index("source_polled") < events.index("run_once_stopped")
    )
    assert "embedded_redis_stopped" in events
    pidfile = tmp_path / "state" / "redis" / "redis.pid"
    assert not pidfile.exists() or not Path(f"/proc/{pidfile.read_text().strip()}").exists()
