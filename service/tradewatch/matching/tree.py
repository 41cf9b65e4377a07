"""Parsing a rule's `match:` YAML into a MatchNode tree, naming each defect with its line.

Grammar (a mapping is the AND of its keys):
    node     := TERM | [node, ...] (any of) | {any: [...], all: [...], none: [...],
                regex: RE | [RE...], glossary: ID | [ID...], near: {terms: [...], within: N},
                in: FIELD | [FIELD...]}
`in` limits the other keys of its mapping to those fields (title, lead, text).
A TERM is a string; a trailing `*` makes it a prefix. Regexes see the normalised text.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from typing import Any

from tradewatch.errors import RuleError
from tradewatch.matching.normalize import t2s, term_problem
from tradewatch.matching.schema import MatchNode
from tradewatch.matching.yamlfile import line_of

__all__ = ["NODE_KEYS", "compile_regex", "did_you_mean", "parse_tree"]

NODE_KEYS = ("any", "all", "none", "regex", "glossary", "near", "in")
_FIELDS = ("title", "lead", "text")
_NEAR_KEYS = ("terms", "within")


def did_you_mean(word: str, choices: Collection[str]) -> str:
    """` (did you mean 'x'?)` when a close choice exists, else an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def compile_regex(pattern: str) -> re.Pattern[str]:
    """Compile a user regex the way matching uses it: over simplified, case-folded text."""
    return re.compile(t2s(pattern), re.IGNORECASE)


