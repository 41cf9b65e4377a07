"""The Rulebook: compiled rules matched against one document at a time, pure and I/O-free."""

from __future__ import annotations

import fnmatch
from collections.abc import Container
from typing import Any

from tradewatch.matching.compiler import compile_rules, positive_pids
from tradewatch.matching.extract import extract_facts
from tradewatch.matching.glossary import Glossary
from tradewatch.matching.lead import lead_line
from tradewatch.matching.predicates import predicate
from tradewatch.matching.prepared import Prepared, prepare
from tradewatch.matching.scan import make_scanner
from tradewatch.matching.schema import DeadlineSpec, Rule
from tradewatch.models import Document, Match

__all__ = ["MATCH_TEXT_MAX", "Prepared", "Rulebook", "prepare", "within_reach"]

MATCH_TEXT_MAX = 200_000  # characters of a document's text that rules and extractors read


def within_reach(doc: Document) -> Document:
    """`doc` with its text cut at MATCH_TEXT_MAX characters, which rules and extractors read.

    Matching costs about a microsecond a character and runs on the event loop: a 2.7 MB
    text held the worker (health checks included) for over 3 s. A notice states what it
    does, on what and from when in its first pages; an annex beyond them is not read.
    """
    if len(doc.text) <= MATCH_TEXT_MAX:
        return doc
    return doc.model_copy(update={"text": doc.text[:MATCH_TEXT_MAX]})


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
        self._predicates = [
            predicate(t, m) for t, m in zip(self._compiled.trees, self._compiled.masks, strict=True)
        ]
        # A rule's title hit counts by its index patterns: the rarest branch it needs ("export
        # control*", "tariff*"), not words every trade rule shares ("china", "imposes").
        triggers: list[set[int]] = [set() for _ in rules]
        for pid, woken in self._compiled.index.items():
            for i in woken:
                triggers[i].add(pid)
        positive = [frozenset(positive_pids(t)) for t in self._compiled.trees]
        self._title_pids = [frozenset(t) & p for t, p in zip(triggers, positive, strict=True)]
        self._index_of = {rule.id: i for i, rule in enumerate(rules)}
        self._scanner = make_scanner(self._compiled.literals, backend)
        self.backend = self._scanner.backend
        cancelling = {rule for spec in deadlines for rule in spec.cancelled_by}
        # Rules whose matches plan, move or end a deadline: even a baselined item's count.
        self.deadline_rules = frozenset(r.id for r in rules if r.deadline_from or r.id in cancelling)

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
        doc = within_reach(doc)
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
            if self._applies(rule, doc) and self._predicates[i](p):
                fired.append(rule)
        return fired, p

    def fires(self, rule_id: str, doc: Document, *, check_sources: bool = True) -> bool:
        """Whether one rule holds for `doc` (for examples: sources can be ignored)."""
        c = self._compiled
        i = next(n for n, rule in enumerate(self.rules) if rule.id == rule_id)
        p = prepare(within_reach(doc), c, self._scanner)
        rule = self.rules[i]
        return self._applies(rule, doc, check_sources=check_sources) and self._predicates[i](p)

    def match(self, doc: Document, *, facts_for: Container[str] | None = None) -> list[Match]:
        """Every rule that fires on `doc`, with the facts each asked to extract.

        `facts_for` limits extraction to those rule ids (the others' `facts` stay empty):
        for callers that read only which rules fired, and the facts of a few.
        """
        doc = within_reach(doc)
        fired, p = self.matching_rules(doc)
        cache: dict[str, Any] = {}
        in_title = {pid for pid, where in p.hits.items() if where & 1} if len(fired) > 1 else set()
        matches = []
        for rule in fired:
            match = Match(
                doc_id=doc.id,
                rule=rule.id,
                title=rule.title,
                tags=list(rule.tags),
                severity=rule.severity,
                facts=extract_facts(rule.wants(), doc, self.glossary, cache)
                if facts_for is None or rule.id in facts_for
                else {},
            )
            match._in_title = not self._title_pids[self._index_of[rule.id]].isdisjoint(in_title)
            matches.append(match)
        return matches

    def lead_line(self, doc: Document, facts: dict[str, Any]) -> str:
        """The English lead line for a (Chinese) document, from this rulebook's glossary."""
        return lead_line(within_reach(doc), facts, self.glossary)
