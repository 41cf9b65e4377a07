"""Several `tradewatch run` processes on one Redis: each source polled once per interval, each alert once."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from tests.conftest import tradewatch_env
from tests.fakeslack import FakeSlack
from tests.integration.feeds import Feed, write_config
from tests.servers import LocalServer, Response
from tradewatch.polling import failure_backoff
from tradewatch.store.keys import Keys

pytestmark = pytest.mark.integration

INTERVAL = 1.0


def start_worker(config: Path, n: int, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = tradewatch_env(TRADEWATCH_LOG_FORMAT="json")
    with (tmp_path / f"worker{n}.log").open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "tradewatch", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
        )


def wait_until(check: object, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_three_workers_poll_once_per_interval_and_alert_once(tmp_path: Path, redis_url: str) -> None:
    """Three workers: the feed is fetched about once per interval (not three times), each item posted once."""
    now = datetime.now(UTC)
    feed = Feed()
    feed.items = [("a1", "MOFCOM announces export control on rare earth magnets", now - timedelta(hours=1))]
    with LocalServer() as server, FakeSlack() as slack:
        server.routes["/feed"] = feed
        config = write_config(tmp_path, redis_url=redis_url, feed_url=server.url("/feed"), slack=slack)
        config.write_text(config.read_text().replace("every: 1m", f"every: {INTERVAL:g}s, jitter: 0s"))
        workers = [start_worker(config, n, tmp_path) for n in range(3)]
        try:
            wait_until(lambda: server.hits("/feed") >= 1, 30)
            started = time.monotonic()
            first = server.hits("/feed")
            wait_until(lambda: len(slack.top_level()) == 1, 30)
            feed.items.append(("a2", "商务部 关于对稀土相关物项实施出口管制的决定", now))
            wait_until(lambda: len(slack.top_level()) == 2, 30)
            wait_until(lambda: time.monotonic() - started >= 6 * INTERVAL, 30)
            fetched = [r.at for r in server.requests if r.path == "/feed"][first:]
            intervals = (time.monotonic() - started) / INTERVAL
        finally:
            for proc in workers:
                proc.send_signal(signal.SIGTERM)
            codes = [proc.wait(timeout=60) for proc in workers]
        logs = "\n".join((tmp_path / f"worker{n}.log").read_text()[-3000:] for n in range(3))
        assert codes == [0, 0, 0], logs
        # one poll per interval between them: three workers polling on their own would fetch
        # within milliseconds of each other (a slow machine may poll late, never more often)
        gaps = [b - a for a, b in itertools.pairwise(fetched)]
        assert len(fetched) >= 3, logs
        assert min(gaps) >= 0.5 * INTERVAL, (gaps, logs)
        assert max(gaps) <= 3 * INTERVAL, (gaps, logs)  # and one of them polls every interval
        assert len(fetched) <= intervals + 1, (len(fetched), intervals, logs)
        ids = [m.alert_id for m in slack.messages]
        assert len(ids) == len(set(ids)) == 2, logs


def test_chaos_kill_a_worker_restart_redis_slack_errors(
    tmp_path: Path, redis_url: str, redis_server: object
) -> None:
    """Three workers; one SIGKILLed, Redis killed and restarted, Slack failing: every item posted once."""
    now = datetime.now(UTC)
    feed = Feed()
    places = [
        "Hamburg",
        "Busan",
        "Santos",
        "Durban",
        "Oslo",
        "Lima",
        "Perth",
        "Tunis",
        "Quito",
        "Riga",
        "Accra",
        "Hanoi",
    ]
    goods = [
        "magnets",
        "oxides",
        "alloys",
        "scrap",
        "powders",
        "ingots",
        "wafers",
        "foils",
        "wire",
        "rods",
        "salts",
        "ore",
    ]
    titles = [
        f"{places[n]} customs: rare earth {goods[n]} export control notice {n * 37 + 5}" for n in range(12)
    ]
    with LocalServer() as server, FakeSlack() as slack:
        server.routes["/feed"] = feed
        config = write_config(tmp_path, redis_url=redis_url, feed_url=server.url("/feed"), slack=slack)
        text = config.read_text().replace("every: 1m", f"every: {INTERVAL:g}s, jitter: 0s")
        config.write_text(
            text + 'delivery: {claim_idle: "1s", backoff: "0.2s", max_backoff: "1s", max_attempts: 30}\n'
        )
        workers = [start_worker(config, n, tmp_path) for n in range(3)]
        try:
            for n in range(4):
                feed.items.append((f"c{n}", titles[n], now))
            wait_until(lambda: len(slack.messages) >= 2, 30)
            workers[0].kill()  # no graceful stop: whatever it read stays pending until claimed
            workers[0].wait(timeout=10)
            slack.fail("chat.postMessage", status=500, times=4)
            slack.fail("chat.postMessage", status=429, retry_after=1, times=2)
            for n in range(4, 8):
                feed.items.append((f"c{n}", titles[n], now))
            server_proc = redis_server.process  # type: ignore[attr-defined]
            server_proc.kill()
            server_proc.wait()
            redis_server.start()  # type: ignore[attr-defined]
            for n in range(8, 12):
                feed.items.append((f"c{n}", titles[n], now))
            wait_until(lambda: len({m.alert_id for m in slack.messages}) >= 12, 90)
        finally:
            for proc in workers[1:]:
                proc.send_signal(signal.SIGTERM)
            codes = [proc.wait(timeout=60) for proc in workers[1:]]
        logs = "\n".join((tmp_path / f"worker{n}.log").read_text()[-3000:] for n in range(3))
        assert codes == [0, 0], logs
        ids = [m.alert_id for m in slack.messages]
        assert len(ids) == len(set(ids)) == 12, (Counter(ids), logs)


def _add_source(config: Path, name: str, url: str, *, every: str, top: str = "") -> None:
    """One more rss source beside the feed, both polled every `every`; `top`: a top-level key."""
    line = f'  - {{name: {name}, kind: rss, url: "{url}", every: {every}, jitter: 0s}}\n'
    text = config.read_text().replace("every: 1m", f"every: {every}, jitter: 0s")
    if top:
        text = text.replace("state_dir:", f"{top}\nstate_dir:")
    config.write_text(text.replace("notifiers:", line + "notifiers:"))


def _run_until(config: Path, tmp_path: Path, done: Callable[[], bool]) -> None:
    """One long-running worker until `done`, then SIGTERM."""
    worker = start_worker(config, 0, tmp_path)
    try:
        wait_until(done, 30)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)


def test_a_long_retry_after_defers_the_source_polls(tmp_path: Path, redis_url: str) -> None:
    """A 503 with `Retry-After: 3600` stops polls of that source (every 0.5s) until then; others go on."""
    with LocalServer() as server, FakeSlack() as slack:
        server.routes["/busy"] = Response(503, b"busy", {"Retry-After": "3600"})
        server.routes["/feed"] = Feed()
        config = write_config(tmp_path, redis_url=redis_url, feed_url=server.url("/feed"), slack=slack)
        _add_source(config, "busy", server.url("/busy"), every="0.5s")
        _run_until(config, tmp_path, lambda: server.hits("/feed") >= 8)  # four seconds of polls
        assert server.hits("/busy") == 1
        assert '"source_polls_deferred"' in (tmp_path / "worker0.log").read_text()


def test_a_failing_source_is_polled_less_and_less_often(tmp_path: Path, redis_url: str) -> None:
    """A source answering 500 poll after poll backs off once reported failing (each further
    failure doubles the gap) while the others keep their schedule; before, it was hit at its
    full rate for good."""
    with LocalServer() as server, FakeSlack() as slack:
        server.routes["/down"] = Response(500, b"down")
        server.routes["/feed"] = Feed()
        config = write_config(tmp_path, redis_url=redis_url, feed_url=server.url("/feed"), slack=slack)
        _add_source(config, "down", server.url("/down"), every="0.25s", top="failure_alert_after: 2")
        _run_until(config, tmp_path, lambda: server.hits("/feed") >= 16)  # four seconds of polls
        # 0.25 s, then (reported failing) gaps of 0.5, 1, 2 s…: about 5 polls in 4 s, not 16
        assert 3 <= server.hits("/down") <= 8, server.hits("/down")
        assert '"source_polls_deferred"' in (tmp_path / "worker0.log").read_text()
        # the status page's "next poll" is the backed-off one, not a time already past
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        health = client.hgetall(Keys("tradewatch").source_health("down"))
        assert health, "health record of the failing source"
        gap = datetime.fromisoformat(health["next_poll"]) - datetime.fromisoformat(health["last_error_at"])
        assert gap.total_seconds() > 0.4


def test_backoff_waits_for_the_failing_report_and_never_overflows() -> None:
    """No backoff before the source is reported failing (that alert is not delayed); then the
    gap doubles up to half an hour, and a streak of thousands (weeks down) stays at the cap."""
    assert [failure_backoff(60, n, 5) for n in (1, 4, 5, 6, 7)] == [0, 0, 120, 240, 480]
    assert failure_backoff(60, 50_000, 5) == 1800
    assert failure_backoff(7200, 50_000, 5) == 7200  # an `every` longer than the cap is the gap
