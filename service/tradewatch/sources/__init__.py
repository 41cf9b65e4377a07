"""Source kinds: one module per kind, registered in the plain dict `SOURCES`.

A kind is a class with `kind`, an `Options` model (a `SourceSpec` subclass that
validates and documents its YAML), a constructor taking those options, and
`fetch(fetcher)`, which returns what the source lists now as a `SourceResult`.
"""

from __future__ import annotations

from tradewatch.sources.base import RequestOptions, Source, SourceResult
from tradewatch.sources.federal_register import FederalRegisterSource
from tradewatch.sources.html import HtmlSource
from tradewatch.sources.mofcom import MofcomSource
from tradewatch.sources.rss import RssSource
from tradewatch.sources.truthsocial import TruthSocialSource

__all__ = ["SOURCES", "RequestOptions", "Source", "SourceResult"]

SOURCES: dict[str, type[Source]] = {
    "rss": RssSource,
    "mofcom": MofcomSource,
    "federal_register": FederalRegisterSource,
    "truthsocial": TruthSocialSource,
    "html": HtmlSource,
}
