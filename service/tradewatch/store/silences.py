"""Silences: mute alerts of a rule, tag or source until a time (maintenance, known noise).

Two origins, one check: `silences:` in the config (read-only, reviewed with the
config) and silences added at run time (CLI, status page) kept in Redis so every
worker honours them. A silence's fields are ANDed and may be globs (`mofcom-*`);
a silence with no field mutes nothing (refused at creation). Expired silences stop
matching at `until` and are pruned from Redis when listed.
"""

from __future__ import annotations

import fnmatch
import json
import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
import structlog

from tradewatch.config import Settings, SilenceSpec
from tradewatch.durations import parse_duration
from tradewatch.errors import ConfigError
from tradewatch.models import Alert
from tradewatch.store.keys import Keys

__all__ = ["Silence", "Silences", "parse_until"]


log = structlog.get_logger(__name__)


def parse_until(value: str, tz: ZoneInfo, now: datetime | None = None) -> datetime:
    """`2025-12-01T08:00+01:00`, `2025-12-01` (its midnight in `tz`) or, given `now`, a duration (`2h`)."""
    text = value.strip()
    if now is not None and text and text[-1] in "smhdw" and text[:-1].replace(".", "", 1).isdigit():
        return now + parse_duration(text)
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0, 0), tzinfo=tz)
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(
            f"{value!r} is not a time; write 2025-12-01, 2025-12-01T08:00+01:00 or 2h", key="silences.until"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


@dataclass
class Silence:
    """One silence, from the config (`origin="config"`) or added at run time (`origin="redis"`)."""

    id: str
    until: datetime
    rule: str | None = None
    tag: str | None = None
    source: str | None = None
    reason: str = ""
    origin: str = "redis"
    created_by: str = ""

    def matches(self, alert: Alert, now: datetime) -> bool:
        if now >= self.until:
            return False
        if self.rule and not fnmatch.fnmatchcase(alert.rule, self.rule):
            return False
        if self.tag and not any(fnmatch.fnmatchcase(t, self.tag) for t in alert.tags):
            return False
        if self.source and not (
            fnmatch.fnmatchcase(alert.source, self.source)
            or any(fnmatch.fnmatchcase(s.source, self.source) for s in alert.sources)
        ):
            return False
        return bool(self.rule or self.tag or self.source)

    def describe(self) -> str:
        fields = (("rule", self.rule), ("tag", self.tag), ("source", self.source))
        what = ", ".join(f"{k} {v}" for k, v in fields if v)
        why = f": {self.reason}" if self.reason else ""
        return f"silenced ({what}) until {self.until.isoformat()} [{self.origin} {self.id}]{why}"

    def to_json(self) -> str:
        data = asdict(self)
        data["until"] = self.until.isoformat()
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> Silence:
        data = json.loads(raw)
        data["until"] = datetime.fromisoformat(data["until"])
        return cls(**data)


def _from_spec(index: int, spec: SilenceSpec, tz: ZoneInfo) -> Silence:
    # `until` read as `silence add --until` reads it: a date or a time without offset in `timezone`
    return Silence(
        id=f"config-{index}",
        until=parse_until(spec.until, tz),
        rule=spec.rule,
        tag=spec.tag,
        source=spec.source,
        reason=spec.reason,
        origin="config",
    )


class Silences:
    """The silence check the pipeline and outbox ask before delivering an alert."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, settings: Settings) -> None:
        self.redis = redis
        self.keys = keys
        self.tz = ZoneInfo(settings.timezone)
        self.configured = [_from_spec(i, spec, self.tz) for i, spec in enumerate(settings.silences)]

    async def add(
        self,
        *,
        until: datetime,
        rule: str | None = None,
        tag: str | None = None,
        source: str | None = None,
        reason: str = "",
        created_by: str = "",
    ) -> Silence:
        """Record a run-time silence; at least one of rule, tag, source is required."""
        if not (rule or tag or source):
            raise ConfigError("a silence needs a rule, tag or source", key="silences")
        silence = Silence(
            id=uuid.uuid4().hex[:8],
            until=until,
            rule=rule,
            tag=tag,
            source=source,
            reason=reason,
            created_by=created_by,
        )
        await self.redis.hset(self.keys.silences(), silence.id, silence.to_json())
        log.info(
            "silence_added", silence=silence.id, rule=rule, tag=tag, source=source, until=until.isoformat()
        )
        return silence

    async def remove(self, silence_id: str) -> bool:
        """Lift a run-time silence early; config silences are lifted by editing the config."""
        removed = bool(await self.redis.hdel(self.keys.silences(), silence_id))
        if removed:
            log.info("silence_removed", silence=silence_id)
        return removed

    async def active(self, now: datetime) -> list[Silence]:
        """Config and run-time silences still in force (expired run-time ones are pruned)."""
        out = [s for s in self.configured if now < s.until]
        for sid, raw in (await self.redis.hgetall(self.keys.silences())).items():
            silence = Silence.from_json(str(raw))
            if now >= silence.until:
                await self.redis.hdel(self.keys.silences(), sid)
                continue
            out.append(silence)
        return sorted(out, key=lambda s: s.until)

    async def is_silenced(self, alert: Alert, now: datetime) -> str | None:
        """The reason this alert is muted, or None. Operator alerts are never muted."""
        if alert.kind == "operator":
            return None
        for silence in await self.active(now):
            if silence.matches(alert, now):
                return silence.describe()
        return None
