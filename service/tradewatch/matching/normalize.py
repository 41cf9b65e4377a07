"""Text normalisation done once per document, so every rule compares like with like.

NFKC folds full-width/half-width forms, OpenCC's traditional→simplified character
table folds 繁體 to 简体, `casefold` folds Latin case, whitespace collapses to one
space (and disappears between two Chinese characters, where a line break is layout,
not a word gap), and a hyphen between two words becomes a space, so `rare earth`
also finds `rare-earth` and `90 day` finds `90-day` (a hyphen between two numbers
stays). One word keeps its case's meaning: `US` in capitals becomes `u.s.` (the
country), so folding it does not turn it into the pronoun `us`. Terms go through the
same function, so they stay in step.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from importlib import resources

__all__ = ["normalize", "t2s", "term_literal", "term_problem"]

# A space between two Chinese characters is layout (a wrapped line), not a word gap.
# Patterns start with the literal character so the regex engine can skip ahead fast.
_CJK_GAP = re.compile(" (?<=[\u3400-\u9fff\uf900-\ufaff] )(?=[\u3400-\u9fff\uf900-\ufaff])")
_HYPHENS = "-‐‑‒–"
# A hyphen joining a word to a letter or a number to a word ("rare-earth", "90-day") is a
# space; between two numbers (2025-11-10, HS 8505-11) it stays.
_LETTER_HYPHEN = re.compile(r"[-‐‑‒–](?:(?<=[^\W\d_][-‐‑‒–])(?=[^\W_])|(?<=\d[-‐‑‒–])(?=[^\W\d_]))")
# Full-width ASCII and the ideographic space are nearly all NFKC changes in Chinese text;
# mapping them first lets most documents skip the (slow) full NFKC pass.
_FULL_WIDTH = re.compile("[\uff01-\uff5e\u3000]")
_US = re.compile(r"(?<![A-Za-z.])US(?![A-Za-z])")
# "Non-tariff" measures are no tariff: 非关税 and "non-tariff" become one word, so the terms
# 关税 and "tariff" do not find a tariff in "非关税反制措施" or "non-tariff countermeasures".
# Not after 除 (除非关税…, "unless tariffs"), 南, 北, 东, 西 or 中 (南非关税, South Africa's…),
# 并, 若, 无 or 莫.
_NON_TARIFF = re.compile(r"(?<![除南北东西中并若无莫])非关税|\bnon tariff")


@lru_cache(maxsize=1)
def _t2s_table() -> tuple[dict[int, str], frozenset[str]]:
    """OpenCC's TSCharacters table as a `str.translate` map plus the set of its keys."""
    table: dict[int, str] = {}
    text = resources.files("opencc").joinpath("dictionary", "TSCharacters.txt").read_text(encoding="utf-8")
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 1 and parts[1] != parts[0]:
            table[ord(parts[0])] = parts[1]
    return table, frozenset(chr(c) for c in table)


def t2s(text: str) -> str:
    """Traditional → simplified Chinese, character by character (phrases are not needed to match)."""
    table, keys = _t2s_table()
    if keys.isdisjoint(text):
        return text
    return text.translate(table)


def _half_width(m: re.Match[str]) -> str:
    ch = m.group()
    return " " if ch == "\u3000" else chr(ord(ch) - 0xFEE0)


def _nfkc(text: str) -> str:
    """NFKC, fast for the usual case where only full-width forms need folding."""
    text = _FULL_WIDTH.sub(_half_width, text)
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)


def normalize(text: str) -> str:
    """The one normal form both documents and terms are matched in."""
    if "US" in text:
        text = _US.sub("U.S.", text)
    if text.isascii():
        text = " ".join(text.lower().split())
        if "-" in text:
            text = _LETTER_HYPHEN.sub(" ", text)
    else:
        text = t2s(_nfkc(text)).casefold()
        text = _CJK_GAP.sub("", " ".join(text.split()))
        if any(h in text for h in _HYPHENS):
            text = _LETTER_HYPHEN.sub(" ", text)
    if "non tariff" in text or "非关税" in text:
        text = _NON_TARIFF.sub(_one_word, text)
    return text


def _one_word(m: re.Match[str]) -> str:
    return "nontariff" if m.group().startswith("non") else "非关\u200b税"


@lru_cache(maxsize=65536)  # rulebooks repeat their common terms thousands of times
def term_literal(term: str) -> tuple[bytes, bool, bool]:
    """A term's normalised bytes and whether it needs a word boundary on the left and right."""
    text = term.strip()
    prefix = text.endswith("*")
    body = normalize(text[:-1] if prefix else text)
    left = body[:1].isascii() and body[:1].isalnum()
    right = not prefix and body[-1:].isascii() and body[-1:].isalnum()
    return body.encode("utf-8"), left, right


def term_problem(term: str) -> str | None:
    """Why a term (of a rule or a glossary entry) can never be matched, or None."""
    text = term.strip()
    if "*" in (text[:-1] if text.endswith("*") else text):
        return f"term {term!r}: '*' is only allowed at the end (prefix)"
    if not term_literal(text)[0]:
        return f"empty term {term!r}"
    return None
