"""A bound on the HTML parser's work: markup built to make it quadratic is refused before parsing.

An HTML5 tree builder walks its stack of open elements at many tags (is a `p` open in
button scope? which element does this end tag close?). lexbor walks the whole stack, so
`<div>` nested 100,000 deep (1.3 MB) took 26 s of the event loop, and `<span>` 100,000 deep
followed by as many `<hr>` took minutes. Real pages nest a few dozen deep.

`check_markup` replays the tokens with a small model of the stack and adds up its depth at
every tag: an upper bound of the parser's walks. Over MAX_COST (about a third of a second of
lexbor here) the markup is refused. The model errs towards deeper stacks, never shallower:
an element is only taken off when the parser surely closes it (its end tag or an implied
close found near the top of the stack, with nothing in between that would stop the parser).
Comments and the text of `script`, `style` and the like are skipped as the parser skips
them, so markup hidden there neither counts nor hides. Pages with fewer tags than could ever
reach the limit are not scanned.
"""

from __future__ import annotations

import math
import re

__all__ = ["MAX_COST", "check_markup"]

MAX_COST = 200_000_000  # 20,000 nested divs: about 0.4 s of lexbor on the 2-core bench machine
_SCAN_BELOW = math.isqrt(2 * MAX_COST)  # n tags can cost at most n²/2
_NEAR = 8  # how far down the stack an implied or explicit close is looked for

# The next markup construct: a comment, a start or end tag (attribute values as the tokenizer
# reads them, possessive so hostile input cannot make the scan backtrack), or a bogus comment.
_ATTRS = r"""(?:[\s/]++|[^\s/>][^\s/>=]*+(?:\s*+=\s*+(?:"[^"]*+"|'[^']*+'|[^\s>]*+))?+)*+"""
_NEXT = re.compile(rf"<(?:(!--)|(/?)([a-z][^\s/>]*+){_ATTRS}>|[!?/][^>]*+>?)")
_COMMENT_END = re.compile(r"--!?>")
_NAME = re.compile(r"[a-z][^\s/>]*")


def _names(words: str) -> frozenset[str]:
    return frozenset(words.split())


_VOID = _names("area base br col embed hr img input keygen link meta param source track wbr")
_RAW_TEXT = _names("script style textarea title xmp iframe noembed noframes")
_IGNORED = _names("html head body")  # merged into the ones the parser made already
# Elements that stop the parser's search for an element to close (HTML's "special" category).
_SPECIAL = _names(
    "address applet area article aside base basefont bgsound blockquote body br button caption center "
    "col colgroup dd details dir div dl dt embed fieldset figcaption figure footer form frame frameset "
    "h1 h2 h3 h4 h5 h6 head header hgroup hr html iframe img input keygen li link listing main marquee "
    "menu meta nav noembed noframes noscript object ol p param plaintext pre script search section "
    "select source style summary table tbody td template textarea tfoot th thead title tr track ul wbr "
    "xmp mi mo mn ms mtext annotation-xml foreignobject desc"
)
# Start tags that close an open `p` (in button scope) first.
_CLOSES_P = _names(
    "address article aside blockquote center details dialog dir div dl fieldset figcaption figure "
    "footer header hgroup main menu nav ol p search section summary ul h1 h2 h3 h4 h5 h6 pre listing "
    "form li dd dt plaintext table hr xmp"
)
_SCOPE = _names(  # boundaries of "has an element in (button) scope"
    "applet caption html table td th marquee object template button "
    "mi mo mn ms mtext annotation-xml foreignobject desc title"
)
_LIST_SCOPE = _SCOPE | {"ol", "ul"}
_TABLE_SCOPE = _names("html table template")
_TABLE_PARTS = _names("caption colgroup tbody thead tfoot tr td th")  # ignored outside a table
_LIST_STOP = _SPECIAL - {"address", "div", "p"}  # the li/dd/dt algorithm walks past these three
# A start tag closing an open element of its family: (family, stop set, how deep to look).
# (An `option` is not: inside and outside `select` parsers differ on when it closes one.)
_FAMILY: dict[str, tuple[tuple[str, ...], frozenset[str], int]] = {
    "a": (("a",), _SPECIAL, _NEAR),  # an open `a` is closed first (the adoption agency)
    "li": (("li",), _LIST_STOP, _NEAR),
    "dd": (("dd", "dt"), _LIST_STOP, _NEAR),
    "dt": (("dd", "dt"), _LIST_STOP, _NEAR),
    "tr": (("tr",), _TABLE_SCOPE, _NEAR),
    "td": (("td", "th"), _TABLE_SCOPE, _NEAR),
    "th": (("td", "th"), _TABLE_SCOPE, _NEAR),
}
# HTML start tags that end SVG/MathML content; and the elements whose content is HTML again.
_BREAKOUT = _names(
    "b big blockquote body br center code dd div dl dt em embed h1 h2 h3 h4 h5 h6 head hr i img li "
    "listing menu meta nobr ol p pre ruby s small span strong strike sub sup table tt u ul var font"
)
_INTEGRATION = _names("foreignobject desc title mi mo mn ms mtext annotation-xml")


_FORMATTING = _names("a b big code em font i nobr s small strike strong tt u")
_MARKERS = _names("td th caption applet object marquee template")


