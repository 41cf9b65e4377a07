"""The Rulebook: compiled rules matched against one document at a time, pure and I/O-free."""

from __future__ import annotations

import fnmatch
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Any

from tradewatch.matching.compiler import Compiled, Node, compile_rules
from tradewatch.matching.extract import extract_facts
from tradewatch.matching.glossary import Glossary
from tradewatch.matching.lead import lead_line
from tradewatch.matching.normalize import normalize
from tradewatch.matching.scan import Scanner, make_scanner
from tradewatch.matching.schema import LEAD_CHARS, DeadlineSpec, Rule
from tradewatch.models import Document, Match

__all__ = ["Prepared", "Rulebook", "prepare"]

_WORD = bytes(range(256)).translate(None, b"abcdefghijklmnopqrstuvwxyz0123456789_")
_IS_WORD = [b not in _WORD for b in range(256)]
_TOKEN = re.compile(rb"[a-z0-9_]+|[\xc0-\xff][\x80-\xbf]*")


@dataclass
class Prepared:
    """One document normalised once: title and text, their bytes joined by NUL, and the term hits.

    Hit bits: 1 title, 2 text, 4 lead (the text's first LEAD_CHARS characters, so also 2).
    """

    title: str
    text: str
    buf: bytes
    sep: int
    lead_end: int
    hits: dict[int, int] = field(default_factory=dict)
    starts: dict[int, list[int]] = field(default_factory=dict)
    _tokens: list[int] | None = None

    def token_at(self, offset: int) -> int:
        """The index of the word (Latin word or single CJK character) at a byte offset."""
        if self._tokens is None:
            self._tokens = [m.start() for m in _TOKEN.finditer(self.buf)]
        return bisect_right(self._tokens, offset) - 1


def prepare(doc: Document, compiled: Compiled, scanner: Scanner) -> Prepared:
    """Normalise a document and record which patterns occur in which field (1 title, 2 text)."""
    title = normalize(doc.title)
    text = normalize(doc.text)
    tb = title.encode("utf-8")
    buf = tb + b"\x00" + text.encode("utf-8")
    sep = len(tb)
    lead_end = sep + 1 + len(text[:LEAD_CHARS].encode("utf-8"))
    size = len(buf)
    hits: dict[int, int] = {}
    starts: dict[int, list[int]] = {}
    variants = compiled.variants
    literals = compiled.literals
    for lid, start in scanner.scan(buf):
        end = start + len(literals[lid])
        left_ok = start == 0 or not _IS_WORD[buf[start - 1]]
        right_ok = end == size or not _IS_WORD[buf[end]]
        bit = 1 if start < sep else (6 if start < lead_end else 2)
        for pid, left, right in variants[lid]:
            if (left and not left_ok) or (right and not right_ok):
                continue
            hits[pid] = hits.get(pid, 0) | bit
            starts.setdefault(pid, []).append(start)
    return Prepared(title=title, text=text, buf=buf, sep=sep, lead_end=lead_end, hits=hits, starts=starts)


