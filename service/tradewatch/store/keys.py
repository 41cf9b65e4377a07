"""Every Redis key, stream and TTL, named once (why each TTL is what it is, in its comment).

All keys live under `key_prefix` so several deployments can share one Redis.
Modules add their keys here, never build key strings elsewhere.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["Keys"]

# --- TTLs of store/seen.py, events.py, outbox.py (docs/architecture.md states memory per item) ---
# An item is forgotten SEEN_TTL after it was last listed: longer than any feed keeps an item
# off its list and then re-lists it, so a re-listed old item never alerts twice.
SEEN_TTL_MS = 90 * 86_400_000
# Seen records are rewritten (TTL refreshed) at most this often while an item stays listed,
# so an unchanged poll costs reads only.
SEEN_REFRESH_DAYS = 7
# Documents published within this window of an event's last report may join it by shared key
# or similar text; older reports of "the same thing" are news again.
CLUSTER_WINDOW_MS = 7 * 86_400_000
# An event outlives its clustering window so that a changed item can still reply in its thread.
EVENT_TTL_MS = 30 * 86_400_000
# Receipts (Slack channel/ts, delivered marker) must outlive events: replies look them up.
RECEIPT_TTL_MS = 35 * 86_400_000
# The suppression log is for the status page and operators; the logs hold the full record.
SUPPRESSIONS_MAXLEN = 5000
# Operator alerts and reminders have no event to list them once the outbox is trimmed; the
# status page's history reads this many of the newest from their own capped stream.
NOTICES_MAXLEN = 500
# --- TTLs of store/health.py and store/validators.py (sources) ---
# A source's health record is rewritten on every poll; a source removed from the config
# stops refreshing it and its record fades after a month instead of lingering forever.
HEALTH_TTL = 30 * 86_400
# An ETag unused for a month belongs to a removed source; losing one costs only a full GET.
VALIDATORS_TTL = 30 * 86_400
# --- TTLs of store/digest.py and store/reminders.py ---
# A claimed digest slot stays claimed for longer than the longest period (weekly), so no worker
# mails the same slot twice however late it starts.
DIGEST_SLOT_TTL = 15 * 86_400
# A worker that dies while mailing holds its claim only this long; then another one may retry.
DIGEST_CLAIM_TTL = 10 * 60
# After a failed mail the slot stays claimed this long: the next try waits for it instead of
# hammering a broken SMTP server on every 30 s tick; the alerts wait in Redis meanwhile.
DIGEST_RETRY_TTL = 5 * 60
# Deadlines and their fired-reminder marks are kept this long after due: the calendar shows
# deadlines of the last 30 days, and a re-plan within that time must not re-fire old reminders.
DEADLINE_KEEP = 45 * 86_400


@dataclass(frozen=True)
class Keys:
    """Key names for one deployment's prefix."""

    prefix: str = "tradewatch"

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # --- dedup, events, outbox, leases (store/seen.py, events.py, outbox.py, leases.py) -------
    # Why these TTLs: see docs/architecture.md "Redis data model" for the measured memory.

    def seen(self, source: str, item: str) -> str:
        """String `content_hash|event|day` per item; TTL SEEN_TTL, refreshed while the item is listed."""
        return self._k("seen", source, item)

    def polled(self, source: str) -> str:
        """Marker that a source had its first (baseline) poll; same TTL as its seen items."""
        return self._k("polled", source)

    def event(self, event_id: str) -> str:
        """JSON of one event (root alert, sources); TTL EVENT_TTL so late updates still thread."""
        return self._k("event", event_id)

    def event_index(self, kind: str, value: str) -> str:
        """Event id by shared key (url, docnum, ann, sim band); TTL CLUSTER_WINDOW bounds clustering."""
        return self._k("evidx", kind, value)

    def alert_dedup(self, rule: str, value: str) -> str:
        """A rule's dedup key → the alert it already raised; TTL = the rule's dedup window."""
        return self._k("dedup", rule, value)

    def outbox(self) -> str:
        """The alert stream; one consumer group per notifier; trimmed only below every group's progress."""
        return self._k("outbox")

    def dead_letters(self) -> str:
        """Alerts parked after max_attempts or a permanent error; never trimmed (operators re-drive)."""
        return self._k("outbox", "dead")

    def receipt(self, notifier: str, alert_id: str) -> str:
        """Delivered marker + receipt (Slack channel/ts) of one alert; TTL RECEIPT_TTL > EVENT_TTL."""
        return self._k("receipt", notifier, alert_id)

    def attempts(self, notifier: str) -> str:
        """Hash entry id → failed attempts; fields removed on ack or dead-letter (no TTL needed)."""
        return self._k("attempts", notifier)

    def retry_schedule(self, notifier: str) -> str:
        """Zset entry id → when its next attempt is due (epoch ms); members removed when handled."""
        return self._k("retry", notifier)

    def lease(self, source: str) -> str:
        """SET NX PX lease: which worker polls a source this interval; TTL chosen by the caller."""
        return self._k("lease", source)

    def notices(self) -> str:
        """Copies of event-less alerts (operator, reminder), capped at NOTICES_MAXLEN, for the status page."""
        return self._k("notices")

    def suppressions(self) -> str:
        """Recent suppressed alerts with reasons, capped at SUPPRESSIONS_MAXLEN for the status page."""
        return self._k("suppressed")

    # --- sources: health and HTTP validators (store/health.py, store/validators.py) ----------

    def source_health(self, source: str) -> str:
        """Hash of one source's poll health; TTL HEALTH_TTL, refreshed by every poll."""
        return self._k("health", source)

    def source_health_index(self) -> str:
        """Set of source names with a health record; stale names are dropped when read."""
        return self._k("health-index")

    def http_validators(self, url: str) -> str:
        """Hash of ETag/Last-Modified per URL (hashed: URLs are long), and the `cursor` of a paged
        listing (how far it was read, e.g. the newest post id); TTL VALIDATORS_TTL."""
        return self._k("http", hashlib.sha256(url.encode("utf-8")).hexdigest()[:32])

    # --- digest, deadlines and reminders, silences (store/digest.py, reminders.py, silences.py) -

    def digest_items(self) -> str:
        """Hash alert id → alert JSON waiting for the next digest; fields removed once mailed (no TTL:
        a digest that cannot be mailed must keep its alerts, and the set is bounded by one period)."""
        return self._k("digest", "items")

    def digest_index(self) -> str:
        """Zset alert id → recorded-at epoch seconds: order and cut-off of a digest; lives as the items."""
        return self._k("digest", "index")

    def digest_slot(self, slot: str) -> str:
        """SET NX claim of one scheduled slot; DIGEST_CLAIM_TTL while sending, DIGEST_SLOT_TTL once sent."""
        return self._k("digest", "slot", slot)

    def digest_lock(self) -> str:
        """SET NX PX lock around build-send-trim, so a manual `digest` and the schedule never both mail."""
        return self._k("digest", "lock")

    def digest_failures(self) -> str:
        """Failed digest sends in a row (INCR); deleted when a slot completes; no TTL."""
        return self._k("digest", "failures")

    def digest_failing(self) -> str:
        """Set once the "digest failing" operator alert is queued; deleted with its "recovered" one."""
        return self._k("digest", "failing")

    def digest_last(self) -> str:
        """ISO time of the last digest mailed (for "since" in the mail and the status page); no TTL."""
        return self._k("digest", "last")

    def deadlines_derived(self) -> str:
        """Hash deadline id → JSON of deadlines derived from matches; pruned DEADLINE_KEEP after due."""
        return self._k("deadlines", "derived")

    def deadlines_resolved(self) -> str:
        """Hash deadline id → JSON {by, at} of cancellations; pruned with the deadline."""
        return self._k("deadlines", "resolved")

    def deadlines_first_seen(self) -> str:
        """Hash rule-file deadline id → epoch when a worker first planned it (tells "late" from "new")."""
        return self._k("deadlines", "first-seen")

    def reminders_fired(self) -> str:
        """Hash reminder key → fired|skipped; HSETNX is the exactly-once claim across workers and
        restarts, so it has no TTL; entries are pruned DEADLINE_KEEP after their deadline's due."""
        return self._k("reminders", "fired")

    def silences(self) -> str:
        """Hash silence id → JSON added by the CLI; expired ones are pruned when read (no TTL on a hash)."""
        return self._k("silences")
