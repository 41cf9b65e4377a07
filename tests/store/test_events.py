"""Clustering primitives: canonical URLs, announcement numbers, MinHash similarity, event choice."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from tradewatch.models import Document, Match
from tradewatch.store.events import (
    Event,
    EventSource,
    Probe,
    canonical_url,
    choose_event,
    cluster_keys,
    minhash,
    normalize_announcement,
    sim_bands,
    similarity,
)

STORY = (
    "The United States will raise tariffs on Chinese electric vehicles, semiconductors, solar cells "
    "and batteries next month, the trade representative said on Tuesday, citing unfair practices "
    "and overcapacity in several industries that threaten American producers and workers."
)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://www.example.gov/doc/1/?utm_source=x#top", "http://example.gov/doc/1"),
        ("https://example.gov/a?b=2&a=1", "https://EXAMPLE.gov/a?a=1&b=2&fbclid=z"),
        ("https://example.gov:443/x/", "https://example.gov/x"),
    ],
)
def test_canonical_url_equal(a: str, b: str) -> None:
    """Links to one page differing only in scheme, www, tracking, order or slash are one URL."""
    assert canonical_url(a) == canonical_url(b)


def test_canonical_url_keeps_meaningful_query() -> None:
    """Query parameters that select content keep pages apart."""
    assert canonical_url("https://x.gov/list?page=2") != canonical_url("https://x.gov/list?page=3")
    assert canonical_url("not a url") == ""


@pytest.mark.parametrize(
    "text",
    [
        "2025年第18号",
        "商务部 海关总署公告2025年第18号",
        "No. 18 of 2025",
        "MOFCOM Announcement No.18 of 2025",
        "２０２５年第１８号",
    ],
)
def test_announcement_numbers_normalise_across_languages(text: str) -> None:
    """Chinese and English spellings of one announcement number normalise alike."""
    assert normalize_announcement(text) == "2025-18"


def test_cluster_keys_from_url_docnum_and_facts() -> None:
    """A document yields url, document-number and announcement keys."""
    doc = Document(id="1", url="https://a.gov/x", title="t", extra={"document_number": "2025-06063"})
    match = Match(doc_id="1", rule="r", title="R", facts={"announcement": ["2025年第18号", "No. 18 of 2025"]})
    keys = cluster_keys(doc, [match])
    assert (len(keys["url"]), len(keys["docnum"]), len(keys["ann"])) == (1, 1, 1)


def test_minhash_similar_and_dissimilar() -> None:
    """An edited copy scores above the threshold; an unrelated text far below; short text has none."""
    a = minhash("US raises tariffs\n" + STORY)
    b = minhash("US to raise tariffs\n" + STORY.replace("Tuesday", "Monday"))
    c = minhash(
        "Beijing announced new licensing requirements for exports of gallium and germanium "
        "products starting in August, citing national security and the protection of its interests."
    )
    assert a is not None
    assert b is not None
    assert c is not None
    assert similarity(a, b) >= 0.5
    assert similarity(a, c) < 0.2
    assert set(sim_bands(a)) & set(sim_bands(b))
    assert minhash("Tariffs up") is None


def test_chinese_text_shingles() -> None:
    """Chinese reports of one text are near duplicates too (character bigrams)."""
    text = (
        "商务部 海关总署公告2025年第18号 关于对部分中重稀土相关物项实施出口管制的决定，自公布之日起正式实施。"
    )
    a, b = minhash(text), minhash("快讯：" + text)
    assert a is not None
    assert b is not None
    assert similarity(a, b) >= 0.5


def _event(event_id: str, rules: list[str], signature: str | None = None) -> Event:
    return Event(
        id=event_id,
        root="a",
        rule=rules[0],
        severity="info",
        notify=[],
        rules=rules,
        created="",
        sources=[EventSource("s")],
        signature=signature,
    )


def test_choose_event_prefers_exact_then_rule_scoped_keys() -> None:
    """URL/docnum keys join whatever matched; announcement keys need a shared rule."""
    probe = Probe(exact=["k:url"], by_rule=["k:ann"], bands=[], signature=None)
    events = {"e1": _event("e1", ["x"]), "e2": _event("e2", ["r"])}
    assert choose_event(probe, {"r"}, {"k:url": "e1", "k:ann": "e2"}, events) == "e1"
    assert choose_event(probe, {"r"}, {"k:url": None, "k:ann": "e2"}, events) == "e2"
    assert choose_event(probe, {"other"}, {"k:url": None, "k:ann": "e2"}, events) is None
    assert choose_event(probe, {"r"}, {"k:url": "gone", "k:ann": None}, events) is None


def test_event_round_trips() -> None:
    """An event's JSON form parses back to the same event."""
    event = _event("e1", ["r"], "00ff")
    assert Event.parse(event.dump()) == event


def test_event_json_is_the_dataclass_as_written_before() -> None:
    """dump() writes exactly the JSON of the dataclass's fields in order, sources included."""
    event = _event("e1", ["r", "s"], "00ff")
    event.sources = [
        EventSource(
            source="a", url="https://a/1", title="标题 & <b>", official=True, published_at="2025-10-09"
        ),
        EventSource(source="b"),
    ]
    event.anns, event.docnums, event.tokens, event.replies, event.reports = ["k1"], ["k2"], ["items:x"], 3, 4
    expected = json.dumps(asdict(event), ensure_ascii=False, separators=(",", ":"))
    assert event.dump() == expected
    assert Event.parse(event.dump()) == event


def test_event_parse_ignores_fields_of_newer_versions() -> None:
    """An event written by a newer worker (extra fields) still parses during a rolling upgrade."""
    raw = _event("e1", ["r"]).dump().replace('"replies":0', '"replies":0,"future":1')
    assert Event.parse(raw).id == "e1"
