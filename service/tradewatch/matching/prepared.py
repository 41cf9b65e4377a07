"""A document prepared for matching: normalised once, scanned once for every rule's terms."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field

from tradewatch.matching.compiler import Compiled
from tradewatch.matching.normalize import normalize
from tradewatch.matching.scan import Scanner
from tradewatch.matching.schema import LEAD_CHARS
from tradewatch.models import Document

__all__ = ["Prepared", "prepare"]

_NOT_WORD = bytes(range(256)).translate(None, b"abcdefghijklmnopqrstuvwxyz0123456789_")
_IS_WORD = [b not in _NOT_WORD for b in range(256)]
_TOKEN = re.compile(rb"[a-z0-9_]+|[\xc0-\xff][\x80-\xbf]*")
# Word starts made countable: `w` a Latin word byte, `L` the lead byte of a non-ASCII
# character (each one a word, as in _TOKEN), a space anything else.
_WORD_MAP = bytes((ord("w") if _IS_WORD[b] else ord("L") if b >= 0xC0 else ord(" ")) for b in range(256))


@dataclass
class Prepared:
    """One document normalised once: title and text, their bytes joined by NUL, and the term hits.

    Hit bits: 1 title, 2 text, 4 lead (the text's first LEAD_CHARS characters, so also 2).
    `occurrences` lists each (pattern id, start byte) found; `starts` groups them by
    pattern, built only when a `near` condition asks.
    """

    title: str
    text: str
    buf: bytes
    sep: int
    lead_end: int
    hits: dict[int, int] = field(default_factory=dict)
    occurrences: list[tuple[int, int]] = field(default_factory=list)
    _starts: dict[int, list[int]] | None = None
    _tokens: list[int] | None = None
    _present: dict[int, set[int]] = field(default_factory=dict)
    _word_map: bytes | None = None

    @property
    def starts(self) -> dict[int, list[int]]:
        """Start bytes of each pattern's occurrences, in scan order."""
        if self._starts is None:
            self._starts = {}
            for pid, start in self.occurrences:
                self._starts.setdefault(pid, []).append(start)
        return self._starts

    def present(self, mask: int) -> set[int]:
        """The pattern ids that occur in the fields of `mask` (computed once per mask)."""
        found = self._present.get(mask)
        if found is None:
            found = self._present[mask] = {pid for pid, bits in self.hits.items() if bits & mask}
        return found

    @property
    def tokens(self) -> list[int]:
        """Start bytes of the words (Latin words and single CJK characters), for word distances."""
        if self._tokens is None:
            self._tokens = [m.start() for m in _TOKEN.finditer(self.buf)]
        return self._tokens

    def token_at(self, offset: int) -> int:
        """The index of the word at a byte offset."""
        return bisect_right(self.tokens, offset) - 1

    def word_indices(self, offsets: set[int]) -> dict[int, int]:
        """`token_at` for a few offsets at once, by counting word starts (no tokenising)."""
        if self._word_map is None:
            self._word_map = self.buf.translate(_WORD_MAP)
        m = self._word_map
        out: dict[int, int] = {}
        count = 1 if m[:1] in (b"w", b"L") else 0  # word starts before pos; at 0 no gap precedes a word
        pos = 1
        for offset in sorted(offsets):
            end = offset + 1
            if end > pos:
                count += m.count(b"L", pos, end) + m.count(b" w", pos - 1, end) + m.count(b"Lw", pos - 1, end)
                pos = end
            out[offset] = count - 1
        return out


def prepare(doc: Document, compiled: Compiled, scanner: Scanner) -> Prepared:
    """Normalise a document and record which patterns occur in which field (1 title, 2 text)."""
    title = normalize(doc.title)
    text = normalize(doc.text)
    tb = title.encode("utf-8")
    xb = text.encode("utf-8")
    buf = tb + b"\x00" + xb
    sep = len(tb)
    lead = len(xb) if len(text) <= LEAD_CHARS else len(text[:LEAD_CHARS].encode("utf-8"))
    lead_end = sep + 1 + lead
    p = Prepared(title=title, text=text, buf=buf, sep=sep, lead_end=lead_end)
    found = scanner.scan(buf)
    if not found:
        return p
    size = len(buf)
    hits = p.hits
    occurrences = p.occurrences
    variants = compiled.variants
    lengths = compiled.lengths
    for lid, start in found:
        end = start + lengths[lid]
        left_ok = start == 0 or not _IS_WORD[buf[start - 1]]
        right_ok = end == size or not _IS_WORD[buf[end]]
        bit = 1 if start < sep else (6 if start < lead_end else 2)
        for pid, left, right in variants[lid]:
            if (left and not left_ok) or (right and not right_ok):
                continue
            hits[pid] = hits.get(pid, 0) | bit
            occurrences.append((pid, start))
    return p
