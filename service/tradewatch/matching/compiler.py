"""Compiling rule trees into one literal table, evaluable trees, and a rarest-branch index.

Every distinct (term, boundary) becomes a pattern id; every distinct term text one
scanner literal. Each rule is indexed under the pattern ids of its cheapest
necessary branch: an `all` needs every child, so the rarest one is enough to wake
the rule, and a frequent word such as "tariff" that many rules share costs a rule
nothing unless its rare branch also occurs. Rules with no necessary literal (only
regexes or `none`) are evaluated on every document.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tradewatch.matching.glossary import Glossary
from tradewatch.matching.normalize import normalize, term_literal
from tradewatch.matching.schema import MatchNode, Rule, field_mask
from tradewatch.matching.tree import compile_regex

__all__ = ["Compiled", "compile_rules", "term_literal"]

# Words so frequent in trade news that a branch made of them is a poor index key.
_COMMON = frozenset(
    normalize(w)
    for w in (
        "tariff",
        "tariffs",
        "trade",
        "china",
        "chinese",
        "us",
        "u.s.",
        "united states",
        "export",
        "exports",
        "import",
        "imports",
        "beijing",
        "washington",
        "trump",
        "president",
        "said",
        "percent",
        "goods",
        "关税",
        "贸易",
        "中国",
        "美国",
        "出口",
        "进口",
        "商务部",
        "公告",
        "政策",
    )
)

# Compiled node shapes (tuples evaluate faster than objects):
#   ("t", pid) | ("any", children) | ("all", children) | ("none", children)
#   | ("re", pattern) | ("near", groups: tuple[frozenset[pid], ...], within) | ("in", mask, child)
Node = tuple[Any, ...]


@dataclass
class Compiled:
    """What the matcher needs at run time: literal table, trees, field masks, and the index."""

    literals: list[bytes] = field(default_factory=list)
    variants: list[list[tuple[int, bool, bool]]] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)  # of each literal, in bytes
    trees: list[Node] = field(default_factory=list)
    masks: list[int] = field(default_factory=list)
    index: dict[int, list[int]] = field(default_factory=dict)
    always: list[int] = field(default_factory=list)
    pattern_count: int = 0


class _Builder:
    def __init__(self, glossary: Glossary) -> None:
        self.glossary = glossary
        self.out = Compiled()
        self.pids: dict[tuple[bytes, bool, bool], int] = {}
        self.lids: dict[bytes, int] = {}
        self.pid_bytes: list[bytes] = []

    def pid(self, term: str) -> int:
        key = term_literal(term)
        if key not in self.pids:
            lit = key[0]
            if lit not in self.lids:
                self.lids[lit] = len(self.out.literals)
                self.out.literals.append(lit)
                self.out.variants.append([])
            pid = len(self.pids)
            self.pids[key] = pid
            self.pid_bytes.append(lit)
            self.out.variants[self.lids[lit]].append((pid, key[1], key[2]))
        return self.pids[key]

    def terms_of(self, node: MatchNode) -> list[int]:
        """Pattern ids for a term, a glossary reference, or a list of them (near groups)."""
        if node.kind == "term":
            return [self.pid(node.value)]
        if node.kind == "glossary":
            return [self.pid(t) for t in self.glossary.terms(node.value)]
        return [pid for child in node.children for pid in self.terms_of(child)]

    def node(self, node: MatchNode) -> Node:
        kind = node.kind
        if kind == "term":
            return ("t", self.pid(node.value))
        if kind == "glossary":
            return ("any", tuple(("t", pid) for pid in self.terms_of(node)))
        if kind == "regex":
            return ("re", compile_regex(node.value))
        if kind == "near":
            return ("near", tuple(frozenset(self.terms_of(c)) for c in node.children), node.within)
        if kind == "in":
            return ("in", field_mask(node.value.split(",")), self.node(node.children[0]))
        return (kind, tuple(self.node(child) for child in node.children))


def _cost(pid: int, uses: Counter[int], lit: bytes) -> float:
    weight = 1.0 + 16.0 / max(1, len(lit))
    if lit.decode("utf-8") in _COMMON:
        weight *= 20
    return uses[pid] * weight


def _trigger(node: Node, cost: dict[int, float]) -> tuple[frozenset[int], float] | None:
    """A set of pattern ids of which at least one occurs whenever `node` is true, and its cost."""
    kind = node[0]
    if kind == "t":
        return frozenset([node[1]]), cost[node[1]]
    if kind == "near":
        options = [(group, sum(cost[p] for p in group)) for group in node[1]]
        return min(options, key=lambda o: o[1])
    if kind == "any":
        parts = [_trigger(child, cost) for child in node[1]]
        if any(p is None for p in parts):
            return None
        pids = frozenset().union(*(p[0] for p in parts if p is not None))
        return pids, sum(cost[p] for p in pids)
    if kind == "in":
        return _trigger(node[2], cost)
    if kind == "all":
        found = [t for t in (_trigger(child, cost) for child in node[1]) if t is not None]
        return min(found, key=lambda o: o[1]) if found else None
    return None


def _pids_in(node: Node) -> list[int]:
    kind = node[0]
    if kind == "t":
        return [node[1]]
    if kind == "near":
        return [p for group in node[1] for p in group]
    if kind in ("any", "all", "none"):
        return [p for child in node[1] for p in _pids_in(child)]
    if kind == "in":
        return _pids_in(node[2])
    return []


def positive_pids(node: Node) -> list[int]:
    """The patterns whose presence speaks for the rule (those under `none` speak against it)."""
    kind = node[0]
    if kind == "none":
        return []
    if kind in ("any", "all"):
        return [p for child in node[1] for p in positive_pids(child)]
    if kind == "in":
        return positive_pids(node[2])
    return _pids_in(node)


def compile_rules(rules: list[Rule], glossary: Glossary) -> Compiled:
    """Compile every rule; the index favours each rule's rarest necessary branch."""
    builder = _Builder(glossary)
    out = builder.out
    for rule in rules:
        out.trees.append(builder.node(rule.match))
        out.masks.append(field_mask(rule.fields))
    uses: Counter[int] = Counter()
    for tree in out.trees:
        uses.update(set(_pids_in(tree)))
    cost = {pid: _cost(pid, uses, lit) for pid, lit in enumerate(builder.pid_bytes)}
    for i, tree in enumerate(out.trees):
        trigger = _trigger(tree, cost)
        if trigger is None:
            out.always.append(i)
            continue
        for pid in trigger[0]:
            out.index.setdefault(pid, []).append(i)
    out.pattern_count = len(builder.pids)
    out.lengths = [len(lit) for lit in out.literals]
    return out
