"""The email digest's state in Redis: alerts waiting for the next digest, and once-per-slot sending.

Once per period across workers: each scheduled slot (an instant computed the same
way by every worker) is claimed with SET NX; the claim is short while mailing and
long once sent, and DIGEST_RETRY_TTL after a failed mail, so a worker that dies mid-send
lets another retry, a broken SMTP server is retried at a pace, and a slot missed
while no worker ran is sent once by the first worker to start (a slot before the first
worker ever saw the digest, or before the last digest mailed, is not missed). A lock serialises
build-send-trim so a manual `tradewatch digest` never mails the same alerts as the
schedule; alerts are removed only after the mail was accepted.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import ClassVar, Literal, Protocol
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
import structlog

from tradewatch.config import DigestSchedule, Settings
from tradewatch.errors import ConfigError, DeliveryError
from tradewatch.models import Alert, Deadline
from tradewatch.notify.digest import DEADLINE_HORIZON, Digest, make_digest
from tradewatch.notify.email import EmailDigest, digest_message, render_digest
from tradewatch.notify.schedule import latest_slot, next_slot
from tradewatch.store.digest_health import DigestHealth
from tradewatch.store.keys import DIGEST_CLAIM_TTL, DIGEST_RETRY_TTL, DIGEST_SLOT_TTL, Keys

__all__ = ["DigestBook", "DigestRecorder"]

log = structlog.get_logger(__name__)

_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class _Upcoming(Protocol):
    async def upcoming(self, now: datetime, within: timedelta | None = None) -> list[Deadline]: ...


class _Sender(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class DigestBook:
    """Collects digest alerts and mails them on schedule or on demand."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        settings: Settings,
        *,
        reminders: _Upcoming | None = None,
        sender: _Sender | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.email = settings.notifiers.email
        self.schedule = self.email.digest if self.email else DigestSchedule()
        self.tz = ZoneInfo(self.schedule.timezone if self.email else settings.timezone)
        self.reminders = reminders
        self.health = DigestHealth(redis, keys, settings.failure_alert_after)
        self._sender = sender if sender is not None else (EmailDigest(self.email) if self.email else None)

    async def record(self, alert: Alert, now: datetime | None = None) -> bool:
        """Add an alert to the next digest; idempotent per alert id (a redelivery adds nothing)."""
        when = alert.seen_at or now or datetime.now(UTC)
        added = await self.redis.hsetnx(self.keys.digest_items(), alert.id, alert.model_dump_json())
        if added:
            await self.redis.zadd(self.keys.digest_index(), {alert.id: when.timestamp()}, nx=True)
        return bool(added)

    async def pending(self, now: datetime) -> list[Alert]:
        """Alerts recorded up to `now`, oldest first."""
        raw_ids = await self.redis.zrangebyscore(self.keys.digest_index(), "-inf", now.timestamp())
        ids = [str(i) for i in raw_ids]
        if not ids:
            return []
        raws = await self.redis.hmget(self.keys.digest_items(), ids)
        return [Alert.model_validate_json(raw) for raw in raws if raw is not None]

    async def build(self, now: datetime) -> Digest:
        """The digest as it would be mailed now; reads only (this is `digest --dry-run`)."""
        last = await self.redis.get(self.keys.digest_last())
        since = datetime.fromisoformat(str(last)) if last else None
        deadlines = await self.reminders.upcoming(now, DEADLINE_HORIZON) if self.reminders else []
        return make_digest(await self.pending(now), deadlines, now=now, since=since)

    def render(self, digest: Digest) -> tuple[str, str, str]:
        """(subject, text, HTML) for printing."""
        return render_digest(digest, self.tz)

    async def send_now(self, now: datetime) -> bool:
        """Mail what arrived since the last digest; True when a mail went out.

        An empty digest sends nothing unless `send_empty`. Raises DeliveryError when
        SMTP fails; the alerts then stay for the next attempt.
        """
        outcome = await self._send(now)
        if outcome != "busy":
            await self.health.sent(now)  # mailed by hand: the schedule's failing streak is over
        return outcome == "sent"

    async def _send(self, now: datetime) -> Literal["sent", "empty", "busy"]:
        if self.email is None or self._sender is None:
            raise ConfigError("no email notifier configured", key="notifiers.email")
        token = uuid.uuid4().hex
        lock = self.keys.digest_lock()
        if not await self.redis.set(lock, token, nx=True, px=DIGEST_CLAIM_TTL * 1000):
            log.info("digest_busy")
            return "busy"
        try:
            digest = await self.build(now)
            if digest.empty and not self.schedule.send_empty:
                log.info("digest_empty_skipped")
                return "empty"
            await self._sender.send(digest_message(digest, self.email, self.tz))
            if digest.alert_ids:
                await self.redis.zrem(self.keys.digest_index(), *digest.alert_ids)
                await self.redis.hdel(self.keys.digest_items(), *digest.alert_ids)
            await self.redis.set(self.keys.digest_last(), now.isoformat())
            log.info("digest_sent", alerts=digest.alert_count, deadlines=len(digest.deadlines))
            return "sent"
        finally:
            await self.redis.eval(_RELEASE, 1, lock, token)

    async def send_due(self, now: datetime) -> bool:
        """Mail the current slot's digest if no worker did yet; True when this call mailed it."""
        if self.email is None:
            return False
        slot = latest_slot(self.schedule, now)
        last = await self.redis.get(self.keys.digest_last())
        if last is None:
            # The first worker to see this digest: its schedule starts now, so yesterday's slot
            # is not one "missed while no worker ran" to mail at once.
            await self.redis.set(self.keys.digest_last(), now.isoformat(), nx=True)
            return False
        if slot <= datetime.fromisoformat(last.decode() if isinstance(last, bytes) else str(last)):
            return False  # a digest went out after this slot (by hand, or before `at` was moved)
        key = self.keys.digest_slot(slot.astimezone(UTC).strftime("%Y%m%dT%H%MZ"))
        if not await self.redis.set(key, "sending", nx=True, ex=DIGEST_CLAIM_TTL):
            return False
        try:
            outcome = await self._send(now)
        except BaseException as exc:
            # Hold the claim a little so the retry is paced; then any worker may take the slot again.
            await self.redis.set(key, "failed", ex=DIGEST_RETRY_TTL)
            if isinstance(exc, DeliveryError):  # the mail server refused: count it for the operators
                try:
                    await self.health.failed(str(exc), now)
                except Exception as redis_exc:  # the refusal is the news; a Redis error must not replace it
                    log.warning("digest_health_not_recorded", error=str(redis_exc))
            raise
        if outcome == "busy":  # a `tradewatch digest` by hand is mailing: the slot is not done
            await self.redis.delete(key)
            return False
        await self.redis.set(key, outcome, ex=DIGEST_SLOT_TTL)
        await self.health.sent(now)
        if outcome == "sent":
            log.info("digest_slot_sent", slot=slot.isoformat())
        return outcome == "sent"

    def next_run(self, now: datetime) -> datetime:
        """When the worker should call `send_due` next."""
        return next_slot(self.schedule, now)


class DigestRecorder:
    """The digest as an outbox notifier (`email`): "delivering" an alert records it for the next mail.

    Going through the outbox makes recording durable and exactly-once like any delivery;
    `record` is idempotent per alert id, so a redelivery adds nothing.
    """

    name: ClassVar[str] = "email"

    def __init__(self, book: DigestBook) -> None:
        self.book = book

    async def send(
        self, alert: Alert, thread: dict[str, str] | None = None, *, redelivery: bool = False
    ) -> dict[str, str]:
        added = await self.book.record(alert)
        return {"digest": "recorded" if added else "already"}

    async def aclose(self) -> None:
        """The Redis client belongs to the worker."""
