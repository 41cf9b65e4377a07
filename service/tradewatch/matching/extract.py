"""Extractors: the contract's `facts` (dates, rates, announcement, items, HS codes, countries).

They read the document lightly normalised (NFKC, simplified Chinese, case kept) so
numbers and dates written in full-width or traditional characters are found too.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from functools import lru_cache
from typing import Any

from tradewatch.matching.compiler import term_literal
from tradewatch.matching.dates import all_dates, effective_date, until_date
from tradewatch.matching.glossary import Glossary
from tradewatch.matching.normalize import normalize, t2s
from tradewatch.matching.rates import rates, third_countries
from tradewatch.matching.scan import HyperscanScanner, PythonScanner, Scanner
from tradewatch.models import Document

__all__ = ["announcement", "extract_facts", "glossary_labels", "hs_codes", "plain_text"]

_ANN_ZH = [
    re.compile(r"公告\s*[〔\[(（]?\s*(?P<y>\d{4})\s*[〕\])）]?\s*年?\s*第\s*(?P<n>\d+)\s*号"),
    re.compile(r"(?P<y>\d{4})\s*年\s*第\s*(?P<n>\d+)\s*号\s*公告"),
]
_ANN_EN = [
    re.compile(
        r"\bannouncement\s+(?:no\.?|number|#)\s*(?P<n>\d+)\s*(?:of\s+|,\s*|\[|\()(?P<y>\d{4})", re.IGNORECASE
    ),
    re.compile(r"\bannouncement\s*[\[(]?(?P<y>\d{4})[\])]?\s*(?:no\.?|number)\s*(?P<n>\d+)", re.IGNORECASE),
    re.compile(r"\bannouncement\s+(?:no\.?|number)\s*(?P<y>\d{4})\s*/\s*(?P<n>\d+)", re.IGNORECASE),
    # "Announcement No. 4 of the Customs Tariff Commission of the State Council for 2025"
    re.compile(
        r"\bannouncement\s+(?:no\.?|number)\s*(?P<n>\d+)\s+of\s+the\s+[a-z ,]{3,80}?"
        r"\s(?:for|of|in)\s+(?P<y>\d{4})",
        re.IGNORECASE,
    ),
]
_CITED = re.compile(r"》\s*[（(][^）)》]{0,12}$")
# A number right after a verb that acts on an earlier notice is that notice, not this one:
# 关于暂停实施商务部公告2025年第61号的公告 is No. 70; "In Executive Order 14257, I declared…".
_CITING = re.compile(
    r"(?:暂停实施|停止实施|暂停执行|停止执行|废止|修改|修订|援引|取消(?:根据|依据|依照)?)"  # not a bare 根据:
    # "under" names this one too; a list goes on: 暂停实施…公告2025年第55号、56号…及商务部公告…第61号
    r"(?:商务部|海关总署|国务院关税税则委员会|税委会|公告|[〔\[(（]?\d{4}[〕\])）]?年?|第?\d+号|[、和与及\s])*$"
    r"|\b(?:suspend(?:s|ed|ing)?|lift(?:s|ed|ing)?|revok\w*|rescind\w*|amend\w*|supersed\w*|"
    r"replac\w*)\s+(?:the\s+)?(?:(?:implementation|enforcement|application)\s+of\s+(?:the\s+)?)?"
    r"(?:(?:mofcom|commerce ministry|ministry of commerce)(?:'s)?\s+)?$"
    # "as set forth in Announcement No. 4", "Section 4(b) of Executive Order 14257", "pursuant to"
    r"|\b(?:(?:as\s+)?set\s+(?:forth|out)\s+in|as\s+(?:provided(?:\s+for)?|specified|described|announced)\s+in"
    r"|pursuant\s+to|sec(?:tion|\.)\s*[\w().-]{1,12}\s+of)\s+(?:the\s+)?"
    r"(?:(?:mofcom|commerce ministry|ministry of commerce|customs tariff commission|tariff commission)"
    r"(?:'s)?\s+)?$",
    re.IGNORECASE,
)
# "Sec. 1. Background. In Executive Order 14257 of April 2, 2025, I declared": how an order
# opens a sentence on the one before it ("as set out in Executive Order 14358" is not this).
_CITING_ORDER = re.compile(r"(?:^|[.;:]\s+|\n\s*)in\s+$", re.IGNORECASE)
_CITING_REACH = 120  # characters looked back for the verb that acts on a (list of) number(s)
_ISSUER_LOOKBACK = 4000  # characters searched back for the issuer of a number named without one
_EXEC_ORDER = re.compile(r"\bexecutive order\s+(?:no\.?\s*)?(\d{5})\b", re.IGNORECASE)
# An order names itself in its heading ("Executive Order 14298 of May 12, 2025"); further down,
# every order number is one it builds on ("Since I signed Executive Order 14266 …").
_EXEC_ORDER_HEAD = 300  # characters of title and text
# 国务院令〔2024〕第792号 / 国务院令第792号: a State Council order (the dual-use regulation).
_STATE_COUNCIL_ORDER = re.compile(
    r"国务院令\s*(?:[〔\[(（]\s*(?P<y>\d{4})\s*[〕\])）]\s*)?第?\s*(?P<n>\d+)\s*号"
)
_ISSUERS = [  # checked in order on the text just before the number
    (re.compile(r"税则委员会|税委会|tariff commission", re.IGNORECASE), "Tariff Commission"),
    (re.compile(r"商务部|mofcom|ministry of commerce|commerce ministry", re.IGNORECASE), "MOFCOM"),
    (re.compile(r"海关总署|general administration of customs|gacc?\b", re.IGNORECASE), "GACC"),
]
_HS_ANCHOR = re.compile(
    r"(?:\bHTSUS\b|\bHTS\b|\bHS\b|海关商品编号|商品编号|税则号列|税则号|海关编码|税号)"
    r"\s*(?:codes?|subheadings?|headings?|numbers?|编码|为)?\s*[:：]?\s*",
    re.IGNORECASE,
)
_HS_CODE = re.compile(r"(?<![\d.])(\d{4}(?:\.\d{2}){1,3}|\d{4}\.\d{2}\.\d{4}|\d{6,10}|\d{4})(?![\d])")
_HS_SEP = re.compile(r"\s*(?:[,，、;；/]|\band\b|\bor\b|和|及|或)?\s*", re.IGNORECASE)


def plain_text(doc: Document) -> str:
    """Title and text, NFKC-folded and simplified, case kept: what extractors read."""
    joined = f"{doc.title}\n{doc.text}"
    return t2s(unicodedata.normalize("NFKC", joined))


def _cites(text: str, start: int) -> bool:
    """Is the number at `start` one the text acts on or names as a law's label (《…》（No.）)?"""
    return bool(
        _CITING.search(text, max(0, start - _CITING_REACH), start)
        or _CITED.search(text, max(0, start - 20), start)
    )


