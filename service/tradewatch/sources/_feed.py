"""RSS 0.9x/1.0/2.0 and Atom to Documents, over an already defused ElementTree.

Chosen over feedparser by bench/bench_parse.py: walking the tree parsed by expat
(entities refused by defusedxml) is an order of magnitude cheaper per feed, and
feeds we cannot parse strictly are an error of that source, not silently guessed.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from datetime import UTC, tzinfo
from typing import Any
from urllib.parse import urljoin
from xml.etree import ElementTree
from xml.etree.ElementTree import Element

from tradewatch.models import Document
from tradewatch.sources._text import guess_lang, html_to_text, parse_feed_date
from tradewatch.sources.base import each_item

__all__ = ["parse_feed"]

ATOM = "{http://www.w3.org/2005/Atom}"
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
RSS1 = "{http://purl.org/rss/1.0/}"
RSS090 = "{http://my.netscape.com/rdf/simple/0.9/}"
DC = "{http://purl.org/dc/elements/1.1/}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
MEDIA = "{http://search.yahoo.com/mrss/}"
_KNOWN_NS = (ATOM, RDF, RSS1, RSS090, DC, CONTENT, MEDIA)


def _t(el: Element | None) -> str:
    """All text inside `el` (CDATA included), stripped; '' when absent."""
    if el is None:
        return ""
    if len(el) == 0:  # no child elements: all its text is `text` (most feed fields)
        return (el.text or "").strip()
    return "".join(el.itertext()).strip()


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_LINK_BREAKS = re.compile("[\t\r\n]")
_C0_AND_SPACE = "".join(map(chr, range(0x21)))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _atom_body(el: Element | None) -> str:
    """An Atom text construct; `type="xhtml"` content is markup, kept as such (without its
    namespace) so that its paragraphs stay apart when it becomes text."""
    if el is None or el.get("type") != "xhtml" or len(el) == 0:
        return _t(el)
    for node in el.iter():
        if isinstance(node.tag, str):
            node.tag = _local(node.tag)
    return (
        (el.text or "") + "".join(ElementTree.tostring(child, encoding="unicode") for child in el)
    ).strip()


@functools.lru_cache(maxsize=256)  # a feed repeats its few extension names on every item
def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower().replace("-", "_")


def _extensions(item: Element) -> dict[str, str]:
    """Simple namespaced fields of other vocabularies (e.g. `truth:originalUrl`), by local name."""
    found: dict[str, str] = {}
    for child in item:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag.startswith("{") and not tag.startswith(_KNOWN_NS) and len(child) == 0:
            value = (child.text or "").strip() or child.get("href", "") or child.get("url", "")
            if value:
                found.setdefault(_snake(_local(tag)), value)
    return found


def _rss_item(item: Element, ns: str) -> dict[str, Any]:
    first: dict[str, Element] = {}  # item.find() of every child tag at once
    for child in item:
        first.setdefault(child.tag, child)
    guid_el = first.get(f"{ns}guid")
    guid = _t(guid_el) or item.get(f"{RDF}about", "")
    link = _t(first.get(f"{ns}link"))
    if not link and guid_el is not None and guid_el.get("isPermaLink") != "false":
        link = guid
    body = _t(first.get(f"{CONTENT}encoded")) or _t(first.get(f"{ns}description"))
    date = _t(first.get(f"{ns}pubDate")) or _t(first.get(f"{DC}date"))
    extra: dict[str, Any] = {}
    author = _t(first.get(f"{ns}author")) or _t(first.get(f"{DC}creator"))
    if author:
        extra["author"] = author
    categories = [_t(c) for c in item.findall(f"{ns}category") if _t(c)] if f"{ns}category" in first else []
    if categories:
        extra["categories"] = categories
    media = [e.get("url", "") for e in [*item.findall(f"{ns}enclosure"), *item.findall(f"{MEDIA}content")]]
    if any(media):
        extra["media"] = [m for m in media if m]
    return {
        "guid": guid,
        "link": link,
        "title": _t(first.get(f"{ns}title")),
        "body": body,
        "date": date,
        "extra": extra,
    }


def _atom_entry(entry: Element) -> dict[str, Any]:
    link = ""
    for candidate in entry.findall(f"{ATOM}link"):
        if candidate.get("rel", "alternate") == "alternate" and candidate.get("href"):
            link = candidate.get("href", "")
            break
    body = _atom_body(entry.find(f"{ATOM}content")) or _atom_body(entry.find(f"{ATOM}summary"))
    date = _t(entry.find(f"{ATOM}published")) or _t(entry.find(f"{ATOM}updated"))
    extra: dict[str, Any] = {}
    author = _t(entry.find(f"{ATOM}author/{ATOM}name"))
    if author:
        extra["author"] = author
    categories = [c.get("term", "") for c in entry.findall(f"{ATOM}category") if c.get("term")]
    if categories:
        extra["categories"] = categories
    return {
        "guid": _t(entry.find(f"{ATOM}id")),
        "link": link,
        "title": _t(entry.find(f"{ATOM}title")),
        "body": body,
        "date": date,
        "extra": extra,
    }


def _entries(root: Element) -> tuple[list[Element], Callable[[Element], dict[str, Any]]]:
    """The feed's item elements and the reader of one; items are read lazily, up to a limit."""
    tag = root.tag if isinstance(root.tag, str) else ""
    if tag == f"{ATOM}feed":
        return root.findall(f"{ATOM}entry"), lambda e: {**_atom_entry(e), "ext": _extensions(e)}
    if tag == f"{RDF}RDF":
        for ns in (RSS1, RSS090):
            found = root.findall(f"{ns}item")
            if found:
                return found, functools.partial(_rss_entry, ns=ns)
        return [], functools.partial(_rss_entry, ns="")
    if _local(tag) == "rss" or tag == "channel":
        channel = root.find("channel") if tag != "channel" else root
        items = (channel.findall("item") if channel is not None else []) or root.findall("item")
        return items, functools.partial(_rss_entry, ns="")
    raise ValueError(f"not an RSS or Atom feed (root element <{_local(tag)}>)")


