"""The bound on HTML parser work (sources/_markup.py): quadratic markup refused, real pages untouched."""

from __future__ import annotations

import pytest

from tradewatch.sources._markup import MAX_COST, check_markup
from tradewatch.sources._select import parse_html
from tradewatch.sources._text import html_to_text


@pytest.mark.parametrize(
    "markup",
    [
        "<div>" * 20_000 + "rare earth" + "</div>" * 20_000,  # nested blocks
        "<DIV/>" * 20_000,  # case and a slash change nothing for the parser
        "<section>" * 3_000 + "</p>" * 30_000,  # each stray </p> walks the whole stack
        "<ul>" * 15_000,
    ],
)
def test_markup_that_makes_the_parser_quadratic_is_refused(markup: str) -> None:
    with pytest.raises(ValueError, match="nests block elements too deeply"):
        check_markup(markup)
    with pytest.raises(ValueError, match="too deeply"):
        parse_html(markup)
    with pytest.raises(ValueError, match="too deeply"):
        html_to_text(markup)


def test_large_ordinary_pages_pass() -> None:
    """Many tags, shallow nesting: scanned (over the no-scan threshold) and accepted."""
    rows = "<li><a href='/n'>news item</a><span>2025-01-01</span></li>" * 40_000
    page = f"<html><body><div class='a'><div class='b'><ul>{rows}</ul></div></div></body></html>"
    check_markup(page)
    tree = parse_html(page)
    assert tree.root is not None
    assert len(tree.css("li")) == 40_000
    blocks = ("<div>" * 40 + "<p>text</p>" + "</div>" * 40) * 2_000
    check_markup(blocks)


def test_the_cost_model_counts_open_blocks() -> None:
    """Just under the budget passes, just over is refused: the limit is the stated cost."""
    depth = 10_000  # opening the i-th div costs i: n(n-1)/2 in all
    assert depth * (depth - 1) // 2 < MAX_COST
    check_markup("<div>" * depth)
    with pytest.raises(ValueError, match="too deeply"):
        check_markup("<div>" * depth + "<p>" * 5_001)
