"""The one table of `make bench`: each benchmark's figures, the goal the issues set, and PASS or MISS.

Each summarizer reads one benchmark's result dict tolerantly: a figure a module does
not (or no longer) report shows as a note, never as a made-up number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Row", "format_markdown", "format_text", "summarize"]


@dataclass
class Row:
    bench: str
    figure: str
    value: str
    goal: str = ""
    verdict: str = ""  # PASS, MISS or empty when the issue sets no goal

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _num(value: Any, fmt: str = "{:,.1f}") -> str:
    if isinstance(value, int | float):
        return fmt.format(value)
    return "n/a"


def _matching(d: dict[str, Any]) -> list[Row]:
    b = "matching"
    rows: list[Row] = []
    docs = d.get("documents")
    by_count = {int(r["rules"]): r for r in d.get("rows", []) if isinstance(r, dict) and "rules" in r}
    for count, r in sorted(by_count.items()):
        goal, verdict = "", ""
        rate = float(r.get("docs_per_s") or 0.0)
        if count == 1000:
            goal, verdict = "aim ≥ 10,000 docs/s", _verdict(rate >= 10_000)
        elif count == 10_000:
            goal, verdict = "aim ≥ 2,000 docs/s", _verdict(rate >= 2_000)
        rows.append(
            Row(
                b,
                f"{count:,} rules ({r.get('backend')}), {docs:,} docs: docs/s, MB/s",
                f"{_num(rate, '{:,.0f}')}, {_num(r.get('mb_per_s'), '{:.2f}')}",
                goal,
                verdict,
            )
        )
        rows.append(
            Row(b, f"{count:,} rules: per-rule loop docs/s", _num(r.get("naive_docs_per_s"), "{:,.1f}"))
        )
    ratio = d.get("time_ratio_10k_over_10")
    if isinstance(ratio, int | float):
        rows.append(
            Row(b, "time at 10,000 rules / time at 10 rules", f"{ratio:.2f}", "≤ 3", _verdict(ratio <= 3))
        )
    speedup = d.get("speedup_at_10k")
    if isinstance(speedup, int | float):
        rows.append(
            Row(
                b,
                "speed-up over the per-rule loop at 10,000 rules",
                f"{speedup:,.0f}×",
                "≥ 100×",
                _verdict(speedup >= 100),
            )
        )
    return rows


def _parse(d: dict[str, Any]) -> list[Row]:
    b = "parse"
    rows: list[Row] = []
    listing = d.get("mofcom_list_page") or {}
    ms = listing.get("ms_all_items")
    if isinstance(ms, int | float):
        size = listing.get("bytes", 0) / 1000
        rows.append(
            Row(
                b,
                f"MOFCOM-style list page ({size:.0f} KB, {listing.get('items')} items): parse + extract",
                f"{ms:.2f} ms",
                "≤ 10 ms",
                _verdict(ms <= 10),
            )
        )
    if isinstance(listing.get("ms_default_max_items_30"), int | float):
        rows.append(
            Row(
                b,
                "the same page read as a poll reads it (default max_items 30)",
                f"{listing['ms_default_max_items_30']:.2f} ms",
            )
        )
    if isinstance(listing.get("ms_detail_page"), int | float):
        rows.append(Row(b, "MOFCOM detail page: parse + body text", f"{listing['ms_detail_page']:.2f} ms"))
    for name, row in (d.get("parsers") or {}).items():
        if not isinstance(row, dict):
            continue
        if "unavailable" in row:
            rows.append(Row(b, f"{name}: 50-item RSS feed", f"not installed ({row['unavailable']})"[:60]))
            continue
        if "rss-50_ms" in row:
            extra = (
                f" ({row['speedup_vs_feedparser_rss50']}× feedparser)"
                if "speedup_vs_feedparser_rss50" in row
                else ""
            )
            entities = row.get("expands_entities")
            rows.append(
                Row(
                    b,
                    f"{name}: 50-item RSS feed; expands XML entities: {entities}",
                    f"{row['rss-50_ms']:.2f} ms{extra}",
                )
            )
    return rows


_DEDUP_LABELS = {
    "seen_check_us_per_item": "seen-check of an unchanged poll, per item (µs)",
    "steady_pipeline_us_per_item": "whole pipeline on an unchanged poll, per item (µs)",
    "steady_docs_per_s": "unchanged polls: docs/s through dedup",
    "steady_commands_per_doc": "unchanged polls: Redis commands per doc",
    "steady_round_trips_per_poll": "unchanged polls: round trips per poll",
    "first_poll_docs_per_s": "first polls: docs/s (matching included)",
    "first_poll_docs_per_s_excl_matching": "first polls: docs/s without matching",
    "first_poll_commands_per_doc": "first polls: Redis commands per doc",
    "first_poll_round_trips_per_poll": "first polls: round trips per poll",
    "fresh_new_docs_per_s": "new items: docs/s through dedup + clustering (matching included)",
    "fresh_new_docs_per_s_excl_matching": "new items: docs/s through dedup + clustering without matching",
    "fresh_commands_per_new_doc": "new items: Redis commands per new doc",
    "fresh_round_trips_per_poll": "new items: round trips per poll",
    "memory_bytes_per_seen_item": "Redis memory per seen item (bytes)",
}


def _dedup(d: dict[str, Any]) -> list[Row]:
    """Known figures by name with labels; any other number bench_dedup reports, as it is."""
    b = "dedup"
    rows: list[Row] = []
    if d.get("sources") and d.get("items_per_source"):
        rows.append(Row(b, f"{d['sources']} sources × {d['items_per_source']} items, real redis-server", ""))
    known = [k for k in _DEDUP_LABELS if k in d]
    rest = [k for k in d if k not in _DEDUP_LABELS and k not in ("sources", "items_per_source")]
    for key in known + rest:
        value = d[key]
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        goal, verdict = "", ""
        if key == "seen_check_us_per_item":
            goal, verdict = "≤ 50 µs/item", _verdict(value <= 50)
        rows.append(
            Row(
                b,
                _DEDUP_LABELS.get(key, key.replace("_", " ")),
                _num(value, "{:,}" if isinstance(value, int) else "{:,.2f}"),
                goal,
                verdict,
            )
        )
    return rows


def _poll(d: dict[str, Any]) -> list[Row]:
    b = "poll"
    rows: list[Row] = []
    pages = d.get("sources", 1000) - d.get("baseline_sources", 10)
    setup = (
        f"{d.get('sources')} sources ({d.get('kinds')}) on {d.get('hosts')} loopback hosts, "
        f"median of {d.get('repeats')}; cycle = run over {d.get('sources')} "
        f"− run over {d.get('baseline_sources')}"
    )
    rows.append(Row(b, setup, ""))
    names = {
        "tw_cold": "tradewatch cold (parse, match, record every item)",
        "uw_cold": "urlwatch cold (store every page)",
        "tw_warm": "tradewatch second cycle (every source should answer 304)",
        "uw_warm": "urlwatch warm (every source answers 304)",
    }
    for key, label in names.items():
        c = d.get(key)
        if not isinstance(c, dict):
            continue
        served = c.get("served_1000") or {}
        rows.append(
            Row(
                b,
                f"{label}: cycle s, CPU ms/page, pages/s",
                f"{_num(c.get('cycle_wall_s'), '{:.2f}')} s, {_num(c.get('cpu_ms_per_page'), '{:.2f}')} ms, "
                f"{_num(c.get('pages_per_s'), '{:,.0f}')}/s",
            )
        )
        if key.startswith("tw"):
            events = c.get("events_1000") or {}
            failed = events.get("source_poll_failed", 0) + events.get("source_poll_not_processed", 0)
            rows.append(
                Row(
                    b,
                    f"  … answers served {served.get('200', 0)}×200 / {served.get('304', 0)}×304; "
                    f"polls not processed or failed; exit codes {c.get('returncodes')}",
                    f"{failed} of {d.get('sources')}",
                    "0",
                    _verdict(failed == 0 and c.get("returncodes") == [0]),
                )
            )
    warm304 = d.get("warm_304s")
    if isinstance(warm304, int):
        rows.append(
            Row(
                b,
                "304 answers in tradewatch's second cycle",
                f"{warm304} of {d.get('sources')}",
                f"{d.get('sources')}",
                _verdict(warm304 >= d.get("sources", 1000)),
            )
        )
    warm = d.get("warm_speedup_vs_urlwatch")
    if isinstance(warm, int | float):
        rows.append(
            Row(
                b,
                f"all-304 cycle: urlwatch warm time / tradewatch time ({pages} sources)",
                f"{warm:.2f}×",
                "≥ 3×",
                _verdict(warm >= 3 and (warm304 or 0) >= d.get("sources", 1000)),
            )
        )
    for key, what in (
        ("httpx_floor", "bare httpx (its own pool)"),
        ("transport_floor", "bare tradewatch transport (httpx over aiohttp pools)"),
    ):
        floor = d.get(key)
        if isinstance(floor, dict) and "cycle_wall_s" in floor:
            statuses = floor.get("statuses") or {}
            rows.append(
                Row(
                    b,
                    f"context: {what}, the same {pages} conditional GETs and nothing else "
                    f"({statuses.get('304', 0)}×304): cycle s, CPU ms/page, urlwatch warm / it",
                    f"{_num(floor.get('cycle_wall_s'), '{:.2f}')} s, "
                    f"{_num(floor.get('cpu_ms_per_page'), '{:.2f}')} ms, "
                    f"{_num(floor.get('speedup_vs_urlwatch'), '{:.2f}')}×",
                )
            )
        elif isinstance(floor, dict):
            rows.append(Row(b, f"context: {what} all-304 round", f"failed: {floor.get('error')}"))
    cold = d.get("cold_speedup_vs_urlwatch")
    if isinstance(cold, int | float):
        rows.append(
            Row(
                b,
                f"cold cycle: urlwatch cold time / tradewatch time ({pages} sources)",
                f"{cold:.2f}×",
                "≥ 1×",
                _verdict(cold >= 1),
            )
        )
    floor = d.get("cold_floor")
    if isinstance(floor, dict) and "cycle_wall_s" in floor:
        rows.append(
            Row(
                b,
                f"context: parsing and matching alone, the same sources' "
                f"{_num(floor.get('documents'), '{:,}')} items scaled to {pages} sources "
                "(no HTTP, Redis, alerts or logs): cycle s, CPU ms/page, urlwatch cold / it",
                f"{_num(floor.get('cycle_wall_s'), '{:.2f}')} s, "
                f"{_num(floor.get('cpu_ms_per_page'), '{:.2f}')} ms, "
                f"{_num(floor.get('speedup_vs_urlwatch'), '{:.2f}')}×",
            )
        )
    elif isinstance(floor, dict):
        rows.append(Row(b, "context: parsing and matching alone", f"failed: {floor.get('error')}"))
    if d.get("redis_pool") not in (None, "worker default"):
        rows.append(
            Row(b, "note: redis_url carries ?max_connections (see BENCHMARKS.md)", str(d.get("redis_pool")))
        )
    return rows


def _latency(d: dict[str, Any]) -> list[Row]:
    b = "latency"
    rows: list[Row] = []
    rows.append(
        Row(
            b,
            f"items published at random / posted to Slack (polling every {d.get('poll_every_s', 1):g}s)",
            f"{d.get('items_published')} / {d.get('items_posted')}",
            "all",
            _verdict(bool(d.get("items_published")) and d.get("items_published") == d.get("items_posted")),
        )
    )
    for key, label in (
        ("publication_to_slack_s", "publication → Slack call, p50 / p95 / p99"),
        ("poll_to_slack_s", "minus the polling share: poll → Slack call, p50 / p95 / p99"),
    ):
        p = d.get(key) or {}
        rows.append(Row(b, label, " / ".join(_num(p.get(q), "{:.3f}") for q in ("p50", "p95", "p99")) + " s"))
    if d.get("worker_warning_count"):
        rows.append(Row(b, "worker warnings and errors logged", str(d.get("worker_warning_count"))))
    return rows


_SUMMARIZERS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "matching": _matching,
    "parse": _parse,
    "dedup": _dedup,
    "poll": _poll,
    "latency": _latency,
}


def summarize(results: dict[str, dict[str, Any]]) -> list[Row]:
    """Rows for every benchmark run, in run order; missing or failed ones say so."""
    rows: list[Row] = []
    for name, data in results.items():
        if "missing" in data:
            rows.append(Row(name, "not measured", str(data["missing"])))
            continue
        if "error" in data:
            rows.append(Row(name, "failed", str(data["error"])[:100], "", "MISS"))
            continue
        try:
            rows.extend(_SUMMARIZERS[name](data))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            rows.append(Row(name, "figures in an unexpected shape", f"{type(exc).__name__}: {exc}"[:100]))
    return rows


def format_text(rows: list[Row]) -> str:
    """A plain table for the terminal."""
    widths = [
        max(len(getattr(r, f)) for r in rows) if rows else 0 for f in ("bench", "figure", "value", "goal")
    ]
    widths = [max(w, len(h)) for w, h in zip(widths, ("bench", "figure", "value", "goal"), strict=True)]
    head = ("bench", "figure", "value", "goal", "")
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, [*widths, 4], strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in [*widths, 4]))
    for r in rows:
        cells = (r.bench, r.figure, r.value, r.goal, r.verdict)
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, [*widths, 4], strict=True)).rstrip())
    return "\n".join(lines)


def format_markdown(rows: list[Row]) -> str:
    """The same table for BENCHMARKS.md."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|") or " "

    lines = ["| bench | figure | value | goal | |", "|---|---|---|---|---|"]
    for r in rows:
        verdict = f"**{r.verdict}**" if r.verdict else ""
        lines.append(f"| {r.bench} | {cell(r.figure)} | {cell(r.value)} | {cell(r.goal)} | {verdict} |")
    return "\n".join(lines)
