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

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

from tradewatch.models import Alert

__all__ = ["NOTIFIERS", "Notifier", "Receipt", "addressed"]

Receipt = dict[str, str]


class Notifier(Protocol):
    """What the outbox consumer calls; each kind is constructed with its settings section."""

    name: ClassVar[str]

    def __init__(self, settings: Any, /) -> None: ...

    async def send(
        self, alert: Alert, thread: Receipt | None = None, *, redelivery: bool = False
    ) -> Receipt | None: ...

    async def aclose(self) -> None: ...


def addressed(notifier: str, notify: Sequence[str]) -> bool:
    """Whether a `notify` list names this notifier (console, slack, webhook, email).

    An empty list means every configured notifier (DESIGN: rule `notify`); `slack:ROUTE`
    counts as slack; rules say `digest` for the email notifier, which records the digest.
    """
    if not notify:
        return True
    bases = {target.partition(":")[0] for target in notify}
    return notifier in {"email" if base == "digest" else base for base in bases}


from tradewatch.notify.console import ConsoleNotifier  # noqa: E402 - after Notifier: no cycle
from tradewatch.notify.slack import SlackNotifier  # noqa: E402
from tradewatch.notify.webhook import WebhookNotifier  # noqa: E402

NOTIFIERS: dict[str, type[Notifier]] = {
    "console": ConsoleNotifier,
    "slack": SlackNotifier,
    "webhook": WebhookNotifier,
}
