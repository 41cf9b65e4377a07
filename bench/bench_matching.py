"""Rule matching at scale: 2,000 mixed zh/en documents × 10 … 10,000 generated rules.

For each rule count, the compiled matcher (`Rulebook.match`, the backend chosen at
load: hyperscan where installed) runs over all documents; beside it, a naive matcher
evaluates each rule's terms and regexes one by one with Python `re` (on the same
normalised text, so only the matching strategy differs). The naive loop is timed on
a sample of documents at large rule counts, since it would take minutes. Reported:
docs/s and MB/s per rule count, the 10,000/10 time ratio (must be ≤ 3), and the
speed-up over the naive loop at 10,000 rules (must be ≥ 100×).

Generated rules look like real ones: an `all` of a frequent trade-word branch (tariff,
关税, export control …) and a rare branch (a product or company name), some with a
`none`, a `near` or a regex; documents are news-like text in both languages, a few of
them naming rare terms so that rules fire.
"""

from __future__ import annotations

import random
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tradewatch.matching import Rulebook, load_rulebook, normalize
from tradewatch.matching.compiler import term_literal
from tradewatch.models import Document

__all__ = ["run"]

DOCS = 2000
RULE_COUNTS = (10, 100, 1000, 10_000)
NAIVE_SAMPLE = {10: 2000, 100: 500, 1000: 100, 10_000: 20}
SEED = 20251110
REPEATS = 3

_COMMON_EN = [
    "tariff",
    "tariffs",
    "export control*",
    "rare earth*",
    "trade",
    "china",
    "duties",
    "licen*",
    "magnet*",
    "sanction*",
    "semiconductor*",
    "soybean*",
    "steel",
    "aluminium",
    "truce",
]
_COMMON_ZH = ["关税", "出口管制", "稀土", "贸易", "许可", "磁体", "商务部", "反制", "加征", "芯片"]
_FILLER_TEXT = (
    "the ministry said on monday that new measures on imports and exports would take effect next month "
    "as officials in beijing and washington continue talks over tariffs trade and supply chains while "
    "companies weigh costs of magnets chips steel and soybeans amid rising prices and slowing demand "
    "analysts expect further announcements this week after a meeting of senior negotiators"
)
_FILLER_EN = _FILLER_TEXT.split()
_FILLER_ZH = list(
    "商务部新闻发言人表示中方依法对相关物项实施出口管制维护国家安全和利益同时履行国际义务"
    "随着机器人新能源汽车等领域发展全球需求不断增长中方愿与各方加强沟通对话推动合规贸易便利化"
    "关税税则委员会公告自起对原产于美国的进口商品加征关税稀土永磁材料"
)


def _rare_en(rng: random.Random) -> str:
    consonants, vowels = "bcdfghjklmnprstvz", "aeiou"
    return "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(3, 4))) + str(
        rng.randint(10, 999)
    )


def _rare_zh(rng: random.Random) -> str:
    return "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(3))


def _rules(n: int, rng: random.Random) -> tuple[list[dict[str, Any]], list[str]]:
    """`n` rule dicts and the pool of rare terms they use."""
    rules: list[dict[str, Any]] = []
    rare_pool: list[str] = []
    for i in range(n):
        rare = [_rare_en(rng) if rng.random() < 0.6 else _rare_zh(rng) for _ in range(rng.randint(1, 3))]
        rare_pool.extend(rare)
        common = rng.sample(_COMMON_EN, 2) + rng.sample(_COMMON_ZH, 2)
        match: dict[str, Any] = {"all": [{"any": common}, {"any": rare}]}
        kind = i % 10
        if kind == 1:
            match["none"] = ["draft", "征求意见稿"]
        elif kind == 2:
            match["all"].append(
                {
                    "near": {
                        "terms": [rng.choice(["export", "出口"]), rng.choice(["licen*", "许可"])],
                        "within": 8,
                    }
                }
            )
        elif kind == 3:
            match["all"].append({"regex": r"\d+(\.\d+)?\s*%"})
        rules.append(
            {
                "id": f"gen-{i:05d}",
                "title": f"Generated rule {i}",
                "tags": ["generated"],
                "severity": "warning",
                "match": match,
            }
        )
    return rules, rare_pool


