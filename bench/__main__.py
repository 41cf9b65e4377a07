"""`make bench`: run every benchmark, print the machine and one table of figures with goals, write charts.

Each benchmark module exposes `run(progress: bool) -> dict` and runs in its own
child process (`python -m bench --one NAME --out FILE`), so one benchmark's imports,
caches and garbage never slow the next, and a crash costs only its own rows.
Progress lines appear on a terminal only.

Writes bench/out/results.json and bench/out/*.png; after a full run, also replaces
the figures section of BENCHMARKS.md with this run's table and machine and copies
the charts to docs/bench/, so the document and its charts always come from one run.

    BENCH_ONLY=poll,latency python -m bench    # a subset (BENCHMARKS.md is left alone)
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.machine import describe, format_machine
from bench.table import Row, format_markdown, format_text, summarize

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
DOCS = REPO / "docs" / "bench"
BENCHMARKS_MD = REPO / "BENCHMARKS.md"
BEGIN, END = "<!-- bench:figures:begin -->", "<!-- bench:figures:end -->"

# name → (module, what it measures, seconds it may take at most)
BENCHMARKS: dict[str, tuple[str, str, float]] = {
    "matching": ("bench.bench_matching", "rule matching scaling", 240.0),
    "parse": ("bench.bench_parse", "feed and list-page parsing", 120.0),
    "dedup": ("bench.bench_dedup", "dedup and clustering against redis-server", 120.0),
    "poll": ("bench.bench_poll", "poll cycle beside urlwatch", 420.0),
    "latency": ("bench.bench_latency", "end-to-end latency to Slack", 150.0),
}


def _one(name: str, out: Path, progress: bool) -> int:
    """Child side: run one benchmark and write its figures (or why there are none) as JSON."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    module_name = BENCHMARKS[name][0]
    result: dict[str, Any]
    if importlib.util.find_spec(module_name) is None:
        result = {"missing": f"{module_name} is not in the repository yet"}
    else:
        try:
            module = importlib.import_module(module_name)
            result = module.run(progress)
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-3000:]}
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    return 0


def _run_child(name: str, progress: bool, work: Path) -> tuple[dict[str, Any], float]:
    out = work / f"{name}.json"
    log = work / f"{name}.log"
    started = time.perf_counter()
    timeout = BENCHMARKS[name][2]
    cmd = [sys.executable, "-m", "bench", "--one", name, "--out", str(out)] + (
        ["--progress"] if progress else []
    )
    with log.open("w") as err:
        try:
            proc = subprocess.run(
                cmd,
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=None if progress else err,
                timeout=timeout,
                check=False,
            )
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            code = None
    seconds = time.perf_counter() - started
    if code is None:
        return {"error": f"took longer than {timeout:.0f}s and was stopped"}, seconds
    if not out.exists():
        tail = log.read_text(errors="replace")[-2000:]
        return {"error": f"exited with {code} and wrote no figures", "stderr_tail": tail}, seconds
    data: dict[str, Any] = json.loads(out.read_text())
    return data, seconds


def _selected() -> list[str]:
    only = [n.strip() for n in os.environ.get("BENCH_ONLY", "").split(",") if n.strip()]
    unknown = [n for n in only if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(
            f"BENCH_ONLY names unknown benchmarks: {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})"
        )
    return only or list(BENCHMARKS)


def _update_benchmarks_md(machine: dict[str, Any], rows: list[Row], when: str, seconds: float) -> bool:
    if not BENCHMARKS_MD.exists():
        return False
    text = BENCHMARKS_MD.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        return False
    section = "\n".join(
        [
            BEGIN,
            f"Run of {when} (`make bench`, {seconds / 60:.1f} min in all) on:",
            "",
            "```",
            format_machine(machine),
            "```",
            "",
            format_markdown(rows),
            END,
        ]
    )
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    BENCHMARKS_MD.write_text(head + section + tail, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="tradewatch benchmarks")
    parser.add_argument("--one", choices=sorted(BENCHMARKS), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--progress", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        return _one(args.one, args.out, args.progress)

    progress = sys.stderr.isatty() and not os.environ.get("CI")
    names = _selected()
    started = time.perf_counter()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = describe()
    print(format_machine(machine), flush=True)
    print(flush=True)
    results: dict[str, dict[str, Any]] = {}
    durations: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="tradewatch-bench-") as tmp:
        for i, name in enumerate(names, 1):
            if progress:
                sys.stderr.write(f"\r\033[K[{i}/{len(names)}] {name}: {BENCHMARKS[name][1]}\n")
            results[name], durations[name] = _run_child(name, progress, Path(tmp))
    total = time.perf_counter() - started
    rows = summarize(results)
    print(format_text(rows))
    for name, data in results.items():
        if "error" in data:
            print(f"\n{name} failed: {data['error']}")
            if data.get("traceback") or data.get("stderr_tail"):
                print(data.get("traceback") or data.get("stderr_tail"))
    print(
        "\nbenchmark seconds: "
        + ", ".join(f"{n} {s:.0f}" for n, s in durations.items())
        + f"; total {total:.0f}"
    )

    from bench.charts import write_charts

    OUT.mkdir(parents=True, exist_ok=True)
    charts = write_charts(results, OUT)
    report = {
        "when": when,
        "seconds": round(total, 1),
        "durations": {k: round(v, 1) for k, v in durations.items()},
        "machine": machine,
        "table": [row.as_dict() for row in rows],
        "results": results,
        "charts": [str(c.relative_to(REPO)) for c in charts],
    }
    (OUT / "results.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    print(f"wrote {OUT.relative_to(REPO)}/results.json and {len(charts)} charts in {OUT.relative_to(REPO)}/")
    # Only a full run publishes: the page's table and its charts then always come from one run.
    full = names == list(BENCHMARKS) and not os.environ.get("BENCH_NO_DOC")
    if full and _update_benchmarks_md(machine, rows, when, total):
        DOCS.mkdir(parents=True, exist_ok=True)
        for chart in charts:
            shutil.copyfile(chart, DOCS / chart.name)
        print("updated the figures section of BENCHMARKS.md and the charts in docs/bench/")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
