"""Per-source poll health in Redis, and the once-only "failing"/"recovered" transitions for operators.

Each transition is decided inside one Lua script, so two workers (or a retry after a
crash) can never both raise the "failing" alert for the same streak of failures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import redis.asyncio as aioredis

from tradewatch.store.batching import WRITE_WINDOW, Coalescer
from tradewatch.store.keys import HEALTH_TTL, NOTICES_MAXLEN, Keys

__all__ = ["SourceHealth", "SourceHealthRecord", "Transition"]

# The operator alert of a transition is queued by the same script that records it, so a crash
# or a Redis error between the two can never record "failing" (raised once) and lose its alert.
# KEYS[3] outbox stream; the alert is the JSON of models.Alert (kind operator).
_OPERATOR_ALERT = """
local function operator_alert(stream, name, transition, epoch, url, title, rule_title, severity, seen_at)
  local alert = cjson.encode({
    id = 'operator:' .. name .. ':' .. transition .. ':' .. epoch, kind = 'operator',
    rule = 'tradewatch-source-health', rule_title = rule_title, severity = severity,
    tags = {'operator'}, title = title, url = url, source = name, seen_at = seen_at})
  redis.call('XADD', stream, '*', 'alert', alert, 'to', '')
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', NOTICES_MAXLEN, '*', 'alert', alert)
end
""".replace("NOTICES_MAXLEN", str(NOTICES_MAXLEN))
# KEYS[1] health hash, KEYS[2] index set, KEYS[3] outbox, KEYS[4] notices (status page history);
# ARGV: name, now, status, duration, next_poll, documents, ttl, url, epoch.
_SUCCESS = (
    _OPERATOR_ALERT
    + """
local alerted = redis.call('HGET', KEYS[1], 'alerted')
local failures = tonumber(redis.call('HGET', KEYS[1], 'consecutive_failures') or '0')
redis.call('HSET', KEYS[1], 'consecutive_failures', 0, 'last_success', ARGV[2], 'last_status', ARGV[3],
  'last_duration', ARGV[4], 'next_poll', ARGV[5])
if ARGV[3] ~= '304' then  -- a 304 did not read the list: the last count read stays
  redis.call('HSET', KEYS[1], 'last_documents', ARGV[6])
end
redis.call('HINCRBY', KEYS[1], 'items_seen', ARGV[6])
redis.call('HDEL', KEYS[1], 'alerted')
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('SADD', KEYS[2], ARGV[1])
if alerted then
  operator_alert(KEYS[3], ARGV[1], 'recovered', ARGV[9], ARGV[8], ARGV[1] .. ' answers again',
    'Source ' .. ARGV[1] .. ' recovered', 'info', ARGV[2])
  return failures
end
return -1
"""
)

# ARGV: name, now, error, threshold, ttl, url, epoch.
_FAILURE = (
    _OPERATOR_ALERT
    + """
