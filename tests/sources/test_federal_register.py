"""The `federal_register` kind against the recorded API responses served on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.servers import LocalServer, Request, Response
from tests.sources.helpers import conditional, data_bytes, fixture_bytes, spec
from tradewatch.errors import SourceError
from tradewatch.fetch import Fetcher
from tradewatch.sources.federal_register import FederalRegisterSource

JSON = {"Content-Type": "application/json; charset=utf-8"}
EASTERN = ZoneInfo("America/New_York")


def _paged(server: LocalServer) -> None:
    page1 = fixture_bytes("federal_register/documents-presdocu-newest-page1.json")
    page1 = page1.replace(b"https://www.federalregister.gov/api/", server.base_url.encode() + b"/api/")
    server.routes["/api/v1/documents.json"] = Response(200, page1, JSON)
    server.routes["/api/v1/documents"] = Response(
        200, fixture_bytes("federal_register/documents-presdocu-newest-page2.json"), JSON
    )


async def test_documents_list(server: LocalServer, fetcher: Fetcher) -> None:
    """Each result becomes a document keyed by its number, with agencies, links and an Eastern date."""
    _paged(server)
    url = server.url("/api/v1/documents.json?conditions%5Btype%5D%5B%5D=PRESDOCU&order=newest&per_page=2")
    result = await FederalRegisterSource(spec("federal_register", url=url, full_text="never")).fetch(fetcher)
    assert [d.id for d in result.documents] == ["2026-19555", "2026-19554"]
    doc = result.documents[0]
    assert doc.title.startswith("Enhancing Program Integrity and Interagency Coordination")
    assert doc.url.startswith("https://www.federalregister.gov/documents/2026/09/23/2026-19555/")
    assert doc.published_at == datetime(2026, 9, 23, tzinfo=EASTERN)
    assert doc.extra["document_number"] == "2026-19555"
    assert doc.extra["type"] == "Presidential Document"
    assert doc.extra["agencies"] == ["Executive Office of the President"]
    assert doc.extra["stage"] == "published"
    assert doc.extra["pdf_url"].endswith("2026-19555.pdf")
    assert doc.text == ""
    assert server.hits("/api/v1/documents") == 0


async def test_pagination_follows_next_page_url(server: LocalServer, fetcher: Fetcher) -> None:
    """With max_pages 2 the cursor URL of page 1 is followed."""
    _paged(server)
    url = server.url("/api/v1/documents.json?order=newest")
    source = FederalRegisterSource(spec("federal_register", url=url, max_pages=2, full_text="never"))
    result = await source.fetch(fetcher)
    assert [d.id for d in result.documents] == ["2026-19555", "2026-19554", "2026-19417", "2026-19416"]
    assert "search_after_cursor=" in server.requests[-1].path
    assert result.requests == 2


async def test_abstract_excerpts_and_sub_agencies(server: LocalServer, fetcher: Fetcher) -> None:
    """Abstracts and highlighted excerpts become plain text; a sub-agency is listed after its parent."""
    server.routes["/w.json"] = Response(
        200, fixture_bytes("federal_register/documents-term-water-relevance-page1.json"), JSON
    )
    server.routes["/n.json"] = Response(
        200, fixture_bytes("federal_register/documents-2024-newest-page1.json"), JSON
    )
    water = await FederalRegisterSource(spec("federal_register", url=server.url("/w.json"))).fetch(fetcher)
    doc = water.documents[0]
    assert doc.text.startswith("The U.S. Environmental Protection Agency's Office of Ground Water")
    assert "<span" not in doc.text
    newest = await FederalRegisterSource(spec("federal_register", name="n", url=server.url("/n.json"))).fetch(
        fetcher
    )
    assert newest.documents[0].extra["agencies"] == [
        "Energy Department",
        "Federal Energy Regulatory Commission",
    ]


async def test_no_results_key_means_no_documents(server: LocalServer, fetcher: Fetcher) -> None:
    """A zero-match response (no `results` key at all) yields no documents, not an error."""
    server.routes["/none.json"] = Response(
        200, fixture_bytes("federal_register/documents-no-match.json"), JSON
    )
    result = await FederalRegisterSource(spec("federal_register", url=server.url("/none.json"))).fetch(
        fetcher
    )
    assert result.documents == []
    assert result.status == 200


EO_TEXT = (
    b"<html><body><pre>Presidential Documents\n\nExecutive Order 14430 of September 17, 2026\n\n"
    b"Sec. 2. The additional ad valorem duty is reduced to 10 percent, effective May 14, 2025 &amp; "
    b"thereafter.</pre></body></html>"
)


def _on_loopback(server: LocalServer, body: bytes) -> bytes:
    return body.replace(b"https://www.federalregister.gov/", server.base_url.encode() + b"/")


async def test_single_document(server: LocalServer, fetcher: Fetcher) -> None:
    """A single-document URL yields that document with its executive order number, citation and full text.

    The answer has no abstract, so the text named by its `raw_text_url` is read.
    """
    detail = _on_loopback(server, fixture_bytes("federal_register/document-2026-19417.json"))
    server.routes["/d.json"] = Response(200, detail, JSON)
    server.routes["/documents/full_text/text/2026/09/22/2026-19417.txt"] = Response(
        200, EO_TEXT, {"Content-Type": "text/html; charset=utf-8"}
    )
    result = await FederalRegisterSource(spec("federal_register", url=server.url("/d.json"))).fetch(fetcher)
    (doc,) = result.documents
    assert doc.id == "2026-19417"
    assert doc.title == "Restoring American Saltwater Angling and Recreation"
    assert (doc.extra["executive_order_number"], doc.extra["citation"]) == ("14430", "91 FR 60293")
    assert doc.extra["subtype"] == "Executive Order"
    assert doc.text.startswith("Presidential Documents")
    assert "reduced to 10 percent, effective May 14, 2025 & thereafter." in doc.text
    assert doc.extra["full_text_url"].endswith("/2026-19417.txt")
    assert result.requests == 2


def _presidential_list(server: LocalServer, text: Response | None) -> str:
    """The recorded two-result search (no abstracts), each document's own answer, and (optionally) texts."""
    _paged(server)
    for number in ("2026-19555", "2026-19554"):
        body = {"document_number": number, "raw_text_url": server.url(f"/text/{number}.txt")}
        server.routes[f"/api/v1/documents/{number}.json"] = Response(200, json.dumps(body).encode(), JSON)
        if text is not None:
            server.routes[f"/text/{number}.txt"] = text
    return server.url("/api/v1/documents.json?conditions%5Btype%5D%5B%5D=PRESDOCU&order=newest&per_page=2")


