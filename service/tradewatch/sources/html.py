"""The `html` kind: a list page described by CSS selectors, detail pages fetched when `body` is set.

A user adds a ministry's page without code: `item` picks the list entries, `title`,
`link` and `date` read each entry, `body` (optional) the detail page's text.
The list is fetched with conditional GET; detail pages are fetched for new links
and re-read at most every `detail_refresh`, so a busy list costs one request a poll.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urldefrag, urljoin
from zoneinfo import ZoneInfo

import structlog
from pydantic import BaseModel, ConfigDict, Field, field_validator
from selectolax.lexbor import LexborHTMLParser, LexborNode

from tradewatch.config import SourceSpec, TimezoneName
from tradewatch.durations import Duration
from tradewatch.errors import SourceError
from tradewatch.models import Document
from tradewatch.sources._offload import off_loop
from tradewatch.sources._select import Selector, first_node, parse_html
from tradewatch.sources._text import guess_lang, node_text, parse_date, visible_text
from tradewatch.sources.base import RequestOptions, SourceResult, each_item

if TYPE_CHECKING:
    from tradewatch.fetch import Fetcher, FetchResponse

__all__ = ["Detail", "HtmlOptions", "HtmlSource", "ListItem", "Pagination", "Selectors", "canonical"]

log = structlog.get_logger(__name__)


class Selectors(BaseModel):
    """Where things are: CSS, `@attr` for an attribute, `A || B` for a fallback."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item: str = Field(description="each entry of the list page")
    title: str = Field("a", description="within an item")
    link: str = Field("a@href", description="within an item; relative links are resolved")
    date: str | None = Field(None, description="within an item; absent: the first date in the item's text")
    body: str | None = Field(None, description="on the detail page; absent: no detail fetch")
    exclude: list[str] = Field(
        default_factory=list, description="removed from the body (disclaimers, share bars)"
    )
    detail_title: str | None = Field(None, description="on the detail page, when the list truncates titles")
    detail_date: str | None = Field(None, description="on the detail page, when the list shows none")

    @field_validator("item", "title", "link", "date", "body", "detail_title", "detail_date")
    @classmethod
    def _valid(cls, value: str | None) -> str | None:
        if value is not None:
            Selector.parse(value).check()
        return value


class Pagination(BaseModel):
    """Older list pages, followed by a `next` link up to `max_pages` pages per poll."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    next: str = Field(description="selector of the next page's link, e.g. 'a.next@href'")
    max_pages: int = Field(2, ge=1, le=20)

    @field_validator("next")
    @classmethod
    def _valid(cls, value: str) -> str:
        Selector.parse(value).check()
        return value


class HtmlOptions(SourceSpec):
    """A list page (or several of the same layout) and how to read it."""

    select: Selectors
    list_urls: list[str] = Field(default_factory=list, description="more list pages of the same layout")
    date_format: str | None = Field(None, description="strptime format of list dates; absent: common forms")
    timezone: TimezoneName = Field("UTC", description="of dates written without an offset")
    pagination: Pagination | None = None
    max_items: int = Field(30, ge=1, description="newest N entries per list page")
    detail_refresh: Duration = Field(timedelta(hours=6), description="re-read a known detail page this often")


@dataclass
class ListItem:
    """One entry of a list page."""

    url: str
    title: str
    published_at: datetime | None
    list_url: str


@dataclass
class Detail:
    """What a detail page adds to its list entry."""

    text: str = ""
    title: str = ""
    published_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    times: list[datetime] = field(default_factory=list)  # other publish times the page states


def canonical(url: str) -> str:
    """The id of a page: absolute, without fragment."""
    return urldefrag(url)[0] if "#" in url else url


# A path of plain segments: no scheme, query, fragment, params, dot segments or characters
# urlsplit strips; `urljoin` resolves such a path by putting a prefix that depends only on
# the base before it, so a list page's hundreds of links cost three `urljoin` calls in all.
_SEGMENT = r"[A-Za-z0-9_~%+=,@!$&'()*-][A-Za-z0-9_~%+=,@!$&'()*.-]*"
_PLAIN_ABSOLUTE = re.compile(rf"(?:/{_SEGMENT})+/?")
_PLAIN_RELATIVE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*/?")


class _Linker:
    """`canonical(urljoin(base, href))` for every link of one page, the plain ones without `urljoin`."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.absolute = self._prefix("/x", "/x")
        self.relative = self._prefix("x", "x")
        self.dotted = self._prefix("./x", "x")  # `./` + plain path: resolved, or kept as given without a base

    def _prefix(self, probe: str, href_part: str) -> str | None:
        """What `urljoin` puts before `href_part` of `probe`; None when it does something else."""
        joined = urljoin(self.base, probe)
        return joined[: -len(href_part)] if joined.endswith(href_part) else None

    def __call__(self, href: str) -> str:
        if href[:1] == "/":
            if self.absolute is not None and _PLAIN_ABSOLUTE.fullmatch(href):
                return self.absolute + href  # no `#` in a prefix or a plain path: already canonical
        elif href[:2] == "./":
            if self.dotted is not None and _PLAIN_RELATIVE.fullmatch(href, 2):
                return self.dotted + href[2:]
        elif self.relative is not None and _PLAIN_RELATIVE.fullmatch(href):
            return self.relative + href
        return canonical(urljoin(self.base, href))


