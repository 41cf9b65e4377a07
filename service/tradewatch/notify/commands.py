"""The work behind `tradewatch deadlines` and `tradewatch digest`, so the typer commands stay thin.

Both open Redis like the worker does (the configured URL or the embedded server).
`deadlines` still lists rule-file deadlines when Redis cannot be reached, since
they live in the rule files; the digest needs Redis and says so.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from tradewatch.config import Settings
from tradewatch.deadlines import format_listing, from_spec, ics_calendar
from tradewatch.errors import StoreError
from tradewatch.store.connection import open_redis
from tradewatch.store.digest import DigestBook
from tradewatch.store.keys import Keys
from tradewatch.store.reminders import Reminders

__all__ = ["deadlines_output", "digest_output", "load_rules"]

log = structlog.get_logger(__name__)


def load_rules(settings: Settings) -> Any:
    """The rulebook, checked against the configured Slack routes (raises RuleProblems)."""
    from tradewatch.worker import load_rules_or_report

    return load_rules_or_report(settings)


async def deadlines_output(settings: Settings, *, ics: bool, now: datetime) -> bytes:
    """The listing (or the calendar) of deadlines: rule files plus those derived from matches."""
    rulebook = load_rules(settings)
    tz = settings.tz()
    try:
        handle = await open_redis(settings.redis_url, settings.state_dir)
    except StoreError as exc:
        return _without_redis(exc, rulebook, ics=ics, now=now, tz=tz)
    try:
        reminders = Reminders(handle.client, Keys(settings.key_prefix), settings, rulebook)
        try:
            found = await reminders.deadlines(now)
            marks = await reminders.marks()
        except Exception as exc:  # redis-py raises its own ConnectionError tree
            return _without_redis(exc, rulebook, ics=ics, now=now, tz=tz)
        if ics:
            return ics_calendar(found, now)
        upcoming = [d for d in found if d.due >= now]
        return format_listing(upcoming, marks, now, tz).encode()
    finally:
        await handle.close()


def _without_redis(exc: Exception, rulebook: Any, *, ics: bool, now: datetime, tz: Any) -> bytes:
    """The listing falls back to the rule files' deadlines, with a warning; the calendar fails.

    A calendar app deletes the events missing from a feed it fetched and believes the ones
    in it, so a feed without derived deadlines and with resolved ones shown as confirmed
    must never be written (the `/deadlines.ics` endpoint answers 503 for the same reason).
    """
    if ics:
        raise StoreError(f"redis unavailable, no calendar written (it would lack derived deadlines): {exc}")
    log.warning("deadlines_without_redis", error=str(exc))
    specs = [from_spec(s) for s in rulebook.deadlines]
    return format_listing([d for d in specs if d.due >= now], {}, now, tz).encode()


async def digest_output(settings: Settings, *, dry_run: bool, html: bool, now: datetime) -> tuple[str, bool]:
    """(what to print, whether a mail went out). A dry run prints the digest and moves nothing."""
    handle = await open_redis(settings.redis_url, settings.state_dir)
    try:
        keys = Keys(settings.key_prefix)
        try:
            reminders: Reminders | None = Reminders(handle.client, keys, settings, load_rules(settings))
        except Exception as exc:  # a rules defect must not stop the digest; `rules check` reports it
            log.warning("digest_without_deadlines", error=str(exc))
            reminders = None
        book = DigestBook(handle.client, keys, settings, reminders=reminders)
        if dry_run:
            subject, text, body_html = book.render(await book.build(now))
            return (body_html if html else f"Subject: {subject}\n\n{text}"), False
        sent = await book.send_now(now)
        return ("digest sent" if sent else "nothing to send"), sent
    finally:
        await handle.close()