async def test_search_results_without_abstract_get_their_full_text(
    server: LocalServer, fetcher: Fetcher
) -> None:
    """A search answer names no text: each document's own answer is asked for it, once per process."""
    plain = Response(
        200, b"Executive Order 14298\n\nrates reduced to 10 percent", {"Content-Type": "text/plain"}
    )
    source = FederalRegisterSource(spec("federal_register", url=_presidential_list(server, plain)))
    first = await source.fetch(fetcher)
    assert [d.id for d in first.documents] == ["2026-19555", "2026-19554"]
    assert all(d.text == "Executive Order 14298\n\nrates reduced to 10 percent" for d in first.documents)
    assert first.requests == 1 + 2 * 2
    again = await source.fetch(fetcher)
    assert [d.text for d in again.documents] == [d.text for d in first.documents]
    assert again.requests == 1
    assert server.hits("/text/2026-19555.txt") == 1


async def test_a_text_that_cannot_be_read_holds_its_document_back(
    server: LocalServer, fetcher: Fetcher
) -> None:
    """Not passed on without its text (a text that comes and goes would read as two changes: two false
    updates of an alert), nor held back for good: after three failed polls it goes on without it.

    The query's validators are dropped meanwhile, so the next poll reads it again instead of a 304.
    """
    url = _presidential_list(server, Response(404, b"gone"))
    server.routes["/api/v1/documents.json"] = conditional(
        fixture_bytes("federal_register/documents-presdocu-newest-page1.json"), "application/json"
    )
    server.routes["/text/2026-19554.txt"] = Response(
        200, b"Proclamation text", {"Content-Type": "text/plain"}
    )
    source = FederalRegisterSource(spec("federal_register", url=url))
    for _ in range(2):
        result = await source.fetch(fetcher)
        assert [(d.id, d.text) for d in result.documents] == [("2026-19554", "Proclamation text")]
        assert [d.id for d in result.held] == ["2026-19555"]  # `sources test` shows it all the same
        assert result.validators == {}
        await fetcher.commit(result)
    result = await source.fetch(fetcher)  # the third failure: it goes on without its text
    assert [(d.id, d.text) for d in result.documents] == [
        ("2026-19555", ""),
        ("2026-19554", "Proclamation text"),
    ]
    assert result.validators
    await fetcher.commit(result)
    assert (await source.fetch(fetcher)).not_modified
    assert server.hits("/text/2026-19555.txt") == 3


