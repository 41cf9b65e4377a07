"""The email digest's own health: an operator alert once it keeps failing, and once it is mailed again.

Sources have `store/health.py`; the digest has no source, yet when its SMTP server refuses
it for hours nobody who reads only email hears of anything. So after `failure_alert_after`
failed sends in a row an operator alert goes to every other notifier (never to the digest
itself), and a "sends again" one when a slot completes. As for sources, the streak, the
once-only flag and the alert are written by one script: exactly once across workers, and
no crash between them loses the alert.
"""

from __future__ import annotations

from datetime import datetime

import redis.asyncio as aioredis
import structlog

from tradewatch.models import Alert
from tradewatch.store.keys import NOTICES_MAXLEN, Keys
from tradewatch.store.outbox import entry_fields

__all__ = ["DigestHealth"]

log = structlog.get_logger(__name__)

# Every notifier but the digest: an alert that the digest fails must not wait in that digest.
_NOT_THE_DIGEST = ["console", "slack", "webhook"]

# KEYS: streak, alerted flag, outbox, notices. ARGV: threshold, NOTICES_MAXLEN, alert JSON,
# then the outbox entry's fields.
_FAILED = """
local n = redis.call('INCR', KEYS[1])
if n >= tonumber(ARGV[1]) and redis.call('SETNX', KEYS[2], '1') == 1 then
  redis.call('XADD', KEYS[3], '*', unpack(ARGV, 4))
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*', 'alert', ARGV[3])
  return n
end
return -n
"""
# The same keys. ARGV: NOTICES_MAXLEN, alert JSON, then the outbox entry's fields.
_SENT = """
redis.call('DEL', KEYS[1])
if redis.call('DEL', KEYS[2]) == 1 then
  redis.call('XADD', KEYS[3], '*', unpack(ARGV, 3))
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[1], '*', 'alert', ARGV[2])
  return 1
end
return 0
"""


class DigestHealth:
    """Failed digest sends in a row, and the operator alerts of "failing" and "sends again"."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, threshold: int) -> None:
        self.redis = redis
        self.keys = keys
        self.threshold = threshold

    def _keys(self) -> list[str]:
        return [
            self.keys.digest_failures(),
            self.keys.digest_failing(),
            self.keys.outbox(),
            self.keys.notices(),
        ]

    async def failed(self, error: str, now: datetime) -> bool:
        """Count a failed send; True when this one raised the "failing" operator alert."""
        alert = _operator_alert(
            "failing",
            now,
            title=f"The email digest failed {self.threshold} times in a row; last error: {error[:300]}",
            rule_title="Email digest is failing",
        )
        fields = entry_fields(alert)
        args: list[str | int] = [self.threshold, NOTICES_MAXLEN, fields["alert"]]
        args += [x for kv in fields.items() for x in kv]
        raised = int(await self.redis.eval(_FAILED, 4, *self._keys(), *args)) > 0
        if raised:  # also in the log: with email the only notifier, the log is where it shows
            log.error("digest_failing", failures=self.threshold, error=error[:300])
        return raised

    async def sent(self, now: datetime) -> bool:
        """A slot completed: reset the streak; True when this raised the "sends again" alert."""
        alert = _operator_alert(
            "recovered", now, title="The email digest is mailed again", rule_title="Email digest recovered"
        )
        fields = entry_fields(alert)
        args: list[str | int] = [NOTICES_MAXLEN, fields["alert"]]
        args += [x for kv in fields.items() for x in kv]
        recovered = bool(await self.redis.eval(_SENT, 4, *self._keys(), *args))
        if recovered:
            log.info("digest_recovered")
        return recovered


def _operator_alert(transition: str, now: datetime, *, title: str, rule_title: str) -> Alert:
    return Alert(
        id=f"operator:email-digest:{transition}:{int(now.timestamp())}",
        kind="operator",
        rule="tradewatch-digest-health",
        rule_title=rule_title,
        severity="warning" if transition == "failing" else "info",
        tags=["operator"],
        title=title,
        source="email-digest",
        seen_at=now,
        notify=list(_NOT_THE_DIGEST),
    )
