"""HTML to text and dates (sources/_text.py): the fast paths read exactly what the full rewrite reads."""

from __future__ import annotations

import email.utils
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from selectolax.lexbor import LexborHTMLParser, LexborNode

from tradewatch.models import detect_lang
from tradewatch.sources._text import (
    SHANGHAI,
    _clean,
    _simple_text,
    guess_lang,
    html_to_text,
    node_text,
    parse_date,
    parse_feed_date,
    visible_text,
)

_INVISIBLE = ["script", "style", "noscript", "template", "iframe", "object"]
_BLOCKS = (
    "p,div,li,ul,ol,h1,h2,h3,h4,h5,h6,tr,table,section,article,header,footer,blockquote,pre,"
    "dd,dt,dl,figure,figcaption,hr,address,aside,nav,main"
)

TRICKY = [
    "",
    "plain words",
    "a &amp; b &lt;c&gt; &nbsp;d&ensp;e",
    "商务部\u3000公告2025年第18号\u00a0关于",
    "<span>2025</span>-<span>12-30</span>",
    "<a href='/x' title='t'>link</a><span>2025-12-30</span>",
    "x<br>y<br/>z",
    "<p>one</p><p>two</p>",
    "<div>a<div>b</div>c</div>",
    "<span>a<script>var s = '<p>no</p>';</script>b</span>",
    "<span>a<style>p {}</style>b<!-- hidden --></span>",
    "<b>1 &lt; 2</b> and <i>3 > 2</i>",
    "a < b and c > d",
    "<![CDATA[x]]> after",
    "  lots \t of \r\n\n  whitespace \u200b here  ",
    "<span>\n\n</span>",
    "<li>in a list</li>",
    "<table><tr><td>1</td><td>2</td></tr></table>",
    "<noscript>n</noscript><template>t</template><iframe>i</iframe><object>o</object>",
    "<pre>  a\n  b</pre>",
    "<img src=x>text<hr>more",
    "<svg><style>s</style><a>svg link</a></svg>",
]


def _rewritten(node: LexborNode) -> str:
    """The full rewrite node_text always did before it learnt to skip plain subtrees."""
    node.strip_tags(_INVISIBLE)
    for br in node.css("br"):
        br.replace_with("\n")
    for block in node.css(_BLOCKS):
        block.insert_after("\n")
    return _clean(node.text(deep=True))


def _elements(html: str) -> list[LexborNode]:
    tree = LexborHTMLParser(f"<div id=root>{html}</div>")
    root = tree.css_first("#root")
    assert root is not None
    return list(root.traverse())


def _mixes() -> list[str]:
    rnd = random.Random(9)
    pieces = [*TRICKY, "<p>", "</p>", "<span>", "</span>", "<br>", "<li>", "</li>", "\n", "&", "<", "稀土"]
    return ["".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 12))) for _ in range(300)]


@pytest.mark.parametrize("html", TRICKY)
def test_node_text_equals_the_full_rewrite(html: str) -> None:
    """Every element reads the same with the plain-subtree shortcut as with the full rewrite."""
    for mine, theirs in zip(_elements(html), _elements(html), strict=True):
        assert node_text(mine.clone()) == _rewritten(theirs.clone())


def test_random_mixes_read_as_the_full_rewrite() -> None:
    """Random mixes of the tricky pieces read the same by every path, element by element."""
    for html in _mixes():
        for mine, theirs in zip(_elements(html), _elements(html), strict=True):
            assert visible_text(mine) == _rewritten(theirs.clone()), html
            assert node_text(mine) == _rewritten(theirs), html
        body = LexborHTMLParser(f"<div>{html}</div>").body
        assert body is not None
        assert html_to_text(html) == _rewritten(body), html


@pytest.mark.parametrize("html", TRICKY)
def test_visible_text_leaves_the_tree_alone(html: str) -> None:
    """visible_text reads like node_text of a copy and never changes the page it reads."""
    tree = LexborHTMLParser(f"<div id=root>{html}</div>")
    before = tree.html
    root = tree.css_first("#root")
    assert root is not None
    for element in root.traverse():
        assert visible_text(element) == _rewritten(element.clone())
    assert tree.html == before


