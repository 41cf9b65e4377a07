"""`tradewatch sources test` and `sources list` as a user runs them, against pages served on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.servers import LocalServer, Response
from tests.sources.helpers import data_bytes, fixture_bytes
from tradewatch.config import load_settings
from tradewatch.errors import SourceError
from tradewatch.sources.commands import try_source
from tradewatch.sources.rss import RssSource
from tradewatch.store.health import SourceHealth
from tradewatch.store.keys import Keys

CLI = [sys.executable, "-c", "from tradewatch.cli import main; main()"]


def _config(tmp_path: Path, server: LocalServer, redis_url: str = "") -> Path:
    base = server.base_url
    text = f"""
state_dir: {tmp_path / "var"}
{"redis_url: " + redis_url if redis_url else ""}
log_format: json
http: {{allow_private: true, timeout: 5, retries: 0}}
sources:
  - {{name: truth-mirror, kind: rss, url: "{base}/feed", every: 1m}}
  - {{name: fr-presidential, kind: federal_register, every: 15m,
      url: "{base}/api/v1/documents.json?order=newest"}}
  - {{name: exportcontrol, kind: mofcom, url: "{base}/articleList.shtml?columnID=14&num=1", every: 5m}}
  - {{name: broken, kind: rss, url: "{base}/broken", every: 5m}}
  - {{name: paused, kind: rss, url: "{base}/paused", enabled: false}}
"""
    path = tmp_path / "tradewatch.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _serve(server: LocalServer) -> None:
    server.routes["/feed"] = Response(
        200, fixture_bytes("truthsocial/feed-trumpstruth-2026-08-25-truncated.xml")
    )
    server.routes["/api/v1/documents.json"] = Response(
        200, fixture_bytes("federal_register/documents-presdocu-newest-page1.json")
    )
    server.routes["/articleList.shtml"] = Response(
        200, data_bytes("mofcom/exportcontrol-articleList-14.html")
    )
    server.routes["/article/zcfg/gnzcfg/gzjgfxwj/202410/1057.html"] = Response(
        200, fixture_bytes("mofcom/prc-dual-use-regulation-792.html")
    )
    server.routes["/broken"] = Response(500, b"oops")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)


def test_sources_test_prints_jsonl_per_kind(tmp_path: Path, server: LocalServer) -> None:
    """Each kind prints one contract JSON document a line, dates with offsets; logs go to stderr."""
    _serve(server)
    config = _config(tmp_path, server)
    expected = {"truth-mirror": 26, "fr-presidential": 2, "exportcontrol": 1}
    for name, count in expected.items():
        done = _run("sources", "test", name, "--config", str(config))
        assert done.returncode == 0, done.stderr
        docs = [json.loads(line) for line in done.stdout.splitlines()]
        assert len(docs) == count
        for doc in docs:
            assert doc["source"] == name
            assert doc["title"]
            assert doc["url"]
            assert doc["published_at"][-6:] in ("+00:00", "-04:00", "+08:00") or doc["published_at"].endswith(
                "Z"
            )
        assert "source_tested" in done.stderr
    mofcom = json.loads(_run("sources", "test", "exportcontrol", "--config", str(config)).stdout)
    assert mofcom["title"] == "中华人民共和国两用物项出口管制条例"
    assert mofcom["published_at"] == "2024-10-23T14:43:23+08:00"
    assert mofcom["extra"]["announcement"] == "国务院令〔2024〕792号"


def test_sources_test_failure_exits_1_with_reason(tmp_path: Path, server: LocalServer) -> None:
    """A failing source exits 1 with one stated reason on stderr and nothing on stdout."""
    _serve(server)
    done = _run("sources", "test", "broken", "--config", str(_config(tmp_path, server)))
    assert done.returncode == 1
    assert done.stdout == ""
    assert "source broken: HTTP 500" in done.stderr
    assert "Traceback" not in done.stderr
    unknown = _run("sources", "test", "nope", "--config", str(_config(tmp_path, server)))
    assert unknown.returncode == 1
    assert "no source named 'nope'" in unknown.stderr


async def test_sources_test_states_an_unforeseen_error(
    tmp_path: Path, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception no parser maps is stated like a fetch error (exit 1 with a reason), not a traceback."""

    async def gap(self: RssSource, fetcher: object) -> None:
        raise RuntimeError("no parser foresaw this")

    monkeypatch.setattr(RssSource, "fetch", gap)
    with pytest.raises(SourceError, match="unexpected RuntimeError: no parser foresaw this"):
        await try_source(load_settings(_config(tmp_path, server)), "truth-mirror")


def test_sources_list_shows_health(tmp_path: Path, server: LocalServer, redis_url: str) -> None:
    """`sources list` shows every source with kind, interval, health from Redis and URL."""

    async def seed() -> None:
        client = aioredis.from_url(redis_url, decode_responses=True)
        health = SourceHealth(client, Keys("tradewatch"))
        await health.record_success("truth-mirror", status=200, documents=26, duration=0.2, next_poll=None)
        await health.record_failure("broken", "HTTP 500 (http://x/broken)", threshold=3)
        await client.aclose()

    asyncio.run(seed())
    done = _run("sources", "list", "--config", str(_config(tmp_path, server, redis_url)))
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines()[1:]}
    assert set(lines) == {"truth-mirror", "fr-presidential", "exportcontrol", "broken", "paused"}
    assert "ok 200" in lines["truth-mirror"]
    assert " 26 " in lines["truth-mirror"]
    assert "failing x1" in lines["broken"]
    assert "HTTP 500" in lines["broken"]
    assert "never polled" in lines["exportcontrol"]
    assert "disabled" in lines["paused"]
    assert lines["fr-presidential"].split()[1:3] == ["federal_register", "15m"]
