"""Soak: a running worker polls 200 changing local sources every few seconds for 30 minutes.

`make bench-soak` (not in CI). The worker (`tradewatch run`, a real process with a
real redis-server) polls half RSS feeds and half HTML list pages every `--every`
seconds; each source gains a new item every `--change-every` seconds, so the
worker keeps parsing, matching, recording and alerting (to the console notifier,
sent to /dev/null). Every `--sample` seconds the benchmark notes the worker's
resident memory, Redis's used memory, and the polls, failures and errors logged
so far. The verdict: memory at start and end, Redis growth, and whether errors
grew in the second half.

    python -m bench.soak [--minutes 30] [--sources 200] [--every 5] [--change-every 60]

`SOAK_MINUTES` overrides the default duration. Writes bench/out/soak.json and
bench/out/soak.png.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import yaml

from bench.bench_poll import REDIS_POOL
from bench.feeds import HTML_SELECT, feed_path, page_path
from bench.procs import REPO, FeedServer, RedisServer, progress_line, tradewatch_cmd

__all__ = ["main", "soak"]

OUT = REPO / "bench" / "out"
_BAD_EVENTS = (
    "source_poll_failed",
    "source_poll_not_processed",
    "lease_unavailable",
    "delivery_failed",
    "deadline_tick_failed",
    "health_not_recorded",
    "operator_alert_not_queued",
)


class _LogTail:
    """Counts events of the worker's JSON log as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.counts: dict[str, int] = {}
        self.levels: dict[str, int] = {}
        self.rest = b""
        self.first_errors: list[str] = []
        self.bad_records = 0

    def read(self) -> None:
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        self.offset += len(data)
        data = self.rest + data
        lines = data.split(b"\n")
        self.rest = lines.pop()
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            try:
                record = json.loads(line)
            except ValueError:
                if "skipped: maximum number of running instances" in line:
                    # APScheduler (stdlib logging, not JSON): a poll still running when its next turn came
                    self.counts["poll_skipped_still_running"] = (
                        self.counts.get("poll_skipped_still_running", 0) + 1
                    )
                    continue
                self.levels["unstructured"] = self.levels.get("unstructured", 0) + 1
                if len(self.first_errors) < 5:
                    self.first_errors.append(line[:300])
                continue
            event = str(record.get("event"))
            level = str(record.get("level"))
            self.counts[event] = self.counts.get(event, 0) + 1
            self.levels[level] = self.levels.get(level, 0) + 1
            if level in ("error", "critical") or event in _BAD_EVENTS:
                self.bad_records += 1
            if level in ("error", "critical") and len(self.first_errors) < 5:
                self.first_errors.append(line[:300])

    def bad(self) -> int:
        """Failed polls, unprocessed polls, failed deliveries and anything logged as an error."""
        return self.bad_records + self.levels.get("unstructured", 0)


def _config(work: Path, server: FeedServer, redis_url: str, sources: int, every: float) -> Path:
    specs: list[dict[str, Any]] = []
    for i in range(sources):
        if i % 2:
            specs.append(
                {
                    "name": f"page-{i:04d}",
                    "kind": "html",
                    "url": f"http://{server.host(i)}{page_path(i)}",
                    "every": f"{every:g}s",
                    "select": dict(HTML_SELECT),
                }
            )
        else:
            specs.append(
                {
                    "name": f"feed-{i:04d}",
                    "kind": "rss",
                    "url": f"http://{server.host(i)}{feed_path(i)}",
                    "every": f"{every:g}s",
                }
            )
    config = {
        "redis_url": redis_url,
        "rules": str(REPO / "rules"),
        "state_dir": str(work / "var"),
        "http": {"allow_private": True, "concurrency": 32, "per_host": 4, "timeout": 10, "retries": 1},
        "server": {"enabled": False},
        "sources": specs,
        "notifiers": {"console": {}},
    }
    path = work / "tradewatch.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


