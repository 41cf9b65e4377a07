"""Poll cycle: `tradewatch run --once` over 1,000 local sources, cold and all-304, beside urlwatch.

Both tools run as the user runs them, one process per cycle, against the same local
server (`bench.feeds`: half RSS feeds, half HTML list pages, 20 items each, spread
over 50 loopback hosts). Process start-up (interpreter, imports, rule compilation,
urlwatch's job loading) is taken out by running each tool over 10 sources too:
cycle = run over 1,000 − run over 10. Each run is repeated and the medians are used.

- cold: tradewatch with an empty Redis (every item parsed, matched and recorded;
  matching items alerted to the console notifier, sent to /dev/null); urlwatch
  with an empty cache (every page stored).
- warm: the same again right after; every source should answer 304 to both tools.
  The feed server counts its own 200 and 304 answers, so the table says how many
  304s there really were.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.feeds import HTML_SELECT, feed_path, page_path
from bench.procs import REPO, FeedServer, RedisServer, Timed, progress_line, run_timed, tradewatch_cmd

__all__ = ["run"]

SOURCES = 1000
BASELINE = 10
HOSTS = 50
REPEATS = int(os.environ.get("BENCH_POLL_REPEATS", "7"))  # ±30% run to run here: medians need runs
# Seconds after which no further repetition starts (at least one always runs), so that a slow
# build cannot push `make bench` past its 10 minutes; the table says how many ran.
BUDGET = float(os.environ.get("BENCH_POLL_BUDGET", "250"))
# BENCH_REDIS_POOL=N adds `?max_connections=N` to the benchmark's redis_url. Off by default:
# the worker is measured as shipped. It was needed while the worker used redis-py 8's default
# asyncio pool (100 connections, raising MaxConnectionsError when exhausted), with which a
# 1,000-source `run --once` crashed; the worker now uses a blocking pool.
REDIS_POOL = int(os.environ.get("BENCH_REDIS_POOL", "0"))


def _html_registered() -> bool:
    try:
        from tradewatch.sources import SOURCES as KINDS
    except ImportError:
        return False
    return "html" in KINDS


def _sources(server: FeedServer, n: int, html: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n):
        if html and i % 2:
            out.append(
                {
                    "name": f"page-{i:04d}",
                    "kind": "html",
                    "url": f"http://{server.host(i)}{page_path(i)}",
                    "every": "5m",
                    "select": dict(HTML_SELECT),
                }
            )
        else:
            out.append(
                {
                    "name": f"feed-{i:04d}",
                    "kind": "rss",
                    "url": f"http://{server.host(i)}{feed_path(i)}",
                    "every": "5m",
                }
            )
    return out


def _tradewatch_config(path: Path, redis_url: str, sources: list[dict[str, Any]]) -> None:
    config = {
        "redis_url": redis_url,
        "rules": str(REPO / "rules"),
        "state_dir": str(path.parent / "var"),
        "first_poll_window": "3d",
        "http": {"allow_private": True, "concurrency": 64, "per_host": 4, "timeout": 10, "retries": 0},
        "server": {"enabled": False},
        "sources": sources,
        "notifiers": {"console": {}},
    }
    path.write_text(yaml.safe_dump(config, allow_unicode=True))


def _urlwatch_files(directory: Path, sources: list[dict[str, Any]]) -> tuple[Path, Path]:
    urls = directory / "urls.yaml"
    urls.write_text(yaml.safe_dump_all([{"name": s["name"], "url": s["url"]} for s in sources]))
    config = directory / "urlwatch.yaml"
    config.write_text(yaml.safe_dump({"report": {"stdout": {"enabled": True, "color": False}}}))
    return urls, config


def _log_counts(path: Path) -> dict[str, Any]:
    """What tradewatch logged: polls by status, failures, alerts."""
    statuses: dict[str, int] = {}
    events: dict[str, int] = {}
    for line in path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            events["non_json_lines"] = events.get("non_json_lines", 0) + 1
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        event = str(record.get("event"))
        events[event] = events.get(event, 0) + 1
        if event == "source_polled":
            key = str(record.get("status"))
            statuses[key] = statuses.get(key, 0) + 1
    return {"statuses": statuses, "events": events}


class _Runner:
    def __init__(
        self, work: Path, server: FeedServer, redis: RedisServer, html: bool, progress: bool
    ) -> None:
        self.work = work
        self.server = server
        self.redis = redis
        self.html = html
        self.progress = progress
        self.env = {**os.environ, "TRADEWATCH_LOG_FORMAT": "json", "PYTHONDONTWRITEBYTECODE": "1"}
        self.env.pop("TRADEWATCH_CONFIG", None)
        url = redis.url + (f"?max_connections={REDIS_POOL}" if REDIS_POOL else "")
        self.configs: dict[int, Path] = {}
        self.urlwatch: dict[int, tuple[Path, Path]] = {}
        for n in (BASELINE, SOURCES):
            sources = _sources(server, n, html)
            d = work / f"n{n}"
            d.mkdir()
            self.configs[n] = d / "tradewatch.yaml"
            _tradewatch_config(self.configs[n], url, sources)
            self.urlwatch[n] = _urlwatch_files(d, sources)
        self.runs = 0

    def _served(self, before: dict[str, int]) -> dict[str, int]:
        after = self.server.stats()
        return {k: after[k] - before.get(k, 0) for k in ("200", "304", "404", "connections")}

    def tradewatch(self, n: int, label: str) -> Timed:
        self.runs += 1
        progress_line(self.progress, f"poll cycle: run {self.runs}: tradewatch {label} over {n} sources")
        log = self.work / f"tw-{n}-{label}-{self.runs}.log"
        before = self.server.stats()
        with log.open("w") as err:
            t = run_timed(
                [*tradewatch_cmd(), "run", "--once", "--config", str(self.configs[n])],
                cwd=self.configs[n].parent,
                env=self.env,
                stderr=err,
            )
        t.extra = {"served": self._served(before), **_log_counts(log)}
        if t.returncode != 0:
            tail = log.read_text(errors="replace").splitlines()[-3:]
            t.extra["error_tail"] = tail
        return t

    def httpx_floor(self, transport: str = "httpx") -> dict[str, Any]:
        """Bare requests over the same 1,000 URLs, timed over their all-304 round only (no start-up).

        `transport`: "httpx" (httpx's own client and pool) or "tradewatch" (the worker's transport).
        """
        urls = self.work / "floor-urls.txt"
        urls.write_text("\n".join(s["url"] for s in _sources(self.server, SOURCES, self.html)))
        return self._context(
            f"bare {transport} over {SOURCES} URLs", "bench.httpx_floor", str(urls), "--transport", transport
        )

    def cold_floor(self) -> dict[str, Any]:
        """Parsing and matching alone over the same 1,000 sources (bench/cold_floor.py), no start-up."""
        return self._context(
            f"parse and match alone, {SOURCES} sources", "bench.cold_floor", str(self.configs[SOURCES])
        )

    def _context(self, what: str, module: str, *args: str) -> dict[str, Any]:
        """A context measurement in its own process: its JSON figures, or the error it ended with."""
        self.runs += 1
        progress_line(self.progress, f"poll cycle: run {self.runs}: {what}")
        proc = subprocess.run(
            [sys.executable, "-m", module, *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
        return dict(json.loads(proc.stdout))

    def urlwatch_run(self, n: int, label: str, cache: Path) -> Timed:
        self.runs += 1
        progress_line(self.progress, f"poll cycle: run {self.runs}: urlwatch {label} over {n} URLs")
        urls, config = self.urlwatch[n]
        before = self.server.stats()
        cmd = [
            str(Path(sys.executable).parent / "urlwatch"),
            "--urls",
            str(urls),
            "--config",
            str(config),
            "--cache",
            str(cache),
        ]
        t = run_timed(cmd, cwd=urls.parent, env={**self.env, "HOME": str(self.work)})
        t.extra = {"served": self._served(before)}
        return t


def _median(runs: list[Timed], attr: str) -> float:
    return float(statistics.median(getattr(r, attr) for r in runs))


def _cycle(runs: dict[str, dict[int, list[Timed]]], key: str) -> dict[str, float]:
    big, small = runs[key][SOURCES], runs[key][BASELINE]
    wall = _median(big, "wall") - _median(small, "wall")
    cpu = _median(big, "cpu") - _median(small, "cpu")
    pages = SOURCES - BASELINE
    return {
        "run_1000_wall_s": round(_median(big, "wall"), 3),
        "run_10_wall_s": round(_median(small, "wall"), 3),
        "cycle_wall_s": round(wall, 3),
        "cycle_cpu_s": round(cpu, 3),
        "cpu_ms_per_page": round(cpu / pages * 1000, 3),
        "pages_per_s": round(pages / wall, 1) if wall > 0 else float("inf"),
    }


def _floor(floors: list[dict[str, Any]], urlwatch: float) -> dict[str, Any]:
    """Median of a context measurement's runs, scaled to the cycle's 990 sources, and urlwatch's
    time (of the matching cycle) over it."""
    good = [f for f in floors if "wall" in f]
    if not good:
        return {"error": floors[-1].get("error") if floors else "not run"}
    scale = (SOURCES - BASELINE) / SOURCES
    wall = statistics.median(f["wall"] for f in good) * scale
    cpu = statistics.median(f["cpu"] for f in good) * scale
    return {
        "cycle_wall_s": round(wall, 3),
        "cpu_ms_per_page": round(cpu / (SOURCES - BASELINE) * 1000, 3),
        "speedup_vs_urlwatch": round(urlwatch / wall, 2) if wall > 0 else None,
        **{
            k: good[-1][k] for k in ("statuses", "documents", "matches") if k in good[-1]
        },  # counts: the last run's
    }


def run(progress: bool) -> dict[str, Any]:
    """Measure both tools, cold and warm; figures as plain data for the table and charts."""
    html = _html_registered()
    runs: dict[str, dict[int, list[Timed]]] = {
        k: {BASELINE: [], SOURCES: []} for k in ("tw_cold", "tw_warm", "uw_cold", "uw_warm")
    }
    with tempfile.TemporaryDirectory(prefix="tradewatch-bench-poll-") as tmp:
        work = Path(tmp)
        with FeedServer(SOURCES, HOSTS) as server, RedisServer(work / "redis") as redis:
            runner = _Runner(work, server, redis, html, progress)
            started = time.perf_counter()
            floors: list[dict[str, Any]] = []
            transport_floors: list[dict[str, Any]] = []
            cold_floors: list[dict[str, Any]] = []
            done = 0
            for rep in range(REPEATS):
                elapsed = time.perf_counter() - started
                if rep and elapsed + elapsed / rep > BUDGET:
                    break
                done += 1
                for n in (BASELINE, SOURCES):
                    redis.command("FLUSHALL")
                    runs["tw_cold"][n].append(runner.tradewatch(n, "cold"))
                    runs["tw_warm"][n].append(runner.tradewatch(n, "warm"))
                    cache = work / f"uw-cache-{n}-{rep}.db"
                    runs["uw_cold"][n].append(runner.urlwatch_run(n, "cold", cache))
                    runs["uw_warm"][n].append(runner.urlwatch_run(n, "warm", cache))
                floors.append(runner.httpx_floor())
                transport_floors.append(runner.httpx_floor("tradewatch"))
                cold_floors.append(runner.cold_floor())
            progress_line(progress, "")
    result: dict[str, Any] = {
        "sources": SOURCES,
        "baseline_sources": BASELINE,
        "hosts": HOSTS,
        "repeats": done,
        "kinds": "rss+html" if html else "rss only (html kind not registered)",
        "redis_pool": REDIS_POOL or "worker default",
    }
    for key in runs:
        result[key] = _cycle(runs, key)
        last = runs[key][SOURCES][-1]
        result[key]["served_1000"] = last.extra.get("served")
        result[key]["returncodes"] = sorted({r.returncode for n in runs[key] for r in runs[key][n]})
        if key.startswith("tw"):
            result[key]["statuses_1000"] = last.extra.get("statuses")
            events = last.extra.get("events", {})
            result[key]["events_1000"] = {
                k: v
                for k, v in events.items()
                if k
                in (
                    "source_poll_failed",
                    "source_poll_not_processed",
                    "pipeline_conflict_retry",
                    "alert_enqueued",
                    "alert_delivered",
                    "first_poll_baseline",
                    "non_json_lines",
                )
            }
            if "error_tail" in last.extra:
                result[key]["error_tail"] = last.extra["error_tail"]
    tw_warm, uw_warm = result["tw_warm"]["cycle_wall_s"], result["uw_warm"]["cycle_wall_s"]
    tw_cold, uw_cold = result["tw_cold"]["cycle_wall_s"], result["uw_cold"]["cycle_wall_s"]
    result["warm_speedup_vs_urlwatch"] = round(uw_warm / tw_warm, 2) if tw_warm > 0 else None
    result["cold_speedup_vs_urlwatch"] = round(uw_cold / tw_cold, 2) if tw_cold > 0 else None
    result["warm_304s"] = (result["tw_warm"]["served_1000"] or {}).get("304")
    result["httpx_floor"] = _floor(floors, result["uw_warm"]["cycle_wall_s"])
    result["transport_floor"] = _floor(transport_floors, result["uw_warm"]["cycle_wall_s"])
    result["cold_floor"] = _floor(cold_floors, result["uw_cold"]["cycle_wall_s"])
    result["raw"] = {
        key: {
            str(n): [{"wall": round(r.wall, 3), "cpu": round(r.cpu, 3), "rc": r.returncode} for r in lst]
            for n, lst in per.items()
        }
        for key, per in runs.items()
    }
    return result


if __name__ == "__main__":
    print(json.dumps(run(sys.stderr.isatty()), indent=2, ensure_ascii=False))
