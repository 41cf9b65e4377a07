"""Bytes to text, JSON and XML safely: charset detection that gets Chinese pages right, entities refused.

Charset order: a BOM; the Content-Type charset; a `<meta>` or XML declaration; then
detection. A declared charset is only trusted when the bytes decode with it: Chinese
government servers often send `ISO-8859-1` or a wrong `UTF-8` header, so a Latin
declaration loses to valid non-ASCII UTF-8, and GB2312/GBK are read as their
superset GB18030 (pages labelled GB2312 use GBK-only characters all the time).
Non-ASCII bytes that decode as UTF-8 are taken as UTF-8 whatever the label says: a
GBK page served as UTF-8 fails that test, a UTF-8 page served as GBK passes it.
"""

from __future__ import annotations

import codecs
import json
import re
import xml.etree.ElementTree as ET
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import charset_normalizer
import defusedxml
import defusedxml.ElementTree as DET

from tradewatch.errors import SourceError

__all__ = ["decode_body", "parse_json", "parse_xml"]

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9_.:-]+)["']""")
_DECLARED_ENCODING = re.compile(rb"""encoding\s*=\s*["']([^"']*)["']""")
# Labels expat reads as ASCII-compatible single bytes or UTF-8, natively or via Python's codec.
_ASCII_LABELS = {b"utf-8", b"us-ascii", b"ascii", b"iso-8859-1", b"latin-1", b"windows-1252", b"cp1252"}
_CT_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.I)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_LATIN = {"latin-1", "iso8859-1", "cp1252", "ascii"}
_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "ascii": "cp1252",
    "latin-1": "cp1252",
    "iso8859-1": "cp1252",
}


def _codec(name: str | bytes | None) -> str | None:
    """Python's codec name for a label, widened to its superset; None when unknown."""
    if not name:
        return None
    label = name.decode("ascii", "replace") if isinstance(name, bytes) else name
    try:
        canonical = codecs.lookup(label.strip().lower()).name
    except LookupError:
        return None
    return _SUPERSETS.get(canonical, canonical)


def _decodes(content: bytes, codec: str) -> str | None:
    try:
        return content.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_body(content: bytes, content_type: str | None = None) -> tuple[str, str]:
    """The text of `content` and the codec used to read it."""
    for bom, codec in _BOMS:
        if content.startswith(bom):
            return content.decode(codec, "replace"), codec
    head = content[:4096]
    declared: list[str] = []
    m = _CT_CHARSET.search(content_type or "")
    for label in (m.group(1) if m else None, *_META_CHARSET.findall(head), *_XML_ENCODING.findall(head)):
        found = _codec(label)
        if found and found not in declared:
            declared.append(found)
    utf8 = _decodes(content, "utf-8")
    latin = {_codec(x) for x in _LATIN}
    if utf8 is not None and not content.isascii() and not any(c.startswith("utf-16") for c in declared):
        # Non-ASCII bytes that are valid UTF-8 are UTF-8: GBK or Latin text almost never is.
        return utf8, "utf-8"
    for codec in declared:
        text = _decodes(content, codec)
        if text is not None:
            return text, codec
    if utf8 is not None:
        return utf8, "utf-8"
    best = charset_normalizer.from_bytes(content[:200_000]).best()
    guess = _codec(best.encoding) if best is not None else None
    if guess is None or guess in latin:
        # Undeclared non-UTF-8 bytes on the pages we read are almost always GB-encoded Chinese.
        guess = "gb18030" if _decodes(content, "gb18030") is not None else guess or "utf-8"
    return content.decode(guess, "replace"), guess


def parse_json(content: bytes, *, source: str, url: str) -> Any:
    try:
        return json.loads(decode_body(content, "application/json")[0])
    except ValueError as exc:
        raise SourceError(f"malformed JSON: {exc} ({url})", source=source) from exc


def parse_xml(content: bytes, *, source: str, url: str) -> Element:
    """Parse XML with entity declarations and external references refused (billion laughs, XXE)."""
    m = _XML_ENCODING.match(content[:200])
    codec = _codec(m.group(1)) if m else None
    if codec and codec not in ("utf-8", "utf-16", "ascii", "cp1252"):
        # expat knows only UTF-8/16 and Latin-1: hand it UTF-8 for GB-encoded feeds.
        text = content.decode(codec, "replace")
        text = re.sub(r"""^(\s*<\?xml[^>]*encoding\s*=\s*["'])[^"']+""", r"\g<1>utf-8", text, count=1)
        content = text.encode("utf-8")
    if _without_dtd(content):
        try:
            return ET.fromstring(content)  # noqa: S314 - no DTD, so nothing defusedxml refuses
        except ParseError:
            pass  # reported below, by the parser that has always reported it
    try:
        root: Element = DET.fromstring(content, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except defusedxml.DTDForbidden as exc:  # pragma: no cover - DTDs are allowed, entities are not
        raise SourceError(f"XML DTD refused ({url})", source=source) from exc
    except defusedxml.EntitiesForbidden as exc:
        raise SourceError(
            f"XML declares entities, refused as a possible entity bomb ({url})", source=source
        ) from exc
    except defusedxml.ExternalReferenceForbidden as exc:
        raise SourceError(f"XML refers to an external entity, refused ({url})", source=source) from exc
    except ParseError as exc:
        raise SourceError(f"malformed XML: {exc} ({url})", source=source) from exc
    return root


def _without_dtd(content: bytes) -> bool:
    """True when expat reads `content` as ASCII-compatible bytes in which no `<!DOCTYPE` occurs.

    Entity declarations and external entities exist only in a document type
    declaration, so such a document gives defusedxml nothing to refuse and the C
    tree builder (three times faster than defusedxml's Python one) reads it the same.
    The encoding check makes sure `<!DOCTYPE` could not hide in other bytes: no NUL
    (UTF-16/32) and no declared encoding outside the ASCII-compatible ones expat reads.
    """
    if b"<!DOCTYPE" in content or b"\x00" in content:
        return False
    head = content.removeprefix(codecs.BOM_UTF8)
    if not head.startswith(b"<?xml"):
        return True  # no declaration: UTF-8
    end = head.find(b"?>")
    if end < 0:
        return False
    m = _DECLARED_ENCODING.search(head, 0, end)
    return m is None or m.group(1).lower() in _ASCII_LABELS
