"""Slack notifier: Block Kit alerts via the Web API (bot token) or an incoming webhook.

Idempotency (DESIGN "Alerts"): `chat.postMessage` has no idempotency key, so each
message carries the alert id in its `metadata` (event type `tradewatch_alert`).
Callers that may be redelivering (an outbox entry claimed from a dead worker, a
retry after an ambiguous failure) call `send(alert, thread, redelivery=True)`:
that first calls `already_sent()`, which searches the channel's recent history
(or the thread's replies) for the id and returns the existing receipt instead of
posting twice. `already_sent()` is public for callers that want to check alone.

Retries: slack-sdk's own retry handlers retry a 429 in-process when Slack asks
for a short wait (`Retry-After` ≤ `max_inline_wait`): Slack posted nothing then.
Reads (history, channel list) are also retried on 500/503 and connection errors;
a post is not, because the message may have been posted before the answer was
lost, and only the outbox's retry checks the history first (`redelivery=True`).
Anything left becomes `DeliveryError` with `retry_after` for the outbox.
"""

from __future__ import annotations

import asyncio
import random
import re
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.jitter import Jitter
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tradewatch.config import SlackSettings
from tradewatch.errors import DeliveryError, TakenOver
from tradewatch.models import Alert
from tradewatch.notify.guard import still_ours
from tradewatch.notify.slack_blocks import alert_blocks, fallback_text

__all__ = ["METADATA_EVENT", "SlackNotifier", "slack_route"]

log = structlog.get_logger(__name__)

METADATA_EVENT = "tradewatch_alert"
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
# Slack errors that no retry can fix: credentials, channel, or our own payload.
_PERMANENT = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "missing_scope",
        "invalid_blocks",
        "invalid_arguments",
        "msg_too_long",
        "no_text",
        "restricted_action",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
        "team_access_not_granted",
        "ekm_access_denied",
    }
)

Receipt = dict[str, str]


def _retry_after(headers: Any) -> float | None:
    """Slack's `Retry-After` seconds from a response's headers (list- or str-valued)."""
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) else value
            try:
                return max(0.0, float(raw))
            except (TypeError, ValueError):
                return None
    return None


class _ProportionalJitter(Jitter):
    """Up to +50 % of the interval (slack-sdk's default adds up to a full second, even to zero)."""

    def recalculate(self, duration: float) -> float:
        return duration * (1 + random.random() / 2)


class _ShortRateLimitHandler(AsyncRetryHandler):
    """Retry a 429 after exactly `Retry-After`, but only when that wait is short.

    slack-sdk's own handler sleeps whatever Slack asks; a long wait belongs to the
    outbox (which keeps delivering other alerts meanwhile), so we decline it.
    """

    def __init__(self, max_retry_count: int, max_wait: float) -> None:
        super().__init__(max_retry_count)
        self.max_wait = max_wait

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if isinstance(error, TakenOver) or response is None or response.status_code != 429:
            return False
        wait = _retry_after(response.headers)
        return wait is not None and wait <= self.max_wait

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        wait = _retry_after(response.headers if response else None) or 0.0
        log.info("slack_rate_limited", retry_after=wait, attempt=state.current_attempt + 1)
        await asyncio.sleep(wait)
        await still_ours()  # after the wait, before posting again: not if another worker took over
        state.next_attempt_requested = True
        state.increment_current_attempt()


def slack_route(alert: Alert, routes: dict[str, str]) -> str:
    """The channel for an alert: `slack:ROUTE` in notify, else severity, else a tag, else default."""
    for target in alert.notify:
        name, _, route = target.partition(":")
        if name == "slack" and route:
            if route in routes:
                return routes[route]
            raise DeliveryError(f"slack route {route!r} is not configured", notifier="slack", permanent=True)
    if alert.severity in routes:
        return routes[alert.severity]
    for tag in alert.tags:
        if tag in routes:
            return routes[tag]
    return routes["default"]


