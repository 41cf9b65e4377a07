"""Block Kit for one alert: escaped for mrkdwn, within Slack's block limits.

Trap: every piece of fetched text (titles, facts, source names) goes through
`escape()` before it lands in a `text` or `mrkdwn` field, so `<!channel>` or a
crafted `<https://evil|bank>` in a post renders as text and never pings or
disguises a link. `plain_text` objects carry text verbatim (Slack does not parse
them). Links are built only from http(s) URLs, percent-encoding `|`, `<` and `>`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from tradewatch.models import Alert
from tradewatch.notify.render import (
    fact_items,
    format_time,
    headline,
    lead_line,
    severity_emoji,
    severity_label,
)

__all__ = ["alert_blocks", "escape", "fallback_text", "link", "truncate"]

# Slack's documented limits (https://api.slack.com/reference/block-kit/blocks).
HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_MAX = 2000
FIELDS_MAX = 10
CONTEXT_ELEMENTS_MAX = 10
BLOCKS_MAX = 50
TEXT_MAX = 4000  # top-level `text`: Slack truncates longer messages
URL_MAX = 1000  # a longer link target is not linked (real notice URLs are a few hundred characters)


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn parser treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """Cut to `limit` characters with an ellipsis; never splits an `&amp;` escape."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def safe_url(url: str) -> str | None:
    """The URL with Slack's link delimiters percent-encoded, or None when not http(s)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return quote(url.strip(), safe=":/?#[]@!$&'()*+,;=%~-._")


def link(url: str, label: str, limit: int = 500) -> str:
    """A mrkdwn link with an escaped label, or the escaped label alone for unusable URLs.

    At most `limit` + URL_MAX + 3 characters: a block's text is cut to its limit afterwards,
    and a cut inside `<…|…>` would show the markup instead of a link.
    """
    target = safe_url(url)
    href = escape(target) if target is not None else ""
    linked = 0 < len(href) <= URL_MAX
    text = truncate(escape(label or (url if linked or target is None else "link")), limit)
    return f"<{href}|{text}>" if linked else text


def slack_date(when: datetime, tz: ZoneInfo | None) -> str:
    """Slack's date token: each reader sees their own timezone; the fallback uses ours."""
    fallback = escape(format_time(when, tz))
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def fallback_text(alert: Alert) -> str:
    """The notification and screen-reader text: severity and headline, escaped."""
    return truncate(escape(f"[{severity_label(alert.severity)}] {headline(alert)}"), TEXT_MAX)


def _header_text(alert: Alert) -> str:
    if alert.kind == "reminder":
        word = "Late reminder" if alert.late else "Reminder"
        return f"{word}: {alert.title or alert.rule_title}"
    if alert.kind == "update":
        return f"Updated: {alert.rule_title or alert.rule}"
    if alert.kind == "also":
        return f"Also reported: {alert.rule_title or alert.rule}"
    if alert.kind == "operator":
        return f"tradewatch: {alert.title}"
    return alert.rule_title or alert.rule or alert.title


def _title_block(alert: Alert) -> str:
    lines = []
    lead = lead_line(alert)
    if lead:
        lines.append(f"*{truncate(escape(lead), 600)}*")
    if alert.title or alert.url:
        lines.append(link(alert.url, alert.title or alert.url, 1200) if alert.url else escape(alert.title))
    if alert.summary:
        lines.append(escape(alert.summary))
    return truncate("\n".join(lines), SECTION_TEXT_MAX) or " "


def _context(alert: Alert, tz: ZoneInfo | None) -> list[str]:
    parts = [f"{severity_emoji(alert.severity)} *{escape(severity_label(alert.severity))}*"]
    if alert.source:
        parts.append(f"Source: {escape(alert.source)}")
    if alert.published_at is not None:
        parts.append(f"Published {slack_date(alert.published_at, tz)}")
    if alert.due is not None:
        parts.append(f"Due {slack_date(alert.due, tz)}")
    if alert.tags:
        parts.append(escape(" ".join(f"#{t}" for t in alert.tags)))
    if alert.late:
        parts.append("_sent late: tradewatch was not running at the reminder time_")
    return [truncate(p, FIELD_MAX) for p in parts[:CONTEXT_ELEMENTS_MAX]]


def _fields(alert: Alert) -> list[dict[str, str]]:
    fields = []
    for label, value in fact_items(alert.facts)[:FIELDS_MAX]:
        text = f"*{escape(label)}*\n{escape(value)}"
        fields.append({"type": "mrkdwn", "text": truncate(text, FIELD_MAX)})
    return fields


def _other_sources(alert: Alert) -> str:
    others = [s for s in alert.sources if s.url != alert.url or s.source != alert.source]
    if not others:
        return ""
    text = "Also reported by: "
    for n, s in enumerate(others[:15]):
        one = (
            link(s.url, s.title or s.source, 200) + f" ({truncate(escape(s.source), 100)})"
            if s.url
            else escape(s.source)
        )
        if len(text) + len(one) + 30 > SECTION_TEXT_MAX:  # whole links only, room left for "and N more"
            return text.removesuffix(", ") + f" and {len(others) - n} more"
        text += one + ", "
    more = f" and {len(others) - 15} more" if len(others) > 15 else ""
    return text.removesuffix(", ") + more


def alert_blocks(alert: Alert, tz: ZoneInfo | None = None) -> list[dict[str, Any]]:
    """The message blocks: header, lead and linked title, facts, context, other sources."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": truncate(_header_text(alert), HEADER_MAX), "emoji": True},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": _title_block(alert)}},
    ]
    fields = _fields(alert)
    if fields:
        blocks.append({"type": "section", "fields": fields})
    context = [{"type": "mrkdwn", "text": t} for t in _context(alert, tz)]
    blocks.append({"type": "context", "elements": context})
    others = _other_sources(alert)
    if others:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": others}})
    return blocks[:BLOCKS_MAX]
