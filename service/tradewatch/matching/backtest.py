"""Replay and backtest: documents through the rules, scored against labelled expectations.

A label says which tags a document must fire (`expect`), must not fire (`forbid`),
and optionally the highest severity any match may carry (`max_severity`). Tags in
neither list are debatable and not scored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tradewatch.matching.engine import Rulebook
from tradewatch.models import Document, Match, Severity, severity_rank

__all__ = [
    "BadInput",
    "Label",
    "Score",
    "TagScore",
    "format_report",
    "read_documents",
    "read_labels",
    "replay_lines",
    "score",
]


class BadInput(ValueError):
    """A replay or label line that cannot be read; carries its 1-based line number."""

    def __init__(self, line: int, message: str, *, source: str = "docs") -> None:
        self.line = line
        self.source = source
        super().__init__(f"line {line}: {message}")


class Label(BaseModel):
    """What a labelled document must and must not fire."""

    model_config = ConfigDict(extra="ignore")

    id: str
    expect: list[str] = Field(default_factory=list)
    forbid: list[str] = Field(default_factory=list)
    max_severity: Severity | None = None
    why: str = ""


def _json_lines(lines: Iterable[str], source: str = "docs") -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(lines, 1):
        if number == 1:
            line = line.removeprefix("\ufeff")  # a BOM, as editors on Windows write
        if not line.strip():
            continue
        if not line.isascii():
            try:
                line.encode("utf-8")
            except UnicodeEncodeError:  # undecodable bytes, kept as surrogates by the reader
                raise BadInput(number, "not UTF-8 text (JSONL is UTF-8)", source=source) from None
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInput(number, f"not JSON: {exc.msg} (column {exc.colno})", source=source) from exc


def read_documents(lines: Iterable[str]) -> Iterator[Document]:
    """Documents from JSONL lines (contract format); BadInput names the first bad line."""
    for number, data in _json_lines(lines):
        if not isinstance(data, dict):
            raise BadInput(number, "expected a JSON object (a Document)")
        try:
            yield Document.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "document"
            raise BadInput(number, f"{where}: {first['msg']}") from exc


def read_labels(lines: Iterable[str], notes: list[str] | None = None) -> dict[str, Label]:
    """Labels by document id; BadInput names the first bad line; unknown keys go to `notes`."""
    labels: dict[str, Label] = {}
    lines_of: dict[str, int] = {}
    for number, data in _json_lines(lines, "labels"):
        try:
            label = Label.model_validate(data)
        except ValidationError as exc:
            raise BadInput(number, f"bad label: {exc.errors()[0]['msg']}", source="labels") from exc
        unknown = sorted(set(data) - set(Label.model_fields)) if isinstance(data, dict) else []
        if unknown and notes is not None:
            notes.append(f"labels line {number}: unknown key {', '.join(map(repr, unknown))} ignored")
        if label.id in lines_of and notes is not None:
            first = lines_of[label.id]
            notes.append(
                f"labels line {number}: {label.id!r} is labelled on line {first} too; the later counts"
            )
        lines_of[label.id] = number
        labels[label.id] = label
    return labels


@dataclass
class TagScore:
    """Counts for one tag over the labelled documents that take a position on it."""

    tag: str
    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0
    misses: list[str] = field(default_factory=list)
    false_alarms: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        fired = self.true_positive + self.false_positive
        return self.true_positive / fired if fired else 1.0

    @property
    def recall(self) -> float:
        wanted = self.true_positive + self.false_negative
        return self.true_positive / wanted if wanted else 1.0


@dataclass
class Score:
    """Per-tag scores plus documents whose matches are more severe than allowed."""

    tags: dict[str, TagScore] = field(default_factory=dict)
    too_severe: list[str] = field(default_factory=list)
    unlabelled: int = 0
    notes: list[str] = field(default_factory=list)  # label mistakes that would skew the scores


def score(rb: Rulebook, documents: Iterable[Document], labels: dict[str, Label]) -> tuple[Score, list[Match]]:
    """Run every document and score the tags its labels take a position on."""
    result = Score()
    all_matches: list[Match] = []
    seen: set[str] = set()
    for doc in documents:
        matches = rb.match(doc)
        all_matches.extend(matches)
        seen.add(doc.id)
        label = labels.get(doc.id)
        if label is None:
            result.unlabelled += 1
            continue
        fired: dict[str, list[str]] = {}
        for m in matches:
            for tag in m.tags:
                fired.setdefault(tag, []).append(m.rule)
        for tag in {*label.expect, *label.forbid}:
            ts = result.tags.setdefault(tag, TagScore(tag))
            if tag in label.expect:
                if tag in fired:
                    ts.true_positive += 1
                else:
                    ts.false_negative += 1
                    ts.misses.append(f"{doc.id} ({label.why or doc.title[:60]})")
            elif tag in fired:
                ts.false_positive += 1
                ts.false_alarms.append(
                    f"{doc.id} by {', '.join(sorted(set(fired[tag])))} ({label.why or doc.title[:60]})"
                )
        if label.max_severity is not None:
            worst = [m for m in matches if severity_rank(m.severity) > severity_rank(label.max_severity)]
            if worst:
                result.too_severe.append(
                    f"{doc.id}: {worst[0].rule} is {worst[0].severity}, at most {label.max_severity} allowed"
                )
    missing = sorted(set(labels) - seen)
    if missing:
        shown = ", ".join(missing[:5]) + (", …" if len(missing) > 5 else "")
        result.notes.append(f"{len(missing)} labels name no document: {shown}")
    known = {tag for rule in getattr(rb, "rules", []) for tag in rule.tags}
    for tag in sorted(t for t in result.tags if known and t not in known):
        result.notes.append(f"no rule has the tag {tag!r} (a typo in the labels?)")
    return result, all_matches


def format_report(result: Score) -> str:
    """A plain-text report: one line per tag, then misses, false alarms and severity breaches."""
    lines = [f"{'tag':<16} {'precision':>9} {'recall':>7} {'tp':>4} {'fp':>4} {'fn':>4}"]
    for tag in sorted(result.tags):
        ts = result.tags[tag]
        lines.append(
            f"{tag:<16} {ts.precision:>9.2f} {ts.recall:>7.2f} {ts.true_positive:>4} "
            f"{ts.false_positive:>4} {ts.false_negative:>4}"
        )
    for tag in sorted(result.tags):
        ts = result.tags[tag]
        lines.extend(f"miss        {tag}: {item}" for item in ts.misses)
        lines.extend(f"false alarm {tag}: {item}" for item in ts.false_alarms)
    lines.extend(f"too severe  {item}" for item in result.too_severe)
    if result.unlabelled:
        lines.append(f"({result.unlabelled} documents had no label)")
    lines.extend(f"note        {note}" for note in result.notes)
    return "\n".join(lines)


def replay_lines(rb: Rulebook, doc_lines: Iterable[str], label_lines: Iterable[str] | None) -> Iterator[str]:
    """What `tradewatch replay` prints: one match record a line, or with labels the backtest report."""
    if label_lines is None:
        for doc in read_documents(doc_lines):
            for m in rb.match(doc):
                yield json.dumps(m.model_dump(mode="json"), ensure_ascii=False)
        return
    notes: list[str] = []
    labels = read_labels(label_lines, notes)
    result, _ = score(rb, read_documents(doc_lines), labels)
    result.notes[:0] = notes
    yield format_report(result)
