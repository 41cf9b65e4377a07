"""The cold cycle's context in `make bench`: parsing and matching alone reads every served item."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.bench_poll import _sources, _tradewatch_config
from bench.feeds import ITEMS_PER_SOURCE
from bench.procs import REPO, FeedServer

pytestmark = pytest.mark.integration


def _floor(tmp_path: Path, n: int, *, disabled: int = 0) -> dict[str, Any]:
    """`python -m bench.cold_floor` over n local sources (RSS and HTML), the first `disabled` off."""
    with FeedServer(n, hosts=2) as server:
        config = tmp_path / "tw.yaml"
        sources = _sources(server, n, html=True)
        assert {s["kind"] for s in sources} == {"rss", "html"}
        for spec in sources[:disabled]:
            spec["enabled"] = False
        _tradewatch_config(config, "redis://127.0.0.1:9/0", sources)  # the floor never uses Redis
        proc = subprocess.run(
            [sys.executable, "-m", "bench.cold_floor", str(config)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return dict(json.loads(proc.stdout))


def test_cold_floor_parses_and_matches_every_item_of_both_kinds(tmp_path: Path) -> None:
    """Every item of the RSS feeds and HTML pages becomes a document and is matched (the bench's
    pages carry items the shipped rulebook fires on); a floor that read nothing, or one kind
    only, would flatter the worker's cold cycle, so the counts are checked."""
    figures = _floor(tmp_path, 20)
    assert figures["documents"] == 20 * ITEMS_PER_SOURCE
    assert figures["matches"] > 0


def test_cold_floor_skips_disabled_sources(tmp_path: Path) -> None:
    """As the worker does: a disabled source is neither read nor counted."""
    assert _floor(tmp_path, 4, disabled=1)["documents"] == 3 * ITEMS_PER_SOURCE