def _near(groups: tuple[frozenset[int], ...], within: int, p: Prepared, mask: int) -> bool:
    """True when one occurrence of each group lies within `within` words of one of the first group's,
    in the same field (a title's last word is not near the text's first)."""

    def positions(group: frozenset[int]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for pid in group:
            for start in p.starts.get(pid, ()):
                zone = 1 if start < p.sep else 2
                if mask & (zone if zone == 1 else (6 if start < p.lead_end else 2)):
                    out.setdefault(zone, []).append(p.token_at(start))
        for spots in out.values():
            spots.sort()
        return out

    first, *others = [positions(g) for g in groups]
    if not first or any(not o for o in others):
        return False

    def close(spots: list[int], word: int) -> bool:
        i = bisect_left(spots, word - within)
        return i < len(spots) and spots[i] <= word + within

    return any(
        all(close(other.get(zone, []), word) for other in others)
        for zone, words in first.items()
        for word in words
    )


def evaluate(node: Node, p: Prepared, mask: int) -> bool:
    """Whether a compiled tree holds for a prepared document within the rule's fields."""
    kind = node[0]
    if kind == "t":
        return bool(p.hits.get(node[1], 0) & mask)
    if kind == "any":
        return any(evaluate(child, p, mask) for child in node[1])
    if kind == "all":
        return all(evaluate(child, p, mask) for child in node[1])
    if kind == "none":
        return not any(evaluate(child, p, mask) for child in node[1])
    if kind == "re":
        pattern: re.Pattern[str] = node[1]
        if mask & 1 and pattern.search(p.title):
            return True
        if mask & 2:
            return pattern.search(p.text) is not None
        return bool(mask & 4) and pattern.search(p.text[:LEAD_CHARS]) is not None
    if kind == "in":
        return evaluate(node[2], p, node[1])
    return _near(node[1], node[2], p, mask)


class Rulebook:
    """Loaded, validated and compiled rules and deadlines; `match` is pure."""

    def __init__(
        self,
        rules: list[Rule],
        deadlines: list[DeadlineSpec],
        glossary: Glossary,
        *,
        backend: str | None = None,
        origins: dict[str, tuple[str, int]] | None = None,
    ) -> None:
        self.rules = rules
        self.deadlines = deadlines
        self.glossary = glossary
        self.origins = origins or {}
        self._by_id = {rule.id: rule for rule in rules}
        self._compiled = compile_rules(rules, glossary)
        self._scanner = make_scanner(self._compiled.literals, backend)
        self.backend = self._scanner.backend

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id (KeyError when absent)."""
        return self._by_id[rule_id]

    def stats(self) -> dict[str, Any]:
        """Sizes worth logging at start-up."""
        c = self._compiled
        return {
            "rules": len(self.rules),
            "deadlines": len(self.deadlines),
            "patterns": c.pattern_count,
            "literals": len(c.literals),
            "always_evaluated": len(c.always),
            "backend": self.backend,
        }

    def _applies(self, rule: Rule, doc: Document, *, check_sources: bool = True) -> bool:
        if (
            check_sources
            and rule.sources
            and not any(fnmatch.fnmatchcase(doc.source, glob) for glob in rule.sources)
        ):
            return False
        # "zh-CN" is Chinese for a rule that says `lang: [zh]`
        return not rule.lang or (doc.lang or "").lower().split("-")[0] in rule.lang

    def matching_rules(self, doc: Document) -> tuple[list[Rule], Prepared]:
        """The rules whose trees hold for `doc`, in rulebook order, and the prepared document."""
        c = self._compiled
        p = prepare(doc, c, self._scanner)
        candidates: set[int] = set(c.always)
        index = c.index
        for pid in p.hits:
            woken = index.get(pid)
            if woken:
                candidates.update(woken)
        fired = []
        for i in sorted(candidates):
            rule = self.rules[i]
            if self._applies(rule, doc) and evaluate(c.trees[i], p, c.masks[i]):
                fired.append(rule)
        return fired, p

    def fires(self, rule_id: str, doc: Document, *, check_sources: bool = True) -> bool:
        """Whether one rule holds for `doc` (for examples: sources can be ignored)."""
        c = self._compiled
        i = next(n for n, rule in enumerate(self.rules) if rule.id == rule_id)
        p = prepare(doc, c, self._scanner)
        rule = self.rules[i]
        return self._applies(rule, doc, check_sources=check_sources) and evaluate(c.trees[i], p, c.masks[i])

    def match(self, doc: Document) -> list[Match]:
        """Every rule that fires on `doc`, with the facts each asked to extract."""
        fired, _ = self.matching_rules(doc)
        cache: dict[str, Any] = {}
        return [
            Match(
                doc_id=doc.id,
                rule=rule.id,
                title=rule.title,
                tags=list(rule.tags),
                severity=rule.severity,
                facts=extract_facts(rule.wants(), doc, self.glossary, cache),
            )
            for rule in fired
        ]

    def lead_line(self, doc: Document, facts: dict[str, Any]) -> str:
        """The English lead line for a (Chinese) document, from this rulebook's glossary."""
        return lead_line(doc, facts, self.glossary)
