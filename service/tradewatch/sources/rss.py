"""The `rss` kind: RSS 0.9x/1.0/2.0 and Atom feeds (wires, White House and agency feeds, post mirrors)."""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, ClassVar
from zoneinfo import ZoneInfo

from pydantic import Field

from tradewatch.config import SourceSpec, TimezoneName
from tradewatch.errors import SourceError
from tradewatch.models import Document
from tradewatch.sources._feed import parse_feed
from tradewatch.sources._offload import off_loop
from tradewatch.sources.base import RequestOptions, SourceResult, result_of

if TYPE_CHECKING:
    from tradewatch.fetch import Fetcher, FetchResponse

__all__ = ["FEED_ACCEPT", "RssOptions", "RssSource", "fetch_feed"]

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, application/xml;q=0.8, "
    "text/xml;q=0.8, */*;q=0.5"
)


class RssOptions(SourceSpec):
    """A feed URL; items become documents with ids from guid/id, else link."""

    max_items: int | None = Field(
        500, ge=1, description="turn only the first N items into documents (null: all of them)"
    )
    timezone: TimezoneName = Field("UTC", description="of dates written without an offset")


class RssSource:
    """Polls one feed with conditional GET; parses only on 200."""

    kind: ClassVar[str] = "rss"
    Options: ClassVar[type[SourceSpec]] = RssOptions

    def __init__(self, options: SourceSpec) -> None:
        self.options = (
            options if isinstance(options, RssOptions) else RssOptions.model_validate(options.model_dump())
        )
        self.request = RequestOptions.for_source(self.options)

    async def fetch(self, fetcher: Fetcher) -> SourceResult:
        resp, docs = await fetch_feed(fetcher, self.options, self.request, limit=self.options.max_items)
        return result_of(resp, docs)


async def fetch_feed(
    fetcher: Fetcher, options: SourceSpec, request: RequestOptions, *, limit: int | None = None
) -> tuple[FetchResponse, list[Document]]:
    """One conditional GET of a feed, parsed only on 200 (a 304 gives no documents)."""
    resp = await fetcher.get(options.url, request, conditional=True, accept=FEED_ACCEPT)
    if resp.not_modified:
        return resp, []

    zone = getattr(options, "timezone", "UTC")
    tz = UTC if zone == "UTC" else ZoneInfo(zone)

    def parse() -> list[Document]:
        return parse_feed(resp.xml(), source=options.name, base=resp.url, limit=limit, tz=tz)

    try:
        return resp, await off_loop(options.name, parse)
    except ValueError as exc:
        raise SourceError(f"{exc} ({resp.url})", source=options.name) from exc
