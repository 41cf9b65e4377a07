"""`tradewatch run --once` end to end: local feed → rules → real Redis → Slack Web API server."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import structlog

from tests.conftest import RedisServer
from tests.fakeslack import FakeSlack
from tests.integration.feeds import Feed, rss, run_once, write_config
from tests.servers import LocalServer, Request, Response

pytestmark = pytest.mark.integration


def test_once_posts_each_new_matching_item_exactly_once(
    tmp_path: Path, redis_url: str, redis_server: RedisServer
) -> None:
    """One Slack message per new matching item; reruns, new items and restarts behave exactly."""
    now = datetime.now(UTC)
    feed = Feed()
    feed.items = [
        ("a1", "MOFCOM announces export control on rare earth magnets", now - timedelta(hours=2)),
        ("a2", "商务部 关于对稀土相关物项实施出口管制的决定", now - timedelta(hours=1)),
        ("a3", "Weather in Geneva is sunny", now - timedelta(hours=1)),
        ("a4", "Draft rules on rare earth export control published for comment", now),
    ]
    with LocalServer() as server, FakeSlack() as slack:
        server.routes["/feed"] = feed
        config = write_config(tmp_path, redis_url=redis_url, feed_url=server.url("/feed"), slack=slack)

        first = run_once(config)
        assert first.returncode == 0, first.stderr
        assert sorted(m.alert_id is not None for m in slack.top_level()) == [True, True]
        titles = " ".join(m.all_text() for m in slack.top_level())
        assert "rare earth magnets" in titles
        assert "稀土" in titles

        second = run_once(config)
        assert second.returncode == 0, second.stderr
        assert len(slack.top_level()) == 2

        feed.items.append(("a5", "US Commerce: samarium export control talks", now))
        third = run_once(config)
        assert third.returncode == 0, third.stderr
        assert len(slack.top_level()) == 3

        redis_server.restart()
        fourth = run_once(config)
        assert fourth.returncode == 0, fourth.stderr
        assert len(slack.top_level()) == 3
        assert len({m.alert_id for m in slack.top_level()}) == 3


def test_redis_back_without_its_data_posts_nothing_twice(tmp_path: Path, redis_url: str) -> None:
    """Redis restored empty (no persistence, a flush): the next run's first poll raises the same
    alerts again, and Slack's history check finds them posted; before, every recent alert was
    posted a second time."""
    now = datetime.now(UTC)
    feed = Feed()
    feed.items = [
        ("a1", "MOFCOM announces export control on rare earth magnets", now - timedelta(hours=2)),
        ("a2", "商务部 关于对稀土相关物项实施出口管制的决定", now - timedelta(hours=1)),
    ]
    with LocalServer() as server, FakeSlack() as slack:
        server.routes["/feed"] = feed
        config = write_config(tmp_path, redis_url=redis_url, feed_url=server.url("/feed"), slack=slack)
        assert run_once(config).returncode == 0
        assert len(slack.top_level()) == 2
        redis.Redis.from_url(redis_url).flushall()
        again = run_once(config)
        assert again.returncode == 0, again.stderr
        assert len(slack.top_level()) == 2
        assert again.stderr.count('"slack_redelivery_skipped"') == 2


def test_first_poll_baseline_alerts_only_recent_items(tmp_path: Path, redis_url: str) -> None:
    """On a source's first poll only items inside first_poll_window alert; older ones are recorded."""
    now = datetime.now(UTC)
    feed = Feed()
    feed.items = [
        ("old", "Rare earth export control from last month", now - timedelta(days=20)),
        ("new", "Rare earth export control tightened today", now - timedelta(hours=3)),
    ]
    with LocalServer() as server, FakeSlack() as slack:
        server.routes["/feed"] = feed
        config = write_config(tmp_path, redis_url=redis_url, feed_url=server.url("/feed"), slack=slack)
        assert run_once(config).returncode == 0
        texts = [m.all_text() for m in slack.top_level()]
        assert len(texts) == 1
        assert "tightened today" in texts[0]
        assert run_once(config).returncode == 0
        assert len(slack.top_level()) == 1


def test_zero_window_alerts_nothing_on_first_poll(tmp_path: Path, redis_url: str) -> None:
    """first_poll_window 0s records everything on the first poll and alerts nothing."""
    now = datetime.now(UTC)
    feed = Feed()
    feed.items = [("n1", "Rare earth export control tightened", now)]
    with LocalServer() as server, FakeSlack() as slack:
        server.routes["/feed"] = feed
        config = write_config(
            tmp_path, redis_url=redis_url, feed_url=server.url("/feed"), slack=slack, window="0s"
        )
        assert run_once(config).returncode == 0
        assert slack.top_level() == []
        feed.items.append(("n2", "Rare earth export control extended to magnets", now))
        assert run_once(config).returncode == 0
        assert len(slack.top_level()) == 1


