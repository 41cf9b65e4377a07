"""The outbox: a Redis Stream of alerts, one consumer group per notifier, plus the dead-letter stream.

An entry is `alert` (the Alert's JSON) and `to` (empty: the alert's own `notify`;
else the notifiers a re-drive is meant for). A group acknowledges an entry only
together with the receipt that marks the alert delivered (one MULTI), so a crash
between send and ack leaves the entry pending, and the receipt (or the notifier's
own history check) makes its redelivery harmless. Nothing is trimmed until every
group has moved past it; dead letters stay until an operator re-drives them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
import structlog

from tradewatch.errors import StoreError
from tradewatch.models import Alert
from tradewatch.store.commit import Batch, redis_errors
from tradewatch.store.keys import NOTICES_MAXLEN, RECEIPT_TTL_MS, Keys

__all__ = ["DEAD", "DeadLetter", "Entry", "Outbox", "entry_fields"]

log = structlog.get_logger(__name__)

CONSUMER_IDLE_MS = 86_400_000  # a consumer idle this long with nothing pending belongs to an exited worker
# Claim-if-still-mine: XCLAIM JUSTID resets the idle time, but only for the entry's current owner.
# KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] entry id. Sets `ours` to 0 or 1.
_OWN = """
local ours = 0
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if p[1] ~= nil and p[1][2] == ARGV[2] then
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
  ours = 1
end
"""
_KEEP = _OWN + "return ours\n"
# Before a send, in one round trip: the alert's receipt (sent already?), ownership as _KEEP, its
# failed sends and waits so far, and the receipt of the alert it replies to. KEYS[2..4]:
# receipt, attempts hash, parent receipt; ARGV[4]: "1" when there is a parent.
_BEGIN = (
    "local previous = redis.call('GET', KEYS[2])\n"
    + _OWN
    + """local parent = false
