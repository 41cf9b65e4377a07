"""Rule trees compiled to closures over a prepared document: no tree walking per document.

A closure per node: an `any` of terms is one set test, an `all` checks its terms
before its other conditions and regexes last, and a `near` looks at word positions
only when every one of its groups occurs. The order changes the cost, never the answer.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable

from tradewatch.matching.compiler import Node
from tradewatch.matching.prepared import Prepared
from tradewatch.matching.schema import LEAD_CHARS

__all__ = ["Predicate", "predicate"]


def _near(groups: tuple[frozenset[int], ...], within: int, p: Prepared, mask: int) -> bool:
    """True when one occurrence of each group lies within `within` words of one of the first group's,
    in the same field (a title's last word is not near the text's first)."""
    starts = p.starts
    sep, lead_end = p.sep, p.lead_end
    found: list[list[tuple[int, int]]] = []  # per group: (zone, start byte) of its occurrences
    for group in groups:
        spots = []
        for pid in group.intersection(starts):
            for start in starts[pid]:
                zone = 1 if start < sep else 2
                if mask & (zone if zone == 1 else (6 if start < lead_end else 2)):
                    spots.append((zone, start))
        if not spots:
            return False
        found.append(spots)
    words = p.word_indices({start for spots in found for _, start in spots})
    positions: list[dict[int, list[int]]] = []
    for spots in found:
        out: dict[int, list[int]] = {}
        for zone, start in spots:
            out.setdefault(zone, []).append(words[start])
        for spots_in_zone in out.values():
            spots_in_zone.sort()
        positions.append(out)
    first, *others = positions

    def close(spots: list[int], word: int) -> bool:
        i = bisect_left(spots, word - within)
        return i < len(spots) and spots[i] <= word + within

    return any(
        all(close(other.get(zone, []), word) for other in others)
        for zone, words_in_zone in first.items()
        for word in words_in_zone
    )


Predicate = Callable[[Prepared], bool]

# Evaluation order inside `any`/`all` (the result does not depend on it, only the cost):
# term sets first, regexes last.
_COST = {"t": 0, "any": 1, "all": 2, "none": 2, "in": 2, "near": 3, "re": 4}


def _rank(node: Node) -> int:
    if node[0] == "any" and all(child[0] in ("t", "any") for child in node[1]):
        return _COST["t"] if all(child[0] == "t" for child in node[1]) else _COST["any"]
    return _COST[node[0]]


def _flatten(kind: str, children: tuple[Node, ...]) -> tuple[frozenset[int], list[Node]]:
    """Term ids among `children` (through nested nodes of the same kind) and the other children."""
    pids: set[int] = set()
    others: list[Node] = []
    for child in children:
        if child[0] == "t":
            pids.add(child[1])
        elif child[0] == kind:
            more, rest = _flatten(kind, child[1])
            pids |= more
            others += rest
        else:
            others.append(child)
    return frozenset(pids), sorted(others, key=_rank)


def _any_of(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    return lambda p: any(f(p) for f in preds)


def predicate(node: Node, mask: int) -> Predicate:
    """A compiled tree as a closure: whether it holds for a prepared document within `mask`'s fields."""
    kind = node[0]
    if kind == "t":
        pid = node[1]
        return lambda p: pid in p.present(mask)
    if kind == "in":
        return predicate(node[2], node[1])
    if kind == "re":
        return _regex(node[1], mask)
    if kind == "near":
        groups, within = node[1], node[2]

        def near(p: Prepared) -> bool:
            present = p.present(mask)  # positions only when every group occurs at all
            return all(not group.isdisjoint(present) for group in groups) and _near(groups, within, p, mask)

        return near
    if kind == "all":
        pids, others = _flatten("all", node[1])
        checks = [predicate(child, mask) for child in others]
        if pids:
            checks.insert(0, lambda p: pids <= p.present(mask))
        if len(checks) == 1:
            return checks[0]
        return lambda p: all(f(p) for f in checks)
    # any / none: one set test for the term children, then the rest
    pids, others = _flatten("any" if kind == "none" else kind, node[1])
    preds = [predicate(child, mask) for child in others]
    if pids:
        preds.insert(0, lambda p: not pids.isdisjoint(p.present(mask)))
    holds = _any_of(preds)
    if kind == "none":
        return lambda p: not holds(p)
    return holds


def _regex(pattern: re.Pattern[str], mask: int) -> Predicate:
    search = pattern.search
    title, text, lead = mask & 1, mask & 2, mask & 4

    def holds(p: Prepared) -> bool:
        if title and search(p.title):
            return True
        if text:
            return search(p.text) is not None
        return bool(lead) and search(p.text[:LEAD_CHARS]) is not None

    return holds