async def test_a_presidential_document_with_a_search_excerpt_still_gets_its_text(
    server: LocalServer, fetcher: Fetcher
) -> None:
    """A term search gives each result an excerpt, a snippet: a presidential document (no abstract)
    still gets its full text, after the excerpt."""
    answer = json.loads(fixture_bytes("federal_register/documents-presdocu-newest-page1.json"))
    for result in answer["results"]:
        result["excerpts"] = "… the additional <span class='match'>tariff</span> …"
    url = _presidential_list(server, Response(200, b"Sec. 1. Tariffs.", {"Content-Type": "text/plain"}))
    server.routes["/api/v1/documents.json"] = Response(200, json.dumps(answer).encode(), JSON)
    docs = (await FederalRegisterSource(spec("federal_register", url=url)).fetch(fetcher)).documents
    assert [d.text for d in docs] == ["… the additional tariff …\n\nSec. 1. Tariffs."] * 2


async def test_public_inspection_is_the_same_item(server: LocalServer, fetcher: Fetcher) -> None:
    """Public-inspection documents keep the document number as id, stage public_inspection, filed time."""
    server.routes["/api/v1/public-inspection-documents/current.json"] = Response(
        200, data_bytes("federal_register/public-inspection-current.json"), JSON
    )
    url = server.url("/api/v1/public-inspection-documents/current.json")
    result = await FederalRegisterSource(spec("federal_register", url=url)).fetch(fetcher)
    doc = result.documents[0]
    assert doc.id == "2026-09999"
    assert doc.extra["stage"] == "public_inspection"
    assert doc.published_at is not None
    assert doc.published_at.isoformat() == "2026-05-12T08:45:00-04:00"
    assert result.documents[1].extra["agencies"] == ["Commerce Department", "Industry and Security Bureau"]
    assert len(server.requests) == result.requests == 1  # a filing is a PDF: no text is asked for


async def test_conditional_poll_skips_parsing(server: LocalServer, fetcher: Fetcher) -> None:
    """A 304 on the query yields no documents and fetches no further pages."""

    def handle(req: Request) -> Response:
        if req.headers.get("if-modified-since") == "Wed, 23 Sep 2026 00:00:00 GMT":
            return Response(304)
        return Response(
            200,
            fixture_bytes("federal_register/documents-no-match.json"),
            {**JSON, "Last-Modified": "Wed, 23 Sep 2026 00:00:00 GMT"},
        )

    server.routes["/q.json"] = handle
    source = FederalRegisterSource(spec("federal_register", url=server.url("/q.json"), max_pages=3))
    await fetcher.commit(await source.fetch(fetcher))
    again = await source.fetch(fetcher)
    assert again.not_modified
    assert again.documents == []


async def test_malformed_json_is_a_source_error(server: LocalServer, fetcher: Fetcher) -> None:
    """A cut JSON body fails the source with 'malformed JSON'."""
    server.routes["/cut.json"] = Response(200, b'{"count": 2, "results": [{"document_number": "20', JSON)
    with pytest.raises(SourceError, match="malformed JSON"):
        await FederalRegisterSource(spec("federal_register", url=server.url("/cut.json"))).fetch(fetcher)
