"""Notifiers: one module per kind, registered in the plain dict `NOTIFIERS`.

`send` delivers one alert or raises `DeliveryError` (with `permanent` and
`retry_after`); it returns a receipt (e.g. Slack channel and ts) that later
thread replies of the same event pass back as `thread`.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from tradewatch.models import Alert

__all__ = ["NOTIFIERS", "Notifier", "Receipt"]

Receipt = dict[str, str]


class Notifier(Protocol):
    name: ClassVar[str]

    async def send(self, alert: Alert, thread: Receipt | None = None) -> Receipt | None: ...

    async def aclose(self) -> None: ...


NOTIFIERS: dict[str, type[Notifier]] = {}
