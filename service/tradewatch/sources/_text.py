"""HTML to plain text and date strings to aware datetimes, the same way for every kind.

Text keeps one line per paragraph (rules and extractors read lines) and drops what a
reader never sees: scripts, styles, comments. Chinese government pages indent with
U+3000 and pad with `&nbsp;`/`&ensp;`; those become plain spaces.
"""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from html.entities import html5 as _ENTITIES
from zoneinfo import ZoneInfo

from selectolax.lexbor import LexborHTMLParser, LexborNode

__all__ = [
    "SHANGHAI",
    "find_date",
    "guess_lang",
    "html_to_text",
    "node_text",
    "parse_date",
    "parse_feed_date",
    "visible_text",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")

_INVISIBLE = ["script", "style", "noscript", "template", "iframe", "object"]
_BLOCKS = (
    "p,div,li,ul,ol,h1,h2,h3,h4,h5,h6,tr,table,section,article,header,footer,blockquote,pre,"
    "dd,dt,dl,figure,figcaption,hr,address,aside,nav,main"
)
_BLOCK_TAGS = frozenset(_BLOCKS.split(","))
# Elements node_text rewrites: a subtree without them reads the same untouched (the fast path).
_REWRITTEN = frozenset(_INVISIBLE) | _BLOCK_TAGS | {"br"}
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u2002\u2003\u2009\u200b\u3000]+")
_ODD_SPACE = re.compile(r"[\t\r\f\v\u00a0\u2002\u2003\u2009\u200b\u3000]")  # _SPACES but " "
_DATE = re.compile(
    r"(?<!\d)(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})(?!\d)(?:\s*日)?"
    r"(?:\s*T?\s*(\d{1,2}):(\d{2})(?::(\d{2}))?)?"
)


# Runs, not single characters: counting by deleting runs is 3x faster than listing matches.
_CJK = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]+")
_LATIN_LETTER = re.compile(r"[A-Za-z]+")


def guess_lang(text: str, declared: str | None = None) -> str:
    """`zh` or `en` (or the declared language's primary tag), as `models.detect_lang` decides, but by regex.

    Sources set `lang` themselves because the character-by-character detection in
    the model was 40% of a feed's parse time (bench/bench_parse.py).
    """
    if declared and declared.strip():
        return declared.strip().split("-")[0].split("_")[0].lower()
    sample = text[:600]
    if sample.isascii():
        return "en"  # no ideographs to count
    cjk = len(sample) - len(_CJK.sub("", sample))
    latin = len(sample) - len(_LATIN_LETTER.sub("", sample))
    return "zh" if cjk and cjk * 3 >= latin else "en"


def _clean(text: str) -> str:
    """One line per block, no blank lines: the same text whatever the page's source formatting."""
    # _SPACES never matches "\n", so one pass over the whole text equals one per line; it
    # changes nothing in text without double spaces or other space characters (most text).
    if "  " in text or _ODD_SPACE.search(text):
        text = _SPACES.sub(" ", text)
    if "\n" not in text:
        return text.strip()
    return "\n".join(filter(None, map(str.strip, text.split("\n"))))


def _untouched(node: LexborNode) -> bool:
    """True when `node_text` would rewrite nothing inside `node`: no invisible, `br` or block descendants.

    The node itself may be a block (its line break goes after it, outside its text),
    not invisible or a `br`. Walking a list entry's few elements in Python costs a
    fraction of the three CSS queries that would each find nothing.
    """
    walk = node.traverse()
    first = next(walk, None)
    if first is None or (first.tag in _REWRITTEN and first.tag not in _BLOCK_TAGS):
        return False
    return not any(child.tag in _REWRITTEN for child in walk)


