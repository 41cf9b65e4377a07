"""Document, Match, Alert, Deadline and friends: the words every part of the data flow shares.

The JSON shapes of `Document` (replay input, `sources test` output) and `Match`
(replay output) are contracts in DESIGN.md: extend them, never rename.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from tradewatch.durations import Duration

__all__ = [
    "Alert",
    "AlertKind",
    "Deadline",
    "Document",
    "Match",
    "Severity",
    "SourceRef",
    "severity_rank",
]

Severity = Literal["info", "warning", "critical"]
AlertKind = Literal["new", "update", "also", "reminder", "operator"]

_SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


def severity_rank(severity: str) -> int:
    """Order severities so `max()` and thresholds read naturally."""
    return _SEVERITY_RANK.get(severity, 0)


def _digest(*parts: str) -> str:
    h = hashlib.blake2b(digest_size=12)
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


# C0/C1 controls, and the bidirectional overrides and isolates that make a title display
# other than it reads ("gnp.exe" shown as "exe.png")
_TITLE_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
TITLE_MAX = 1000  # characters; a title is a line: a longer one is a broken or hostile page
_URL_BREAKS = re.compile("[\t\r\n]")
# A publication date outside these years is a broken feed, not news (and year 9999 cannot be
# shown in every time zone): it counts as absent.
_YEARS = range(1900, 2201)


class Document(BaseModel):
    """One item from a source, normalised; unknown input fields are kept in `extra`."""

    model_config = ConfigDict(extra="forbid")

    id: str = ""
    source: str = ""
    url: str = ""
    title: str = ""
    text: str = ""
    published_at: datetime | None = None
    lang: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _collect_extra(cls, data: Any) -> Any:
        if isinstance(data, dict) and None in map(data.get, _TEXT_FIELDS, _NOT_GIVEN):
            data = {k: v for k, v in data.items() if not (v is None and k in _TEXT_FIELDS)}  # null: absent
        if not isinstance(data, dict) or data.keys() <= _DOCUMENT_FIELDS:
            return data  # the common case, decided in C: every document a source builds
        unknown = {k: v for k, v in data.items() if k not in _DOCUMENT_FIELDS}
        kept = {k: v for k, v in data.items() if k in _DOCUMENT_FIELDS}
        given = data.get("extra")
        given = {} if given is None else given
        if not isinstance(given, dict):
            raise ValueError("extra must be an object of extra fields")  # named in replay's error
        kept["extra"] = {**given, **unknown}
        return kept

    @model_validator(mode="after")
    def _fill_derived(self) -> Document:
        # Control characters from a hostile or broken page mean nothing to a reader, and some
        # receivers refuse them: the title goes into calendar events, mail and headers (a NUL
        # breaks an iCalendar feed). The body is left as is: each receiver escapes it, and a
        # scan of every body costs half of building the document.
        if _TITLE_CONTROLS.search(self.title):
            self.title = _TITLE_CONTROLS.sub(" ", self.title)
        if len(self.title) > TITLE_MAX:
            self.title = self.title[: TITLE_MAX - 1].rstrip() + "…"
        if "\n" in self.url or "\r" in self.url or "\t" in self.url:
            self.url = _URL_BREAKS.sub("", self.url)  # as browsers do (WHATWG URL): a link is one line
        if not self.id:
            self.id = self.url or "sha:" + _digest(self.title, self.text)
        if self.published_at is not None and self.published_at.tzinfo is None:
            raise ValueError("published_at needs a UTC offset (e.g. 2025-05-12T09:00:00+08:00)")
        if self.published_at is not None and self.published_at.year not in _YEARS:
            self.published_at = None
        if not self.lang:
            self.lang = detect_lang(self.title + " " + self.text[:500])
        return self

    def content_hash(self) -> str:
        """Changes when what a reader sees changes (title or text), not on re-fetch noise."""
        return _digest(" ".join(self.title.split()), " ".join(self.text.split()))

    def contract_json(self) -> dict[str, Any]:
        """The contract's JSON object; source-specific fields nested under `extra`.

        Nested, not inlined: a feed element named `id` or `url` must never be able to
        overwrite the document's own fields, and `replay` reads the line back unchanged.
        """
        return self.model_dump(mode="json", exclude={"extra"} if not self.extra else None)


_DOCUMENT_FIELDS = frozenset(Document.model_fields)
_TEXT_FIELDS = ("id", "source", "url", "title", "text")
_NOT_GIVEN = ("",) * len(_TEXT_FIELDS)

_CJK = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_lang(text: str) -> str:
    """Chinese when CJK ideographs are a real share of the letters, else English (regex: fast)."""
    sample = text[:600]
    if sample.isascii():
        return "en"  # no ideographs to count
    cjk = len(_CJK.findall(sample))
    return "zh" if cjk and cjk * 3 >= len(_LATIN.findall(sample)) else "en"


class Match(BaseModel):
    """A rule that fired on a document, with the facts it extracted (replay output)."""

    model_config = ConfigDict(extra="forbid")

    doc_id: str
    rule: str
    title: str
    tags: list[str] = Field(default_factory=list)
    severity: Severity = "warning"
    facts: dict[str, Any] = Field(default_factory=dict)
    # Did one of the rule's own terms (not a `none` one) occur in the title? Not in the record:
    # it breaks a tie between rules of one severity for an alert's header ("China imposes 34%
    # tariffs" is a tariff story even when an export-control rule fires on its body too).
    _in_title: bool = PrivateAttr(default=False)

    @property
    def in_title(self) -> bool:
        return self._in_title


class SourceRef(BaseModel):
    """One source that reported an event, as listed in an alert."""

    model_config = ConfigDict(extra="forbid")

    source: str
    url: str = ""
    title: str = ""
    official: bool = False
    published_at: datetime | None = None


class Alert(BaseModel):
    """What a notifier delivers; `id` is the idempotency key, stable across redeliveries.

    `kind` says what the message is: `new` (first alert of an event), `update` (the
    same item changed), `also` (another source reported the event; a thread reply),
    `reminder` (a deadline approaches) or `operator` (tradewatch itself needs attention).
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    kind: AlertKind = "new"
    event_id: str = ""
    rule: str = ""
    rule_title: str = ""
    severity: Severity = "warning"
    tags: list[str] = Field(default_factory=list)
    title: str = ""
    url: str = ""
    source: str = ""
    lang: str | None = None
    published_at: datetime | None = None
    seen_at: datetime | None = None
    facts: dict[str, Any] = Field(default_factory=dict)
    sources: list[SourceRef] = Field(default_factory=list)
    summary: str = ""
    lead: str = ""
    notify: list[str] = Field(default_factory=list)
    late: bool = False
    due: datetime | None = None
    thread_of: str | None = None
    # Delivery hints: not part of the alert's JSON (webhooks, the digest), carried beside it in
    # the outbox entry (see store/outbox.entry_fields), so an older worker can still read it.
    DELIVERY_HINTS: ClassVar[tuple[str, ...]] = ("raises", "first_poll", "root_notify")
    # A reply that raised its event's severity: shown in the channel too.
    raises: bool = Field(False, exclude=True)
    # Raised on its source's first poll: also what a worker does after Redis lost its data, so
    # Slack looks for it in the channel's history first, as for a redelivery.
    first_poll: bool = Field(False, exclude=True)
    # The thread root's recipients when a raise added new ones: a notifier the root never went
    # to has no thread to wait for.
    root_notify: list[str] | None = Field(None, exclude=True)

    def webhook_json(self) -> dict[str, Any]:
        """The webhook body of the contract (a superset: extra fields are extensions)."""
        return self.model_dump(mode="json")


class Deadline(BaseModel):
    """A deadline as tradewatch plans it; `origin` says whether a rule file or a match made it."""

    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    due: datetime
    remind: list[Duration] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    notify: list[str] = Field(default_factory=list)
    severity: Severity = "warning"
    origin: Literal["rules", "match"] = "rules"
    rule: str = ""
    event_id: str = ""
    url: str = ""
    note: str = ""
    cancelled_by: list[str] = Field(default_factory=list)
    planned_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None

    @property
    def resolved(self) -> bool:
        return self.resolved_by is not None
