"""PNG charts of the figures (matplotlib, no display): one function per chart, each skipping missing data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["write_charts"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _matching(data: dict[str, Any], path: Path) -> bool:
    rows = data.get("rows") or []
    if not rows:
        return False
    plt = _plt()
    counts = [r["rules"] for r in rows]
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.plot(
        counts, [r["docs_per_s"] for r in rows], marker="o", label=f"tradewatch ({rows[0].get('backend')})"
    )
    ax.plot(counts, [r["naive_docs_per_s"] for r in rows], marker="s", label="per-rule loop (naive)")
    for r in rows:
        ax.annotate(
            f"{r['docs_per_s']:,.0f}",
            (r["rules"], r["docs_per_s"]),
            textcoords="offset points",
            xytext=(0, 7),
            ha="center",
            fontsize=8,
        )
        ax.annotate(
            f"{r['naive_docs_per_s']:,.1f}",
            (r["rules"], r["naive_docs_per_s"]),
            textcoords="offset points",
            xytext=(0, -13),
            ha="center",
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rules")
    ax.set_ylabel("documents per second (log)")
    docs = data.get("documents")
    ax.set_title(f"Rule matching: {docs:,} mixed zh/en documents" if docs else "Rule matching")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _poll(data: dict[str, Any], path: Path) -> bool:
    keys = ("tw_cold", "uw_cold", "tw_warm", "uw_warm")
    if not all(isinstance(data.get(k), dict) for k in keys):
        return False
    plt = _plt()
    labels = ["tradewatch\ncold", "urlwatch\ncold", "tradewatch\nwarm", "urlwatch\nwarm"]
    colors = ["tab:blue", "tab:gray", "tab:blue", "tab:gray"]
    walls = [data[k]["cycle_wall_s"] for k in keys]
    cpus = [data[k]["cpu_ms_per_page"] for k in keys]
    floor = data.get("cold_floor")
    if isinstance(floor, dict) and "cycle_wall_s" in floor:  # the cold cycle's unavoidable part
        labels.insert(1, "parse+match\nalone")
        colors.insert(1, "tab:cyan")
        walls.insert(1, floor["cycle_wall_s"])
        cpus.insert(1, floor["cpu_ms_per_page"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.3))
    for ax, values, title, fmt in (
        (
            left,
            walls,
            f"cycle wall time over {data.get('sources', 1000) - data.get('baseline_sources', 10)} "
            "sources (s)",
            "{:.2f}",
        ),
        (right, cpus, "client CPU per page (ms)", "{:.2f}"),
    ):
        bars = ax.bar(labels, values, color=colors)
        for bar, value in zip(bars, values, strict=True):
            ax.annotate(
                fmt.format(value),
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                textcoords="offset points",
                xytext=(0, 3),
                ha="center",
                fontsize=9,
            )
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    warm = data.get("warm_304s")
    fig.suptitle(
        f"Poll cycle, start-up removed ({data.get('kinds')}; "
        f"304 answers to tradewatch's warm cycle: {warm} of {data.get('sources')})",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _latency(data: dict[str, Any], path: Path) -> bool:
    total = data.get("samples_publication_to_slack_s") or []
    after = data.get("samples_poll_to_slack_s") or []
    if not total:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.3))
    for values, label in ((total, "publication → Slack call"), (after, "poll → Slack call")):
        if values:
            ordered = sorted(values)
            ax.plot(
                ordered,
                [(i + 1) / len(ordered) for i in range(len(ordered))],
                label=label,
                drawstyle="steps-post",
            )
    ax.set_xlabel("seconds")
    ax.set_ylabel("share of items")
    ax.set_title(f"End-to-end latency, polling every {data.get('poll_every_s', 1):g}s ({len(total)} items)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _parse(data: dict[str, Any], path: Path) -> bool:
    parsers = data.get("parsers") or {}
    rows = {name: row for name, row in parsers.items() if isinstance(row, dict) and "rss-50_ms" in row}
    if not rows:
        return False
    plt = _plt()
    names = sorted(rows, key=lambda n: rows[n]["rss-50_ms"])
    fig, ax = plt.subplots(figsize=(7.5, 0.6 * len(names) + 1.6))
    values = [rows[n]["rss-50_ms"] for n in names]
    bars = ax.barh(
        names, values, color=["tab:blue" if n.startswith("tradewatch") else "tab:gray" for n in names]
    )
    for bar, value in zip(bars, values, strict=True):
        ax.annotate(
            f"{value:.2f} ms",
            (bar.get_width(), bar.get_y() + bar.get_height() / 2),
            textcoords="offset points",
            xytext=(4, -3),
            fontsize=9,
        )
    ax.set_xlabel("milliseconds to parse a 50-item RSS feed (median)")
    ax.set_title("Feed parsers")
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


_CHARTS: dict[str, tuple[str, Callable[[dict[str, Any], Path], bool]]] = {
    "matching": ("matching.png", _matching),
    "poll": ("poll.png", _poll),
    "latency": ("latency.png", _latency),
    "parse": ("parse.png", _parse),
}


def write_charts(results: dict[str, dict[str, Any]], out: Path) -> list[Path]:
    """One PNG per benchmark that has figures to draw; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, (filename, draw) in _CHARTS.items():
        data = results.get(name)
        if not isinstance(data, dict) or "error" in data:
            continue
        try:
            if draw(data, out / filename):
                written.append(out / filename)
        except (KeyError, TypeError, ValueError) as exc:  # a benchmark changed its shape: skip its chart
            print(f"chart {filename} skipped: {type(exc).__name__}: {exc}")
    return written
