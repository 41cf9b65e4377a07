"""The `federal_register` kind: the Federal Register API (documents search, one document, public inspection).

The document number is the id, so a notice seen on public inspection and later
published is one item at two stages (`extra.stage` says which); later fields
(abstract, effective date) show up downstream as an update of that item.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from tradewatch.config import SourceSpec
from tradewatch.errors import SourceError
from tradewatch.models import Document
from tradewatch.sources._offload import off_loop
from tradewatch.sources._text import html_to_text
from tradewatch.sources.base import RequestOptions, SourceResult, each_item, result_of

if TYPE_CHECKING:
    from tradewatch.fetch import Fetcher, FetchResponse

__all__ = ["FederalRegisterOptions", "FederalRegisterSource", "parse_federal_register"]

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
)


class FederalRegisterOptions(SourceSpec):
    """An API URL: `documents.json?conditions…`, `documents/NUMBER.json`, or public-inspection JSON."""

    max_pages: int = Field(1, ge=1, le=20, description="follow next_page_url up to this many pages per poll")
    stage: Literal["auto", "published", "public_inspection"] = Field(
        "auto", description="auto: public_inspection when the URL is a public-inspection endpoint"
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
        return result_of(resp, list(unique.values()), requests=requests)