def _documents(rng: random.Random, rare_pool: list[str], count: int = DOCS) -> list[Document]:
    docs = []
    for i in range(count):
        if i % 2:
            words = [rng.choice(_FILLER_EN) for _ in range(rng.randint(150, 300))]
            words += rng.sample(["tariff", "rare earth", "export controls", "licence", "34%", "China"], 2)
            title = " ".join(rng.choice(_FILLER_EN) for _ in range(10)).capitalize()
            lang = "en"
        else:
            words = ["".join(rng.choice(_FILLER_ZH) for _ in range(rng.randint(8, 20))) for _ in range(40)]
            words += rng.sample(["关税", "稀土", "出口管制", "许可", "34%", "美国"], 2)
            title = "".join(rng.choice(_FILLER_ZH) for _ in range(20))
            lang = "zh"
        if rare_pool and i % 4 == 0:
            # log-uniform over the pool, so the first rules' terms (the small rule sets) occur too
            pick = min(len(rare_pool) - 1, int(len(rare_pool) ** rng.random()) - 1)
            words.insert(rng.randrange(len(words)), rare_pool[pick])
        rng.shuffle(words)
        sep = " " if lang == "en" else "，"
        docs.append(Document(id=f"doc-{i}", source="bench", title=title, text=sep.join(words), lang=lang))
    return docs


# --- the naive baseline: every rule's terms and regexes, one by one ----------------------------

_Pred = Callable[[str], bool]


def _naive_term(term: str) -> _Pred:
    body, left, right = term_literal(term)
    pattern = re.compile(
        ("(?<![a-z0-9_])" if left else "") + re.escape(body.decode()) + ("(?![a-z0-9_])" if right else "")
    )
    return _search(pattern)


def _any(kids: list[_Pred]) -> _Pred:
    return lambda text: any(k(text) for k in kids)


def _all(kids: list[_Pred]) -> _Pred:
    return lambda text: all(k(text) for k in kids)


def _not(pred: _Pred) -> _Pred:
    return lambda text: not pred(text)


def _search(pattern: re.Pattern[str]) -> _Pred:
    return lambda text: pattern.search(text) is not None


def _naive_node(node: Any) -> _Pred:
    """The rule's tree as nested predicates, each term a regex search of its own."""
    if isinstance(node, str):
        return _naive_term(node)
    parts: list[_Pred] = []
    for key, value in node.items():
        if key == "any":
            parts.append(_any([_naive_node(v) for v in value]))
        elif key == "all":
            parts.append(_all([_naive_node(v) for v in value]))
        elif key == "none":
            parts.append(_not(_any([_naive_node(v) for v in value])))
        elif key == "regex":
            parts.append(_search(re.compile(value, re.IGNORECASE)))
        elif key == "near":  # naive: both terms present (a cheaper test than the real one)
            parts.append(_all([_naive_node(v) for v in value["terms"]]))
    return _all(parts)


def _naive_rate(rules: list[dict[str, Any]], docs: list[Document]) -> float:
    preds = [_naive_node(rule["match"]) for rule in rules]
    start = time.perf_counter()
    for doc in docs:
        text = normalize(doc.title) + "\n" + normalize(doc.text)
        for pred in preds:
            pred(text)
    return len(docs) / (time.perf_counter() - start)


# --- measurement ---------------------------------------------------------------------------------


def _compiled_rate(rb: Rulebook, docs: list[Document], repeats: int = REPEATS) -> tuple[float, int]:
    """Best of `repeats` passes (the machine is shared; the best pass is the least disturbed)."""
    rb.match(docs[0])  # warm caches
    best, fired = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        fired = sum(len(rb.match(doc)) for doc in docs)
        best = min(best, time.perf_counter() - start)
    return len(docs) / best, fired


