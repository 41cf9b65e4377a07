"""The Rulebook: compiled rules matched against one document at a time, pure and I/O-free."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any

from tradewatch.matching.compiler import compile_rules, positive_pids, term_literal
from tradewatch.matching.dates import sentence_span
from tradewatch.matching.extract import extract_facts
from tradewatch.matching.glossary import Glossary
from tradewatch.matching.lead import lead_line
from tradewatch.matching.predicates import predicate
from tradewatch.matching.prepared import Prepared, prepare, prepare_fields
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


@dataclass(frozen=True)
class _Affinity:
    """Whether the sentence at a place of a document's plain text tells of another kind of
    measure than one rule's: it names measures (glossary entries of kind `measure`), none of
    the rule's kind. Measures that one rule names together are one kind (export controls,
    dual-use items and export licences; tariffs and reciprocal tariffs). `present` scans each
    sentence once a document."""

    own: frozenset[str]  # the measures of the rule's kind
    measures: dict[str, frozenset[int]]  # every measure's terms
    present: Callable[[str, int], frozenset[int]]

    @property
    def contested(self) -> bool:
        return bool(self.own)

    def elsewhere(self, text: str, place: int) -> bool:
        found = self.present(text, place)
        named = [name for name, pids in self.measures.items() if not pids.isdisjoint(found)]
        return bool(named) and self.own.isdisjoint(named)


def _kinds(measures: list[frozenset[str]]) -> list[frozenset[str]]:
    """Each rule's measures widened to their kind: measures some rule names together are one."""
    groups: list[set[str]] = []
    for names in measures:
        joined = set(names)
        for group in [g for g in groups if not g.isdisjoint(names)]:
            joined |= group
            groups.remove(group)
        if joined:
            groups.append(joined)
    return [frozenset().union(*(g for g in groups if not g.isdisjoint(names))) for names in measures]


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
        self._positive = [frozenset(positive_pids(t)) for t in self._compiled.trees]
        self._title_pids = [frozenset(t) & p for t, p in zip(triggers, self._positive, strict=True)]
        self._index_of = {rule.id: i for i, rule in enumerate(rules)}
        # Measures by their terms and kinds, for reading each rule's own effective date
        self._measures = self._entry_pids("measure")
        self._own_measures = _kinds(
            [
                frozenset(name for name, pids in self._measures.items() if not pids.isdisjoint(p))
                for p in self._positive
            ]
        )
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
                facts=self._facts(rule, doc, cache) if facts_for is None or rule.id in facts_for else {},
            )
            match._in_title = not self._title_pids[self._index_of[rule.id]].isdisjoint(in_title)
            matches.append(match)
        return matches

    def facts(self, rule_id: str, doc: Document) -> dict[str, Any]:
        """The facts one rule extracts from `doc`, read as `match` reads them, whether or not the
        rule fires (for its examples)."""
        return self._facts(self._by_id[rule_id], within_reach(doc), {})

    def _facts(self, rule: Rule, doc: Document, cache: dict[str, Any]) -> dict[str, Any]:
        affinity = self._affinity(rule.id, cache)
        return extract_facts(rule.wants(), doc, self.glossary, cache, affinity=affinity)

    def _entry_pids(self, kind: str) -> dict[str, frozenset[int]]:
        """The pattern ids of each glossary entry of one kind (measures are always compiled)."""
        pids = self._compiled.pids
        out = {}
        for name, entry in self.glossary.of_kind(kind).items():
            found = frozenset(p for t in entry.terms() if (p := pids.get(term_literal(t))) is not None)
            if found:
                out[name] = found
        return out

    def _affinity(self, rule_id: str, cache: dict[str, Any]) -> _Affinity:
        i = self._index_of[rule_id]
        sentences: dict[int, frozenset[int]] = cache.setdefault("sentences", {})

        def present(text: str, place: int) -> frozenset[int]:
            found = sentences.get(place)
            if found is None:
                lo, hi = sentence_span(text, place)
                found = frozenset(prepare_fields("", text[lo:hi], self._compiled, self._scanner).hits)
                sentences[place] = found
            return found

        return _Affinity(self._own_measures[i], self._measures, present)

    def lead_line(self, doc: Document, facts: dict[str, Any]) -> str:
        """The English lead line for a (Chinese) document, from this rulebook's glossary."""
        return lead_line(within_reach(doc), facts, self.glossary)
