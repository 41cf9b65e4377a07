"""The list-page selector language (sources/_select.py): alternatives, attributes, tag lookups."""

from __future__ import annotations

import pytest
from selectolax.lexbor import LexborHTMLParser

from tradewatch.sources._select import Selector, _first

PAGES = [
    "<ul><li><a href='/1' title='T1'>one</a><span>2025-01-02</span></li></ul>",
    "<ul><li><b><a id=deep>1</a></b><a id=late>2</a></li></ul>",
    "<div><svg><a href=s>svg</a></svg><a href=h>html</a></div>",
    "<div><template><a href=t>t</a></template><a href=r>r</a></div>",
    "<table><tr><td class=c>1</td><td>2</td></tr></table>",
    "<div>" + "<span>x</span>" * 40 + "<a href=far>far</a><p>p</p></div>",
    "<div>" + "<i>x</i>" * 30 + "</div>",
    "<p>no elements of interest</p>",
]
TAGS = ["a", "span", "td", "p", "li", "div", "i", "b", "em", "section"]


@pytest.mark.parametrize("html", PAGES)
def test_tag_lookup_finds_what_css_finds(html: str) -> None:
    """A bare tag found by walking is the very element lexbor's CSS search finds, from any start."""
    tree = LexborHTMLParser(html)
    assert tree.root is not None
    for node in tree.root.traverse():
        for tag in TAGS:
            found, expected = _first(node, tag), node.css_first(tag)
            assert (found is None) == (expected is None), (node.tag, tag)
            if found is not None and expected is not None:
                assert found.mem_id == expected.mem_id, (node.tag, tag)


def test_value_reads_attribute_then_text() -> None:
    """`a@title || a` prefers the title and falls back to the link text; `a@href` reads the link."""
    tree = LexborHTMLParser(
        "<ul><li><a href=' /1 ' title='Full title'>Full…</a></li><li><a href=/2>Two  words</a></li></ul>"
    )
    first, second = tree.css("li")
    title, link = Selector.parse("a@title || a"), Selector.parse("a@href")
    assert [title.value(first), title.value(second)] == ["Full title", "Two words"]
    assert [link.value(first), link.value(second)] == ["/1", "/2"]
    assert Selector.parse("td || a").value(first) == "Full…"
