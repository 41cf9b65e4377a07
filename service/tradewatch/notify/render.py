"""Words every notifier shares: fact labels and values, the English lead line, headlines, times.

Kept free of any output syntax (mrkdwn, HTML) so each notifier escapes for its own medium.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tradewatch.models import Alert

__all__ = [
    "FACT_LABELS",
    "fact_items",
    "format_fact",
    "format_time",
    "headline",
    "lead_line",
    "severity_label",
]

FACT_LABELS: dict[str, str] = {
    "effective_date": "Effective date",
    "until": "Until",
    "rates": "Rates",
    "announcement": "Announcement",
    "items": "Items",
    "countries": "Countries",
    "hs_codes": "HS codes",
    "dates": "Dates",
    "due": "Due",
}
# Shown first, in this order: what a supply manager acts on.
_FACT_ORDER = ("announcement", "effective_date", "until", "rates", "items", "countries")

_SEVERITY_LABEL = {"critical": "CRITICAL", "warning": "Warning", "info": "Info"}
_SEVERITY_EMOJI = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}
_ZH_ANNOUNCEMENT = re.compile(r"(\d{4})\s*年\s*第?\s*(\d+)\s*号")


def severity_label(severity: str) -> str:
    """A reader-facing severity word; unknown values pass through."""
    return _SEVERITY_LABEL.get(severity, severity)


def severity_emoji(severity: str) -> str:
    """Slack emoji code for the severity (renders as an icon, never pings)."""
    return _SEVERITY_EMOJI.get(severity, ":bell:")


def format_fact(key: str, value: Any) -> str:
    """One fact as plain text: rates as percentages, lists comma-joined, dicts as JSON."""
    if value is None:
        return ""
    if key == "rates" and isinstance(value, list):
        return ", ".join(f"{v:g}%" if isinstance(v, int | float) else str(v) for v in value)
    if key == "announcement" and isinstance(value, str):
        return english_announcement(value) or value
    if key == "confirmation" and value is True:
        return "by an official source"
    if isinstance(value, list | tuple):
        return ", ".join(format_fact(key, v) if isinstance(v, dict) else str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def fact_items(facts: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) pairs in reading order, empty facts dropped."""
    keys = [k for k in _FACT_ORDER if k in facts] + sorted(k for k in facts if k not in _FACT_ORDER)
    items = []
    for key in keys:
        text = format_fact(key, facts[key])
        if text:
            items.append((FACT_LABELS.get(key, key.replace("_", " ").capitalize()), text))
    return items


def english_announcement(value: str) -> str | None:
    """`2025年第18号` → `No. 18 of 2025`; None when the value is not in that form."""
    m = _ZH_ANNOUNCEMENT.search(value)
    if not m:
        return None
    return f"No. {int(m.group(2))} of {m.group(1)}"


def lead_line(alert: Alert) -> str:
    """The English line above a Chinese title: the rule's own `lead` or one built from the facts.

    The rules engine (`Rule.lead_line`) fills `alert.lead` with glossary terms; this
    fallback only uses what is language-neutral (numbers, dates, Latin item names); the
    rule title is left out because every notifier shows it beside the lead already.
    """
    if alert.lead:
        return alert.lead
    if alert.lang != "zh":
        return ""
    parts: list[str] = []
    ann = alert.facts.get("announcement")
    if isinstance(ann, str):
        english = english_announcement(ann)
        prefix = "MOFCOM " if alert.source.lower().startswith("mofcom") else ""
        parts.append(f"{prefix}Announcement {english}" if english else ann)
    items = alert.facts.get("items")
    if isinstance(items, list) and items and all(str(i).isascii() for i in items):
        parts.append(format_fact("items", items[:8]) + (", …" if len(items) > 8 else ""))
    rates = alert.facts.get("rates")
    if rates:
        parts.append("rates " + format_fact("rates", rates))
    eff = alert.facts.get("effective_date")
    if eff:
        parts.append(f"effective {eff}")
    return " — ".join(parts)


def headline(alert: Alert) -> str:
    """One plain line saying what happened, used as fallback text, console line and mail subject part."""
    if alert.kind == "reminder":
        return f"Reminder: {alert.title or alert.rule_title}"
    if alert.kind == "operator":
        return f"tradewatch: {alert.title}"
    lead = lead_line(alert)
    what = alert.rule_title or alert.rule
    title = f"{lead} ({alert.title})" if lead and alert.title else (alert.title or lead)
    return f"{what}: {title}" if what else title


def format_time(when: datetime | None, tz: ZoneInfo | None = None) -> str:
    """`2025-11-10 05:01 UTC` in the given zone (UTC by default); empty when unknown."""
    if when is None:
        return ""
    zone = tz or ZoneInfo("UTC")
    try:
        local = when.astimezone(zone)
    except (OverflowError, ValueError):  # at the calendar's edge (year 1 or 9999): shown as given
        return when.isoformat(timespec="minutes")
    return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or zone.key)
