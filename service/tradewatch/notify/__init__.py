"""Notifiers: one module per kind, registered in the plain dict `NOTIFIERS`.

`send` delivers one alert or raises `DeliveryError` (with `permanent` and
`retry_after`); it returns a receipt (e.g. Slack channel and ts) that later
thread replies of the same event pass back as `thread`. `redelivery=True` says
the alert may have been delivered before (claimed from a dead worker, retried
after an ambiguous failure): Slack then looks for it in the channel history
first (see `notify/slack.py`); the webhook always sends `Idempotency-Key`.

The email digest is not a per-alert notifier: alerts routed to `digest` are
recorded by `store.digest.DigestBook` and mailed on its schedule.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from tradewatch.models import Alert

__all__ = ["NOTIFIERS", "Notifier", "Receipt", "wants"]

Receipt = dict[str, str]


class Notifier(Protocol):
    """What the outbox consumer calls; each kind is constructed with its settings section."""

    name: ClassVar[str]

    def __init__(self, settings: Any, /) -> None: ...

    async def send(
        self, alert: Alert, thread: Receipt | None = None, *, redelivery: bool = False
    ) -> Receipt | None: ...

    async def aclose(self) -> None: ...


def wants(alert: Alert, notifier: str) -> bool:
    """Whether `notifier` (console, slack, webhook, digest/email) should get this alert.

    An alert without `notify` goes to every configured notifier (DESIGN: rule
    `notify`); `slack:ROUTE` counts as slack; `email` and `digest` are one target.
    """
    if not alert.notify:
        return True
    wanted = {target.partition(":")[0] for target in alert.notify}
    if notifier in ("digest", "email"):
        return bool(wanted & {"digest", "email"})
    return notifier in wanted


from tradewatch.notify.console import ConsoleNotifier  # noqa: E402 - after Notifier: no cycle
from tradewatch.notify.slack import SlackNotifier  # noqa: E402
from tradewatch.notify.webhook import WebhookNotifier  # noqa: E402

NOTIFIERS: dict[str, type[Notifier]] = {
    "console": ConsoleNotifier,
    "slack": SlackNotifier,
    "webhook": WebhookNotifier,
}