def test_node_text_of_a_block_in_the_page_ends_its_line() -> None:
    """A block read in place still gets its line break after it, as the full rewrite gives it."""
    tree = LexborHTMLParser("<div id=root><p>a</p>b</div>")
    p = tree.css_first("p")
    assert p is not None
    assert node_text(p) == "a"
    root = tree.css_first("#root")
    assert root is not None
    assert root.text() == "a\nb"


@pytest.mark.parametrize("html", TRICKY)
def test_html_to_text_equals_the_full_rewrite(html: str) -> None:
    """html_to_text's shortcut for text without markup gives what the parser gives."""
    body = LexborHTMLParser(f"<div>{html}</div>").body
    assert body is not None
    assert html_to_text(html) == _rewritten(body)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-12-30", datetime(2025, 12, 30, tzinfo=SHANGHAI)),
        (" 2025-12-30T10:00:00+08:00 ", datetime(2025, 12, 30, 10, tzinfo=timezone(timedelta(hours=8)))),
        ("20251230", datetime(2025, 12, 30, tzinfo=SHANGHAI)),
        ("2025-12-30 10:00:00Z", datetime(2025, 12, 30, 10, tzinfo=UTC)),
        ("发布时间：2025年12月30日 10:05", datetime(2025, 12, 30, 10, 5, tzinfo=SHANGHAI)),
        ("商务部公告 2025/1/2", datetime(2025, 1, 2, tzinfo=SHANGHAI)),
        ("\u3000２０２５-01-01", datetime(2025, 1, 1, tzinfo=SHANGHAI)),  # not ISO, but a date
        ("x2025-01-01", datetime(2025, 1, 1, tzinfo=SHANGHAI)),
        ("2025-13-01", None),
        ("no date", None),
    ],
)
def test_parse_date_forms(value: str, expected: datetime | None) -> None:
    """ISO forms parse as ISO (offset kept), anything else is searched for the first date."""
    assert parse_date(value, SHANGHAI) == expected


SIMPLE = [
    "<p>Tariffs on Canada will go to 400% &mdash; post 1</p>",
    '<p><span class="quote-inline"><br/>RT: https://truthsocial.com/x</span></p>',
    "<p>a</p><p>b<br>c</p><ul><li>one</li><li>two <a href='/x?a=1&amp;b=2'>link</a></li></ul>",
    "<div><h2>Title</h2><blockquote>quoted &ldquo;words&rdquo;</blockquote></div>",
    "<P CLASS=x>upper case tags</P><BR>",
    "<b><i>nested</i> inline</b> text &amp; more &#x4e2d;&#25991; &#128512;",
    "<a href=/x/>unquoted value ending in a slash</a>",
    "<img src=x.png alt='not text' />after<hr>line",
    "稀土&nbsp;出口管制\u3000公告 <strong>2025年第18号</strong>",
    "lone & ampersand, && and &; and a > sign",
    "<p>unclosed at the end",
    "<span>a</span>\n\n<span>  b  </span>",
    "<b><b><b><b><b>five bold</b></b></b></b></b>",
]
NOT_SIMPLE = [
    "<p>a<div>b</div>c</p>",  # the div closes the p
    "<p>a<p>b",  # a p closes a p
    "<b><p>x</b>y</p>",  # misnested: adoption agency
    "<li>no list</li>",
    "<ul><li>a<li>b</ul>",  # implied close of li
    "<h1>a<h2>b</h2></h1>",
    "<a href=1>a<a href=2>b</a></a>",
    "a < b",
    "<!-- comment -->x",
    "<script>x</script>",
    "<table><tr><td>1</td></tr></table>",
    "&notit; &amp without semicolon",
    "&#0; &#x80; &#xD800;",
    "&foo;",
    "<b>line\rbreak</b>",  # (text without markup keeps its older quick path: CR is a space there)
    "<p/>self-closed p",
    "</p>stray end tag",
    "<a href='x'title='y'>no space between attributes</a>",
]