def node_text(node: LexborNode, *, drop: list[str] | tuple[str, ...] = ()) -> str:
    """Visible text of `node` with line breaks at block ends; `drop` selectors are removed first.

    Rewrites the tree under `node` (scripts removed, line breaks inserted); use
    `visible_text` to leave it as it is.
    """
    if not drop and _untouched(node):
        if node.tag in _BLOCK_TAGS:
            node.insert_after("\n")  # as the slow path does: CSS queries match their root
        return _clean(node.text(deep=True))
    for selector in drop:
        for bad in node.css(selector):
            bad.decompose()
    node.strip_tags(_INVISIBLE)
    for br in node.css("br"):
        br.replace_with("\n")
    for block in node.css(_BLOCKS):
        block.insert_after("\n")
    return _clean(node.text(deep=True))


def visible_text(node: LexborNode) -> str:
    """`node_text` of `node` without changing the tree (works on a copy only when it must)."""
    if _untouched(node):
        return _clean(node.text(deep=True))
    return node_text(node.clone())


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment or page (sources call it inside `off_loop`)."""
    if "<" not in html and "&" not in html:
        return _clean(html)
    simple = _simple_text(html)
    if simple is not None:
        return simple
    tree = LexborHTMLParser(f"<div>{html}</div>" if "<html" not in html[:500].lower() else html)
    root = tree.body or tree.root
    return node_text(root) if root is not None else ""


# The simple-markup path of html_to_text: a feed item's `<p>…<a href>…</a><br></p>` read
# in Python instead of a new lexbor document each. It accepts only markup whose HTML5
# parse is its tag structure as written (no implied closes, foster parenting, adoption
# agency, raw text, comments or ambiguous character references) and returns None for
# anything else, which the parser then reads. tests/sources/test_text.py compares both.
_WS = "[ \t\n\f]"  # HTML's whitespace: not \v, not U+00A0
_TAG = re.compile(
    rf"<(/?)([A-Za-z][A-Za-z0-9]*)((?:{_WS}+[A-Za-z_:][-A-Za-z0-9_:.]*"
    rf"(?:{_WS}*={_WS}*(?:\"[^\"]*\"|'[^']*'|[^ \t\n\f\"'=<>`]+))?)*){_WS}*(/?)>"
)
_REFERENCE = re.compile(r"&(?:([A-Za-z][A-Za-z0-9]*);|#([0-9]{1,7});|#[xX]([0-9A-Fa-f]{1,6});)")
_INLINE = frozenset({"a", "span", "b", "i", "em", "strong", "u", "small", "sub", "sup", "font", "code"})
_FLOW = frozenset({"p", "div", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_VOID = frozenset({"br", "img", "hr", "wbr"})


def _plain_char(code: int) -> bool:
    """A code point a numeric reference gives unchanged (no NUL, C1 remap, surrogate or noncharacter)."""
    return (
        code in (0x09, 0x0A)
        or 0x20 <= code <= 0x7E
        or 0xA0 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFDCF
        or (0xFDF0 <= code <= 0x10FFFF and code & 0xFFFE != 0xFFFE)
    )


def _decode(text: str) -> str | None:
    """Text with its character references replaced; None when one is not plainly `&name;`/`&#N;`."""
    out: list[str] = []
    pos = 0
    while (amp := text.find("&", pos)) >= 0:
        out.append(text[pos:amp])
        nxt = text[amp + 1 : amp + 2]
        if not nxt or not (nxt.isascii() and (nxt.isalnum() or nxt == "#")):
            out.append("&")  # a lone ampersand is text
            pos = amp + 1
            continue
        m = _REFERENCE.match(text, amp)
        if m is None:
            return None
        name, decimal, hexadecimal = m.groups()
        if name is not None:
            value = _ENTITIES.get(name + ";")
            if value is None:
                return None
        else:
            code = int(decimal, 10) if decimal is not None else int(hexadecimal, 16)
            if not _plain_char(code):
                return None
            value = chr(code)
        out.append(value)
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def _simple_text(html: str) -> str | None:
    """html_to_text of simple markup without the HTML parser; None when the markup is not that simple."""
    if "\r" in html or "\x00" in html:
        return None  # the parser's input preprocessing would change them
    # [text, closing, name, attributes, slash, text, …, text]: a `<` left in a text is not a tag we read
    pieces = _TAG.split(html)
    texts = pieces[::5]
    if any("<" in text for text in texts):
        return None
    if "&" in html:
        decoded = [_decode(text) if "&" in text else text for text in texts]
        if None in decoded:
            return None
        texts = decoded  # no None left
    parts: list[str] = [texts[0]]
    open_tags: list[str] = []
    tags = zip(pieces[1::5], pieces[2::5], pieces[3::5], pieces[4::5], texts[1:], strict=True)
    for closing, name, attributes, slash, text in tags:
        name = name.lower()
        if closing:
            if attributes or slash or not open_tags or open_tags[-1] != name:
                return None
            open_tags.pop()
            if name in _FLOW:
                parts.append("\n")
        elif name in _VOID:
            if name == "br":
                parts.append("\n")
            elif name == "hr":
                if "p" in open_tags:
                    return None
                parts.append("\n")
        elif slash:
            return None  # `<p/>` opens a p that stays open
        elif len(open_tags) >= 64:
            return None  # deep nesting is rare in a feed item and costs each check more
        elif name in _INLINE:
            if name == "a" and "a" in open_tags:
                return None
            open_tags.append(name)
        elif name in _FLOW:
            if "p" in open_tags or (name in _HEADINGS and not _HEADINGS.isdisjoint(open_tags)):
                return None
            if name == "li" and (not open_tags or open_tags[-1] not in ("ul", "ol")):
                return None
            open_tags.append(name)
        else:
            return None
        parts.append(text)
    return _clean("".join(parts))


def parse_feed_date(value: str | None, tz: tzinfo = UTC) -> datetime | None:
    """RFC 822 (RSS) or ISO 8601 (Atom, dc:date); a date without offset is taken in `tz` (UTC)."""
    if not value or not value.strip():
        return None
    value = value.strip()
    parsed: datetime | None = _rfc822(value)
    if parsed is not None:
        return parsed
    try:
        # email.utils needs five words: a one-word value (ISO 8601) could only raise there
        parsed = email.utils.parsedate_to_datetime(value) if len(value.split(None, 1)) > 1 else None
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return parse_date(value, tz)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed


_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {m: n for n, m in enumerate(_MONTH_NAMES, 1)}
_RFC822 = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"([1-9]\d{3}) (\d{2}):(\d{2}):(\d{2}) (?:([+-])(\d{2})(\d{2})|GMT|UTC|UT|Z)"
)


def _rfc822(value: str) -> datetime | None:
    """The usual RSS date (`Tue, 25 Aug 2026 18:32:56 +0000`) as email.utils reads it, without its cost."""
    m = _RFC822.fullmatch(value)
    if m is None:
        return None
    day, month, year, hour, minute, second, sign, tz_hours, tz_minutes = m.groups()
    offset = 0 if sign is None else (int(tz_hours) * 3600 + int(tz_minutes) * 60) * (-1 if sign == "-" else 1)
    try:
        return datetime(
            int(year),
            _MONTHS[month],
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=timezone(timedelta(seconds=offset)),
        )
    except ValueError:
        return None  # out of range: email.utils decides what that means


def find_date(text: str, tz: tzinfo) -> datetime | None:
    """The first `2025-12-30`, `2025/12/30`, `2025.12.30` or `2025年12月30日` (optional time) in `text`."""
    m = _DATE.search(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in m.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=tz)
    except ValueError:
        return None


def parse_date(value: str, tz: tzinfo, fmt: str | None = None) -> datetime | None:
    """A list or detail page's date: with `fmt` (strptime) when given, else the common forms."""
    value = _SPACES.sub(" ", value).strip()
    if not value:
        return None
    if fmt:
        try:
            parsed = datetime.strptime(value, fmt)
        except ValueError:
            m = _DATE.search(value)
            if m is None:
                return None
            try:
                parsed = datetime.strptime(m.group(0), fmt)
            except ValueError:
                return find_date(value, tz)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
    if not "0" <= value[0] <= "9":  # ISO 8601 starts with the year's ASCII digits: skip a sure ValueError
        return find_date(value, tz)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return find_date(value, tz)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