def _load(rules: list[dict[str, Any]], backend: str | None) -> Rulebook:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "rules.yaml").write_text(
            yaml.safe_dump({"rules": rules}, allow_unicode=True), encoding="utf-8"
        )
        return load_rulebook(Path(folder), backend=backend)


def run(
    progress: bool = False,
    backend: str | None = None,
    rule_counts: tuple[int, ...] = RULE_COUNTS,
    documents: int = DOCS,
) -> dict[str, Any]:
    """Measure every rule count; returns rows plus the two ratios the issue sets.

    `backend` picks the measured matcher (default: what load picks); the pure-Python
    fallback is measured beside it once per rule count.
    """
    rng = random.Random(SEED)
    all_rules, rare_pool = _rules(max(rule_counts), rng)
    docs = _documents(rng, rare_pool, documents)
    megabytes = sum(len(d.title.encode()) + len(d.text.encode()) for d in docs) / 1e6
    rows: list[dict[str, Any]] = []
    for count in rule_counts:
        rules = all_rules[:count]
        load_start = time.perf_counter()
        rb = _load(rules, backend)
        load_seconds = time.perf_counter() - load_start
        rate, fired = _compiled_rate(rb, docs)
        fallback, fallback_fired = (
            (rate, fired) if rb.backend == "python" else _compiled_rate(_load(rules, "python"), docs, 1)
        )
        sample = docs[: NAIVE_SAMPLE.get(count, max(10, 20_000 // count))]
        naive = _naive_rate(rules, sample)
        row: dict[str, Any] = {
            "rules": count,
            "backend": rb.backend,
            "docs_per_s": rate,
            "mb_per_s": rate * megabytes / len(docs),
            "matches": fired,
            "python_docs_per_s": fallback,
            "python_matches": fallback_fired,
            "naive_docs_per_s": naive,
            "speedup": rate / naive,
            "load_s": load_seconds,
        }
        rows.append(row)
        if progress:
            print(f"  {count:>6} rules: {rate:,.0f} docs/s, naive {naive:,.1f} docs/s", file=sys.stderr)
    smallest, largest = rows[0], rows[-1]  # 10 and 10,000 rules by default
    ratio = smallest["docs_per_s"] / largest["docs_per_s"]  # time(largest) / time(smallest)
    return {
        "documents": len(docs),
        "megabytes": megabytes,
        "rows": rows,
        "time_ratio_10k_over_10": ratio,
        "speedup_at_10k": largest["speedup"],
    }


def format_table(result: dict[str, Any]) -> str:
    """The scaling table and the two verdicts."""
    lines = [
        f"rule matching: {result['documents']:,} mixed zh/en documents, {result['megabytes']:.1f} MB",
        f"{'rules':>7} {'backend':>9} {'docs/s':>9} {'MB/s':>7} {'matches':>8} {'python docs/s':>14} "
        f"{'naive docs/s':>13} {'speed-up':>9} {'load s':>7}",
    ]
    for r in result["rows"]:
        lines.append(
            f"{r['rules']:>7,} {r['backend']:>9} {r['docs_per_s']:>9,.0f} {r['mb_per_s']:>7.2f} "
            f"{r['matches']:>8,} {r['python_docs_per_s']:>14,.0f} {r['naive_docs_per_s']:>13,.1f} "
            f"{r['speedup']:>8,.0f}× {r['load_s']:>7.2f}"
        )
    ratio, speedup = result["time_ratio_10k_over_10"], result["speedup_at_10k"]
    low, high = result["rows"][0]["rules"], result["rows"][-1]["rules"]
    verdict = "ok" if ratio <= 3 else "FAILS"
    lines.append(f"time {high:,} rules / {low:,} rules: {ratio:.2f} (limit 3) {verdict}")
    verdict = "ok" if speedup >= 100 else "FAILS"
    lines.append(f"speed-up over the naive loop at {high:,} rules: {speedup:,.0f}× (need 100) {verdict}")
    return "\n".join(lines)


if __name__ == "__main__":
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    chosen = sys.argv[1] if len(sys.argv) > 1 else None
    print(format_table(run(progress=True, backend=chosen)))
