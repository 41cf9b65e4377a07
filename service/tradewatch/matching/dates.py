"""Date extraction from Chinese and English text, resolved against the document's own date.

A date without a year is read in the year that puts it nearest the document's date (in
the document's timezone): a notice of 4 November saying "from 1 February" means next
year's, one of 5 January saying "since 20 December" last year's. A deadline read a year
too early would never remind anyone, so a tie goes to the later reading.
"自公布之日起施行" and "effective immediately" mean the publication date.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

__all__ = ["all_dates", "chinese_number", "effective_date", "until_date"]

_MONTHS = {
    "january": 1,
    "february": 2,
    "march": 3,
    "april": 4,
    "may": 5,
    "june": 6,
    "july": 7,
    "august": 8,
    "september": 9,
    "october": 10,
    "november": 11,
    "december": 12,
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "sept": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
_MON = r"(?P<mon>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_CN_DIGITS = {
    "〇": 0,
    "零": 0,
    "○": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_NUM = "〇零○一二两三四五六七八九十百"
_NUM = rf"(?:\d{{1,4}}|[{_CN_NUM}]{{1,4}})"  # bounded: a run of numerals must not make a scan quadratic

# Each pattern names its parts y (optional), mon or m, d.
_DATE_PATTERNS = [
    re.compile(rf"(?P<y>\d{{4}}|[{_CN_NUM}]{{4}})\s*年\s*(?P<m>{_NUM})\s*月\s*(?P<d>{_NUM})\s*[日号]"),
    # 今年4月4日 ("this year"), 去年, 明年: the year relative to the document's own
    re.compile(rf"(?P<rel>今年|本年|去年|明年)\s*(?P<m>{_NUM})\s*月\s*(?P<d>{_NUM})\s*[日号]"),
    re.compile(rf"(?<![\d年])(?P<m>{_NUM})\s*月\s*(?P<d>{_NUM})\s*[日号]"),
    re.compile(r"(?<![\d.])(?P<y>20\d{2})([-/.])(?P<m>\d{1,2})\2(?P<d>\d{1,2})(?![\d.])"),
    re.compile(rf"\b{_MON}\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s*(?P<y>\d{{4}})\b)?", re.IGNORECASE),
    re.compile(
        rf"\b(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MON}\b(?:,?\s*(?P<y>\d{{4}})\b)?", re.IGNORECASE
    ),
]

_RELATIVE_YEARS = {"今年": 0, "本年": 0, "去年": -1, "明年": 1}
_TODAY_ZH = re.compile(
    r"自?(?:公布|发布|印发|公告发布|签署)之日起(?:(?:正式)?(?:施行|执行|实施|生效|实行)|至)|自即日起"
)
_TODAY_EN = re.compile(
    r"\b(?:(?:effective|take[sn]? effect|took effect)\s+(?:immediately|upon (?:its |their )?"
    r"(?:publication|signing|signature|release|issuance|announcement))|with immediate effect"
    r"|(?:take[sn]?|took|taking|to take|has taken) immediate effect|immediately effective)\b",
    re.IGNORECASE,
)
# Only the simple past: "would have taken effect", "once it has taken effect" are not done
_PAST_EFFECT = r"\b(?:took|went) (?:into )?effect\b"
_PAST_EFFECT_RE = re.compile(_PAST_EFFECT, re.IGNORECASE)
# (keyword before the date, how many characters may separate them); the strong ones first:
# a date after "effective" beats an earlier one after "from" ("doubled from March 4, cut to
# 10% effective Nov. 10" takes effect on Nov. 10).
_EFFECTIVE_BEFORE = [
    (
        re.compile(
            r"\beffective\b|\b(?:take|takes|taking|to take|go|goes|going) (?:into )?effect\b"
            r"|\bon or after\b",  # the Federal Register's "entered … on or after 12:01 a.m. … on DATE"
            re.IGNORECASE,
        ),
        40,
    ),
    # told as done ("the tariff that took effect on April 5"): a background date, so weak
    (re.compile(r"\b(?:starting|beginning|commencing|as of|from)\b|" + _PAST_EFFECT, re.IGNORECASE), 16),
]
# A time of day between keyword and date does not count towards their distance:
# "effective as of 12:01 a.m. eastern daylight time on August 12, 2025".
_CLOCK = re.compile(
    r"\b\d{1,2}(?::\d{2}\s*(?:a\.?m\.?|p\.?m\.?)?|\s*(?:a\.?m\.?|p\.?m\.?))"
    r"(?:\s*(?:\(?(?:eastern|e[sd]t)\)?)(?:\s+(?:daylight|standard))?(?:\s+time)?)?(?:,?\s+on)?",
    re.IGNORECASE,
)
_CLOCK_SPAN = 60  # how far back a keyword is looked for when a time of day may sit in between
# A weak keyword's date in a sentence about people meeting is when they meet, not when a
# measure starts: "talks scheduled from July 27 to 30", 磋商将于…开始.
_MEETING = re.compile(
    r"\b(?:talks|negotiations?|meetings?|meet|summit|consultations?|visit|delegation)\b|会谈|磋商|会晤|谈判|访问",
    re.IGNORECASE,
)
_MEASURE = re.compile(
    r"tariff|dut(?:y|ies)|levy|control|export|import|licen[cs]|\bban|suspen|exempt|rate"
    r"|关税|管制|出口|进口|许可|暂停|加征|豁免|税率",
    re.IGNORECASE,
)
# "takes effect from Sunday until Nov 27, 2026": the date after "until" is when it ends
_UNTIL = re.compile(r"\b(?:until|till|through|to|expir\w*)\b|至|截至|到", re.IGNORECASE)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_RELATIVE_DAY = re.compile(
    r"\b(?:effective|take[sn]? effect|took effect|starting|beginning|from|as of)\s+"
    r"(?:on\s+)?(?:this\s+|next\s+)?"
    r"(monday|tuesday|wednesday|thursday|friday|saturday|sunday|today|tomorrow)\b",
    re.IGNORECASE,
)
# A full stop before a capital ends a sentence, unless it closes an initial ("U.S. Customs"),
# a title ("Mr. Trump") or a time before its zone ("12:01 a.m. Eastern Standard Time").
_SENTENCE_END = re.compile(
    r"[;。；]|(?<!\b[A-Z])(?<!\bMr)(?<!\bMs)(?<!\bDr)(?<!\bSt)"
    r"\.(?!(?<=[ap]\.m\.)\s+(?:Eastern|Central|Mountain|Pacific|Beijing|E[SD]T|ET|GMT|UTC)\b)\s+[A-Z]"
)
# Chinese puts the verb after the date: 自2025年4月10日12时01分起施行.
_EFFECTIVE_AFTER_ZH = re.compile(
    r"\s*(?:\d{1,2}\s*[时点:]\s*(?:\d{1,2}\s*分?)?)?\s*(?:起|开始施行|施行|生效|实施)"
)


def chinese_number(text: str) -> int | None:
    """`34`, `三十四`, `二〇二五` (digit by digit) or `一百四十五` as an int; None when not a number."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if not text or any(ch not in _CN_DIGITS and ch not in "十百" for ch in text):
        return None
    if "十" not in text and "百" not in text:
        return int("".join(str(_CN_DIGITS[ch]) for ch in text))
    total, current = 0, 0
    for ch in text:
        if ch == "百":
            total += (current or 1) * 100
            current = 0
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        else:
            current = _CN_DIGITS[ch]
    return total + current