class SlackNotifier:
    """Posts alerts; thread replies for updates and further sources when given the parent receipt."""

    name: ClassVar[str] = "slack"

    def __init__(
        self,
        settings: SlackSettings,
        *,
        max_inline_wait: float = 5.0,
        retries: int = 2,
        backoff: float = 0.5,
    ) -> None:
        self.settings = settings
        self.tz = ZoneInfo(settings.timezone) if settings.timezone else None
        rate_limited: list[AsyncRetryHandler] = [_ShortRateLimitHandler(retries, max_inline_wait)]
        handlers: list[AsyncRetryHandler] = [
            *rate_limited,
            AsyncServerErrorRetryHandler(
                max_retry_count=retries,
                interval_calculator=BackoffRetryIntervalCalculator(backoff, _ProportionalJitter()),
            ),
            AsyncConnectionErrorRetryHandler(
                max_retry_count=retries,
                interval_calculator=BackoffRetryIntervalCalculator(backoff, _ProportionalJitter()),
            ),
        ]
        # Two clients: a post retried blindly after a lost answer would post twice.
        self._client: AsyncWebClient | None = None  # chat.postMessage
        self._reader: AsyncWebClient | None = None  # history and channel lookups
        if settings.token:
            self._client = AsyncWebClient(
                token=settings.token, base_url=settings.base_url, retry_handlers=rate_limited, timeout=30
            )
            self._reader = AsyncWebClient(
                token=settings.token, base_url=settings.base_url, retry_handlers=handlers, timeout=30
            )
        self._hook = (
            AsyncWebhookClient(settings.webhook_url, retry_handlers=handlers, timeout=30)
            if settings.webhook_url and not settings.token
            else None
        )
        self._channel_ids: dict[str, str] = {}

    async def send(self, alert: Alert, thread: Receipt | None = None, *, redelivery: bool = False) -> Receipt:
        """Post the alert (into `thread` when given); with `redelivery`, reuse an earlier post."""
        blocks = alert_blocks(alert, self.tz)
        text = fallback_text(alert)
        if self._client is None:
            return await self._send_webhook(alert, text, blocks)
        if redelivery:
            found = await self.already_sent(alert, thread)
            if found is not None:
                log.info("slack_redelivery_skipped", alert_id=alert.id, **found)
                return found
            await still_ours()  # the history read can be slow: still ours before posting?
        if thread and thread.get("channel"):
            channel = thread["channel"]
        else:
            channel = slack_route(alert, self.settings.routes)
        kwargs: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "blocks": blocks,
            "unfurl_links": False,
            "unfurl_media": False,
            "metadata": {
                "event_type": METADATA_EVENT,
                "event_payload": {"alert_id": alert.id, "event_id": alert.event_id, "kind": alert.kind},
            },
        }
        if thread and thread.get("ts"):
            kwargs["thread_ts"] = thread["ts"]
            if alert.raises:  # e.g. the official notice confirming a news story: not only in the thread
                kwargs["reply_broadcast"] = True
        resp = await self._call("chat_postMessage", alert, **kwargs)
        receipt = {"channel": str(resp.get("channel") or channel), "ts": str(resp.get("ts") or "")}
        if not _CHANNEL_ID.match(channel):  # remember the ID behind a #name for history checks
            self._channel_ids[channel] = receipt["channel"]
        log.info(
            "slack_posted",
            alert_id=alert.id,
            channel=receipt["channel"],
            ts=receipt["ts"],
            thread=bool(thread),
        )
        return receipt

    async def already_sent(self, alert: Alert, thread: Receipt | None = None) -> Receipt | None:
        """The receipt of an earlier post of this alert (found by metadata), or None.

        Looks in the thread's replies when `thread` is given, else in the routed
        channel's last `history_check` messages. Returns None when the history
        cannot be read (e.g. a missing scope), so a redelivery posts rather than loses.
        """
        assert self._client is not None
        limit = self.settings.history_check
        if limit == 0:
            return None
        try:
            if thread and thread.get("channel") and thread.get("ts"):
                channel = thread["channel"]
                resp = await self._call(
                    "conversations_replies",
                    alert,
                    channel=channel,
                    ts=thread["ts"],
                    limit=limit,
                    include_all_metadata=True,
                )
            else:
                channel_id = await self._channel_id(slack_route(alert, self.settings.routes), alert)
                if channel_id is None:
                    return None
                channel = channel_id
                resp = await self._call(
                    "conversations_history", alert, channel=channel, limit=limit, include_all_metadata=True
                )
        except DeliveryError as exc:
            if exc.permanent:
                log.warning("slack_history_unavailable", alert_id=alert.id, error=str(exc))
                return None
            raise
        for message in resp.get("messages") or []:
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == METADATA_EVENT and payload.get("alert_id") == alert.id:
                return {"channel": channel, "ts": str(message.get("ts"))}
        return None

    async def _channel_id(self, channel: str, alert: Alert) -> str | None:
        """Channel IDs for history calls; names are resolved once via conversations.list."""
        if _CHANNEL_ID.match(channel):
            return channel
        if channel in self._channel_ids:
            return self._channel_ids[channel]
        wanted = channel.lstrip("#")
        cursor: str | None = None
        for _ in range(50):  # 50 pages of 1000 channels: beyond that, configure the ID
            kwargs: dict[str, Any] = {
                "types": "public_channel,private_channel",
                "limit": 1000,
                "exclude_archived": True,
            }
            if cursor:
                kwargs["cursor"] = cursor
            resp = await self._call("conversations_list", alert, **kwargs)
            for ch in resp.get("channels") or []:
                if ch.get("name") == wanted:
                    self._channel_ids[channel] = str(ch["id"])
                    return self._channel_ids[channel]
            cursor = (resp.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        log.warning("slack_channel_unresolved", channel=channel, alert_id=alert.id)
        return None

    async def _call(self, method: str, alert: Alert, **kwargs: Any) -> Any:
        """One Web API call with slack-sdk's retries; failures mapped to DeliveryError."""
        client = self._client if method == "chat_postMessage" else self._reader
        assert client is not None
        try:
            return await getattr(client, method)(**kwargs)
        except SlackApiError as exc:
            raise _delivery_error(exc, method) from exc
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"slack {method}: {type(exc).__name__}: {exc}", notifier="slack") from exc

    async def _send_webhook(self, alert: Alert, text: str, blocks: list[dict[str, Any]]) -> Receipt:
        """Incoming-webhook mode: no metadata, threads or history, so no redelivery check."""
        assert self._hook is not None
        try:
            resp = await self._hook.send(text=text, blocks=blocks, unfurl_links=False, unfurl_media=False)
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"slack webhook: {type(exc).__name__}: {exc}", notifier="slack") from exc
        if resp.status_code != 200:
            status = resp.status_code
            raise DeliveryError(
                f"slack webhook answered {status}: {resp.body[:200]}",
                notifier="slack",
                permanent=status in (400, 403, 404, 410),
                retry_after=_retry_after(resp.headers),
            )
        log.info("slack_posted", alert_id=alert.id, channel="webhook")
        return {"channel": "webhook", "ts": ""}

    async def aclose(self) -> None:
        """Nothing pooled: slack-sdk opens one aiohttp session per call when none is given."""
        self._channel_ids.clear()


def _delivery_error(exc: SlackApiError, method: str) -> DeliveryError:
    response = exc.response
    status = int(getattr(response, "status_code", 0) or 0)
    data = getattr(response, "data", None)
    error = str(data.get("error", "")) if isinstance(data, dict) else ""
    retry_after = _retry_after(getattr(response, "headers", None))
    permanent = error in _PERMANENT or (400 <= status < 500 and status not in (408, 429))
    if status == 429 or error == "ratelimited":
        permanent = False
        retry_after = retry_after if retry_after is not None else 1.0
    return DeliveryError(
        f"slack {method}: {error or 'http ' + str(status)}",
        notifier="slack",
        permanent=permanent,
        retry_after=retry_after,
    )