if ARGV[4] == '1' then parent = redis.call('GET', KEYS[4]) end
local waits = redis.call('HGET', KEYS[3], ARGV[3] .. ':w')
return {previous, ours, redis.call('HGET', KEYS[3], ARGV[3]), parent, waits}
"""
)
# Due retries, taken off the schedule and claimed in one step: an entry is never off the schedule
# without an owner, which a dead-worker claimer would take for one never scheduled and send too.
# KEYS[1] schedule, KEYS[2] stream; ARGV[1] now (ms), ARGV[2] count, ARGV[3] group, ARGV[4] consumer.
_TAKE_DUE = """
local taken = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])) do
  redis.call('ZREM', KEYS[1], id)
  local got = redis.call('XCLAIM', KEYS[2], ARGV[3], ARGV[4], 0, id)
  if got[1] then
    taken[#taken + 1] = got[1]
  else  -- deleted from the stream (Redis 6.2 answers nil and keeps it pending): settle it
    redis.call('XACK', KEYS[2], ARGV[3], id)
  end
end
return taken
"""
DEAD = "dead"  # receipt value of a dead-lettered alert: its thread replies post unthreaded


@dataclass(frozen=True)
class Begin:
    """What delivery needs to know about an entry before sending it (see `Outbox.begin`)."""

    previous: str | None  # this alert's receipt: delivered (or dead-lettered) already
    ours: bool  # still pending for this consumer, idle time reset
    attempts: int  # failed sends
    parent: str | None  # receipt of the alert this one replies to
    waits: int = 0  # turns a reply spent waiting for its thread's first alert (not sends)


def entry_fields(alert: Alert, to: Sequence[str] = ()) -> dict[str, str]:
    """The stream entry of an alert. Delivery hints (`Alert.DELIVERY_HINTS`) travel in a field
    of their own, which a worker of an earlier version ignores, instead of in the alert's JSON,
    which it would refuse: a rolling upgrade never parks alerts as unreadable."""
    return {"alert": alert.model_dump_json(exclude_defaults=True), "to": ",".join(to), **_hints(alert)}


def _hints(alert: Alert) -> dict[str, str]:
    hints = {name: getattr(alert, name) for name in Alert.DELIVERY_HINTS if getattr(alert, name)}
    return {"hints": json.dumps(hints)} if hints else {}


def alert_of(fields: dict[str, str]) -> Alert:
    """The alert of a stream entry (outbox or dead letter), with its delivery hints."""
    alert = parse_alert(fields["alert"])
    hints = json.loads(fields.get("hints") or "{}")
    for name in Alert.DELIVERY_HINTS:
        if name in hints:
            setattr(alert, name, hints[name])
    return alert


def parse_alert(raw: str | bytes) -> Alert:
    """An alert's JSON from the stream; fields of a later version are ignored (rolling upgrades)."""
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("an alert must be a JSON object")
    return Alert.model_validate({k: v for k, v in data.items() if k in Alert.model_fields})


@dataclass
class Entry:
    """One outbox entry as a consumer sees it."""

    id: str
    alert: Alert
    to: list[str]
    redelivery: bool = False


@dataclass
class DeadLetter:
    """A parked alert, with the notifier that gave up and why."""

    id: str
    alert: Alert
    notifier: str
    error: str
    attempts: int
    entry: str


def _entry(entry_id: str, fields: dict[str, str], *, redelivery: bool) -> Entry:
    to = [t for t in (fields.get("to") or "").split(",") if t]
    # A re-drive (`to` set) is a redelivery from its first read: the dead letter's last attempt
    # may have reached the receiver (a timeout, a lost answer), so its history is checked.
    return Entry(entry_id, alert_of(fields), to, redelivery or bool(to))


_POISON = (KeyError, ValueError)  # pydantic's ValidationError is a ValueError


def _pairs(fields: list[str] | None) -> dict[str, str]:
    """A stream entry's flat field list, as a script returns it, as a dict (None: trimmed away)."""
    flat = fields or []
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _next_id(entry_id: str) -> str:
    ms, _, seq = entry_id.partition("-")
    return f"{ms}-{int(seq or 0) + 1}"


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class Outbox:
    """Every outbox and dead-letter operation, named for what delivery needs."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        # redis-py types replies as the union of every decode mode; ours is decode_responses=True.
        self.redis: Any = redis
        self.keys = keys
        self.stream = keys.outbox()
        self._keep = redis.register_script(_KEEP)
        self._begin = redis.register_script(_BEGIN)
        self._take_due = redis.register_script(_TAKE_DUE)

    # --- producing ------------------------------------------------------------------------------

    def stage(self, batch: Batch, alert: Alert) -> None:
        """Queue the alert within the pipeline's atomic batch (with its dedup records)."""
        batch.xadd(self.stream, entry_fields(alert))

    async def enqueue_operator(self, alert: Alert) -> str:
        """An event-less alert (operator notice, reminder) into the outbox, with its status-page
        copy, as the health and reminder scripts queue theirs."""
        fields = entry_fields(alert)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xadd(self.stream, fields)
                copy = {"alert": fields["alert"]}
                pipe.xadd(self.keys.notices(), copy, maxlen=NOTICES_MAXLEN, approximate=True)
                entry_id = str((await pipe.execute())[0])
        except redis_errors as exc:
            raise StoreError(f"redis outbox write failed: {exc}") from exc
        log.info("alert_enqueued", kind=alert.kind, rule=alert.rule, alert_id=alert.id, entry=entry_id)
        return entry_id

    # --- consuming ------------------------------------------------------------------------------

    async def ensure_group(self, group: str) -> None:
        """Create the group at the stream's start, so alerts queued before any consumer ran count."""
        try:
            await self.redis.xgroup_create(self.stream, group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise StoreError(f"redis xgroup create failed: {exc}") from exc

    async def read_new(self, group: str, consumer: str, count: int, block_ms: int | None) -> list[Entry]:
        reply = await self.redis.xreadgroup(group, consumer, {self.stream: ">"}, count=count, block=block_ms)
        items = [item for _stream, found in reply or [] for item in found]
        return await self._parse(group, items, redelivery=False)

    async def read_own_pending(self, group: str, consumer: str, count: int) -> list[Entry]:
        """Entries this consumer read but never settled (e.g. the process restarted under one name)."""
        reply = await self.redis.xreadgroup(group, consumer, {self.stream: "0"}, count=count)
        items = [item for _stream, found in reply or [] for item in found]
        return await self._parse(group, items, redelivery=True)

    async def claim_idle(self, group: str, consumer: str, min_idle_ms: int, count: int = 50) -> list[Entry]:
        """XAUTOCLAIM a dead consumer's pending entries; trimmed-away ones are acknowledged."""
        entries: list[Entry] = []
        start = "0-0"
        while True:
            reply = await self.redis.xautoclaim(
                self.stream, group, consumer, min_idle_time=min_idle_ms, start_id=start, count=count
            )
            start, items = reply[0], reply[1]
            entries += await self._parse(group, items, redelivery=True)
            if start == "0-0" or len(entries) >= count:
                return entries

    async def _parse(self, group: str, items: list[Any], *, redelivery: bool) -> list[Entry]:
        """Entries as objects; a trimmed-away one is acknowledged, an unreadable one parked."""
        entries = []
        for entry_id, fields in items:
            if entry_id is None:  # Redis 6.2 names a deleted entry nil
                continue
            if not fields:
                await self.redis.xack(self.stream, group, entry_id)
                continue
            try:
                entries.append(_entry(entry_id, fields, redelivery=redelivery))
            except _POISON as exc:
                log.error("outbox_entry_unreadable", notifier=group, entry=entry_id, error=str(exc)[:300])
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.xadd(
                        self.keys.dead_letters(),
                        {
                            "alert": fields.get("alert", ""),
                            "notifier": group,
                            "error": f"unreadable: {exc}"[:2000],
                            "attempts": "0",
                            "entry": entry_id,
                        },
                    )
                    pipe.xack(self.stream, group, entry_id)
                    await pipe.execute()
        return entries

    async def keep(self, group: str, consumer: str, entry_id: str) -> bool:
        """Still ours? Then reset its idle time (no claimer may take it for `claim_idle`) and say so.

        Checked before each send and renewed while sending: an entry read in a batch, or a
        send slowed by the receiver's own retries, must not be claimed and sent twice.
        """
        ours = await self._keep(keys=[self.stream], args=[group, consumer, entry_id])
        return bool(ours)

    async def begin(self, group: str, consumer: str, entry: Entry) -> Begin:
        """`receipt`, `keep`, `attempts` and the thread parent's `receipt` in one round trip."""
        parent = entry.alert.thread_of
        receipt = self.keys.receipt(group, entry.alert.id)
        keys = [self.stream, receipt, self.keys.attempts(group), self.keys.receipt(group, parent or "")]
        previous, ours, attempts, parent_receipt, waits = await self._begin(
            keys=keys, args=[group, consumer, entry.id, "1" if parent else "0"]
        )
        return Begin(
            previous=str(previous) if previous is not None else None,
            ours=bool(ours),
            attempts=int(attempts or 0),
            parent=str(parent_receipt) if parent_receipt is not None else None,
            waits=int(waits or 0),
        )

    async def delivered(self, group: str, entry: Entry, receipt: dict[str, str] | None) -> None:
        """Record the receipt and acknowledge in one transaction: both or neither."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.receipt(group, entry.alert.id), json.dumps(receipt or {}), px=RECEIPT_TTL_MS)
            if entry.alert.thread_of:  # the thread lives on: its root's receipt must outlive this reply
                pipe.pexpire(self.keys.receipt(group, entry.alert.thread_of), RECEIPT_TTL_MS)
            pipe.xack(self.stream, group, entry.id)
            pipe.hdel(self.keys.attempts(group), entry.id, f"{entry.id}:w")
            pipe.zrem(self.keys.retry_schedule(group), entry.id)
            await pipe.execute()

    async def skip(self, group: str, entry_ids: Sequence[str]) -> None:
        """Acknowledge entries that are not for this notifier or were delivered already."""
        if not entry_ids:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, group, *entry_ids)
            pipe.hdel(self.keys.attempts(group), *entry_ids, *(f"{i}:w" for i in entry_ids))
            pipe.zrem(self.keys.retry_schedule(group), *entry_ids)
            await pipe.execute()

    async def defer(self, group: str, entry_id: str, attempts: int, due_ms: int, *, waits: int = 0) -> None:
        """Schedule the next attempt; the entry stays pending so a crash cannot lose it.

        A reply's waits for its thread are counted apart (field `ID:w`), so waiting does not
        use up the attempts its own send may need.
        """
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.attempts(group), entry_id, str(attempts))
            if waits:
                pipe.hset(self.keys.attempts(group), f"{entry_id}:w", str(waits))
            pipe.zadd(self.keys.retry_schedule(group), {entry_id: due_ms})
            await pipe.execute()

    async def take_due(self, group: str, consumer: str, now_ms: int, count: int = 50) -> list[Entry]:
        """Due retries, each taken off the schedule and claimed by this consumer in one step."""
        reply = await self._take_due(
            keys=[self.keys.retry_schedule(group), self.stream], args=[now_ms, count, group, consumer]
        )
        items = [(entry_id, _pairs(fields)) for entry_id, fields in reply or []]
        return await self._parse(group, items, redelivery=True)

    async def next_due_ms(self, group: str) -> int | None:
        first = await self.redis.zrange(self.keys.retry_schedule(group), 0, 0, withscores=True)
        return int(first[0][1]) if first else None

    async def claimable(self, group: str, entry_id: str, now_ms: int) -> bool:
        """May a claimer deliver this entry now? Not while its retry is scheduled later; a due retry
        goes to whoever removes it from the schedule (`take_due` or this ZREM), so only one does. An
        entry off the schedule was never scheduled: `take_due` claims what it takes in the same step."""
        score = await self.redis.zscore(self.keys.retry_schedule(group), entry_id)
        if score is None:
            return True
        if score > now_ms:
            return False
        return bool(await self.redis.zrem(self.keys.retry_schedule(group), entry_id))

    async def dead_letter(self, group: str, entry: Entry, error: str, attempts: int) -> None:
        """Park the alert for an operator: dead stream + ack in one transaction, never dropped."""
        fields = {
            "alert": entry.alert.model_dump_json(exclude_defaults=True),
            "notifier": group,
            "error": error[:2000],
            "attempts": str(attempts),
            "entry": entry.id,
            **_hints(entry.alert),
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.keys.dead_letters(), fields)
            pipe.set(self.keys.receipt(group, entry.alert.id), DEAD, px=RECEIPT_TTL_MS)
            pipe.xack(self.stream, group, entry.id)
            pipe.hdel(self.keys.attempts(group), entry.id, f"{entry.id}:w")
            pipe.zrem(self.keys.retry_schedule(group), entry.id)
            await pipe.execute()

    async def pending_count(self, group: str) -> int:
        """Read-but-unsettled plus not-yet-read entries of one group."""
        try:
            summary = await self.redis.xpending(self.stream, group)
            groups = await self.redis.xinfo_groups(self.stream)
        except redis.exceptions.ResponseError:
            return 0
        pending = int(summary["pending"])
        last = next((str(g["last-delivered-id"]) for g in groups if g["name"] == group), "0-0")
        unread = await self.redis.xrange(self.stream, min="(" + last, max="+", count=10_000)
        # an entry addressed to other notifiers only (a re-driven dead letter) is not pending here
        mine = [f for _, f in unread if not f.get("to") or group in str(f["to"]).split(",")]
        return pending + len(mine)

    # --- operators ------------------------------------------------------------------------------

    async def dead(self, count: int = 100) -> list[DeadLetter]:
        """Parked alerts, oldest first; an unreadable one shows as an operator alert naming its entry."""
        items = await self.redis.xrange(self.keys.dead_letters(), count=count)
        letters = []
        for i, f in items:
            try:
                alert = alert_of(f)
            except _POISON:
                alert = Alert(id=f"unreadable:{i}", kind="operator", title=str(f.get("alert", ""))[:200])
            letters.append(
                DeadLetter(
                    i,
                    alert,
                    f.get("notifier", ""),
                    f.get("error", ""),
                    int(f.get("attempts", 0)),
                    f.get("entry", ""),
                )
            )
        return letters

    async def recent(self, count: int = 50) -> list[tuple[str, Alert]]:
        items = await self.redis.xrevrange(self.stream, count=count)
        return [(i, alert_of(f)) for i, f in items if f.get("alert")]

    async def retry_dead(self, ids: Sequence[str] | None = None) -> int:
        """Re-drive parked alerts (all when `ids` is None) to the notifier that gave up on them."""
        letters = await self.dead(count=100_000)
        chosen = [d for d in letters if ids is None or d.id in ids]
        if not chosen:
            return 0
        # One transaction: an `alerts retry` cut short (Ctrl-C, a lost connection) re-drives
        # all or nothing. Every "dead" receipt goes first, and thread roots are queued before
        # replies: a reply re-driven ahead of its root found the root dead and posted
        # unthreaded, before it.
        ordered = sorted(chosen, key=lambda d: d.alert.thread_of is not None)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(*{self.keys.receipt(d.notifier, d.alert.id) for d in chosen})
            for letter in ordered:
                pipe.xadd(self.stream, entry_fields(letter.alert, [letter.notifier]))
            pipe.xdel(self.keys.dead_letters(), *(d.id for d in ordered))
            await pipe.execute()
        for letter in ordered:
            log.info("dead_letter_requeued", alert_id=letter.alert.id, notifier=letter.notifier)
        return len(chosen)

    async def trim(self) -> int:
        """Drop entries every group has settled (XTRIM MINID); pending ones are always kept."""
        try:
            groups: list[dict[str, Any]] = await self.redis.xinfo_groups(self.stream)
        except redis.exceptions.ResponseError:
            return 0
        if not groups:
            return 0
        floor: tuple[int, int] | None = None
        for group in groups:
            name = str(group["name"])
            keep = _next_id(str(group["last-delivered-id"]))
            if int(group["pending"]):
                summary = await self.redis.xpending(self.stream, name)
                if summary["min"] is not None:  # None: settled since XINFO looked
                    keep = min(keep, str(summary["min"]), key=_id_key)
            floor = _id_key(keep) if floor is None else min(floor, _id_key(keep))
        assert floor is not None
        removed = await self.redis.execute_command("XTRIM", self.stream, "MINID", f"{floor[0]}-{floor[1]}")
        for group in groups:
            await self._prune_consumers(str(group["name"]))
        return int(removed)

    async def _prune_consumers(self, group: str) -> None:
        """Forget consumers of exited workers (nothing pending, idle a day): XINFO stays readable."""
        for consumer in await self.redis.xinfo_consumers(self.stream, group):
            if int(consumer["pending"]) == 0 and int(consumer["idle"]) > CONSUMER_IDLE_MS:
                await self.redis.xgroup_delconsumer(self.stream, group, consumer["name"])
