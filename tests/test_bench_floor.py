"""The cold cycle's context in `make bench`: parsing and matching alone reads every served item."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.bench_poll import _sources, _tradewatch_config
from bench.feeds import ITEMS_PER_SOURCE
from bench.procs import REPO, FeedServer

SOURCES = 20


def test_cold_floor_parses_and_matches_every_item_of_both_kinds(tmp_path: Path) -> None:
    """Every item of the RSS feeds and HTML pages becomes a document and is matched (the bench's
    pages carry items the shipped rulebook fires on); a floor that read nothing would flatter
    the worker's cold cycle, so the counts are checked, not only that it ran."""
    with FeedServer(SOURCES, hosts=2) as server:
        config = tmp_path / "tw.yaml"
        sources = _sources(server, SOURCES, html=True)
        assert {s["kind"] for s in sources} == {"rss", "html"}
        _tradewatch_config(config, "redis://127.0.0.1:9/0", sources)  # the floor never uses Redis
        proc = subprocess.run(
            [sys.executable, "-m", "bench.cold_floor", str(config)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    figures = json.loads(proc.stdout)
    assert figures["documents"] == SOURCES * ITEMS_PER_SOURCE
    assert figures["matches"] > 0
    assert figures["wall"] > 0
    assert figures["cpu"] > 0
