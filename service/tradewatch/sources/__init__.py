"""Source kinds: one module per kind, registered in the plain dict `SOURCES`.

A kind is a class with `kind`, an `Options` model (a `SourceSpec` subclass that
validates and documents its YAML), a constructor taking those options, and
`fetch(fetcher)`, which returns the documents the source lists now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

from tradewatch.config import SourceSpec
from tradewatch.models import Document

if TYPE_CHECKING:
    from tradewatch.fetch import Fetcher

__all__ = ["SOURCES", "Source", "SourceResult"]


@dataclass
class SourceResult:
    """What one poll of a source produced; `not_modified` means the server said 304."""

    documents: list[Document] = field(default_factory=list)
    status: int = 200
    not_modified: bool = False
    requests: int = 1


class Source(Protocol):
    kind: ClassVar[str]
    Options: ClassVar[type[SourceSpec]]

    def __init__(self, options: SourceSpec) -> None: ...

    async def fetch(self, fetcher: Fetcher) -> SourceResult: ...


class _RssOptions(SourceSpec):
    """Placeholder until sources/rss.py lands."""


class _RssPlaceholder:
    kind: ClassVar[str] = "rss"
    Options: ClassVar[type[SourceSpec]] = _RssOptions


SOURCES: dict[str, type[Source]] = {"rss": _RssPlaceholder}  # type: ignore[dict-item]
