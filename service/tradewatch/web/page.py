"""Render the status page: Jinja2 with autoescaping on, and only http(s) links out.

Autoescaping covers `<`, `&` and quotes in text from documents; `safe_url` covers what
escaping cannot, a `javascript:` or `data:` URL in an `href`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from tradewatch.notify.render import fact_items, format_time
from tradewatch.web.status import StatusData

__all__ = ["render_status", "safe_url"]

TEMPLATES = Path(__file__).with_name("templates")


def safe_url(value: object) -> str:
    """The URL when it is absolute http(s), else empty (the template then shows no link)."""
    text = str(value or "").strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    return text if parts.scheme.lower() in ("http", "https") and parts.netloc else ""


def _fmt_time(value: datetime | None) -> str:
    return format_time(value) or "—"


def _relative(value: datetime | None, now: datetime) -> str:
    """`5m ago`, `in 3d`: what a glance needs; the exact time sits in the title attribute."""
    if value is None:
        return "never"
    seconds = (value - now).total_seconds()
    span = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if span >= size:
            text = f"{int(span // size)}{unit}"
            break
    else:
        text = "now" if span < 5 else f"{int(span)}s"
    if text == "now":
        return text
    return f"in {text}" if seconds > 0 else f"{text} ago"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "svg"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["safe_url"] = safe_url
    env.filters["fmt_time"] = _fmt_time
    env.filters["fact_items"] = fact_items  # as the alerts show them: labels, rates as percentages
    env.filters["iso"] = lambda v: v.astimezone(UTC).isoformat() if v else ""
    return env


_ENV = _environment()


def render_status(data: StatusData, *, calendar_token: str | None = None) -> str:
    """The page's HTML; `calendar_token` is added to the calendar link when the page was opened with one."""
    calendar_url = "deadlines.ics" + (f"?token={quote(calendar_token, safe='')}" if calendar_token else "")
    return _ENV.get_template("status.html").render(
        data=data,
        now=data.now,
        calendar_url=calendar_url,
        relative=lambda v: _relative(v, data.now),
    )