class _Parser:
    def __init__(self, file: str, glossary_ids: Collection[str] | None) -> None:
        self.file = file
        self.glossary_ids = glossary_ids
        self.problems: list[RuleError] = []

    def error(self, message: str, line: int) -> None:
        self.problems.append(RuleError(message, file=self.file, line=line))

    def node(self, raw: Any, line: int) -> MatchNode | None:
        if isinstance(raw, bool) or raw is None:
            self.error(f"expected a term, a list or a mapping, got {raw!r}", line)
            return None
        if isinstance(raw, str | int | float):
            return self.term(str(raw), line)
        if isinstance(raw, list):
            return self.group("any", raw, line)
        if isinstance(raw, dict):
            return self.mapping(raw)
        self.error(f"expected a term, a list or a mapping, got {type(raw).__name__}", line)
        return None

    def term(self, raw: str, line: int) -> MatchNode | None:
        problem = term_problem(raw)
        if problem:
            self.error(problem, line)
            return None
        return MatchNode(kind="term", value=raw.strip(), line=line)

    def group(self, kind: str, raw: Any, line: int) -> MatchNode | None:
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            self.error(f"{kind} needs at least one item", line)
            return None
        children = [
            self.node(item, line_of(raw, i) if isinstance(raw, list) else line)
            for i, item in enumerate(items)
        ]
        if any(child is None for child in children):
            return None
        kept = tuple(c for c in children if c is not None)
        return MatchNode(kind=kind, children=kept, line=line)

    def strings(self, kind: str, raw: Any, line: int) -> list[tuple[str, int]]:
        items = raw if isinstance(raw, list) else [raw]
        out: list[tuple[str, int]] = []
        if not items:
            self.error(f"{kind} needs at least one item", line)
        for i, item in enumerate(items):
            item_line = line_of(raw, i) if isinstance(raw, list) else line
            if not isinstance(item, str) or not item:
                self.error(f"{kind}: expected a string, got {item!r}", item_line)
            else:
                out.append((item, item_line))
        return out

    def regexes(self, raw: Any, line: int) -> MatchNode | None:
        leaves = []
        for pattern, item_line in self.strings("regex", raw, line):
            try:
                compiled = compile_regex(pattern)
            except re.error as exc:
                self.error(f"bad regex {pattern!r}: {exc}", item_line)
                continue
            if compiled.search("") is not None:
                self.error(
                    f"regex {pattern!r} matches the empty string, so it matches every document", item_line
                )
                continue
            leaves.append(MatchNode(kind="regex", value=pattern, line=item_line))
        return self.wrap(leaves, raw, line)

    def glossary(self, raw: Any, line: int) -> MatchNode | None:
        leaves = []
        for ref, item_line in self.strings("glossary", raw, line):
            if self.glossary_ids is not None and ref not in self.glossary_ids:
                self.error(f"unknown glossary entry {ref!r}{did_you_mean(ref, self.glossary_ids)}", item_line)
                continue
            leaves.append(MatchNode(kind="glossary", value=ref, line=item_line))
        return self.wrap(leaves, raw, line)

    def wrap(self, leaves: list[MatchNode], raw: Any, line: int) -> MatchNode | None:
        expected = len(raw) if isinstance(raw, list) else 1
        if len(leaves) != expected or not leaves:
            return None
        return leaves[0] if len(leaves) == 1 else MatchNode(kind="any", children=tuple(leaves), line=line)

    def near(self, raw: Any, line: int) -> MatchNode | None:
        if not isinstance(raw, dict):
            self.error("near needs a mapping: {terms: [...], within: N}", line)
            return None
        ok = True
        for key in raw:
            if key not in _NEAR_KEYS:
                self.error(f"unknown key {key!r} in near{did_you_mean(key, _NEAR_KEYS)}", line_of(raw, key))
                ok = False
        within = raw.get("within", 5)
        if isinstance(within, bool) or not isinstance(within, int) or within < 1:
            self.error(
                f"near.within must be a whole number of words ≥ 1, got {within!r}", line_of(raw, "within")
            )
            ok = False
        terms = raw.get("terms")
        if not isinstance(terms, list) or len(terms) < 2:
            self.error(
                "near.terms needs a list of at least two terms", line_of(raw, "terms") if terms else line
            )
            return None
        children = [self.node(item, line_of(terms, i)) for i, item in enumerate(terms)]
        if not ok or any(child is None for child in children):
            return None
        for child in children:
            if child is not None and child.kind not in ("term", "glossary", "any"):
                self.error(
                    "near.terms may hold terms, lists of terms and glossary references only", child.line
                )
                return None
        return MatchNode(
            kind="near", children=tuple(c for c in children if c is not None), within=within, line=line
        )

    def mapping(self, raw: dict[str, Any]) -> MatchNode | None:
        parts: list[MatchNode] = []
        ok = True
        if not raw:
            self.error("empty match mapping; use any, all, none, regex, glossary or near", line_of(raw))
            return None
        fields = self.fields(raw)
        for key, value in raw.items():
            line = line_of(raw, key)
            part: MatchNode | None
            if key == "in":
                continue
            if key in ("any", "all", "none"):
                part = self.group(key, value, line)
            elif key == "regex":
                part = self.regexes(value, line)
            elif key == "glossary":
                part = self.glossary(value, line)
            elif key == "near":
                part = self.near(value, line)
            else:
                self.error(f"unknown key {key!r} in match{did_you_mean(key, NODE_KEYS)}", line)
                part = None
            if part is None:
                ok = False
            else:
                parts.append(part)
        if not ok or fields is None:
            return None
        if not parts:
            self.error(
                "`in` needs a condition beside it (any, all, none, regex, glossary or near)", line_of(raw)
            )
            return None
        node = (
            parts[0] if len(parts) == 1 else MatchNode(kind="all", children=tuple(parts), line=line_of(raw))
        )
        if fields:
            node = MatchNode(kind="in", value=",".join(fields), children=(node,), line=line_of(raw, "in"))
        return node

    def fields(self, raw: dict[str, Any]) -> list[str] | None:
        """The `in:` fields of a mapping ([] when absent), None when they are wrong."""
        if "in" not in raw:
            return []
        value = raw["in"]
        names = list(value) if isinstance(value, list) else [value]
        bad = [n for n in names if n not in _FIELDS]
        if bad or not names:
            self.error(
                f"in: expected title, lead or text, got {bad[0] if bad else value!r}"
                f"{did_you_mean(str(bad[0]), _FIELDS) if bad else ''}",
                line_of(raw, "in"),
            )
            return None
        return [str(n) for n in names]


def parse_tree(
    raw: Any, *, file: str, line: int, glossary_ids: Collection[str] | None
) -> tuple[MatchNode | None, list[RuleError]]:
    """The MatchNode for `raw`, or None with every problem found."""
    parser = _Parser(file, glossary_ids)
    node = parser.node(raw, line)
    return (node if not parser.problems else None), parser.problems


def only_excludes(node: MatchNode) -> bool:
    """A tree that says only what a document must not contain."""
    if node.kind == "none":
        return True
    if node.kind in ("all", "in"):
        return all(only_excludes(child) for child in node.children)
    return False
