"""The small selector language of list pages: CSS, `@attr` for an attribute, `||` for fallbacks.

`a@title || a` reads the anchor's title attribute and falls back to its text; the
first alternative that yields something wins. Plain CSS everywhere else, so a user
can copy a selector from the browser's inspector.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from selectolax.lexbor import LexborHTMLParser, LexborNode

from tradewatch.sources._text import node_text

__all__ = ["Selector", "first_node", "parse_html"]

_ATTR = re.compile(r"^(.*?)@([A-Za-z_:][-A-Za-z0-9_:.]*)$")
# Bare tag names looked up by walking a few elements in Python: cheaper than CSS parsing
# its query on every call. Only names no SVG/MathML element spells in mixed case.
_WALKED_TAGS = frozenset(
    {"a", "abbr", "b", "dd", "div", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "i", "label"}
    | {"li", "p", "small", "span", "strong", "td", "th", "time", "tr", "u"}
)
_WALK_LIMIT = 24  # elements; a bigger subtree is searched by lexbor


def _first(node: LexborNode, css: str) -> LexborNode | None:
    """`node.css_first(css)`, the node itself included (lexbor matches the search root)."""
    if css in _WALKED_TAGS:
        for walked, element in enumerate(node.traverse()):  # document order, `node` first, like CSS
            if element.tag == css:
                return element
            if walked >= _WALK_LIMIT:
                break
        else:
            return None
    return node.css_first(css)


@dataclass(frozen=True)
class _Alternative:
    css: str
    attr: str | None


@dataclass(frozen=True)
class Selector:
    """A parsed selector; `value(node)` is its text or attribute, `nodes(node)` its elements."""

    alternatives: tuple[_Alternative, ...]

    @classmethod
    def parse(cls, text: str) -> Selector:
        alts = []
        for part in text.split("||"):
            part = part.strip()
            if not part:
                continue
            m = _ATTR.match(part)
            css, attr = (m.group(1).strip(), m.group(2)) if m else (part, None)
            alts.append(_Alternative(css or ":scope", attr))
        if not alts:
            raise ValueError("empty selector")
        return cls(tuple(alts))

    def check(self) -> Selector:
        """Raise ValueError naming a CSS part lexbor cannot parse (called when the config loads)."""
        for alt in self.alternatives:
            problem = None if alt.css == ":scope" else _css_problem(alt.css)
            if problem is not None:
                raise ValueError(f"invalid CSS selector {alt.css!r}: {problem}")
        return self

    def value(self, node: LexborNode) -> str:
        """The first non-empty text or attribute value the alternatives find under `node`."""
        for alt in self.alternatives:
            target = node if alt.css == ":scope" else _first(node, alt.css)
            if target is None:
                continue
            if alt.attr is not None:
                raw = target.attributes.get(alt.attr)
                value = (raw or "").strip()
            else:
                value = " ".join(node_text(target).split())
            if value:
                return value
        return ""

    def nodes(self, node: LexborNode) -> list[LexborNode]:
        """The elements of the first alternative that matches anything."""
        for alt in self.alternatives:
            found = list(node.css(alt.css))
            if found:
                return found
        return []


def first_node(tree: LexborHTMLParser, selector: Selector) -> LexborNode | None:
    root = tree.root
    if root is None:
        return None
    found = selector.nodes(root)
    return found[0] if found else None


def parse_html(text: str) -> LexborHTMLParser:
    """The page's tree. Sources call it inside `off_loop`: some markup makes any HTML5 parser slow."""
    return LexborHTMLParser(text)


@lru_cache(maxsize=1024)  # a config of many sources repeats the same few selectors
def _css_problem(css: str) -> str | None:
    """Why lexbor cannot parse `css`, or None."""
    probe = LexborHTMLParser("<p></p>").root
    if probe is None:
        return None
    try:
        probe.css(css)
    except Exception as exc:  # selectolax raises its own SelectolaxError
        return str(exc)
    return None
