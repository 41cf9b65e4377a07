"""What every source kind shares: the Protocol, one poll's result, and per-source request manners.

Kept apart from `sources/__init__` (the registry) and from `fetch.py` so that kind
modules never import the HTTP client at run time: the client imports this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar

import structlog

from tradewatch.config import SourceSpec
from tradewatch.models import Document
from tradewatch.sources._netguard import trusted_entries

if TYPE_CHECKING:
    from tradewatch.fetch import Fetcher, FetchResponse
    from tradewatch.store.validators import Validators

__all__ = ["RequestOptions", "Source", "SourceResult", "each_item", "result_of"]

log = structlog.get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")
# What reading one item of hostile data can raise when a field has a type or form no one foresaw.
ITEM_ERRORS = (TypeError, ValueError, AttributeError, KeyError, IndexError, ArithmeticError)


@dataclass
class SourceResult:
    """What one poll of a source produced; `not_modified` means the server said 304.

    `validators` are the ETag/Last-Modified of the pages read; the caller stores them
    with `Fetcher.commit(result)` once the documents are processed.
    """

    documents: list[Document] = field(default_factory=list)
    status: int = 200
    not_modified: bool = False
    requests: int = 1
    validators: dict[str, Validators] = field(default_factory=dict)
    # how far paged listings were read (URL → cursor), stored by `Fetcher.commit` once the
    # documents are processed (a poll whose processing failed is read again, as if it never happened)
    cursors: dict[str, str] = field(default_factory=dict)
    # documents read but held back until a later poll (a part of them could not be read yet):
    # not processed, but `sources test` shows them
    held: list[Document] = field(default_factory=list)


class Source(Protocol):
    kind: ClassVar[str]
    Options: ClassVar[type[SourceSpec]]

    def __init__(self, options: SourceSpec) -> None: ...

    async def fetch(self, fetcher: Fetcher) -> SourceResult: ...


def result_of(resp: FetchResponse, documents: list[Document], *, requests: int = 1) -> SourceResult:
    """The result of a poll whose main page was `resp`."""
    validators = {resp.requested_url: resp.validators} if resp.validators is not None else {}
    return SourceResult(
        documents=documents,
        status=resp.status,
        not_modified=resp.not_modified,
        requests=requests,
        validators=validators,
    )


def each_item(
    raws: Iterable[T], build: Callable[[T], R | None], *, source: str, limit: int | None = None
) -> list[R]:
    """`build` of every raw item (up to `limit` built); a malformed one is logged and skipped, not the poll.

    Failing the poll instead would hide every other item of the source until the bad one
    scrolled off the page, however long that takes.
    """
    out: list[R] = []
    for i, raw in enumerate(raws):
        try:
            made = build(raw)
        except ITEM_ERRORS as exc:
            log.warning("item_skipped", source=source, item=i, error=f"{type(exc).__name__}: {exc}"[:300])
            continue
        if made is not None:
            out.append(made)
            if limit is not None and len(out) >= limit:
                break
    return out


@dataclass(frozen=True)
class RequestOptions:
    """One source's manners for its requests; built from its spec so overrides apply per source."""

    source: str
    headers: Mapping[str, str] = field(default_factory=dict)
    user_agent: str | None = None
    proxy: str | None = None
    timeout: float | None = None
    max_bytes: int | None = None
    allow_private: bool | None = None
    trusted_hosts: frozenset[str] = frozenset()  # `host:port` entries (`trusted_entries`)

    @classmethod
    def for_source(cls, spec: SourceSpec, extra_urls: Iterable[str] = ()) -> RequestOptions:
        """Options of `spec`; the hosts of its URL and `extra_urls` are the ones it may trust.

        Sources build theirs once, when they are made: parsing the URLs on every poll was a
        few percent of an all-304 poll.
        """
        trusted = {entry for u in (spec.url, *extra_urls) if u for entry in trusted_entries(u)}
        return cls(
            source=spec.name,
            headers=dict(spec.headers),
            user_agent=spec.user_agent,
            proxy=spec.proxy,
            timeout=spec.timeout,
            max_bytes=spec.max_bytes,
            allow_private=spec.allow_private,
            trusted_hosts=frozenset(trusted),
        )