def soak(
    minutes: float, sources: int, every: float, change_every: float, sample: float, progress: bool
) -> dict[str, Any]:
    """Run the worker for `minutes` and return the samples and the verdict."""
    samples: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tradewatch-soak-") as tmp:
        work = Path(tmp)
        with (
            FeedServer(sources, hosts=20, change_every=change_every) as server,
            RedisServer(work / "redis") as redis,
        ):
            url = redis.url + (f"?max_connections={REDIS_POOL}" if REDIS_POOL else "")
            config = _config(work, server, url, sources, every)
            env = {**os.environ, "TRADEWATCH_LOG_FORMAT": "json"}
            env.pop("TRADEWATCH_CONFIG", None)
            log_path = work / "worker.log"
            with log_path.open("w") as log:
                worker = subprocess.Popen(
                    [*tradewatch_cmd(), "run", "--config", str(config)],
                    cwd=work,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            tail = _LogTail(log_path)
            proc = psutil.Process(worker.pid)
            started = time.monotonic()
            end = started + minutes * 60
            try:
                while time.monotonic() < end and worker.poll() is None:
                    time.sleep(min(sample, max(0.0, end - time.monotonic())))
                    if worker.poll() is not None:
                        break
                    tail.read()
                    mem = redis.info("memory")
                    served = server.stats()
                    cpu = proc.cpu_times()
                    samples.append(
                        {
                            "t_s": round(time.monotonic() - started, 1),
                            "worker_rss_mib": round(proc.memory_info().rss / 2**20, 1),
                            "worker_cpu_s": round(cpu.user + cpu.system, 1),
                            "redis_used_mib": round(int(mem["used_memory"]) / 2**20, 2),
                            "redis_dataset_mib": round(int(mem.get("used_memory_dataset", 0)) / 2**20, 2),
                            "redis_keys": int(redis.command("DBSIZE")),
                            "polls": tail.counts.get("source_polled", 0),
                            "alerts": tail.counts.get("alert_enqueued", 0),
                            "bad": tail.bad(),
                            "served_200": served["200"],
                            "served_304": served["304"],
                        }
                    )
                    s = samples[-1]
                    progress_line(
                        progress,
                        f"soak {s['t_s']:.0f}/{minutes * 60:.0f}s: rss {s['worker_rss_mib']} MiB, "
                        f"redis {s['redis_used_mib']} MiB, polls {s['polls']}, bad {s['bad']}",
                    )
            finally:
                stop_started = time.monotonic()
                if worker.poll() is None:
                    worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
                stop_seconds = time.monotonic() - stop_started
                progress_line(progress, "")
            tail.read()
    return _verdict(samples, tail, minutes, sources, every, change_every, worker.returncode, stop_seconds)


def _verdict(
    samples: list[dict[str, Any]],
    tail: _LogTail,
    minutes: float,
    sources: int,
    every: float,
    change_every: float,
    exit_code: int | None,
    stop_seconds: float,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "minutes": minutes,
        "sources": sources,
        "every_s": every,
        "change_every_s": change_every,
        "worker_exit": exit_code,
        "shutdown_s": round(stop_seconds, 2),
        "events": {k: v for k, v in sorted(tail.counts.items()) if v},
        "levels": tail.levels,
        "first_errors": tail.first_errors,
        "samples": samples,
    }
    if len(samples) >= 2:
        # "start" is the first sample after every source has been polled once (imports and the
        # first cycle's allocations are not growth); "end" is the last sample.
        first = next((s for s in samples if s["polls"] >= sources), samples[0])
        last = samples[-1]
        half = samples[len(samples) // 2]
        result.update(
            {
                "rss_start_mib": first["worker_rss_mib"],
                "rss_end_mib": last["worker_rss_mib"],
                "rss_growth_mib": round(last["worker_rss_mib"] - first["worker_rss_mib"], 1),
                "redis_start_mib": first["redis_used_mib"],
                "redis_end_mib": last["redis_used_mib"],
                "redis_growth_mib": round(last["redis_used_mib"] - first["redis_used_mib"], 2),
                "redis_dataset_start_mib": first["redis_dataset_mib"],
                "redis_dataset_end_mib": last["redis_dataset_mib"],
                "redis_keys_start": first["redis_keys"],
                "bad_before_start": first["bad"],
                "bad_total": last["bad"],
                "served_304_share": round(
                    last["served_304"] / max(last["served_200"] + last["served_304"], 1), 3
                ),
                "redis_keys_end": last["redis_keys"],
                "lease_lost": tail.counts.get("lease_lost", 0),
                "poll_skipped_still_running": tail.counts.get("poll_skipped_still_running", 0),
                "polls": last["polls"],
                "polls_per_s": round(last["polls"] / max(last["t_s"], 1), 1),
                "alerts": last["alerts"],
                "bad_first_half": half["bad"] - first["bad"],
                "bad_second_half": last["bad"] - half["bad"],
                "worker_cpu_share": round(last["worker_cpu_s"] / max(last["t_s"], 1), 3),
            }
        )
        result["errors_grew"] = result["bad_second_half"] > result["bad_first_half"]
    return result


def _chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["samples"]
    if not samples:
        return
    t = [s["t_s"] / 60 for s in samples]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    ax.plot(t, [s["worker_rss_mib"] for s in samples], label="worker resident memory (MiB)")
    ax.plot(t, [s["redis_used_mib"] for s in samples], label="Redis used memory (MiB)")
    ax.set_xlabel("minutes")
    ax.set_ylabel("MiB")
    ax2 = ax.twinx()
    ax2.plot(
        t, [s["bad"] for s in samples], color="tab:red", linestyle=":", label="failures + errors (total)"
    )
    ax2.set_ylabel("count")
    ax2.set_ylim(0, max(s["bad"] for s in samples) * 1.25 + 1)
    lines = ax.get_legend_handles_labels()
    more = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=8)
    ax.set_title(
        f"Soak: {result['sources']} sources every {result['every_s']:g}s for {result['minutes']:g} min"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def update_benchmarks_md(result: dict[str, Any]) -> bool:
    """Replace the soak section of BENCHMARKS.md with this run's verdict (runs of 10 minutes or more)."""
    from bench.machine import format_machine

    doc = REPO / "BENCHMARKS.md"
    begin, end = "<!-- bench:soak:begin -->", "<!-- bench:soak:end -->"
    if not doc.exists() or "rss_end_mib" not in result:
        return False
    text = doc.read_text(encoding="utf-8")
    if begin not in text or end not in text:
        return False
    r = result
    rows = [
        (
            "duration, sources, poll interval",
            f"{r['minutes']:g} min, {r['sources']} sources, every {r['every_s']:g} s",
        ),
        ("polls (per second)", f"{r['polls']:,} ({r['polls_per_s']}/s)"),
        ("share of polls answered 304", f"{r.get('served_304_share', 'n/a')}"),
        ("alerts queued", f"{r['alerts']:,}"),
        (
            "worker resident memory, start → end",
            f"{r['rss_start_mib']} → {r['rss_end_mib']} MiB ({r['rss_growth_mib']:+} MiB)",
        ),
        (
            "Redis used memory, start → end",
            f"{r['redis_start_mib']} → {r['redis_end_mib']} MiB ({r['redis_growth_mib']:+} MiB)",
        ),
        (
            "Redis dataset memory, start → end",
            f"{r.get('redis_dataset_start_mib', 'n/a')} → {r.get('redis_dataset_end_mib', 'n/a')} MiB",
        ),
        ("Redis keys, start → end", f"{r.get('redis_keys_start', 'n/a')} → {r['redis_keys_end']}"),
        (
            "failures/errors: before start, 1st half, 2nd half",
            f"{r.get('bad_before_start', 'n/a')}, {r['bad_first_half']}, {r['bad_second_half']}",
        ),
        ("errors grew", "yes" if r["errors_grew"] else "no"),
        (
            "leases lost / polls skipped (previous still running)",
            f"{r['lease_lost']} / {r['poll_skipped_still_running']}",
        ),
        ("worker CPU (share of one core)", f"{r['worker_cpu_share']}"),
        ("exit code, shutdown time after SIGTERM", f"{r['worker_exit']}, {r['shutdown_s']} s"),
    ]
    machine = r.get("machine")
    section = "\n".join(
        [
            begin,
            f"Run of {r.get('when', 'n/a')} (`make bench-soak`) on:",
            "",
            "```",
            format_machine(machine) if machine else "(machine not recorded)",
            "```",
            "",
            "| figure | value |",
            "|---|---|",
            *[f"| {k} | {v} |" for k, v in rows],
            "",
            "![soak](docs/bench/soak.png)",
            end,
        ]
    )
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(head + section + tail, encoding="utf-8")
    docs = REPO / "docs" / "bench"
    docs.mkdir(parents=True, exist_ok=True)
    if (OUT / "soak.png").exists():
        shutil.copyfile(OUT / "soak.png", docs / "soak.png")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="tradewatch soak benchmark")
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "30")))
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--every", type=float, default=5.0, help="poll interval of each source, seconds")
    parser.add_argument("--change-every", type=float, default=60.0, help="a new item per source this often")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between two samples")
    args = parser.parse_args(argv)
    from bench.machine import describe, format_machine

    machine = describe()
    print(format_machine(machine))
    result = soak(args.minutes, args.sources, args.every, args.change_every, args.sample, sys.stderr.isatty())
    result["machine"] = machine
    result["when"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "soak.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    _chart(result, OUT / "soak.png")
    keys = (
        "minutes",
        "sources",
        "every_s",
        "polls",
        "polls_per_s",
        "alerts",
        "rss_start_mib",
        "rss_end_mib",
        "rss_growth_mib",
        "redis_start_mib",
        "redis_end_mib",
        "redis_growth_mib",
        "redis_dataset_start_mib",
        "redis_dataset_end_mib",
        "redis_keys_start",
        "redis_keys_end",
        "lease_lost",
        "poll_skipped_still_running",
        "bad_before_start",
        "bad_first_half",
        "bad_second_half",
        "bad_total",
        "served_304_share",
        "errors_grew",
        "worker_cpu_share",
        "worker_exit",
        "shutdown_s",
    )
    for key in keys:
        print(f"{key:>26}: {result.get(key)}")
    if result["first_errors"]:
        print("first errors:", *result["first_errors"], sep="\n  ")
    print(f"wrote {OUT / 'soak.json'} and {OUT / 'soak.png'}")
    if args.minutes >= 10 and update_benchmarks_md(result):
        print("updated the soak section of BENCHMARKS.md (chart in docs/bench/soak.png)")
    return 0 if result.get("worker_exit") == 0 and not result.get("errors_grew") else 1


if __name__ == "__main__":
    sys.exit(main())
