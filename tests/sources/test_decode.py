"""XML parsing (sources/_decode.py): documents without a DTD take the C tree builder, the rest defusedxml."""

from __future__ import annotations

import codecs
import xml.etree.ElementTree as ET

import defusedxml.ElementTree as DET
import pytest

from tests.sources.helpers import fixture_bytes
from tradewatch.errors import SourceError
from tradewatch.sources._decode import _without_dtd, parse_xml

RECORDED = [
    "truthsocial/feed-trumpstruth-2026-08-25-truncated.xml",
    "rss/whitehouse-news-scraped-2026-06-29.xml",
]
BOMB = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aa"><!ENTITY b "&a;&a;">]><r>&b;</r>'
XXE = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'

DOCUMENTS = [
    b"<rss><channel><item><title>plain</title></item></channel></rss>",
    b'<?xml version="1.0" encoding="UTF-8"?><rss><channel><item><title><![CDATA[<p>a &amp; b</p>]]></title>'
    b"<description>x &lt;p&gt; &#x4e2d; &#20013;</description></item></channel></rss>",
    codecs.BOM_UTF8 + "<rss><channel><title>稀土</title></channel></rss>".encode(),
    '<?xml version="1.0" encoding="iso-8859-1"?><rss><title>café</title></rss>'.encode("latin-1"),
    '<?xml version="1.0" encoding="windows-1252"?><rss><title>“quotes”</title></rss>'.encode("cp1252"),
    '<?xml version="1.0" encoding="gb2312"?><rss><title>出口管制</title></rss>'.encode("gb2312"),
    b'<feed xmlns="http://www.w3.org/2005/Atom" xmlns:t="urn:t"><entry><t:x a="1">v</t:x><!-- c --><?pi x?>'
    b"</entry></feed>",
    b'<?xml version="1.0"?>\n<rss version="2.0">\n  <channel>\n    <item/>\n  </channel>\n</rss>\n',
]


def _defused(content: bytes) -> ET.Element:
    root: ET.Element = DET.fromstring(content, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    return root


@pytest.mark.parametrize("content", DOCUMENTS)
def test_documents_without_dtd_read_as_defusedxml_reads_them(content: bytes) -> None:
    """The C tree builder gives the very tree defusedxml gives, namespaces, CDATA and references included."""
    expected = content
    if b"gb2312" in content:  # parse_xml hands GB feeds to expat as UTF-8
        expected = content.decode("gb2312").replace("gb2312", "utf-8").encode()
    assert ET.tostring(parse_xml(content, source="s", url="u")) == ET.tostring(_defused(expected))


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_feeds_read_as_defusedxml_reads_them(name: str) -> None:
    """The recorded feeds take the C tree builder and give defusedxml's tree."""
    content = fixture_bytes(name)
    assert _without_dtd(content)
    assert ET.tostring(parse_xml(content, source="s", url="u")) == ET.tostring(_defused(content))


@pytest.mark.parametrize(
    ("content", "plain"),
    [
        (b"<rss/>", True),
        (b'<?xml version="1.0" encoding="utf-8"?><rss/>', True),
        (b'<?xml version="1.0" encoding="US-ASCII"?><rss/>', True),
        (b'<?xml version="1.0"?><!DOCTYPE rss><rss/>', False),
        (b'<?xml version="1.0"?><rss><![CDATA[<!DOCTYPE html>]]></rss>', False),  # cautious, not wrong
        ("<rss/>".encode("utf-16"), False),
        ("<rss/>".encode("utf-16-le"), False),
        (b'<?xml version="1.0" encoding="cp037"?><rss/>', False),  # EBCDIC could hide a DOCTYPE
        (b'<?xml version="1.0"' + b" " * 300 + b'encoding="cp037"?><rss/>', False),
        (b'<?xml version="1.0" encoding="utf-8"', False),  # unterminated declaration
    ],
)
def test_only_documents_that_cannot_carry_a_dtd_skip_defusedxml(content: bytes, plain: bool) -> None:
    """A DOCTYPE, or an encoding in which one could hide from a byte search, keeps defusedxml in charge."""
    assert _without_dtd(content) is plain


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"<rss><channel><item></channel></rss>", "malformed XML: mismatched tag: line 1, column 22"),
        (b"<rss>&undefined;</rss>", "malformed XML: undefined entity"),
        (b"<rss>", "malformed XML: no element found"),
        (BOMB, "entity bomb"),
        (XXE, "refused"),
    ],
)
def test_refusals_and_errors_are_unchanged(content: bytes, message: str) -> None:
    """Malformed XML is reported by the same parser as before; entity declarations stay refused."""
    with pytest.raises(SourceError, match=message):
        parse_xml(content, source="s", url="u")
