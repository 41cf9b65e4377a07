"""Webhook notifier against a real local HTTP server: body, signature, idempotency key, failures."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from tests.notify.alerts import make_alert
from tests.servers import LocalServer, Request, Response
from tradewatch.config import WebhookSettings
from tradewatch.errors import DeliveryError
from tradewatch.notify import NOTIFIERS

CONTRACT_FIELDS = {
    "id",
    "event_id",
    "rule",
    "severity",
    "tags",
    "title",
    "url",
    "source",
    "published_at",
    "facts",
    "sources",
}


async def test_post_is_signed_json_with_idempotency_key() -> None:
    """The receiver gets the alert JSON, an HMAC-SHA256 of the raw body and the alert id as key."""
    with LocalServer() as server:
        server.routes["/hook"] = Response(204)
        notifier = NOTIFIERS["webhook"](
            WebhookSettings(url=server.url("/hook"), secret="s3cret", headers={"X-Team": "buyers"})
        )
        receipt = await notifier.send(make_alert())
        await notifier.aclose()
    [req] = server.requests
    body = json.loads(req.body)
    assert set(body) >= CONTRACT_FIELDS
    assert body["id"] == "alert-1"
    assert body["facts"]["effective_date"] == "2025-04-04"
    expected = hmac.new(b"s3cret", req.body, hashlib.sha256).hexdigest()
    assert req.headers["x-tradewatch-signature"] == f"sha256={expected}"
    assert req.headers["idempotency-key"] == "alert-1"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["x-team"] == "buyers"
    assert receipt == {"id": "alert-1", "status": "204"}


@pytest.mark.parametrize("status", [400, 404, 500, 503])
async def test_non_2xx_is_retried(status: int) -> None:
    """Anything but 2xx is a transient DeliveryError (the outbox retries with backoff)."""
    with LocalServer() as server:
        server.routes["/hook"] = Response(status, headers={"Retry-After": "7"})
        notifier = NOTIFIERS["webhook"](WebhookSettings(url=server.url("/hook")))
        with pytest.raises(DeliveryError) as info:
            await notifier.send(make_alert())
        await notifier.aclose()
    assert not info.value.permanent
    assert info.value.retry_after == 7
    assert "x-tradewatch-signature" not in server.requests[0].headers


async def test_connection_refused_is_transient() -> None:
    """An unreachable receiver raises a transient DeliveryError, not an httpx error."""
    with LocalServer() as server:
        url = server.url("/hook")
    notifier = NOTIFIERS["webhook"](WebhookSettings(url=url, timeout=2))
    with pytest.raises(DeliveryError) as info:
        await notifier.send(make_alert())
    await notifier.aclose()
    assert not info.value.permanent


async def test_same_alert_same_signature() -> None:
    """A redelivery sends byte-identical bodies, so receivers can dedup by key and verify alike."""
    seen: list[Request] = []

    def handler(req: Request) -> Response:
        seen.append(req)
        return Response(200)

    with LocalServer() as server:
        server.routes["/hook"] = handler
        notifier = NOTIFIERS["webhook"](WebhookSettings(url=server.url("/hook"), secret="k"))
        await notifier.send(make_alert())
        await notifier.send(make_alert(), redelivery=True)
        await notifier.aclose()
    assert seen[0].body == seen[1].body
    assert seen[0].headers["x-tradewatch-signature"] == seen[1].headers["x-tradewatch-signature"]