local n = redis.call('HINCRBY', KEYS[1], 'consecutive_failures', 1)
redis.call('HSET', KEYS[1], 'last_error', ARGV[3], 'last_error_at', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('SADD', KEYS[2], ARGV[1])
if n >= tonumber(ARGV[4]) and redis.call('HSETNX', KEYS[1], 'alerted', ARGV[2]) == 1 then
  operator_alert(KEYS[3], ARGV[1], 'failing', ARGV[7], ARGV[6],
    ARGV[1] .. ': ' .. ARGV[4] .. ' failed polls in a row; last error: ' .. ARGV[3],
    'Source ' .. ARGV[1] .. ' is failing', 'warning', ARGV[2])
  return n
end
return -n
"""
)


@dataclass(frozen=True)
class Transition:
    """A change operators hear about once: a source started failing, or came back."""

    kind: Literal["failing", "recovered"]
    source: str
    consecutive_failures: int
    error: str | None = None

    def __str__(self) -> str:
        """Just the kind ("failing" or "recovered"), so callers can log or compare it."""
        return self.kind


@dataclass(frozen=True)
class Failure:
    """A recorded failure: the streak it makes (for backing off) and the transition it caused."""

    streak: int
    transition: Transition | None = None


@dataclass(frozen=True)
class SourceHealthRecord:
    """One source's health as `sources list` and the status page show it."""

    source: str
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    items_seen: int = 0
    last_documents: int = 0
    next_poll: datetime | None = None
    last_status: int | None = None
    last_duration: float | None = None
    failing: bool = False


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value is not None else ""


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class SourceHealth:
    """Reads and writes health records; the worker calls it after every poll.

    Successes of polls that finish together go to Redis as one pipeline.
    """

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._success = redis.register_script(_SUCCESS)
        self._failure = redis.register_script(_FAILURE)
        self._successes = Coalescer(self._record_successes, window=WRITE_WINDOW)

    async def _record_successes(self, calls: Sequence[tuple[list[str], list[Any]]]) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                await self._success(keys=keys, args=args, client=pipe)
            return list(await pipe.execute(raise_on_error=False))

    async def record_success(
        self,
        name: str,
        *,
        status: int,
        documents: int,
        duration: float,
        next_poll: datetime | None,
        url: str = "",
    ) -> Transition | None:
        """Reset the failure streak; "recovered" once, its operator alert queued, if "failing" was raised."""
        keys = self._script_keys(name)
        now = datetime.now(UTC)
        args = [name, _iso(now), status, f"{duration:.3f}", _iso(next_poll), documents, HEALTH_TTL, url]
        args.append(int(now.timestamp()))
        result = await self._successes.call((keys, args))
        failures = int(result)
        return Transition("recovered", name, failures) if failures >= 0 else None

    async def record_failure(self, name: str, error: str, *, threshold: int, url: str = "") -> Failure:
        """Count a failure; "failing" once, its operator alert queued, when the streak reaches `threshold`."""
        now = datetime.now(UTC)
        result = int(
            await self._failure(
                keys=self._script_keys(name),
                args=[name, _iso(now), error[:2000], threshold, HEALTH_TTL, url, int(now.timestamp())],
            )
        )
        transition = Transition("failing", name, result, error) if result > 0 else None
        return Failure(abs(result), transition)

    def _script_keys(self, name: str) -> list[str]:
        """KEYS of the health scripts: the record, the index, the outbox and the notices copy."""
        k = self.keys
        return [k.source_health(name), k.source_health_index(), k.outbox(), k.notices()]

    async def note_next_poll(self, name: str, when: datetime) -> None:
        """When a failed source is polled next (its backoff), for the status page and `sources list`."""
        await self.redis.hset(self.keys.source_health(name), "next_poll", _iso(when))

    async def get(self, name: str) -> SourceHealthRecord | None:
        raw = await self.redis.hgetall(self.keys.source_health(name))
        if not raw:
            return None
        d = {_s(k): _s(v) for k, v in raw.items()}
        return SourceHealthRecord(
            source=name,
            last_success=_dt(d.get("last_success")),
            last_error=d.get("last_error") or None,
            last_error_at=_dt(d.get("last_error_at")),
            consecutive_failures=int(d.get("consecutive_failures") or 0),
            items_seen=int(d.get("items_seen") or 0),
            last_documents=int(d.get("last_documents") or 0),
            next_poll=_dt(d.get("next_poll")),
            last_status=int(d["last_status"]) if d.get("last_status") else None,
            last_duration=float(d["last_duration"]) if d.get("last_duration") else None,
            failing="alerted" in d,
        )

    async def all(self) -> dict[str, SourceHealthRecord]:
        """Every source with a record, by name; names whose record expired are forgotten."""
        index = self.keys.source_health_index()
        names = sorted(_s(n) for n in await self.redis.smembers(index))
        records: dict[str, SourceHealthRecord] = {}
        for name in names:
            record = await self.get(name)
            if record is None:
                await self.redis.srem(index, name)
            else:
                records[name] = record
        return records


def _s(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
