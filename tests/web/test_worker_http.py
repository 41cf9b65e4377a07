"""The real `tradewatch run` process serves the endpoints on its own loop and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import free_port, tradewatch_env

pytestmark = pytest.mark.integration


@pytest.fixture
def worker_process(tmp_path: Path, redis_url: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A worker with no sources (no network), one rule, the real Redis and the server on a free port."""
    rules = tmp_path / "rules"
    rules.mkdir()
    rule = {
        "id": "rare-earth",
        "title": "Rare earth",
        "tags": ["export-control"],
        "severity": "critical",
        "match": {"any": ["rare earth"]},
    }
    (rules / "rules.yaml").write_text(yaml.safe_dump({"rules": [rule]}), encoding="utf-8")
    port = free_port()
    config = {
        "redis_url": redis_url,
        "state_dir": str(tmp_path / "var"),
        "rules": str(rules),
        "server": {"host": "127.0.0.1", "port": port},
        "sources": [],
        "notifiers": {"console": {}},
        "log_format": "json",
    }
    (tmp_path / "tradewatch.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    env = tradewatch_env()
    process = subprocess.Popen(
        [sys.executable, "-m", "tradewatch", "run", "--config", str(tmp_path / "tradewatch.yaml")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    yield process, f"http://127.0.0.1:{port}"
    if process.poll() is None:
        process.kill()
        process.wait()
    if process.stderr is not None:
        process.stderr.close()


def _wait_ready(base: str, process: subprocess.Popen[bytes]) -> httpx.Response:
    """Poll /readyz until 200, with a deadline (the worker starts in well under a second here)."""
    deadline = time.monotonic() + 30
    last: httpx.Response | None = None
    while time.monotonic() < deadline:
        assert process.poll() is None, f"worker exited with {process.returncode}"
        try:
            last = httpx.get(f"{base}/readyz", timeout=2)
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        if last.status_code == 200:
            return last
        time.sleep(0.05)
    raise AssertionError(f"not ready in 30 s: {last.text if last is not None else 'no answer'}")


def _docker_healthcheck(port: str) -> int:
    """Run the Dockerfile's HEALTHCHECK command against `port`; its exit code."""
    text = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text(encoding="utf-8")
    line = re.sub(r"\\\n", " ", text).split("HEALTHCHECK", 1)[1].splitlines()[0]
    command = json.loads(line.split("CMD", 1)[1])
    assert command[0] == "python"
    env = {**os.environ, "TRADEWATCH_SERVER__PORT": port}
    return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30).returncode


def test_worker_serves_probes_metrics_and_page_then_stops_on_sigterm(
    worker_process: tuple[subprocess.Popen[bytes], str],
) -> None:
    """/readyz turns 200, /metrics, / and the image's HEALTHCHECK pass; SIGTERM ends it with exit 0."""
    process, base = worker_process
    ready = _wait_ready(base, process)
    assert ready.json()["checks"] == {"redis": "ok", "rules": "ok", "scheduler": "ok"}
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    metrics = httpx.get(f"{base}/metrics", timeout=5)
    assert "tradewatch_alerts_sent" in metrics.text
    page = httpx.get(f"{base}/", timeout=10)
    assert page.status_code == 200
    assert "Upcoming deadlines" in page.text
    port = base.rsplit(":", 1)[1]
    assert _docker_healthcheck(port) == 0
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert _docker_healthcheck(port) != 0
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", int(port)))