def _issuer(context: str) -> str:
    for pattern, name in _ISSUERS:
        if pattern.search(context):
            return name
    return ""


def _nearest_issuer(before: str) -> str:
    """The issuer named last before the number ("the commerce ministry said it would suspend
    …, under Announcement No. 70")."""
    best, name = -1, ""
    for pattern, label in _ISSUERS:
        for m in pattern.finditer(before):
            if m.start() > best:
                best, name = m.start(), label
    return name


def announcement(text: str, extra: Mapping[str, Any] | None = None) -> str | None:
    """The first notice number not merely cited, one key in both languages; None when every one is.

    `商务部 海关总署公告2025年第18号` and "MOFCOM Announcement No. 18 of 2025" both give
    `MOFCOM Announcement No. 18 of 2025`; a US executive order number when no notice is named.
    A cited number is never given instead: rules deduplicate on this key, and a suspension
    keyed by the notice it suspends would be dropped as a repeat of that notice's alert.
    The number a source read from the page's own header (`extra`: MOFCOM's 文号, the Federal
    Register's executive order number) comes first.
    """
    extra = extra or {}
    own = extra.get("announcement")
    if isinstance(own, str) and own.strip() and extra.get("announcement_from", "header") == "header":
        found = announcement(t2s(unicodedata.normalize("NFKC", own)))
        if found is not None and found.startswith("Announcement "):  # no issuer in the header
            issuer = _issuer(str(extra.get("issuer") or "")) or _nearest_issuer(text[:_ISSUER_LOOKBACK])
            found = f"{issuer} {found}" if issuer else found
        if found is not None:
            return found
    order_number = str(extra.get("executive_order_number") or "")
    if order_number.isdigit():
        return f"Executive Order {order_number}"
    first: re.Match[str] | None = None
    for pattern in (*_ANN_ZH, *_ANN_EN):
        for m in pattern.finditer(text):
            if first is not None and m.start() >= first.start():
                break  # a later number of this pattern cannot be the first
            if _cites(text, m.start()):
                continue  # 《…》（税委会公告2025年第2号）, 暂停实施…公告, "suspends Announcement No. 61"
            first = m
            break
    if first is not None:
        # the issuer is named just before ("MOFCOM and GACC jointly issued Announcement …")
        start = first.start()
        issuer = _issuer(text[max(0, start - 80) : first.end()])
        issuer = issuer or _nearest_issuer(text[max(0, start - _ISSUER_LOOKBACK) : start])
        label = f"{issuer} Announcement" if issuer else "Announcement"
        return f"{label} No. {int(first.group('n'))} of {first.group('y')}"
    for order in _STATE_COUNCIL_ORDER.finditer(text):
        if not _cites(text, order.start()):  # numbered across years: 〔2024〕 is not part of the key
            return f"State Council Order No. {int(order.group('n'))}"
    for eo in _EXEC_ORDER.finditer(text, 0, _EXEC_ORDER_HEAD + 40):
        start, before = eo.start(), max(0, eo.start() - 40)
        if start >= _EXEC_ORDER_HEAD:
            break
        if not _CITING.search(text, before, start) and not _CITING_ORDER.search(text, before, start):
            return f"Executive Order {eo.group(1)}"
    return None


