"""The rule and deadline file schema (contract "Rule files"): pydantic models, unknown keys forbidden."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from tradewatch.durations import Duration
from tradewatch.models import Severity

__all__ = [
    "EXTRACTORS",
    "FIELD_BITS",
    "LEAD_CHARS",
    "NOTIFY_KINDS",
    "DeadlineSpec",
    "Dedup",
    "Example",
    "Examples",
    "MatchNode",
    "NodeKind",
    "Rule",
    "field_mask",
]

ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
NOTIFY_KINDS = ("console", "slack", "digest", "email", "webhook")
EXTRACTORS = ("effective_date", "until", "dates", "rates", "announcement", "items", "hs_codes", "countries")
DATE_FACTS = ("effective_date", "dates")

FieldName = Literal["title", "lead", "text"]
NodeKind = Literal["any", "all", "none", "term", "regex", "glossary", "near", "in"]

# Where a term may count. `lead` is the first LEAD_CHARS characters of the text: where a
# news report states its event, as opposed to background further down.
LEAD_CHARS = 1000
FIELD_BITS = {"title": 1, "text": 2, "lead": 4}

_LANG_CODE = re.compile(r"[a-z]{2}")  # zh, en: a document's `lang` is matched by its primary subtag


def field_mask(fields: Sequence[str]) -> int:
    """The bit mask of a list of field names (title 1, text 2, lead 4)."""
    mask = 0
    for name in fields:
        mask |= FIELD_BITS[name]
    return mask


class MatchNode(BaseModel):
    """One node of a rule's boolean tree; built by `tree.parse_tree`, never from raw YAML directly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: NodeKind
    value: str = ""
    children: tuple[MatchNode, ...] = ()
    within: int = 0
    line: int = 0

    def describe(self) -> str:
        """A compact, YAML-like rendering for error messages and docs."""
        if self.kind in ("term", "regex", "glossary"):
            return self.value if self.kind == "term" else f"{self.kind}: {self.value}"
        inner = ", ".join(child.describe() for child in self.children)
        if self.kind == "near":
            return f"near({inner}; within {self.within})"
        if self.kind == "in":
            return f"in {self.value}: {inner}"
        return f"{self.kind}[{inner}]"


def _check_id(value: str) -> str:
    if not ID_PATTERN.match(value):
        raise ValueError(f"{value!r} is not kebab-case (lowercase letters, digits and single hyphens)")
    return value


def _check_notify(values: list[str]) -> list[str]:
    """Every target that is not one, named at once (fixing one at a time is a slow loop)."""
    bad = []
    for value in values:
        kind, _, route = value.partition(":")
        if kind not in NOTIFY_KINDS or (route and kind != "slack") or (":" in value and not route):
            bad.append(repr(value))
    if bad:
        what = (
            f"{bad[0]} is not a notify target"
            if len(bad) == 1
            else f"{', '.join(bad)} are not notify targets"
        )
        raise ValueError(f"{what}; use console, slack, slack:ROUTE, digest, email or webhook")
    return values


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class Dedup(BaseModel):
    """What counts as "the same alert": a key template over facts, and how long it holds."""

    model_config = ConfigDict(extra="forbid")

    key: str
    window: Duration = timedelta(days=30)


class Example(BaseModel):
    """An example document; a plain string in the YAML becomes the title (or the text)."""

    model_config = ConfigDict(extra="forbid")

    title: str = ""
    text: str = ""
    source: str = ""
    lang: str | None = None
    published_at: datetime | None = None
    facts: dict[str, Any] = Field(default_factory=dict)


class Examples(BaseModel):
    """A rule's inline examples, run by `tradewatch rules test`."""

    model_config = ConfigDict(extra="forbid")

    match: list[str | Example] = Field(default_factory=list)
    no_match: list[str | Example] = Field(default_factory=list)


