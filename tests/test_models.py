"""Document and Match models: the contract's JSON shapes."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from tradewatch.models import Document, detect_lang


def test_unknown_fields_are_kept_in_extra() -> None:
    """A replay line's unknown fields land in `extra`, the known ones stay themselves."""
    doc = Document.model_validate(
        {
            "source": "s",
            "url": "https://x.example/1",
            "title": "T",
            "announcement": "No. 1",
            "extra": {"a": 1},
        }
    )
    assert doc.extra == {"a": 1, "announcement": "No. 1"}
    assert doc.id == "https://x.example/1"


def test_unknown_fields_merge_into_a_null_extra() -> None:
    """`extra: null` with unknown fields still collects them; without unknown fields it is an error."""
    doc = Document.model_validate({"source": "s", "title": "T", "extra": None, "agency": "USTR"})
    assert doc.extra == {"agency": "USTR"}
    with pytest.raises(ValidationError, match="extra"):
        Document.model_validate({"source": "s", "title": "T", "extra": None})


def test_extra_never_overwrites_core_fields() -> None:
    """Fields a feed smuggles in as `id`, `url` or `published_at` stay inside `extra` on output."""
    doc = Document(
        id="real",
        source="s",
        url="https://x.example/1",
        title="T",
        extra={"id": "evil", "url": "http://evil.example/", "published_at": "garbage"},
    )
    out = doc.contract_json()
    assert out["id"] == "real"
    assert out["url"] == "https://x.example/1"
    assert out["published_at"] is None
    assert out["extra"]["id"] == "evil"
    again = Document.model_validate(json.loads(json.dumps(out)))
    assert again == doc


def test_no_empty_extra_in_output() -> None:
    """A document without source-specific fields prints no `extra` key."""
    assert "extra" not in Document(source="s", title="T", url="u").contract_json()


def test_naive_published_at_is_rejected() -> None:
    """published_at needs an offset: a naive time is ambiguous across MOFCOM and US sources."""
    with pytest.raises(ValidationError, match="UTC offset"):
        Document(source="s", title="T", published_at="2025-05-12T09:00:00")


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("商务部公告2025年第18号", "zh"),
        ("Tariffs on Chinese goods", "en"),
        ("MOFCOM 公告 稀土 export", "zh"),
        ("", "en"),
    ],
)
def test_language_detection(text: str, lang: str) -> None:
    """Chinese when ideographs are a real share of the letters."""
    assert detect_lang(text) == lang


def test_control_characters_are_dropped_from_the_title() -> None:
    """ESC, NUL and BEL from a broken page never reach a calendar event, a mail or a header
    through the title (a NUL breaks an iCalendar feed); the body is each receiver's to escape."""
    doc = Document(title="Tariff\x1b[31m notice\x00\x07\n", text="line one\n\tline two")
    assert doc.title == "Tariff [31m notice   "
    assert doc.text == "line one\n\tline two"