class _Model:
    """The parser's state as far as its cost goes; errs towards more work, never less.

    `names` is the stack of open elements. `formatting` is the list of active formatting
    elements (by tag text), which the parser re-opens after an element closed them
    implicitly: `<p><b id=1></p>` repeated makes it re-create every one of them at each
    paragraph. `options` counts a `select`'s options, which lexbor re-walks at each one.
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self.tables = 0  # open `table` elements, so table parts count only inside one
        self.selects = 0
        self.options = 0
        self.formatting: list[str] = []  # tag texts; "" is a marker (a cell, caption, …)
        self.copies: dict[str, int] = {}  # entries per tag text (the parser keeps three at most)

    def cost(self) -> int:
        """An upper bound of the parser's walks at the next tag."""
        return len(self.names) + len(self.formatting)

    def push(self, name: str, tag: str) -> None:
        self.names.append(name)
        self.tables += name == "table"
        if name == "select":
            self.selects += 1
            self.options = 0
        if name in _MARKERS:
            self.formatting.append("")
        elif name in _FORMATTING and self.copies.get(tag, 0) < 3:
            self.copies[tag] = self.copies.get(tag, 0) + 1
            self.formatting.append(tag)

    def close_near(self, names: tuple[str, ...], stop: frozenset[str], near: int = _NEAR) -> bool:
        """Pop down to the nearest of `names` within `near` of the top, unless a `stop` element
        lies above it; True when something was popped."""
        stack = self.names
        for i in range(len(stack) - 1, max(len(stack) - 1 - near, -1), -1):
            if stack[i] in names:
                popped = stack[i:]
                del stack[i:]
                self.tables -= popped.count("table")
                self.selects -= popped.count("select")
                if any(n in _MARKERS for n in popped):
                    self._clear_to_marker()
                return True
            if stack[i] in stop:
                return False
        return False

    def end_formatting(self, name: str) -> None:
        """The element's own end tag takes its entry off the list (the adoption agency)."""
        for i in range(len(self.formatting) - 1, -1, -1):
            tag = self.formatting[i]
            if tag == "":
                return
            if _tag_name(tag) == name:
                self._drop(i)
                return

    def _clear_to_marker(self) -> None:
        while self.formatting:
            i = len(self.formatting) - 1
            if self.formatting[i] == "":
                del self.formatting[i]
                return
            self._drop(i)

    def _drop(self, i: int) -> None:
        tag = self.formatting.pop(i)
        self.copies[tag] -= 1


def _tag_name(tag: str) -> str:
    return _NAME.match(tag, 1).group()  # type: ignore[union-attr]  # a start tag's text


def check_markup(html: str) -> None:
    """Raise ValueError when parsing `html` could cost the tree builder more than MAX_COST."""
    if html.count("<") <= _SCAN_BELOW:
        return
    text = html.lower()
    model = _Model()
    modes: list[bool] = []  # per open svg/math (True) and HTML integration point in it (False)
    ever_foreign = False  # after any svg/math, script/style text is counted (in SVG it is markup)
    cost = pos = 0
    while (m := _NEXT.search(text, pos)) is not None:
        pos = m.end()
        cost += model.cost()
        if cost > MAX_COST:
            raise ValueError(
                f"markup nests elements too deeply to parse safely ({len(model.names)} open at "
                f"character {m.start()}); refused"
            )
        if m.group(1):  # a comment: nothing in it is markup
            close = _COMMENT_END.search(text, pos)
            pos = close.end() if close else len(text)
            continue
        name = m.group(3)
        if name is None or name in _IGNORED:
            continue  # a doctype, processing instruction or other bogus comment
        foreign = bool(modes) and modes[-1]
        if m.group(2):  # an end tag
            if modes and (name in ("svg", "math") if modes[-1] else name in _INTEGRATION):
                modes.pop()
            if name in _FORMATTING:
                model.end_formatting(name)
            if name in _TABLE_PARTS or name == "table":
                model.close_near((name,), _TABLE_SCOPE)
            elif name in ("option", "optgroup"):
                model.close_near((name,), frozenset(), 1)  # only the current node
            else:
                stop = _LIST_SCOPE if name == "li" else _SCOPE if name in _SPECIAL else _SPECIAL
                model.close_near((name,), stop)
            continue
        closed = m.group(0).endswith("/>")
        if foreign and name in _BREAKOUT:
            while modes and modes[-1]:  # HTML again: the parser pops the foreign elements
                modes.pop()  # (the model keeps them on its stack: deeper, never shallower)
            foreign = False
        elif foreign and closed:
            continue  # self-closed in SVG or MathML; in HTML the slash changes nothing
        elif foreign and name in _INTEGRATION:
            modes.append(False)  # its content is HTML
            foreign = False
        if name in ("svg", "math"):
            ever_foreign = True
            if closed:
                continue
            modes.append(True)
            foreign = True
        if not foreign:  # implied closes are HTML's; in SVG and MathML every element nests
            if name in _CLOSES_P:
                model.close_near(("p",), _SCOPE)
            if name in _TABLE_PARTS and not model.tables:
                continue  # outside a table the parser ignores it
            family = _FAMILY.get(name)
            if family is not None:
                model.close_near(*family)
            if name == "a":
                model.end_formatting("a")
            if name == "option" and model.selects:
                model.options += 1
                cost += model.options
        if name in _VOID:
            continue
        if name == "plaintext":
            return  # the rest of the document is text
        if name in _RAW_TEXT and not ever_foreign:
            at = text.find(f"</{name}", pos)
            pos = at if at >= 0 else len(text)
            continue
        model.push(name, m.group(0))