def hs_codes(text: str) -> list[str]:
    """Customs codes named after an HS/HTS/商品编号 anchor, as written (dots kept), without repeats."""
    out: list[str] = []
    for anchor in _HS_ANCHOR.finditer(text):
        pos = anchor.end()
        while True:
            m = _HS_CODE.match(text, pos)
            if m is None:
                break
            if m.group(1) not in out:
                out.append(m.group(1))
            pos = _HS_SEP.match(text, m.end()).end()  # type: ignore[union-attr]
    return out


_NOT_WORD = bytes(range(256)).translate(None, b"abcdefghijklmnopqrstuvwxyz0123456789_")
_IS_WORD = [b not in _NOT_WORD for b in range(256)]


class _LabelFinder:
    """Every spelling of every entry of one kind in one literal scan, instead of a regex per entry.

    Gives what a leftmost search per entry gives: each entry's first occurrence of any of
    its terms, Latin terms whole-word (a trailing `*` makes a prefix).
    """

    def __init__(self, glossary: Glossary, kind: str) -> None:
        self.labels: list[str] = []
        self.literals: dict[bytes, int] = {}  # literal → its id in the scanner
        literals = self.literals
        self.variants: list[list[tuple[int, bool, bool]]] = []
        for n, entry in enumerate(glossary.of_kind(kind).values()):
            self.labels.append(entry.label)
            for term in entry.terms():
                body, left, right = term_literal(term)
                if not body:
                    continue  # never matches: `rules check` refuses such a term (term_problem)
                if body not in literals:
                    literals[body] = len(literals)
                    self.variants.append([])
                self.variants[literals[body]].append((n, left, right))
        self.lengths = [len(lit) for lit in literals]
        self.scanner: Scanner
        try:  # the rulebook's load already said when hyperscan is missing
            self.scanner = HyperscanScanner(list(literals))
        except ImportError:
            self.scanner = PythonScanner(list(literals))

    def find(self, normalised: str) -> list[str]:
        buf = normalised.encode("utf-8")
        size = len(buf)
        hits: list[tuple[int, int, int]] = []
        for lid, start in self.scanner.scan(buf):
            end = start + self.lengths[lid]
            left_ok = start == 0 or not _IS_WORD[buf[start - 1]]
            right_ok = end == size or not _IS_WORD[buf[end]]
            for n, left, right in self.variants[lid]:
                if (left and not left_ok) or (right and not right_ok):
                    continue
                hits.append((start, -end, n))
        # A term inside a longer one of another entry is that one's: 钕 in 钕铁硼 (NdFeB
        # magnets) is not neodymium the metal; the longest at each place wins.
        first: dict[int, int] = {}
        reach_start, reach = -1, -1  # the hit reaching furthest right so far
        for start, neg_end, n in sorted(hits):
            end = -neg_end
            if end <= reach and reach - reach_start > end - start:
                continue  # inside a longer term (one spelling shared by two entries counts for both)
            if end > reach:
                reach_start, reach = start, end
            if start < first.get(n, size + 1):
                first[n] = start
        out: list[str] = []
        for _, label in sorted((start, self.labels[n]) for n, start in first.items()):
            if label not in out:
                out.append(label)
        return out