def test_broken_config_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """A broken config prints one clear line per problem, no traceback, and exits 1."""
    config = tmp_path / "tradewatch.yaml"
    config.write_text(
        "http: {timeout: -3}\nsources:\n  - {name: x, kind: rss, every: soon}\n", encoding="utf-8"
    )
    result = run_once(config)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert any("http.timeout" in line for line in lines)
    assert any("sources[0].every" in line for line in lines)


def test_broken_rule_file_is_file_line_and_exit_1(tmp_path: Path, redis_url: str) -> None:
    """A broken rule file names file and line, no traceback, exit 1."""
    with FakeSlack() as slack:
        config = write_config(tmp_path, redis_url=redis_url, feed_url="http://127.0.0.1:9/feed", slack=slack)
        (tmp_path / "rules" / "export.yaml").write_text(
            "rules:\n  - id: x\n    title: X\n    tags: [t]\n    severity: critical\n    mtach: {any: [a]}\n",
            encoding="utf-8",
        )
        result = run_once(config)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "export.yaml:6:" in result.stderr


def test_second_run_is_a_conditional_get_answered_304(tmp_path: Path, redis_url: str) -> None:
    """The worker stores the ETag after processing; the next run sends it and a 304 yields no documents."""
    now = datetime.now(UTC)
    body = rss([("e1", "Rare earth export control tightened", now)])
    seen_etags: list[str | None] = []

    def handler(request: Request) -> Response:
        seen_etags.append(request.headers.get("if-none-match"))
        if request.headers.get("if-none-match") == '"v1"':
            return Response(304, b"", {"ETag": '"v1"'})
        return Response(200, body, {"Content-Type": "application/rss+xml", "ETag": '"v1"'})

    with LocalServer() as server, FakeSlack() as slack:
        server.routes["/feed"] = handler
        config = write_config(tmp_path, redis_url=redis_url, feed_url=server.url("/feed"), slack=slack)
        assert run_once(config).returncode == 0
        second = run_once(config)
        assert second.returncode == 0
    assert seen_etags == [None, '"v1"']
    polled = [json.loads(line) for line in second.stderr.splitlines() if '"source_polled"' in line]
    assert polled[0]["status"] == 304
    assert polled[0]["documents"] == 0
    assert len(slack.top_level()) == 1


def _hostile_routes(server: LocalServer, now: datetime) -> str:
    """Sources whose answers hold items no parser foresaw; returns their config lines."""
    when = now.isoformat()
    server.routes["/fr"] = Response(
        200,
        json.dumps(
            {
                "results": [
                    {"document_number": "2025-1", "agencies": 5, "title": "Rare earth export control A"},
                    {
                        "document_number": "2025-2",
                        "title": "Rare earth export control rule B",
                        "html_url": "https://example.org/fr/2025-2",
                        "publication_date": now.date().isoformat(),
                    },
                ]
            }
        ).encode(),
        {"Content-Type": "application/json"},
    )
    statuses = [
        {"id": "1", "account": "x", "content": "rare earth export control one"},
        {"id": "2", "created_at": "not a date", "content": "rare earth export control two"},
        {"id": "3", "media_attachments": 5, "content": "rare earth export control three"},
        {
            "id": "4",
            "url": "https://truth.example/@p/4",
            "created_at": when,
            "account": {"acct": "p"},
            "content": "<p>Rare earth export control four</p>",
        },
    ]
    server.routes["/api/v1/accounts/1/statuses"] = Response(
        200, json.dumps(statuses).encode(), {"Content-Type": "application/json"}
    )
    page = (
        "<html><body><ul class='list'>"
        "<li><a href='http://[::1'>Rare earth export control bad link</a><span>2026-01-01</span></li>"
        f"<li><a href='/n/5'>Rare earth export control page item</a><span>{now.date()}</span></li>"
        "</ul><a class='next' href='http://[::1'>next</a></body></html>"
    )
    server.routes["/list"] = Response(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})
    server.routes["/moved"] = Response(302, b"", {"Location": "http://[::1"})
    return f"""\
  - {{name: fr, kind: federal_register, url: "{server.url("/fr")}", every: 1m}}
  - {{name: truth, kind: truthsocial, url: "{server.base_url}", account: "1", every: 1m}}
  - name: page
    kind: html
    url: "{server.url("/list")}"
    every: 1m
    select: {{item: "ul.list li", title: a, link: "a@href", date: span}}
    pagination: {{next: "a.next@href", max_pages: 2}}
  - {{name: moved, kind: rss, url: "{server.url("/moved")}", every: 1m}}
"""


def test_malformed_items_and_links_affect_only_themselves(tmp_path: Path, redis_url: str) -> None:
    """An item of the wrong shape is skipped and logged, a bad redirect fails its source alone,
    and every other item of every source is still alerted in the same run."""
    now = datetime.now(UTC)
    feed = Feed()
    feed.items = [("a1", "MOFCOM announces export control on rare earth magnets", now)]
    with LocalServer() as server, FakeSlack() as slack:
        server.routes["/feed"] = feed
        config = write_config(tmp_path, redis_url=redis_url, feed_url=server.url("/feed"), slack=slack)
        text = config.read_text().replace("notifiers:", _hostile_routes(server, now) + "notifiers:")
        config.write_text(text)
        done = run_once(config)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        posted = sorted(m.all_text() for m in slack.top_level())
        assert len(posted) == 4, posted
        for words in ("magnets", "rule B", "four", "page item"):
            assert sum(words in p for p in posted) == 1, (words, posted)
        events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
        skipped = Counter(e["source"] for e in events if e["event"] == "item_skipped")
        assert skipped == {"fr": 1, "truth": 3, "page": 1}
        failed = [e for e in events if e["event"] == "source_poll_failed"]
        assert [e["source"] for e in failed] == ["moved"]
        assert "invalid URL" in failed[0]["error"]


