"""RSS/Atom items to Documents (sources/_feed.py): which element and which text each field reads."""

from __future__ import annotations

from tradewatch.sources._decode import parse_xml
from tradewatch.sources._feed import parse_feed


def test_fields_read_the_first_element_and_all_its_text() -> None:
    """The first of repeated fields wins; a field with child elements reads all their text."""
    feed = b"""<rss version="2.0"><channel><title>t</title><item>
<title>First <b>bold</b> title</title><title>second title</title>
<link>https://example.org/1</link><link>https://example.org/2</link>
<description><![CDATA[<p>Body &amp; more</p>]]></description>
<category>a</category><category> </category><category>b</category>
<pubDate>Tue, 25 Aug 2026 18:32:56 GMT</pubDate>
</item></channel></rss>"""
    (doc,) = parse_feed(parse_xml(feed, source="s", url="u"), source="s")
    assert doc.title == "First bold title"
    assert doc.url == doc.id == "https://example.org/1"
    assert doc.text == "Body & more"
    assert doc.extra["categories"] == ["a", "b"]
    assert doc.published_at is not None
    assert doc.published_at.isoformat() == "2026-08-25T18:32:56+00:00"


def test_an_item_that_cannot_be_read_is_skipped_alone() -> None:
    """A link no URL parser accepts or a date past any calendar costs that item only."""
    feed = b"""<rss version="2.0"><channel><title>t</title>
<item><title>bad</title><link>//[::1/x</link></item>
<item><title>when</title><link>/news/3</link>
<pubDate>Mon, 01 Jan 2025 99999999999999999999:00:00 GMT</pubDate></item>
<item><title>good</title><link>/news/2</link></item>
</channel></rss>"""
    docs = parse_feed(parse_xml(feed, source="s", url="u"), source="s", base="https://example.org/")
    assert [(d.title, d.url) for d in docs] == [("good", "https://example.org/news/2")]


def test_atom_xhtml_content_keeps_its_paragraphs_apart() -> None:
    """`type="xhtml"` content is markup: its paragraphs become lines, not one run-together string."""
    feed = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
<entry><title>E</title><id>urn:e</id><link href="https://example.org/e"/>
<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">
<p>First para.</p><p>Second &amp; <b>last</b>.</p></div></content>
</entry></feed>"""
    (doc,) = parse_feed(parse_xml(feed, source="s", url="u"), source="s")
    assert doc.text == "First para.\nSecond & last."


def test_a_link_of_another_scheme_is_no_link() -> None:
    """`JavaScript:`, `data:`… from a hostile feed never become a document's link (a webhook
    receiver gets the link as is); the item stays, keyed by its guid or a hash."""
    feed = b"""<rss version="2.0"><channel><title>t</title>
<item><title>a</title><link>JavaScript:alert(1)</link></item>
<item><title>b</title><link> data:text/html,x</link><guid>g-b</guid></item>
<item><title>c</title><link>/news/c</link></item>
<item><title>d</title><link>java&#x0A;script:alert(1)</link></item>
<item><title>e</title><link>&#x09;java&#x09;script:alert(1)</link></item></channel></rss>"""
    docs = parse_feed(parse_xml(feed, source="s", url="u"), source="s", base="https://example.org/")
    assert [(d.title, d.url) for d in docs] == [
        ("a", ""),
        ("b", ""),
        ("c", "https://example.org/news/c"),
        ("d", ""),
        ("e", ""),
    ]
    assert docs[0].id.startswith("sha:")
    assert docs[1].id == "g-b"