def _to_date(m: re.Match[str], published: date | None) -> date | None:
    parts = m.groupdict()
    month = _MONTHS[parts["mon"].lower()] if parts.get("mon") else chinese_number(parts.get("m") or "")
    day = chinese_number(parts.get("d") or "")
    if month is None or day is None:
        return None
    if parts.get("rel"):
        if published is None:
            return None
        return _date(published.year + _RELATIVE_YEARS[parts["rel"]], month, day)
    if parts.get("y"):
        year = chinese_number(parts["y"])
        return _date(year, month, day) if year is not None else None
    if published is None:
        return None
    # The reading nearest the document's date; on a tie the later one (a notice looks ahead).
    years = (published.year - 1, published.year, published.year + 1)
    readings = [d for d in (_date(y, month, day) for y in years) if d is not None]
    if not readings:
        return None
    return min(readings, key=lambda d: (abs((d - published).days), d < published))


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _found(text: str, published: datetime | None) -> list[tuple[int, int, date]]:
    """Every date with its span, earliest first; overlapping weaker readings dropped.

    A date without a year that tells of something done (no effective, until or future word)
    and would otherwise fall after the document's date takes the year of the "this year" or
    "last year" event told before it, when that puts it within ANCHOR_DAYS of it:
    "今年4月2日，美方…大陆随即于4月4日发布…" is the 4 April of that year, not the next 4 April
    nearest the document's date.
    """
    hint = published.date() if published else None
    spans: list[tuple[int, int, date, bool, bool]] = []
    taken = bytearray(len(text) + 1)  # characters a stronger reading already covers
    for pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            if taken.find(1, m.start(), m.end()) >= 0:
                continue
            found = _to_date(m, hint)
            if found is not None:
                relative = bool(m.groupdict().get("rel"))
                explicit = relative or bool(m.groupdict().get("y"))
                spans.append((m.start(), m.end(), found, relative, explicit))
                taken[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
    spans.sort()
    out: list[tuple[int, int, date]] = []
    anchor: date | None = None
    for start, end, found, relative, explicit in spans:
        if explicit:  # only "this year's"/"last year's" event told as past anchors what follows
            past = hint is None or found <= hint
            anchor = found if relative and past and _told(text, start, end) else None
        elif anchor is not None and hint is not None and found > hint and _told(text, start, end):
            found = _near_anchor(found, anchor) or found
        # in November, "took effect on April 5" is past (a day's slack: Beijing is ahead of UTC)
        if not explicit and hint is not None and found > hint + _A_DAY and _took_effect(text, start, end):
            found = _on_or_before(found, hint) or found
        out.append((start, end, found))
    return out


_A_DAY = timedelta(days=1)
ANCHOR_DAYS = 60  # how near a yearless date must fall to the dated event told before it


_FUTURE = re.compile(
    r"将|拟|计划|预计|届时|将于|\b(?:will|due|expected|scheduled|set to|plans?)\b", re.IGNORECASE
)


def _told(text: str, start: int, end: int) -> bool:
    """A date of something done: no effective, until or future word around it."""
    if _strength(text, start, end) or _UNTIL.search(text[max(0, start - 12) : start]):
        return False
    return _FUTURE.search(_sentence_around(text, start)) is None


def _took_effect(text: str, start: int, end: int) -> bool:
    """The date's own keyword is "took effect" or "went into effect": something done."""
    strength, keyword = _keyword(text, start, end)
    return strength == 1 and _PAST_EFFECT_RE.fullmatch(keyword) is not None


def _on_or_before(found: date, day: date) -> date | None:
    """`found`'s month and day in the latest year that puts it on or before `day`."""
    readings = [d for d in (_date(day.year - k, found.month, found.day) for k in (0, 1)) if d and d <= day]
    return max(readings, default=None)


def _near_anchor(found: date, anchor: date) -> date | None:
    """`found`'s month and day in the year that puts it nearest `anchor`, if within ANCHOR_DAYS."""
    readings = [d for d in (_date(anchor.year + k, found.month, found.day) for k in (-1, 0, 1)) if d]
    best = min(readings, key=lambda d: abs((d - anchor).days), default=None)
    return best if best is not None and abs((best - anchor).days) <= ANCHOR_DAYS else None


def all_dates(text: str, published: datetime | None) -> list[str]:
    """Every date mentioned, ISO, in order of first mention, without repeats."""
    seen: dict[str, None] = {}
    for _, _, found in _found(text, published):
        seen.setdefault(found.isoformat(), None)
    return list(seen)


def until_date(text: str, published: datetime | None) -> str | None:
    """The first date a measure runs until ("until November 10, 2026", 至2026年11月10日), ISO."""
    for start, _, found in _found(text, published):
        before = text[max(0, start - 12) : start]
        last = max(_UNTIL.finditer(before), key=lambda m: m.end(), default=None)
        if last is not None and not before[last.end() :].strip(" ,，的止"):
            return found.isoformat()
    return None


def _strength(text: str, start: int, end: int) -> int:
    """How surely this date is when something takes effect: 2 strong keyword, 1 weak, 0 not."""
    return _keyword(text, start, end)[0]


def _keyword(text: str, start: int, end: int) -> tuple[int, str]:
    """The date's own keyword ("" after it, as 起施行) and its strength, as `_strength` says."""
    if _EFFECTIVE_AFTER_ZH.match(text, end):
        return 2, ""
    for strength, (pattern, reach) in zip((2, 1), _EFFECTIVE_BEFORE, strict=True):
        before = text[max(0, start - reach - _CLOCK_SPAN) : start]
        hits = list(pattern.finditer(before))
        if hits:
            last = hits[-1]
            gap = before[last.end() :]
            if _SENTENCE_END.search(gap) or _UNTIL.search(gap):
                continue
            if strength == 1 and _meeting_date(_sentence_around(text, start)):
                continue  # "talks scheduled from July 27 to 30": when people meet, not a measure
            if len(gap) <= reach or len(_CLOCK.sub(" ", gap)) <= reach:
                return strength, last.group()
    return 0, ""


def _meeting_date(sentence: str) -> bool:
    """A sentence about people meeting that names no measure."""
    return _MEETING.search(sentence) is not None and _MEASURE.search(sentence) is None


def _sentence_around(text: str, start: int) -> str:
    """The sentence holding `start` (at most 200 characters either side)."""
    before = text[max(0, start - 200) : start]
    ends = list(_SENTENCE_END.finditer(before))
    if ends:  # a stop before a capital ends the last sentence; the capital opens this one
        last = ends[-1]
        before = before[
            last.end() - (1 if last.group().endswith(tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")) else 0) :
        ]
    after = text[start : start + 200]
    stop = _SENTENCE_END.search(after)
    return before + (after[: stop.start() + 1] if stop else after)


def _weekday_effective(text: str, published: datetime) -> str | None:
    """ "Takes effect from Sunday", "effective tomorrow": the next such day on or after publication."""
    m = _RELATIVE_DAY.search(text)
    if m is None:
        return None
    day = m.group(1).lower()
    today = published.date()
    if day == "today":
        return today.isoformat()
    if day == "tomorrow":
        return (today + timedelta(days=1)).isoformat()
    ahead = (_WEEKDAYS.index(day) - today.weekday()) % 7
    return (today + timedelta(days=ahead)).isoformat()


def effective_date(text: str, published: datetime | None) -> str | None:
    """The date the text says a measure takes effect from, ISO; None when it does not say.

    The first date with a keyword ("effective", "take effect", 起施行; "from", "as of",
    "beginning"), except that a strong keyword later in the same sentence beats a weak one:
    "doubled from March 4, will be cut to 10% effective Nov. 10" takes effect on Nov. 10. A
    date told as done ("the tariffs, which took effect on April 5, will be cut … effective
    Nov. 10") is a weak one.
    """
    weak: tuple[int, date] | None = None
    for start, end, found in _found(text, published):
        strength = _strength(text, start, end)
        if strength == 2 and (weak is None or not _SENTENCE_END.search(text, weak[0], start)):
            return found.isoformat()
        if strength and weak is None:
            weak = (end, found)
    immediate = published is not None and bool(_TODAY_ZH.search(text) or _TODAY_EN.search(text))
    # "takes immediate effect" beats a weak date already past ("prices as of November 28 rose"),
    # not a coming one ("34% tariffs starting April 10; export controls take effect immediately")
    if weak is not None and not (immediate and published is not None and weak[1] < published.date()):
        return weak[1].isoformat()
    if published is None:
        return None
    if immediate:
        return published.date().isoformat()
    return _weekday_effective(text, published)
