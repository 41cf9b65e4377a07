"""Document and Match models: the contract's JSON shapes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from tradewatch.models import Document, detect_lang
from tradewatch.notify.render import format_time


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


def test_bidi_overrides_are_dropped_and_long_titles_cut() -> None:
    """A right-to-left override makes "gnp.exe" display as "exe.png"; a 6 MB title would make every
    mail that lists it too big to send. Both come from broken or hostile pages."""
    doc = Document(title="invoice\u202egnp.exe " + "x" * 5000)
    assert doc.title.startswith("invoice gnp.exe x")
    assert len(doc.title) == 1000
    assert doc.title.endswith("x…")


def test_a_link_is_one_line() -> None:
    """Tabs and line breaks in a link are dropped, as browsers do (WHATWG URL), so that a link
    cannot fake lines in the console, a plain-text mail or a calendar."""
    doc = Document(url="http://example.org/nl\n[CRITICAL] Fake\r\n\thttp://evil.example/")
    assert doc.url == doc.id == "http://example.org/nl[CRITICAL] Fakehttp://evil.example/"


@pytest.mark.parametrize("year", [1, 1899, 2201, 9999])
def test_a_publication_date_beyond_reason_counts_as_absent(year: int) -> None:
    """Year 9999 cannot be shown in every time zone (it broke delivery and the digest): no date."""
    when = datetime(year, 12, 31, 12, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert Document(title="t", published_at=when).published_at is None
    assert Document(title="t", published_at=when.replace(year=2026)).published_at == when.replace(year=2026)


def test_format_time_at_the_calendar_edge() -> None:
    """A date that cannot be moved into the reader's zone is shown as given, not a crash."""
    edge = datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-5)))
    assert format_time(edge, ZoneInfo("Europe/Berlin")) == "9999-12-31T23:59-05:00"
