"""The `federal_register` kind: the Federal Register API (documents search, one document, public inspection).

The document number is the id, so a notice seen on public inspection and later
published is one item at two stages (`extra.stage` says which); later fields
(abstract, effective date) show up downstream as an update of that item.

A search answer carries no body, and presidential documents (executive orders,
proclamations) have no abstract either: their rates and dates would never reach the
rules. So a document the answer gives no text for has its full text fetched
(`full_text`: its `raw_text_url`, found through the document's own API answer when
the search did not ask for that field), once per process and document.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections import OrderedDict
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from zoneinfo import ZoneInfo

import structlog
from pydantic import Field

from tradewatch.config import SourceSpec
from tradewatch.errors import SourceError
from tradewatch.matching.engine import MATCH_TEXT_MAX
from tradewatch.models import Document
from tradewatch.sources._offload import off_loop
from tradewatch.sources._text import html_to_text
from tradewatch.sources.base import RequestOptions, SourceResult, each_item, result_of

if TYPE_CHECKING:
    from tradewatch.fetch import Fetcher, FetchResponse

__all__ = ["FederalRegisterOptions", "FederalRegisterSource", "parse_federal_register"]

log = structlog.get_logger(__name__)

# The Register is published in Washington; a bare publication date means that day there.
EASTERN = ZoneInfo("America/New_York")
_KEEP = (
    "type",
    "subtype",
    "action",
    "pdf_url",
    "public_inspection_pdf_url",
    "body_html_url",
    "raw_text_url",
    "citation",
    "executive_order_number",
    "proclamation_number",
    "presidential_document_number",
    "signing_date",
    "effective_on",
    "comments_close_on",
    "dates",
    "docket_ids",
    "regulation_id_numbers",
    "filed_at",
    "filing_type",
    "editorial_note",
    "toc_subject",
    "toc_doc",
    "num_pages",
    "significant",
    "disposition_notes",
    "executive_order_notes",
)
_TEXT_CACHE = 512  # documents whose full text is kept between polls (texts do not change once filed)
_TEXT_TRIES = 3  # polls that try to read a document's full text before giving up on it
_NUMBER = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,40}")  # a document number fit for a URL path
_API = re.compile(r"^(https?://[^/?#]+(?:/[^?#]*?)?/api/v1)/")


class FederalRegisterOptions(SourceSpec):
    """An API URL: `documents.json?conditions…`, `documents/NUMBER.json`, or public-inspection JSON."""

    max_pages: int = Field(1, ge=1, le=20, description="follow next_page_url up to this many pages per poll")
    stage: Literal["auto", "published", "public_inspection"] = Field(
        "auto", description="auto: public_inspection when the URL is a public-inspection endpoint"
    )
    full_text: Literal["auto", "always", "never"] = Field(
        "auto", description="fetch each new document's full text; auto: when the answer has no abstract"
    )


def _day(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        if "T" in value:
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=EASTERN)
        return datetime.combine(date.fromisoformat(value), time(0, 0), tzinfo=EASTERN)
    except ValueError:
        return None


def _document(raw: dict[str, Any], *, source: str, stage: str) -> Document | None:
    number = raw.get("document_number")
    if not isinstance(number, str) or not number:
        return None
    agencies = [a for a in raw.get("agencies") or [] if isinstance(a, dict)]
    names = [
        str(a.get("name") or a.get("raw_name") or "") for a in agencies if a.get("name") or a.get("raw_name")
    ]
    if not names and isinstance(raw.get("agency_names"), list):
        names = [str(n) for n in raw["agency_names"]]
    parts = [raw.get("abstract"), raw.get("excerpts")]
    text = "\n\n".join(html_to_text(str(p)) for p in parts if isinstance(p, str) and p.strip())
    extra: dict[str, Any] = {"document_number": number, "stage": stage, "agencies": names}
    extra["agency_slugs"] = [str(a["slug"]) for a in agencies if a.get("slug")]
    for key in _KEEP:
        value = raw.get(key)
        if value not in (None, "", [], {}):
            extra[key] = value
    if raw.get("publication_date"):
        extra["publication_date"] = raw["publication_date"]
    published = _day(raw.get("publication_date")) if stage == "published" else None
    published = published or _day(raw.get("filed_at")) or _day(raw.get("publication_date"))
    title = str(raw.get("title") or raw.get("toc_doc") or raw.get("toc_subject") or number)
    url = str(raw.get("html_url") or raw.get("pdf_url") or raw.get("public_inspection_pdf_url") or "")
    return Document(
        id=number,
        source=source,
        url=url,
        title=" ".join(title.split()),
        text=text,
        published_at=published,
        lang="en",
        extra=extra,
    )


def parse_federal_register(data: Any, *, source: str, stage: str) -> tuple[list[Document], str | None]:
    """Documents of one API response and its next page URL; a response without `results` has none."""
    if not isinstance(data, dict):
        raise ValueError("the API answered with something other than a JSON object")
    if "document_number" in data and "results" not in data:
        doc = _document(data, source=source, stage=stage)
        return ([doc] if doc else []), None
    results = data.get("results") or []
    if not isinstance(results, list):
        raise ValueError("`results` is not a list")
    docs = each_item(
        (r for r in results if isinstance(r, dict)),
        lambda r: _document(r, source=source, stage=stage),
        source=source,
    )
    nxt = data.get("next_page_url")
    return docs, nxt if isinstance(nxt, str) and nxt else None


def _text_url(fields: dict[str, Any]) -> str | None:
    for key in ("raw_text_url", "body_html_url"):
        value = fields.get(key)
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return value
    return None


def _page_text(page: FetchResponse) -> str:
    """The raw text file is HTML around a <pre> (body_html_url: the document's HTML); plain text as is."""
    body = page.text()
    kind = (page.headers.get("content-type") or "").lower()
    return html_to_text(body) if "html" in kind or body.lstrip()[:1] == "<" else body.strip()


def _with_text(doc: Document, found: tuple[str, str]) -> Document:
    text, url = found
    joined = f"{doc.text}\n\n{text}" if doc.text else text
    return doc.model_copy(update={"text": joined, "extra": {**doc.extra, "full_text_url": url}})


def _read_page(page: FetchResponse, *, source: str, stage: str) -> tuple[list[Document], str | None]:
    return parse_federal_register(page.json(), source=source, stage=stage)


class FederalRegisterSource:
    """Polls one API query; the first page is conditional, further pages only when it changed."""

    kind: ClassVar[str] = "federal_register"
    Options: ClassVar[type[SourceSpec]] = FederalRegisterOptions

    def __init__(self, options: SourceSpec) -> None:
        self.options = (
            options
            if isinstance(options, FederalRegisterOptions)
            else FederalRegisterOptions.model_validate(options.model_dump())
        )
        self.request = RequestOptions.for_source(self.options)
        self._texts: OrderedDict[str, tuple[str, str]] = OrderedDict()  # document number → (text, URL)
        self._text_failures: dict[str, int] = {}  # document number → polls whose text fetch failed
        self.text_requests = 0  # full-text and document-answer requests made so far

    @property
    def stage(self) -> str:
        if self.options.stage != "auto":
            return self.options.stage
        return "public_inspection" if "public-inspection" in self.options.url else "published"

    async def fetch(self, fetcher: Fetcher) -> SourceResult:
        name = self.options.name
        opts = self.request
        resp = await fetcher.get(self.options.url, opts, conditional=True, accept="application/json")
        if resp.not_modified:
            return result_of(resp, [])
        docs: list[Document] = []
        page, requests = resp, 1
        while True:
            try:
                found, nxt = await off_loop(
                    name, functools.partial(_read_page, page, source=name, stage=self.stage)
                )
            except ValueError as exc:
                raise SourceError(f"{exc} ({page.url})", source=name) from exc
            docs.extend(found)
            if nxt is None or requests >= self.options.max_pages:
                break
            page = await fetcher.get(nxt, opts, accept="application/json")
            requests += 1
        unique: dict[str, Document] = {}
        for doc in docs:  # pages may overlap while new documents arrive during paging
            unique.setdefault(doc.id, doc)
        return await self._with_texts(fetcher, resp, list(unique.values()), requests)

    async def _with_texts(
        self, fetcher: Fetcher, resp: FetchResponse, found: list[Document], requests: int
    ) -> SourceResult:
        """The poll's result, the documents that want it with their full text (`full_text`)."""
        name = self.options.name
        wanted = [d for d in found if self._wants_text(d)]
        if not wanted:
            return result_of(resp, found, requests=requests)
        before = self.text_requests
        texts = await asyncio.gather(*(self._text_of(fetcher, d) for d in wanted), return_exceptions=True)
        by_id: dict[str, tuple[str, str]] = {}
        held: set[str] = set()
        for doc, text in zip(wanted, texts, strict=True):
            if isinstance(text, SourceError):
                tries = self._text_failures[doc.id] = self._text_failures.get(doc.id, 0) + 1
                log.warning(
                    "full_text_fetch_failed", source=name, document=doc.id, error=str(text), tries=tries
                )
                if tries < _TEXT_TRIES:
                    held.add(doc.id)
                else:  # given up: remembered as having no text
                    self._remember(doc.id, ("", ""))
            elif isinstance(text, BaseException):
                raise text
            elif text is not None:
                by_id[doc.id] = text
        listed = {d.id for d in found}
        for number in [n for n in self._text_failures if n not in listed]:
            del self._text_failures[number]  # no longer in the answer: nothing to retry
        # A document whose text could not be read is held back for the next poll, not passed on
        # without it: a text that comes and goes would read as two changes of the document (two
        # false updates of an alert). Without the query's validators the next poll reads the
        # query again instead of a 304. After _TEXT_TRIES polls it goes on without its text: a
        # text that never comes must not hold a document back for good.
        kept = [_with_text(d, by_id[d.id]) if d.id in by_id else d for d in found if d.id not in held]
        result = result_of(resp, kept, requests=requests + self.text_requests - before)
        if held:
            result.validators = {}
            result.held = [d for d in found if d.id in held]
        return result

    def _wants_text(self, doc: Document) -> bool:
        """auto: presidential documents (no abstract; a term search's excerpt is only a snippet)
        and any other document the answer gives no text for."""
        mode = self.options.full_text
        if mode != "auto":
            return mode == "always"
        return not doc.text or doc.extra.get("type") == "Presidential Document"

    async def _text_of(self, fetcher: Fetcher, doc: Document) -> tuple[str, str] | None:
        """(full text, its URL) of a document, from this process's cache or the Register.

        None when the Register names no text for it; SourceError when reading it failed.
        """
        cached = self._texts.get(doc.id)
        if cached is not None:
            self._texts.move_to_end(doc.id)
            return cached if cached[0] else None
        url = _text_url(doc.extra) or await self._text_url_from_api(fetcher, doc)
        if url is None:
            return None
        self.text_requests += 1
        page = await fetcher.get(url, self.request)
        text = await off_loop(self.options.name, functools.partial(_page_text, page))
        text = text[:MATCH_TEXT_MAX]  # what the rules read: a multi-megabyte annex is not kept
        self._remember(doc.id, (text, url))
        return text, url

    def _remember(self, number: str, found: tuple[str, str]) -> None:
        self._texts[number] = found
        self._text_failures.pop(number, None)
        while len(self._texts) > _TEXT_CACHE:
            self._texts.popitem(last=False)

    async def _text_url_from_api(self, fetcher: Fetcher, doc: Document) -> str | None:
        """The document's own API answer names its raw text (a search answers only default fields)."""
        api = _API.match(self.options.url)
        if api is None or doc.extra.get("stage") != "published" or not _NUMBER.fullmatch(doc.id):
            return None  # a public-inspection filing is a PDF: its answer is all there is
        self.text_requests += 1
        page = await fetcher.get(
            f"{api.group(1)}/documents/{doc.id}.json", self.request, accept="application/json"
        )
        data = page.json()
        return _text_url(data) if isinstance(data, dict) else None
