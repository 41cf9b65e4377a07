"""The digest's content: alerts since the last digest grouped by severity and tag, plus upcoming deadlines.

Pure data; `store/digest.py` fills it from Redis and `notify/email.py` renders and mails it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tradewatch.models import Alert, Deadline, severity_rank

__all__ = ["DEADLINE_HORIZON", "Digest", "DigestGroup", "group_alerts", "make_digest"]

# "Deadlines in the next 14 days" (issue 7): far enough to plan a shipment, short enough to read.
DEADLINE_HORIZON = timedelta(days=14)
_UNTAGGED = "other"


@dataclass
class DigestGroup:
    """Alerts of one severity and tag, newest first."""

    severity: str
    tag: str
    alerts: list[Alert]


@dataclass
class Digest:
    """One digest mail's content; `alert_ids` are removed from the pending set once it is mailed."""

    now: datetime
    since: datetime | None
    new: list[DigestGroup] = field(default_factory=list)
    updates: list[DigestGroup] = field(default_factory=list)
    notices: list[Alert] = field(default_factory=list)
    reminders: list[Alert] = field(default_factory=list)
    deadlines: list[Deadline] = field(default_factory=list)
    alert_ids: list[str] = field(default_factory=list)

    @property
    def alert_count(self) -> int:
        return sum(len(g.alerts) for g in self.new + self.updates) + len(self.notices) + len(self.reminders)

    @property
    def empty(self) -> bool:
        """Nothing arrived: upcoming deadlines alone do not make a digest worth mailing."""
        return self.alert_count == 0


def group_alerts(alerts: Iterable[Alert]) -> list[DigestGroup]:
    """Group by (severity, first tag); critical first, then tag name; an alert appears once."""
    groups: dict[tuple[str, str], list[Alert]] = {}
    for alert in alerts:
        tag = alert.tags[0] if alert.tags else _UNTAGGED
        groups.setdefault((alert.severity, tag), []).append(alert)
    ordered = sorted(groups.items(), key=lambda kv: (-severity_rank(kv[0][0]), kv[0][1]))
    return [DigestGroup(sev, tag, sorted(items, key=_newest_first)) for (sev, tag), items in ordered]


def _newest_first(alert: Alert) -> float:
    when = alert.published_at or alert.seen_at
    return -when.timestamp() if when else 0.0


def make_digest(
    alerts: Sequence[Alert], deadlines: Sequence[Deadline], *, now: datetime, since: datetime | None
) -> Digest:
    """Sort alerts into sections: new events, updates and further sources, reminders, operator notices.

    Reminders have a section of their own: a deadline beyond the 14-day list (a `21d`
    reminder) or just past is named nowhere else, and a reminder routed to the digest
    alone must make the digest go out.
    """
    new = [a for a in alerts if a.kind == "new"]
    updates = [a for a in alerts if a.kind in ("update", "also")]
    notices = [a for a in alerts if a.kind == "operator"]
    reminders = sorted((a for a in alerts if a.kind == "reminder"), key=lambda a: (a.due is None, a.due))
    return Digest(
        now=now,
        since=since,
        new=group_alerts(new),
        updates=group_alerts(updates),
        notices=notices,
        reminders=reminders,
        deadlines=[d for d in deadlines if not d.resolved],
        alert_ids=[a.id for a in alerts],
    )
