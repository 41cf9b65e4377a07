"""Webhook notifier: a signed JSON POST per alert, for Teams, PagerDuty or in-house systems.

Contract (DESIGN "Alerts"): body = `alert.webhook_json()`; headers
`Idempotency-Key: <alert.id>` and `X-Tradewatch-Signature: sha256=<hex HMAC-SHA256
of the raw body with the secret>`; any 2xx is delivery, anything else raises a
transient `DeliveryError` so the outbox retries with backoff.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import ClassVar

import httpx
import structlog

from tradewatch.config import WebhookSettings
from tradewatch.errors import DeliveryError
from tradewatch.models import Alert

__all__ = ["WebhookNotifier", "sign", "webhook_body"]

log = structlog.get_logger(__name__)

Receipt = dict[str, str]


def webhook_body(alert: Alert) -> bytes:
    """The exact bytes that are signed and sent (compact, UTF-8, keys sorted for stable signatures)."""
    data = alert.webhook_json()
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def sign(body: bytes, secret: str) -> str:
    """The signature header value receivers recompute to trust the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


class WebhookNotifier:
    """POSTs each alert; the receipt carries the HTTP status."""

    name: ClassVar[str] = "webhook"

    def __init__(
        self, settings: WebhookSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self._client = httpx.AsyncClient(
            timeout=settings.timeout, transport=transport, follow_redirects=False, trust_env=True
        )

    async def send(self, alert: Alert, thread: Receipt | None = None, *, redelivery: bool = False) -> Receipt:
        """Deliver once per 2xx; the receiver dedups redeliveries by `Idempotency-Key`."""
        body = webhook_body(alert)
        headers = {
            **self.settings.headers,
            "Content-Type": "application/json",
            "Idempotency-Key": alert.id,
            "User-Agent": "tradewatch-webhook/1",
        }
        if self.settings.secret:
            headers["X-Tradewatch-Signature"] = sign(body, self.settings.secret)
        if thread and thread.get("id"):
            headers["X-Tradewatch-Thread"] = thread["id"]
        try:
            response = await self._client.post(self.settings.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook: {type(exc).__name__}: {exc}", notifier="webhook") from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryError(
                f"webhook answered {response.status_code}",
                notifier="webhook",
                retry_after=_retry_after(response),
            )
        log.info("webhook_delivered", alert_id=alert.id, status=response.status_code)
        return {"id": alert.thread_of or alert.id, "status": str(response.status_code)}

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()
