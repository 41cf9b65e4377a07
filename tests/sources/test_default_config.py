"""The built-in default configuration lists the real public sources, each valid for its kind."""

from __future__ import annotations

from datetime import timedelta

from tradewatch.config import BUILTIN_CONFIG, load_settings
from tradewatch.sources import SOURCES


def test_default_sources_cover_what_a_supply_manager_needs() -> None:
    """MOFCOM (zh, en, export control), Federal Register and public inspection, White House, USTR, wires."""
    settings = load_settings(BUILTIN_CONFIG, env={})
    by_name = {s.name: s for s in settings.sources}
    kinds = {s.kind for s in settings.sources}
    assert kinds == set(SOURCES)
    urls = " ".join(s.url for s in settings.sources)
    for needle in (
        "mofcom.gov.cn",
        "english.mofcom.gov.cn",
        "exportcontrol.mofcom.gov.cn",
        "federalregister.gov/api/v1/documents.json",
        "public-inspection-documents",
        "whitehouse.gov/presidential-actions",
        "ustr.gov",
        "trumpstruth.org",
        "news.google.com",
    ):
        assert needle in urls, needle
    for spec in settings.sources:
        assert spec.url.startswith("https://")
        assert timedelta(minutes=1) <= spec.every <= timedelta(hours=1)
        SOURCES[spec.kind](spec)  # every source builds
    assert by_name["truth-social-trump"].every == timedelta(minutes=1)
    assert all(s.official for s in settings.sources if s.kind in ("mofcom", "federal_register"))
