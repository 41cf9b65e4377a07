"""Running each rule's inline examples (`tradewatch rules test`): the rule author's unit tests."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from tradewatch.matching.engine import Rulebook
from tradewatch.matching.extract import extract_facts
from tradewatch.matching.schema import Example, Rule
from tradewatch.models import Document

__all__ = ["example_document", "run_examples"]


def example_document(rule: Rule, example: str | Example) -> Document:
    """A plain string becomes the title when the rule reads titles, else the text."""
    if isinstance(example, str):
        if "title" in rule.fields:
            return Document(id="example", title=example)
        return Document(id="example", text=example)
    return Document(
        id="example",
        title=example.title,
        text=example.text,
        source=example.source,
        lang=example.lang,
        published_at=example.published_at,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _fact_problems(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Scalars must be equal; an expected list must be contained in the extracted one."""
    problems = []
    for key, want in expected.items():
        want = _plain(want)
        got = actual.get(key)
        if isinstance(want, list):
            ok = isinstance(got, list) and all(item in got for item in want)
        else:
            ok = got == want
        if not ok:
            problems.append(f"fact {key}: expected {want!r}, got {got!r}")
    return problems


def _short(example: str | Example) -> str:
    text = example if isinstance(example, str) else (example.title or example.text)
    return text if len(text) <= 70 else text[:67] + "..."


def run_examples(rb: Rulebook) -> list[str]:
    """One line per failing example (rule id, which example, why); empty when all pass."""
    failures: list[str] = []
    for rule in rb.rules:
        where = rb.origins.get(rule.id)
        prefix = f"{where[0]}:{where[1]}: " if where else ""
        for i, example in enumerate(rule.examples.match, 1):
            doc = example_document(rule, example)
            check_sources = isinstance(example, Example) and bool(example.source)
            if not rb.fires(rule.id, doc, check_sources=check_sources):
                failures.append(
                    f"{prefix}rule {rule.id}: match example {i} did not match: {_short(example)!r}"
                )
                continue
            if isinstance(example, Example) and example.facts:
                facts = extract_facts(rule.wants(), doc, rb.glossary)
                failures.extend(
                    f"{prefix}rule {rule.id}: match example {i}: {problem}"
                    for problem in _fact_problems(example.facts, facts)
                )
        for i, example in enumerate(rule.examples.no_match, 1):
            doc = example_document(rule, example)
            check_sources = isinstance(example, Example) and bool(example.source)
            if rb.fires(rule.id, doc, check_sources=check_sources):
                failures.append(f"{prefix}rule {rule.id}: no_match example {i} matched: {_short(example)!r}")
    return failures
