"""The email digest: multipart text + HTML from Jinja2 templates, mailed with aiosmtplib.

The HTML template is autoescaped (a `<script>` in a fetched title arrives as text)
and links are emitted only for http(s) URLs. The subject never carries fetched text,
only counts and dates, so a hostile title cannot shape the mail's headers.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from zoneinfo import ZoneInfo

import aiosmtplib
import structlog
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from tradewatch.config import EmailSettings
from tradewatch.deadlines import humanize
from tradewatch.errors import DeliveryError
from tradewatch.notify.digest import Digest
from tradewatch.notify.render import fact_items, format_time, lead_line, severity_label
from tradewatch.notify.slack_blocks import safe_url

__all__ = ["EmailDigest", "digest_message", "render_digest"]

log = structlog.get_logger(__name__)

_env = Environment(
    loader=PackageLoader("tradewatch.notify", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_SEVERITY_COLOUR = {"critical": "#b42318", "warning": "#b54708", "info": "#175cd3"}


def _subject(digest: Digest, tz: ZoneInfo) -> str:
    day = digest.now.astimezone(tz).strftime("%Y-%m-%d")
    n = digest.alert_count
    head = f"tradewatch digest {day}: {n} alert{'s' if n != 1 else ''}"
    critical = sum(len(g.alerts) for g in digest.new + digest.updates if g.severity == "critical")
    if critical:
        head += f" ({critical} critical)"
    if digest.deadlines:
        head += f", {len(digest.deadlines)} deadline{'s' if len(digest.deadlines) != 1 else ''} ahead"
    return head


def render_digest(digest: Digest, tz: ZoneInfo | None = None) -> tuple[str, str, str]:
    """(subject, text body, HTML body) of one digest."""
    zone = tz or ZoneInfo("UTC")
    context: dict[str, Any] = {
        "digest": digest,
        "tz": zone,
        "time": lambda when: format_time(when, zone),
        "facts": fact_items,
        "lead": lead_line,
        "label": severity_label,
        "href": lambda url: safe_url(url) or "",
        "colour": lambda severity: _SEVERITY_COLOUR.get(severity, "#344054"),
        "left": lambda when: _left(when, digest.now),
    }
    text = _env.get_template("digest.txt.j2").render(context)
    html = _env.get_template("digest.html.j2").render(context)
    return _subject(digest, zone), text, html


def _left(when: datetime, now: datetime) -> str:
    return "in " + humanize(when - now) if when > now else "now"


def digest_message(digest: Digest, settings: EmailSettings, tz: ZoneInfo | None = None) -> EmailMessage:
    """A multipart/alternative message: text first (the fallback), HTML second (preferred)."""
    subject, text, html = render_digest(digest, tz)
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = settings.sender
    msg["To"] = ", ".join(settings.to)
    msg["Date"] = format_datetime(digest.now)
    msg["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg


class EmailDigest:
    """Mails digest messages over SMTP (implicit TLS, STARTTLS or plain, optional auth)."""

    name = "email"

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> None:
        """Deliver or raise DeliveryError; auth and refused-recipient errors are permanent."""
        s = self.settings
        try:
            await aiosmtplib.send(
                message,
                hostname=s.host,
                port=s.port,
                username=s.username,
                password=s.password,
                use_tls=s.tls,
                start_tls=s.starttls and not s.tls,
                timeout=s.timeout,
            )
        except (
            aiosmtplib.SMTPAuthenticationError,
            aiosmtplib.SMTPRecipientsRefused,
            aiosmtplib.SMTPSenderRefused,
            aiosmtplib.SMTPNotSupported,
        ) as exc:
            raise DeliveryError(
                f"smtp: {type(exc).__name__}: {exc}", notifier="email", permanent=True
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"smtp: {type(exc).__name__}: {exc}", notifier="email") from exc
        log.info("digest_mailed", recipients=len(s.to), host=s.host)
