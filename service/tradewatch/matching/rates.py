"""The `rates` fact: the percentages a tariff or a control's threshold names, not any percentage.

A rate is a measure's when its sentence speaks of a tariff near it; one tied to a third
country alone is left out of a US–China alert's facts; a market or trade figure's move is
no rate ("the Nasdaq fell 3.6%"). Read on the document's lightly normalised text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice

from tradewatch.matching.dates import chinese_number
from tradewatch.matching.glossary import Glossary

__all__ = ["rates", "third_countries"]

_RATE = re.compile(
    r"(?<![\d.])(\d{1,4}(?:\.\d+)?)(?:\s*%|[\s-]*(?:percent|per cent|pct|pc)\b)", re.IGNORECASE
)  # 34%, 34 percent, 34-percent, 34 per cent, 34 pct, 34 pc (Indian and British wire copy)
_RATE_ZH = re.compile(r"百分之([零〇一二两三四五六七八九十百]+(?:点[零〇一二三四五六七八九]+)?)")
# A rate is a measure's when the same sentence speaks of a tariff, or of a control's threshold
# (the 0.1% de minimis value share, the 50% ownership rule), near it: "the S&P 500 dropped
# 2.7%" and "a 90% market share" are not rates a buyer pays.
_TARIFF_WORD = re.compile(
    r"tariff|dut(?:y|ies)|levy|levies|\brates?\b|impos|surcharge|percentage point|ad valorem|"
    r"reciprocal|retaliat|customs|\btax|additional|de minimis|owned|ownership|threshold|"
    r"关税|税率|加征|征收|税|价值比例|持股|控股|股权",
    re.IGNORECASE,
)
# A market or trade figure moving is not a rate, even beside a tariff: "the Nasdaq fell 3.6%
# while Trump announced tariffs of 25%", "exports rose 5% despite the duties", 股指下跌2%.
# Read in the clause just before the number; a tariff itself moving ("tariffs rose to 30%")
# has no such subject and stays a rate.
_MARKET_MOVE = re.compile(
    r"(?:\b(?:nasdaq|s&p(?:\s*500)?|dow(?:\s+jones)?|stocks?|shares|equities|ind(?:ex|ices|exes)|"
    r"markets?|yuan|renminbi|dollar|futures|bonds?|yields?|oil|copper|prices?|exports?|imports?|"
    r"output|gdp|sales|profits?|earnings|revenue|inflation)\b[^.;:%\d]{0,40}?\b"
    r"(?:fell|fall(?:s|ing)?|dropped|drops?|rose|rises?|rising|gained|gains?|slid|slipped|tumbled|"
    r"jumped|climbed|lost|declined|plunged|surged|sank|slumped|rallied|soared|grew|shrank|"
    r"increased|decreased|down|up)\b(?:\s+(?:by|about|around|nearly|almost|some|more\s+than))*"
    r"|(?:股市|股指|指数|道指|纳指|标普|美股|A股|港股|汇率|人民币|油价|价格|出口|进口)"
    r"[^，。；%\d]{0,10}?(?:下跌|上涨|下降|增长|下滑|攀升|回落|上升|跌|涨)了?)\s*$",
    re.IGNORECASE,
)
_CLAUSE_START = re.compile(r"[.;:,!?。；：，！？]\s*|\b(?:while|as|after|before|but|and)\s+", re.IGNORECASE)
_RATE_REACH = (120, 40)  # characters looked at before and after the number
_MAX_RATES_READ = 300  # percentages looked at per document: an annex of rate tables is not news
# A sentence or paragraph ends (not at "U.S. " or at a list's ";": "BYD: 17.4%; Geely: 20%")
_RATE_SENTENCE_END = re.compile(
    r"[。！？]|(?<!\b[A-Z])(?<!\bMr)(?<!\bMs)(?<!\bDr)(?<!\bSt)[.!?]\s+[A-Z]|\n\s*\n"
)


def _number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() else value


@dataclass(frozen=True)
class _ThirdCountries:
    """A rate right after ("20% for the EU") or before ("the EU's 20%") a country other than
    China and the US, and the names of those two (a clause naming them keeps its rate)."""

    after: re.Pattern[str]
    before: re.Pattern[str]
    home: re.Pattern[str]

    def tied(self, text: str, start: int, end: int) -> bool:
        """Is the rate at text[start:end] one of a third country's alone?"""
        a = self.after.match(text, end, end + 60)
        if a is not None:
            rest = _CLAUSE_END.search(text, end, end + 120)
            clause = text[end : rest.start() if rest else end + 120]
            return self.home.search(clause) is None  # "25% on Canada, Mexico and China" stays
        b = self.before.search(text, max(0, start - 40), start)
        return b is not None and self.home.search(b.group()) is None  # 对欧盟和中国加征20% stays