def _rss_entry(item: Element, ns: str) -> dict[str, Any]:
    return {**_rss_item(item, ns), "ext": _extensions(item)}


def parse_feed(
    root: Element, *, source: str, base: str = "", limit: int | None = None, tz: tzinfo = UTC
) -> list[Document]:
    """Documents in feed order, the first `limit` of them; id is guid/id, else link, else a
    hash of title and date.

    Relative links (some agency feeds write `/news/…`) are resolved against `base`; dates
    written without an offset are read in `tz`.
    """
    elements, read = _entries(root)
    return each_item(elements, lambda el: _document(read(el), source, base, tz), source=source, limit=limit)


def _document(raw: dict[str, Any], source: str, base: str, tz: tzinfo = UTC) -> Document:
    """One item as a Document (a malformed one raises; `parse_feed` skips it)."""
    if raw["link"]:  # as browsers read a link (WHATWG URL): no tabs or line breaks, trimmed
        raw["link"] = _LINK_BREAKS.sub("", raw["link"]).strip(_C0_AND_SPACE)
    if raw["link"] and base and "://" not in raw["link"]:
        raw["link"] = urljoin(base, raw["link"])
    scheme = _SCHEME.match(raw["link"])
    if scheme and scheme.group(1).lower() not in ("http", "https"):
        raw["link"] = ""  # javascript:, data:…: a hostile item's link is no link
    title = html_to_text(raw["title"]) if "<" in raw["title"] or "&" in raw["title"] else raw["title"]
    text = html_to_text(raw["body"])
    ident = raw["guid"] or raw["link"]
    if not ident:
        ident = "sha:" + hashlib.blake2b(f"{title}\0{raw['date']}".encode(), digest_size=12).hexdigest()
    extra = dict(raw["extra"])
    if raw["guid"] and raw["guid"] != raw["link"]:
        extra["guid"] = raw["guid"]
    for key, value in raw["ext"].items():
        extra.setdefault(key, value)
    return Document(
        id=ident,
        source=source,
        url=raw["link"],
        title=" ".join(title.split()),
        text=text,
        published_at=parse_feed_date(raw["date"], tz),
        lang=guess_lang(title + " " + text),
        extra=extra,
    )