class Rule(BaseModel):
    """One rule: a boolean match tree over normalised text, plus what to extract and whom to tell."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str
    tags: list[str] = Field(default_factory=list)
    severity: Severity = "warning"
    sources: list[str] = Field(default_factory=list)
    match: MatchNode
    fields: list[FieldName] = Field(default_factory=lambda: list[FieldName](["title", "text"]))
    lang: list[str] = Field(default_factory=list)
    extract: list[str] = Field(default_factory=list)
    deadline_from: Literal["effective_date", "dates"] | None = None
    remind: list[Duration] = Field(default_factory=list)
    notify: list[str] = Field(default_factory=list)  # empty: every configured notifier
    dedup: Dedup | None = None
    examples: Examples = Field(default_factory=Examples)

    _v_id = field_validator("id")(_check_id)

    @field_validator("match", mode="before")
    @classmethod
    def _parse_match(cls, value: Any) -> Any:
        """A plain tree (as in YAML) is parsed here, so `Rule.model_validate` works on raw data too."""
        if value is None or isinstance(value, MatchNode):
            return value
        from tradewatch.matching.tree import parse_tree  # the parser builds MatchNodes: import late

        node, problems = parse_tree(value, file="<rule>", line=0, glossary_ids=None)
        if node is None:
            raise ValueError("; ".join(str(p.args[0]) for p in problems))
        return node

    @field_validator("tags")
    @classmethod
    def _tags_kebab(cls, values: list[str]) -> list[str]:
        for value in values:
            _check_id(value)
        return values

    @field_validator("sources", "lang", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _as_list(value)

    @field_validator("lang")
    @classmethod
    def _language_codes(cls, values: list[str]) -> list[str]:
        """Language codes as documents carry them (`zh`, `en`; a post may declare `es`); a word
        such as `english` is no document's language and would keep the rule from firing."""
        out = [v.lower() for v in values]
        for value in out:
            if not _LANG_CODE.fullmatch(value):
                raise ValueError(
                    f"{value!r} is not a language code; use zh, en or another two-letter ISO 639-1 code"
                )
        return out

    @field_validator("remind")
    @classmethod
    def _remind_counts_back_from_a_date(
        cls, values: list[timedelta], info: ValidationInfo
    ) -> list[timedelta]:
        """Reminders count back from the date `deadline_from` names; without it they never fire."""
        if values and not info.data.get("deadline_from"):
            raise ValueError(
                "needs a valid deadline_from (effective_date or dates): reminders count back from it"
            )
        return values

    @field_validator("fields")
    @classmethod
    def _fields_nonempty(cls, values: list[str]) -> list[str]:
        if not values:
            raise ValueError("fields needs title, text or both")
        return values

    @field_validator("extract")
    @classmethod
    def _known_extractors(cls, values: list[str]) -> list[str]:
        for value in values:
            if value not in EXTRACTORS:
                raise ValueError(f"unknown extractor {value!r}; known: {', '.join(EXTRACTORS)}")
        return values

    @field_validator("notify")
    @classmethod
    def _notify_syntax(cls, values: list[str]) -> list[str]:
        return _check_notify(values)

    def wants(self) -> list[str]:
        """Extractors to run: the listed ones plus the one `deadline_from` needs."""
        names = list(self.extract)
        if self.deadline_from and self.deadline_from not in names:
            names.append(self.deadline_from)
        return names


class DeadlineSpec(BaseModel):
    """A fixed deadline from a rule file: due instant, reminders, and the rules that resolve it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str
    due: datetime
    remind: list[Duration] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    notify: list[str] = Field(default_factory=list)  # empty: every configured notifier
    cancelled_by: list[str] = Field(default_factory=list)
    note: str = ""

    _v_id = field_validator("id")(_check_id)

    @field_validator("due")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("due needs a UTC offset, e.g. 2025-11-10T00:01:00-05:00")
        return value

    @field_validator("notify")
    @classmethod
    def _notify_syntax(cls, values: list[str]) -> list[str]:
        return _check_notify(values)

    @field_validator("cancelled_by", "tags", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _as_list(value)
