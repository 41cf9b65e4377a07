"""The bound on HTML parser work (sources/_markup.py): quadratic markup refused, real pages untouched.

The hostile cases are those that made lexbor spend seconds to minutes (a review found the
ones that slipped past the first, block-only model); each must be refused, and markup that
only looks deep (closes hidden in comments, attributes or script text; implied closes;
SVG's self-closed elements) must pass.
"""

from __future__ import annotations

import pytest

from tests.sources.helpers import fixture_bytes
from tradewatch.sources._markup import check_markup
from tradewatch.sources._select import parse_html
from tradewatch.sources._text import html_to_text

N = 30_000
HOSTILE = {
    "nested divs": "<div>" * N + "x" + "</div>" * N,
    "self-closed divs": "<DIV/>" * N,
    "spans, then scanning tags": "<span>" * N + "<hr>" * N,
    "spans, then paragraphs": "<span>" * N + "<p>x</p>" * N,
    "closes hidden in comments": "<div><!--</div>-->" * N,
    "closes hidden in attributes": '<div title="</div>">' * N,
    "closes hidden in a quoted value after ==": '<div a=="</div>">' * N,
    "stray end tags under a deep stack": "<section>" * 10_000 + "</p>" * N,
    "lists that do not close": "<li><ul></li>" * N,
    "rows outside a table": "<tr><span></tr>" * N,
    "options around bold": "<option><b>" * N,
    "svg breakout then custom elements": "<svg><p>" + "<foo/>" * N + "<hr>" * N,
    "svg closed deep, then custom elements": "<svg>" + "<g>" * 9 + "</svg>" + "<foo/>" * N + "<hr>" * N,
    "svg title holding markup": "<svg><title>" + "<div>" * N,
    "formatting re-opened at every paragraph": "".join(f"<p><b id={k}></p>x" for k in range(N)),
    "a select of many options": "<select>" + "<option></option>" * N,
}


@pytest.mark.parametrize("markup", HOSTILE.values(), ids=HOSTILE.keys())
def test_markup_that_makes_the_parser_quadratic_is_refused(markup: str) -> None:
    with pytest.raises(ValueError, match="too deeply to parse safely"):
        check_markup(markup)
    with pytest.raises(ValueError, match="too deeply"):
        parse_html(markup)
    with pytest.raises(ValueError, match="too deeply"):
        html_to_text(markup)


ORDINARY = {
    "a long list": "<html><body><div><ul>" + "<li><a href='/n'>news</a><span>2025-01-01</span></li>" * N,
    "unclosed list items and paragraphs": "<ul>" + "<li>x" * N + "</ul>" + "<p>y" * N,
    "a table with unclosed cells": "<table>" + "<tr><td>a<td><font color=red>b</tr>" * N + "</table>",
    "unclosed links": "".join(f"<a href=/{k}>x" for k in range(N)),
    "json with markup in a script": "<div>"
    + "<script>var posts = ["
    + "'<div><p>post<\\/div>'," * N
    + "];</script></div>",
    "markup in comments": "<div>" + "<!-- <div><div> -->" * N + "</div>",
    "an inline svg of many shapes": "<svg><title>map</title>" + "<path d='M0 0'/>" * N + "</svg>",
    "icons with titles": "<svg><title>i</title><path/></svg>" * N,
    "repeated identical formatting": "<p><font face=arial>x</p>" * N,
}


@pytest.mark.parametrize("markup", ORDINARY.values(), ids=ORDINARY.keys())
def test_large_ordinary_pages_pass(markup: str) -> None:
    """Many tags but shallow nesting: scanned (over the no-scan threshold) and accepted."""
    assert markup.count("<") > 20_000
    check_markup(markup)


def test_real_pages_pass() -> None:
    """Recorded government pages pass whatever their size."""
    for name in ("mofcom/prc-dual-use-regulation-792.html",):
        page = fixture_bytes(name).decode("utf-8", "replace")
        check_markup(page * 20)  # twenty pages end to end: well over the no-scan threshold