_CLAUSE_END = re.compile(r"[.;。；]\s|\d\s*%|百分之")  # a sentence ends, or the next rate begins


def rates(text: str, others: _ThirdCountries | None = None) -> list[float | int]:
    """Percentages in order of mention: `34%`, `34 percent`, `百分之三十四`.

    With `others` (see `third_countries`), a rate tied to a third country alone ("20% for
    the European Union", "对越南加征46%") is left out: a US–China alert's facts are its rates.
    """
    found: list[tuple[int, float | int]] = [
        (m.start(), _number(m.group(1)))
        for m in islice(_RATE.finditer(text), _MAX_RATES_READ)
        if _about_tariffs(text, m.start(), m.end())
        and not _market_move(text, m.start())
        and (others is None or not others.tied(text, m.start(), m.end()))
    ]
    for m in islice(_RATE_ZH.finditer(text), _MAX_RATES_READ):
        if not _about_tariffs(text, m.start(), m.end()) or _market_move(text, m.start()):
            continue
        if others is not None and others.tied(text, m.start(), m.end()):
            continue
        whole, _, frac = m.group(1).partition("点")
        whole_value = chinese_number(whole)
        if whole_value is not None:
            decimals = "".join(str(chinese_number(ch)) for ch in frac)
            found.append((m.start(), _number(f"{whole_value}.{decimals}" if decimals else str(whole_value))))
    out: list[float | int] = []
    for _, value in sorted(found):
        if value not in out:
            out.append(value)
    return out


def _market_move(text: str, start: int) -> bool:
    """Is the percentage at `start` a market or trade figure's move ("the Nasdaq fell 3.6%"), in
    a clause that does not speak of a tariff ("tariffs on Chinese imports rose by 10%" is one)?"""
    lo = max(0, start - 60)
    if _MARKET_MOVE.search(text, lo, start) is None:
        return False
    clause = _CLAUSE_START.split(text[lo:start])[-1]
    return _TARIFF_WORD.search(clause) is None


def _about_tariffs(text: str, start: int, end: int) -> bool:
    """Does the sentence around the rate at text[start:end] speak of a tariff near it?"""
    lo, hi = max(0, start - _RATE_REACH[0]), min(len(text), end + _RATE_REACH[1])
    before = text[lo:start]
    cut = max((m.end() - 1 for m in _RATE_SENTENCE_END.finditer(before)), default=0)
    after = text[end:hi]
    stop = _RATE_SENTENCE_END.search(after)
    window = before[cut:] + text[start:end] + (after[: stop.start()] if stop else after)
    return _TARIFF_WORD.search(window) is not None


def _names(terms: list[str]) -> str:
    return "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True) if "*" not in t) or "(?!)"


@lru_cache(maxsize=8)
def third_countries(glossary: Glossary) -> _ThirdCountries | None:
    """The glossary's `country` entries split into China and the US, and everyone else."""
    en: list[str] = []
    zh: list[str] = []
    home_en: list[str] = []
    home_zh: list[str] = []
    for entry_id, entry in glossary.entries.items():
        if entry.kind != "country":
            continue
        if entry_id in ("china", "united-states"):
            home_en += entry.en
            home_zh += entry.zh
        else:
            en += entry.en
            zh += entry.zh
    if not en and not zh:
        return None
    names, zh_names = _names(en), _names(zh)
    after = re.compile(
        r"\s*(?:(?:tariffs?|duty|duties|levy|levies|rate)\s+)?(?:for|on|against)\s+"
        rf"(?:(?:imports|goods|products)\s+from\s+)?(?:the\s+)?(?:{names})\b",
        re.IGNORECASE,
    )
    before = re.compile(
        rf"(?:\b(?:{names})(?:'s)?\s*(?:tariffs?\s+|duty\s+|rate\s+)?(?:of\s+|at\s+)?"
        # "India To Face 'Discounted' 26% Tariff", "Vietnam gets a 46% rate"
        rf"|\b(?:{names})\s+(?:to\s+|will\s+)?(?:face|faces|facing|get|gets|hit\s+with|slapped\s+with)"
        rf"\s+(?:an?\s+|the\s+)?(?:[\W_]*[a-z]+[\W_]*\s+)?"
        rf"|对(?:{zh_names})[^，。；,;]{{0,6}}(?:加征|征收)?)$",
        re.IGNORECASE,
    )
    home = re.compile(rf"\b(?:{_names(home_en)})\b|{_names(home_zh)}", re.IGNORECASE)
    return _ThirdCountries(after, before, home)
