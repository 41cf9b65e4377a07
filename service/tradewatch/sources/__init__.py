"""Source kinds: one module per kind, registered in the plain dict `SOURCES`.

A kind is a class with `kind`, an `Options` model (a `SourceSpec` subclass that
validates and documents its YAML), a constructor taking those options, and
`fetch(fetcher)`, which returns the documents the source lists now.
"""

from __future__ import annotations

from tradewatch.sources.base import RequestOptions, Source, SourceResult
from tradewatch.sources.rss import RssSource

__all__ = ["SOURCES", "RequestOptions", "Source", "SourceResult"]

SOURCES: dict[str, type[Source]] = {
    "rss": RssSource,
}