class HtmlSource:
    """Polls list pages; subclasses (mofcom) refine `read_detail`."""

    kind: ClassVar[str] = "html"
    Options: ClassVar[type[SourceSpec]] = HtmlOptions

    def __init__(self, options: SourceSpec) -> None:
        kind_options = type(self).Options
        if not isinstance(options, kind_options):  # validated by the config loader already: reuse
            options = kind_options.model_validate(options.model_dump())
        self.options: HtmlOptions = options  # type: ignore[assignment]
        self.request = RequestOptions.for_source(self.options, self.options.list_urls)
        sel = self.options.select
        self.sel_item = Selector.parse(sel.item)
        self.sel_title = Selector.parse(sel.title)
        self.sel_link = Selector.parse(sel.link)
        self.sel_date = Selector.parse(sel.date) if sel.date else None
        self.sel_body = Selector.parse(sel.body) if sel.body else None
        self.tz = ZoneInfo(self.options.timezone)
        self._details: dict[str, tuple[float, Detail]] = {}
        self._full_read_at: float | None = None

    @property
    def list_urls(self) -> list[str]:
        return [u for u in (self.options.url, *self.options.list_urls) if u]

    async def fetch(self, fetcher: Fetcher) -> SourceResult:
        name, opts = self.options.name, self.request
        if not self.list_urls:
            raise SourceError("no list URL configured (url or list_urls)", source=name)
        items: list[ListItem] = []
        result = SourceResult(status=304, not_modified=True, requests=0)
        # A notice revised in place leaves its list unchanged (304): with detail pages, read
        # the list in full every detail_refresh so revisions surface as updates.
        refresh = self.options.detail_refresh.total_seconds()
        conditional = self.sel_body is None or (
            self._full_read_at is not None and time.monotonic() - self._full_read_at < refresh
        )
        if not conditional:
            self._full_read_at = time.monotonic()
        for list_url in self.list_urls:
            page = await fetcher.get(list_url, opts, conditional=conditional, accept="text/html,*/*;q=0.8")
            result.requests += 1
            if page.validators is not None:
                result.validators[page.requested_url] = page.validators
            if page.not_modified:
                continue
            result.status, result.not_modified = page.status, False
            items.extend(await self._read_pages(fetcher, opts, page, result))
        if result.not_modified:
            return result
        unique: dict[str, ListItem] = {}
        for item in items:
            unique.setdefault(item.url, item)
        result.documents = await self._documents(fetcher, opts, list(unique.values()), result)
        return result

    async def _read_pages(
        self,
        fetcher: Fetcher,
        opts: RequestOptions,
        page: FetchResponse,
        result: SourceResult,
    ) -> list[ListItem]:
        found: list[ListItem] = []
        pages = self.options.pagination.max_pages if self.options.pagination else 1
        for number in range(pages):
            listed, nxt = await off_loop(self.options.name, functools.partial(self._read_list, page))
            found.extend(listed)
            if number + 1 >= pages or nxt is None:
                break
            try:
                page = await fetcher.get(nxt, opts, accept="text/html,*/*;q=0.8")
            except SourceError as exc:  # an older page missing: keep the newer pages' entries
                log.warning("older_list_page_failed", source=self.options.name, url=nxt, error=str(exc)[:300])
                break
            finally:
                result.requests += 1
        return found

    def _read_list(self, page: FetchResponse) -> tuple[list[ListItem], str | None]:
        """One list page's entries and next page (run off the loop, by `off_loop`)."""
        tree = parse_html(page.text())
        return self.parse_list(tree, page.url), self._next_page(tree, page.url)

    def _next_page(self, tree: LexborHTMLParser, base: str) -> str | None:
        if self.options.pagination is None or tree.root is None:
            return None
        href = Selector.parse(self.options.pagination.next).value(tree.root)
        try:
            return canonical(urljoin(base, href)) if href else None
        except ValueError:  # e.g. `http://[::1`: no next page to follow
            log.warning("next_page_link_invalid", source=self.options.name, href=href[:200])
            return None

    def parse_list(self, tree: LexborHTMLParser, base: str) -> list[ListItem]:
        """The entries of one list page, in page order, at most `max_items`."""
        if tree.root is None:
            return []
        link = _Linker(base)

        def item(node: LexborNode) -> ListItem | None:
            href = self.sel_link.value(node)
            if not href or href[0] == "#":
                return None
            url = link(href)
            if not url[:8].lower().startswith(("http://", "https://")):
                return None  # javascript:, JavaScript:, data:, mailto:… are no item of the list
            # a `date` that finds nothing in this entry falls back to the entry's first date, as
            # without one: an undated entry counts as new, so a mistyped selector would flood
            date_text = (self.sel_date.value(node) if self.sel_date else "") or visible_text(node)
            published = parse_date(date_text, self.tz, self.options.date_format) if date_text else None
            return ListItem(url, self.sel_title.value(node), published, base)

        return each_item(
            self.sel_item.nodes(tree.root), item, source=self.options.name, limit=self.options.max_items
        )

    async def _documents(
        self,
        fetcher: Fetcher,
        opts: RequestOptions,
        items: list[ListItem],
        result: SourceResult,
    ) -> list[Document]:
        if self.sel_body is None:
            return [self.document(item, None) for item in items]
        started = time.monotonic()
        details = await asyncio.gather(
            *(self._detail(fetcher, opts, i) for i in items), return_exceptions=True
        )
        docs: list[Document] = []
        failures: list[str] = []
        for item, detail in zip(items, details, strict=True):
            if isinstance(detail, SourceError):
                failures.append(str(detail))
                log.warning("detail_fetch_failed", source=self.options.name, url=item.url, error=str(detail))
                continue  # taken up again next poll; a half document would later look like an update
            if isinstance(detail, BaseException):
                raise detail
            docs.append(self.document(item, detail))
        result.requests += sum(1 for i in items if self._details.get(i.url, (0.0,))[0] >= started)
        if items and not docs:
            raise SourceError(f"every detail page failed, first: {failures[0]}", source=self.options.name)
        return docs

    async def _detail(self, fetcher: Fetcher, opts: RequestOptions, item: ListItem) -> Detail:
        cached = self._details.get(item.url)
        if cached is not None and time.monotonic() - cached[0] < self.options.detail_refresh.total_seconds():
            return cached[1]
        page = await fetcher.get(item.url, opts, accept="text/html,*/*;q=0.8")
        try:
            detail = await off_loop(
                self.options.name, lambda: self.read_detail(parse_html(page.text()), page.url)
            )
        except ValueError as exc:
            raise SourceError(
                f"cannot read detail page: {exc} ({page.url})", source=self.options.name
            ) from exc
        self._details[item.url] = (time.monotonic(), detail)
        if len(self._details) > 4 * self.options.max_items * len(self.list_urls):
            oldest = min(self._details, key=lambda k: self._details[k][0])
            del self._details[oldest]
        return detail

    def read_detail(self, tree: LexborHTMLParser, url: str) -> Detail:
        """Body text (and optional title/date) of a detail page by the configured selectors."""
        detail = Detail()
        sel = self.options.select
        if tree.root is not None and sel.detail_title:
            detail.title = Selector.parse(sel.detail_title).value(tree.root)
        if tree.root is not None and sel.detail_date:
            detail.published_at = parse_date(Selector.parse(sel.detail_date).value(tree.root), self.tz)
        body = first_node(tree, self.sel_body) if self.sel_body else None
        if body is None:
            raise ValueError(f"body selector {sel.body!r} matches nothing")
        detail.text = node_text(body, drop=sel.exclude)
        return detail

    def document(self, item: ListItem, detail: Detail | None) -> Document:
        title = item.title
        if detail is not None and detail.title and (not title or title.endswith(("...", "…"))):
            title = detail.title
        extra: dict[str, Any] = {"list_url": item.list_url}
        if detail is not None:
            extra.update(detail.extra)
        published = item.published_at or (detail.published_at if detail else None)
        return Document(
            id=item.url,
            source=self.options.name,
            url=item.url,
            title=title,
            text=detail.text if detail else "",
            published_at=published,
            lang=guess_lang(title + " " + (detail.text if detail else "")),
            extra=extra,
        )