@pytest.mark.parametrize("html", SIMPLE)
def test_simple_markup_is_read_without_the_parser(html: str) -> None:
    """Simple feed markup takes the fast path and reads exactly as the HTML parser reads it."""
    body = LexborHTMLParser(f"<div>{html}</div>").body
    assert body is not None
    assert _simple_text(html) == _rewritten(body)


@pytest.mark.parametrize("html", NOT_SIMPLE)
def test_markup_the_parser_restructures_goes_to_the_parser(html: str) -> None:
    """Implied closes, misnesting, comments, raw text and doubtful references are left to the parser."""
    assert _simple_text(html) is None
    body = LexborHTMLParser(f"<div>{html}</div>").body
    assert body is not None
    assert html_to_text(html) == _rewritten(body)


def _markup(rnd: random.Random, depth: int = 0) -> str:
    tags = [
        "a",
        "span",
        "b",
        "i",
        "em",
        "strong",
        "font",
        "p",
        "div",
        "ul",
        "ol",
        "li",
        "h1",
        "h3",
        "blockquote",
    ]
    texts = [
        "x",
        " ",
        "\n",
        "稀土",
        "&amp;",
        "&lt;",
        "&nbsp;",
        "&#8212;",
        "&not",
        "&notit;",
        "& ",
        "<",
        ">",
        "\u3000",
    ]
    out = []
    for _ in range(rnd.randint(0, 4)):
        roll = rnd.random()
        if roll < 0.4 and depth < 4:
            tag = rnd.choice(tags)
            close = f"</{tag}>" if rnd.random() < 0.85 else rnd.choice(["", "</p>", "</b>"])
            out.append(f"<{tag}{rnd.choice(['', ' class=x', ' href=/a/'])}>{_markup(rnd, depth + 1)}{close}")
        elif roll < 0.5:
            out.append(rnd.choice(["<br>", "<br/>", "<img src=x>", "<hr>", "<wbr>"]))
        else:
            out.append(rnd.choice(texts))
    return "".join(out)


def test_random_markup_reads_as_the_parser_reads_it() -> None:
    """Random nestings read the same by the fast path, whenever it takes them, as by the parser."""
    rnd = random.Random(11)
    taken = 0
    for _ in range(3000):
        html = _markup(rnd)
        fast = _simple_text(html)
        if fast is None:
            continue
        taken += 1
        body = LexborHTMLParser(f"<div>{html}</div>").body
        assert body is not None
        assert fast == _rewritten(body), html
    assert taken > 500  # the comparison is not vacuous


def _email_reading(value: str) -> datetime | None:
    """parse_feed_date as it was: email.utils first, then ISO 8601, then the date search."""
    value = value.strip()
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return parse_date(value, UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def test_feed_dates_read_as_email_utils_reads_them() -> None:
    """The RFC 822 shortcut and the one-word skip give email.utils' datetime, offset object included."""
    rnd = random.Random(3)
    days, months = ["Tue, ", "", "mon, ", "Sun,"], ["Aug", "aug", "August", "Foo", "Feb"]
    zones = ["+0000", "-0000", "+0530", "-0500", "+0099", "+2400", "GMT", "UTC", "UT", "Z", "EST", ""]
    values = ["2026-08-25T18:32:56Z", "2026-08-25", "2026-08-25 18:32:56", "2025年12月30日", "garbage"]
    for _ in range(3000):
        day = rnd.choice(["1", "25", "31", "0", "05"])
        year = rnd.choice(["2026", "0099", "99", "1000"])
        time = rnd.choice(["18:32:56", "24:00:00", "23:59:60", "18:32"])
        values.append(f"{rnd.choice(days)}{day} {rnd.choice(months)} {year} {time} {rnd.choice(zones)}")
    for value in values:
        mine, theirs = parse_feed_date(value), _email_reading(value)
        assert repr(mine) == repr(theirs), value


@pytest.mark.parametrize("text", ["", "Tariffs on Canada", "商务部公告", "MOFCOM 公告 稀土 export", "café"])
def test_guess_lang_agrees_with_the_model(text: str) -> None:
    """Sources and the Document model decide the language alike (ASCII text is English at once)."""
    assert guess_lang(text) == detect_lang(text)