def test_an_unusable_link_does_not_stall_its_source(tmp_path: Path, redis_url: str) -> None:
    """Links no browser could open (a port of letters, an unclosed IPv6 bracket) are not
    clustered by link, and their items are alerted like any other."""
    now = datetime.now(UTC)
    feed = Feed()
    feed.items = [
        ("a1", "MOFCOM export control on rare earth magnets", now),
        ("a2", "MOFCOM export control on samarium targets", now),
    ]
    with LocalServer() as server, FakeSlack() as slack:

        def hostile(request: Request) -> Response:
            body = rss(feed.items).replace(b"https://example.org/a1", b"https://x.gov.cn:8o8o/a1")
            return Response(200, body.replace(b"https://example.org/a2", b"http://[::1/a2"), {})

        server.routes["/feed"] = hostile
        config = write_config(tmp_path, redis_url=redis_url, feed_url=server.url("/feed"), slack=slack)
        done = run_once(config)
        assert done.returncode == 0, done.stderr
        events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
        assert [e for e in events if e["event"] == "source_poll_failed"] == []
        posted = sorted(m.all_text() for m in slack.top_level())
        assert [("magnets" in p, "samarium" in p) for p in posted] == [(True, False), (False, True)]


async def test_unforeseen_error_fails_its_source_only(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception no parser maps (a gap in the code, not the page) fails that source's poll,
    counted in its health, and the run goes on to alert the others."""
    from tradewatch.config import load_settings
    from tradewatch.errors import StoreError
    from tradewatch.pipeline import Pipeline
    from tradewatch.sources.commands import list_sources
    from tradewatch.sources.rss import RssSource
    from tradewatch.worker import Worker

    feed = Feed()
    feed.items = [("a1", "MOFCOM announces export control on rare earth magnets", datetime.now(UTC))]
    real_fetch = RssSource.fetch

    async def fetch(self: RssSource, fetcher: Any) -> Any:
        if self.options.name == "gap":
            raise RuntimeError("no parser foresaw this")
        if self.options.name == "blip":  # its validators could not be read: Redis, not the source
            raise StoreError("redis validator read failed: Connection reset by peer")
        return await real_fetch(self, fetcher)

    real_process = Pipeline.process

    async def process(self: Pipeline, spec: Any, result: Any) -> Any:
        if spec.name == "pipe-gap":  # fetched fine; a gap in processing its documents
            raise ValueError("no pipeline step foresaw this")
        return await real_process(self, spec, result)

    real_poll = Worker.poll

    async def poll(self: Worker, spec: Any, *, use_lease: bool) -> None:
        if spec.name == "crash":  # a gap in the worker's own poll, outside every source's guard
            raise KeyError("no worker step foresaw this")
        await real_poll(self, spec, use_lease=use_lease)

    monkeypatch.setattr(RssSource, "fetch", fetch)
    monkeypatch.setattr(Pipeline, "process", process)
    monkeypatch.setattr(Worker, "poll", poll)
    with LocalServer() as server, FakeSlack() as slack:
        server.routes["/feed"] = feed
        config = write_config(tmp_path, redis_url=redis_url, feed_url=server.url("/feed"), slack=slack)
        gap = "".join(
            f'  - {{name: {name}, kind: rss, url: "{server.url("/feed")}", every: 1m}}\n'
            for name in ("gap", "blip", "pipe-gap", "crash")
        )
        config.write_text(config.read_text().replace("notifiers:", gap + "notifiers:"))
        settings = load_settings(config)
        with structlog.testing.capture_logs() as logs:
            assert await Worker(settings).main(once=True) == 0
        assert len(slack.top_level()) == 1
        [crashed] = [e for e in logs if e["event"] == "source_poll_crashed"]
        assert (crashed["source"], crashed["log_level"]) == ("crash", "error")
        assert "no worker step foresaw this" in crashed["error"]
        (row,) = [line for line in await list_sources(settings) if line.startswith("gap ")]
        assert "failing" in row or "error" in row, row
        assert "unexpected RuntimeError: no parser foresaw this" in row
        (blip,) = [line for line in await list_sources(settings) if line.startswith("blip ")]
        assert "failing" not in blip, blip  # a Redis blip is not counted against the source
        assert "redis" not in blip, blip
        (piped,) = [line for line in await list_sources(settings) if line.startswith("pipe-gap ")]
        assert "unexpected ValueError: no pipeline step foresaw this" in piped, piped
