"""End-to-end latency: an item published on a local feed until the running worker's Slack call.

A real `tradewatch run` process polls one local RSS feed every second and posts to a
local Slack Web API server (the tests' FakeSlack, stamped with arrival times). Items
are published at random moments; for each one the benchmark records when it was
published, when the feed first served it (the poll that saw it) and when
`chat.postMessage` carrying it arrived. Reported: publication → Slack call (what a
user waits), and poll → Slack call (the same minus the polling interval's share,
i.e. what tradewatch itself costs once the item is visible).
"""

from __future__ import annotations

import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from bench.feeds import item_body
from bench.procs import REPO, RedisServer, progress_line, tradewatch_cmd

__all__ = ["run"]

ITEMS = int(os.environ.get("BENCH_LATENCY_ITEMS", "60"))
POLL_EVERY = 1.0
GAP = (0.2, 1.8)  # seconds between two publications, uniform: about one item per poll on average
_TOKEN = re.compile(r"latencyprobe-(\d+)")
_RULE = {
    "rules": [
        {
            "id": "bench-latency-probe",
            "title": "Latency probe",
            "tags": ["bench"],
            "severity": "critical",
            "match": {"any": ["latencyprobe"]},
            "notify": ["slack"],
        }
    ]
}


@dataclass
class _Item:
    number: int
    published: float
    served: float | None = None
    posted: float | None = None


class _Feed:
    """One RSS feed whose items the benchmark publishes; notes when each item is first served."""

    def __init__(self) -> None:
        self.items: list[_Item] = []
        self.lock = threading.Lock()
        self.requests = 0
        outer = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                now = time.time()
                with outer.lock:
                    outer.requests += 1
                    items = list(outer.items)
                etag = f'"v{len(items)}"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = outer.render(items)
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with outer.lock:
                    for item in items:
                        if item.served is None:
                            item.served = now

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/feed.xml"

    def render(self, items: list[_Item]) -> bytes:
        parts = [
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>latency</title>'
            "<link>http://127.0.0.1/</link><description>bench</description>"
        ]
        for item in reversed(items[-30:]):
            title = f"Bench notice latencyprobe-{item.number}"
            published = format_datetime(datetime.fromtimestamp(item.published, UTC))
            parts.append(
                f"<item><title>{title}</title><link>http://127.0.0.1/item/{item.number}</link>"
                f"<guid>latency-{item.number}</guid><pubDate>{published}</pubDate>"
                f"<description>{escape(item_body(4242, item.number))}</description></item>"
            )
        parts.append("</channel></rss>")
        return "".join(parts).encode()

    def publish(self, number: int) -> None:
        with self.lock:
            self.items.append(_Item(number, time.time()))

    def __enter__(self) -> _Feed:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _slack_class() -> Any:
    """The tests' FakeSlack, with the arrival time of every chat.postMessage noted."""
    sys.path.insert(0, str(REPO))
    from tests.fakeslack import FakeSlack

    class StampedSlack(FakeSlack):
        def __init__(self) -> None:
            super().__init__()
            self.arrivals: list[tuple[float, str]] = []

        def _handle(self, verb: str, path: str, headers: dict[str, str], body: bytes) -> Any:
            arrived = time.time()
            if path.split("?", 1)[0].endswith("chat.postMessage"):
                self.arrivals.append((arrived, body.decode("utf-8", "replace")))
            return super()._handle(verb, path, headers, body)

    return StampedSlack


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]

    return {
        "p50": round(statistics.median(ordered), 3),
        "p95": round(pick(0.95), 3),
        "p99": round(pick(0.99), 3),
        "max": round(ordered[-1], 3),
    }


def run(progress: bool) -> dict[str, Any]:
    """Publish ITEMS items at random moments and time each one to its Slack call."""
    rnd = random.Random(9)
    slack_cls = _slack_class()
    with tempfile.TemporaryDirectory(prefix="tradewatch-bench-latency-") as tmp:
        work = Path(tmp)
        (work / "rules").mkdir()
        (work / "rules" / "bench.yaml").write_text(yaml.safe_dump(_RULE))
        with RedisServer(work / "redis") as redis, _Feed() as feed, slack_cls() as slack:
            config = {
                "redis_url": redis.url,
                "rules": str(work / "rules"),
                "state_dir": str(work / "var"),
                "http": {"allow_private": True, "retries": 0, "timeout": 5},
                "server": {"enabled": False},
                "sources": [
                    {"name": "latency-feed", "kind": "rss", "url": feed.url, "every": f"{POLL_EVERY:g}s"}
                ],
                "notifiers": {
                    "slack": {
                        "token": slack.token,
                        "base_url": slack.base_url,
                        "routes": {"default": "#bench"},
                    }
                },
            }
            (work / "tradewatch.yaml").write_text(yaml.safe_dump(config))
            env = {**os.environ, "TRADEWATCH_LOG_FORMAT": "json"}
            env.pop("TRADEWATCH_CONFIG", None)
            log = (work / "worker.log").open("w")
            worker = subprocess.Popen(
                [*tradewatch_cmd(), "run", "--config", str(work / "tradewatch.yaml")],
                cwd=work,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            try:
                deadline = time.monotonic() + 60
                while feed.requests < 2 and time.monotonic() < deadline and worker.poll() is None:
                    time.sleep(0.05)  # the worker is up and past its first (empty) poll
                for number in range(ITEMS):
                    if worker.poll() is not None:
                        break
                    time.sleep(rnd.uniform(*GAP))
                    feed.publish(number)
                    progress_line(
                        progress,
                        f"latency: published {number + 1}/{ITEMS}, {len(slack.arrivals)} Slack calls so far",
                    )
                deadline = time.monotonic() + 20
                while len(slack.arrivals) < ITEMS and time.monotonic() < deadline and worker.poll() is None:
                    time.sleep(0.05)
            finally:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
                log.close()
                progress_line(progress, "")
            items = {i.number: i for i in feed.items}
            for arrived, body in slack.arrivals:
                for number in {int(n) for n in _TOKEN.findall(body)}:
                    item = items.get(number)
                    if item is not None and item.posted is None:
                        item.posted = arrived
            worker_rc = worker.returncode
            errors = [
                line
                for line in (work / "worker.log").read_text(errors="replace").splitlines()
                if '"level": "error"' in line or '"level": "warning"' in line or not line.startswith("{")
            ]
    delivered = [i for i in items.values() if i.posted is not None and i.served is not None]
    total = [i.posted - i.published for i in delivered if i.posted is not None]
    after_poll = [i.posted - i.served for i in delivered if i.posted is not None and i.served is not None]
    waiting = [i.served - i.published for i in delivered if i.served is not None]
    return {
        "items_published": len(items),
        "items_posted": len(delivered),
        "slack_calls": len(slack.arrivals),
        "poll_every_s": POLL_EVERY,
        "publication_to_slack_s": _percentiles(total),
        "poll_to_slack_s": _percentiles(after_poll),
        "publication_to_poll_s": _percentiles(waiting),
        "samples_publication_to_slack_s": [round(v, 4) for v in total],
        "samples_poll_to_slack_s": [round(v, 4) for v in after_poll],
        "worker_exit": worker_rc,
        "worker_warnings": errors[:5],
        "worker_warning_count": len(errors),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(sys.stderr.isatty()), indent=2))