@lru_cache(maxsize=8)
def _label_finder(glossary: Glossary, kind: str) -> _LabelFinder:
    return _LabelFinder(glossary, kind)


def glossary_labels(normalised: str, glossary: Glossary, kind: str) -> list[str]:
    """English labels of the glossary entries of one kind found, in order of first mention."""
    return _label_finder(glossary, kind).find(normalised)


def _effective_on(doc: Document) -> str | None:
    """The effective date the source states as data (the Federal Register's `effective_on`)."""
    value = doc.extra.get("effective_on")
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        return None


_Extractor = Callable[[Document, str, str, Glossary], Any]
EXTRACTORS: dict[str, _Extractor] = {
    "effective_date": lambda doc, plain, _n, _g: (
        _effective_on(doc) or effective_date(plain, doc.published_at)
    ),
    "until": lambda doc, plain, _n, _g: until_date(plain, doc.published_at),
    "dates": lambda doc, plain, _n, _g: all_dates(plain, doc.published_at),
    "rates": lambda _d, plain, _n, glossary: rates(plain, third_countries(glossary)),
    "announcement": lambda doc, plain, _n, _g: announcement(plain, doc.extra),
    "items": lambda _d, _p, norm, glossary: glossary_labels(norm, glossary, "item"),
    "hs_codes": lambda _d, plain, _n, _g: hs_codes(plain),
    "countries": lambda _d, _p, norm, glossary: glossary_labels(norm, glossary, "country"),
}


def extract_facts(
    names: Iterable[str], doc: Document, glossary: Glossary, cache: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The facts a rule asked for; empty findings are left out, so `facts` only says what is known.

    `cache` (one dict per document) shares extractions between the rules that fired on it.
    """
    cache = {} if cache is None else cache
    facts: dict[str, Any] = {}
    for name in names:
        if name not in cache:
            if "" not in cache:
                plain = plain_text(doc)
                cache[""] = (plain, normalize(plain))
            plain, norm = cache[""]
            cache[name] = EXTRACTORS[name](doc, plain, norm, glossary)
        value = cache[name]
        if value:
            facts[name] = copy.copy(value)
    return facts
