"""A bound on the HTML parser's work: markup built to make it quadratic is refused before parsing.

Opening a block element (div, ul, section, …) or closing a p makes an HTML5 tree builder
look down its stack of open elements for an open `p`; lexbor walks the whole stack, so
`<div>` nested 100,000 deep (1.3 MB) took 26 s of the event loop. Real pages nest a few
dozen deep. The cost model counts, for each such tag, the block elements open around it;
markup over MAX_COST (about a tenth of a second of lexbor here) is refused. Pages with fewer
tags than could ever reach it are not scanned at all, so ordinary pages pay one count.
"""

from __future__ import annotations

import math
import re

__all__ = ["MAX_COST", "check_markup"]

MAX_COST = 50_000_000  # 10,000 nested divs: about 0.1 s of lexbor on the 2-core bench machine
# Start tags that open a block the parser keeps on its stack (group 2), and the other tags
# that make it scan the stack; matched in lowered text (an IGNORECASE scan is 4x slower).
_NESTING = (
    "address|article|aside|blockquote|center|details|dialog|dir|div|dl|fieldset|figcaption|figure|"
    "footer|header|hgroup|main|menu|nav|ol|search|section|summary|ul"
)
_TAG = re.compile(
    rf"<(/?)(?:({_NESTING})|p|li|dd|dt|h[1-6]|pre|listing|form|hr|xmp|plaintext|table)(?=[\s/>])"
)
_SCAN_BELOW = math.isqrt(2 * MAX_COST)  # n tags can cost at most n²/2


def check_markup(html: str) -> None:
    """Raise ValueError when parsing `html` would cost the tree builder more than MAX_COST."""
    if html.count("<") <= _SCAN_BELOW:
        return
    depth = cost = 0
    for m in _TAG.finditer(html.lower()):
        cost += depth
        if m.group(2) is not None:
            depth += -1 if m.group(1) else 1
            depth = max(depth, 0)
        if cost > MAX_COST:
            raise ValueError(
                f"markup nests block elements too deeply to parse safely "
                f"({depth} open at character {m.start()}); refused"
            )
