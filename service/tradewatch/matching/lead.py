"""An English lead line for a Chinese document, from the glossary and extracted facts.

Machine translation would need the network; the glossary's labels plus the facts say
what a supply manager needs first: whose notice, what measure, on what, from when.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from tradewatch.errors import RuleError
from tradewatch.matching.dates import until_date
from tradewatch.matching.extract import _issuer, announcement, glossary_labels, plain_text
from tradewatch.matching.glossary import Glossary, default_glossary_path, load_glossary
from tradewatch.matching.normalize import normalize
from tradewatch.models import Document

__all__ = ["lead_line"]

_MAX_ITEMS = 6
_BAN_LEAD = 600  # characters of the text where a ban is stated (a notice's first articles)
_TARIFF_LABELS = ("tariffs", "reciprocal tariffs")
# What the notice does to the measure, read from its (normalised) title: a suspension or an
# end of controls must not read as new controls.
_ENDS = re.compile(
    r"停止实施|停止执行|取消|废止|\b(?:lift|lifts|lifted|lifting|remov\w*|rescind\w*|revok\w*)\b"
)
# Exports stopped (to a country, or at all): a ban, whatever the measure's name in the title
# (MOFCOM No. 46 of 2024 "strengthens export controls" and bans them to the US in its text).
_BANS = re.compile(r"(?:暂停|禁止|停止)(?:向|对)[^，。；]{1,10}出口|禁止[^，。；]{0,10}出口")
# in a notice's text only its own wording counts (a news story's "the US stopped ethane exports
# to China" is not this ban)
_BANS_TEXT = re.compile(
    r"^[一二三四五六七八九十\d]+[、.]\s*禁止[^，。；]{0,20}出口|原则上不予许可[^，。；]{0,30}出口", re.M
)
# 暂停实施 (suspends applying) a measure, also with what it applies to in between
# (暂停对原产于美国的进口商品实施24%的加征关税); not 暂停对美国出口 (suspends exports: a ban)
_SUSPENDS = re.compile(
    r"(?:暂停|暂缓)(?:实施|执行|适用|征收|加征)|(?:暂停|暂缓)[^，。；]{0,12}(?:措施|公告|决定|管制|关税)"
    r"|(?:暂停|暂缓)(?:对|向)(?:(?![并及和])[^，。；]){0,30}?(?:实施|征收|加征)[^，。；]{0,10}(?:关税|措施|管制)"
    r"|\b(?:suspend\w*|suspension|paus\w*)\s+(?:of\s+|the\s+)*(?:\w+\s+){0,3}"
    r"(?:controls?|tariffs?|duties|measures?|announcement|rules?)\b"
)


@lru_cache(maxsize=1)
def _shipped_glossary() -> Glossary:
    path = default_glossary_path()
    problems: list[RuleError] = []
    return load_glossary(path, problems) if path else Glossary({})


def _fmt_rate(value: Any) -> str:
    return f"{value}%"


def lead_line(doc: Document, facts: dict[str, Any], glossary: Glossary | None = None) -> str:
    """Whose notice, what measure on what, from when.

    E.g. "MOFCOM Announcement No. 61 of 2025 — export controls on samarium, dysprosium —
    effective 2025-12-01".
    """
    glossary = glossary or _shipped_glossary()
    plain = plain_text(doc)
    title = normalize(doc.title)
    norm = normalize(plain)
    parts: list[str] = []
    head = facts.get("announcement") or announcement(plain) or _issuer(plain[:200])
    if head:
        parts.append(str(head))
    measures = glossary_labels(title, glossary, "measure") or glossary_labels(norm, glossary, "measure")
    items = list(facts.get("items") or glossary_labels(norm, glossary, "item"))
    what = measures[0] if measures else ""
    if _BANS.search(title) or _BANS_TEXT.search(plain, 0, _BAN_LEAD):
        what = "export ban"
    if items:
        shown = ", ".join(items[:_MAX_ITEMS]) + (" and others" if len(items) > _MAX_ITEMS else "")
        what = f"{what} on {shown}" if what else shown
    action = "end of" if _ENDS.search(title) else "suspension of" if _SUSPENDS.search(title) else ""
    if what:
        parts.append(f"{action} {what}" if action else what)
    rates = facts.get("rates")
    # a rate in an export notice is noise; in a suspension it may be the one suspended or the one kept
    if rates and not action and (not measures or measures[0] in _TARIFF_LABELS):
        parts.append("rates " + ", ".join(_fmt_rate(r) for r in rates[:4]))
    if facts.get("effective_date"):
        parts.append(f"effective {facts['effective_date']}")
    until = until_date(plain, doc.published_at) if action == "suspension of" else None
    if until and until != facts.get("effective_date"):
        parts.append(f"until {until}")
    return " — ".join(parts)
