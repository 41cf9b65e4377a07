"""A real local HTTP server that speaks enough of Slack's Web API for end-to-end tests.

    with FakeSlack() as slack:
        settings = SlackSettings(token=slack.token, base_url=slack.base_url, routes={"default": "#alerts"})
        ...
        assert slack.messages[0].metadata["event_payload"]["alert_id"] == alert.id
        slack.fail("chat.postMessage", status=429, retry_after=1, times=1)   # next call rate-limited
        slack.fail("chat.postMessage", status=500, after_post=True)           # posted, answer lost

Speaks: `auth.test`, `chat.postMessage` (channel by name or id, `thread_ts`,
`metadata`, blocks checked against Slack's limits), `conversations.history`
(top-level messages, newest first, metadata only with `include_all_metadata`),
`conversations.replies`, `conversations.list`, and incoming webhooks at
`slack.webhook_url`. JSON, form and query-string arguments are all accepted, like
Slack. Every call is recorded in `slack.calls`. Channels are created on first use
unless `auto_create=False`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["Call", "FakeSlack", "Message"]

_Answer = tuple[int, dict[str, str], dict[str, Any]]


@dataclass
class Message:
    """A posted message as Slack stores it."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    metadata: dict[str, Any] | None = None
    thread_ts: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def as_api(self, with_metadata: bool) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text, "blocks": self.blocks}
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
        if with_metadata and self.metadata:
            data["metadata"] = self.metadata
        return data

    @property
    def alert_id(self) -> str | None:
        """The tradewatch idempotency key carried in metadata, if any."""
        payload = (self.metadata or {}).get("event_payload") or {}
        value = payload.get("alert_id")
        return str(value) if value is not None else None

    def all_text(self) -> str:
        """Top-level text plus every text in the blocks, for content assertions."""
        out = [self.text]

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if isinstance(node.get("text"), str):
                    out.append(node["text"])
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(self.blocks)
        return "\n".join(out)


@dataclass
class Call:
    """One request the server received (method is the API method, e.g. `chat.postMessage`)."""

    method: str
    http_method: str
    args: dict[str, Any]
    headers: dict[str, str]
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Failure:
    method: str | None
    status: int
    times: int
    retry_after: float | None
    error: str | None
    after_post: bool = False  # the call takes effect, then the answer is an error (a lost answer)


def _check_blocks(blocks: Any) -> str | None:
    """Slack's own limits, so tests catch a message Slack would reject with invalid_blocks."""
    if blocks is None:
        return None
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "too many blocks"
    for block in blocks:
        kind = block.get("type")
        text = block.get("text") or {}
        if kind == "header" and (text.get("type") != "plain_text" or len(text.get("text", "")) > 150):
            return "header must be plain_text of at most 150 characters"
        if kind == "section":
            if text and len(text.get("text", "")) > 3000:
                return "section text over 3000 characters"
            fields = block.get("fields") or []
            if len(fields) > 10 or any(len(f.get("text", "")) > 2000 for f in fields):
                return "section fields over limits"
            if not text and not fields:
                return "section needs text or fields"
            if text and not text.get("text"):
                return "empty section text"
        if kind == "context" and len(block.get("elements") or []) > 10:
            return "context over 10 elements"
    return None


class FakeSlack:
    """Slack's Web API on 127.0.0.1 in a thread; see the module docstring for use."""

    def __init__(self, token: str = "xoxb-test-token", *, auto_create: bool = True) -> None:  # noqa: S107
        self.token = token
        self.auto_create = auto_create
        self.channels: dict[str, str] = {}  # name (without #) -> id
        self.list_page_size: int | None = None  # conversations.list: channels per page (None: all)
        self.messages: list[Message] = []
        self.calls: list[Call] = []
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._clock = 0
        outer = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = outer._handle(
                    self.command, self.path, dict(self.headers.items()), body
                )
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    # --- test-facing API ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Pass as `SlackSettings.base_url` (slack-sdk appends the method name)."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/api/"

    @property
    def webhook_url(self) -> str:
        """An incoming-webhook URL; its posts land in channel `webhook`."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/services/T000/B000/XXXX"

    def add_channel(self, name: str) -> str:
        """Create a channel (name with or without #) and return its id."""
        with self._lock:
            return self._channel_id(name.lstrip("#"), create=True) or ""

    def fail(
        self,
        method: str | None = None,
        *,
        status: int = 500,
        times: int = 1,
        retry_after: float | None = None,
        error: str | None = None,
        after_post: bool = False,
    ) -> None:
        """Answer the next `times` calls of `method` (any when None) with `status` (429 → ratelimited).

        With `after_post`, each such call is carried out first (the message is posted) and
        only its answer is the error: what a client sees when Slack's answer is lost.
        """
        with self._lock:
            self._failures.append(_Failure(method, status, times, retry_after, error, after_post))

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def in_channel(self, channel: str) -> list[Message]:
        """Messages (replies included) in a channel given by name or id, oldest first."""
        with self._lock:
            cid = self.channels.get(channel.lstrip("#"), channel)
            return [m for m in self.messages if m.channel == cid]

    def thread(self, ts: str) -> list[Message]:
        """Replies of the message `ts` (the parent excluded), oldest first."""
        with self._lock:
            return [m for m in self.messages if m.thread_ts == ts]

    def top_level(self) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if not m.thread_ts]

    def __enter__(self) -> FakeSlack:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- server side ---------------------------------------------------------------------------

    def _channel_id(self, name: str, create: bool) -> str | None:
        if name in self.channels.values():
            return name
        if name not in self.channels:
            if not create:
                return None
            self.channels[name] = f"C{len(self.channels) + 1:08d}"
        return self.channels[name]

    def _next_ts(self) -> str:
        self._clock += 1
        return f"{int(time.time())}.{self._clock:06d}"

    def _handle(
        self, verb: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        parts = urlsplit(path)
        args: dict[str, Any] = dict(parse_qsl(parts.query))
        ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        if body:
            if "json" in ctype:
                args.update(json.loads(body))
            else:
                args.update(parse_qsl(body.decode()))
        for key in ("blocks", "metadata"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        lower = {k.lower(): v for k, v in headers.items()}
        hook = parts.path.startswith("/services/")
        method = "webhook" if hook else parts.path.removeprefix("/api/")
        with self._lock:
            call = Call(method, verb, args, lower)
            self.calls.append(call)
            status, extra, payload = self._dispatch(method, args, lower)
            call.status, call.response = status, payload
            return status, extra, payload

    def _dispatch(
        self, method: str, args: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        for failure in self._failures:
            if failure.times > 0 and failure.method in (None, method):
                failure.times -= 1
                if failure.after_post:
                    self._dispatch_ok(method, args, headers)
                extra = {"Retry-After": f"{failure.retry_after:g}"} if failure.retry_after is not None else {}
                error = failure.error or ("ratelimited" if failure.status == 429 else "internal_error")
                return failure.status, extra, {"ok": False, "error": error}
        return self._dispatch_ok(method, args, headers)

    def _dispatch_ok(
        self, method: str, args: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        if method == "webhook":
            return self._post(args, webhook=True)
        auth = args.get("token") or headers.get("authorization", "").removeprefix("Bearer ")
        if auth != self.token:
            return 200, {}, {"ok": False, "error": "invalid_auth" if auth else "not_authed"}
        handlers: dict[str, Callable[[], _Answer]] = {
            "auth.test": lambda: (
                200,
                {},
                {
                    "ok": True,
                    "user_id": "U0TRADEW",
                    "team_id": "T000",
                    "bot_id": "B0TRADEW",
                    "url": "https://fake.slack.com/",
                },
            ),
            "chat.postMessage": lambda: self._post(args),
            "conversations.history": lambda: self._history(args),
            "conversations.replies": lambda: self._replies(args),
            "conversations.list": lambda: self._list(args),
        }
        handler = handlers.get(method)
        if handler is None:
            return 200, {}, {"ok": False, "error": "unknown_method"}
        return handler()

    def _post(
        self, args: dict[str, Any], webhook: bool = False
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        problem = _check_blocks(args.get("blocks"))
        if problem:
            return (
                (400, {}, {"ok": False, "error": "invalid_blocks"})
                if webhook
                else (200, {}, {"ok": False, "error": "invalid_blocks", "errors": [problem]})
            )
        if not args.get("text") and not args.get("blocks"):
            return 200, {}, {"ok": False, "error": "no_text"}
        if webhook:
            cid = self._channel_id("webhook", create=True) or ""
        else:
            cid = self._channel_id(str(args.get("channel", "")).lstrip("#"), create=self.auto_create) or ""
            if not cid:
                return 200, {}, {"ok": False, "error": "channel_not_found"}
        thread_ts = args.get("thread_ts") or None
        if thread_ts and not any(m.ts == thread_ts and m.channel == cid for m in self.messages):
            return 200, {}, {"ok": False, "error": "thread_not_found"}
        msg = Message(
            cid,
            self._next_ts(),
            str(args.get("text") or ""),
            list(args.get("blocks") or []),
            args.get("metadata"),
            thread_ts,
            dict(args),
        )
        self.messages.append(msg)
        if webhook:
            return 200, {}, {"ok": True}
        return 200, {}, {"ok": True, "channel": cid, "ts": msg.ts, "message": msg.as_api(True)}

    def _list(self, args: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        """conversations.list, `list_page_size` channels a page (all at once when None), by cursor."""
        listed = [{"id": cid, "name": name} for name, cid in self.channels.items()]
        start = int(args.get("cursor") or 0)
        size = self.list_page_size or len(listed) or 1
        page, rest = listed[start : start + size], listed[start + size :]
        more = str(start + size) if rest else ""
        return 200, {}, {"ok": True, "channels": page, "response_metadata": {"next_cursor": more}}

    def _history(self, args: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        cid = self._channel_id(str(args.get("channel", "")), create=False)
        if cid is None:
            return 200, {}, {"ok": False, "error": "channel_not_found"}
        limit = int(args.get("limit") or 100)
        meta = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        found = [m for m in self.messages if m.channel == cid and not m.thread_ts][::-1][:limit]
        return 200, {}, {"ok": True, "messages": [m.as_api(meta) for m in found], "has_more": False}

    def _replies(self, args: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        cid = self._channel_id(str(args.get("channel", "")), create=False)
        ts = str(args.get("ts", ""))
        parent = [m for m in self.messages if m.channel == cid and m.ts == ts]
        if cid is None or not parent:
            return 200, {}, {"ok": False, "error": "thread_not_found"}
        limit = int(args.get("limit") or 1000)
        meta = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        found = parent + [m for m in self.messages if m.channel == cid and m.thread_ts == ts]
        return 200, {}, {"ok": True, "messages": [m.as_api(meta) for m in found[:limit]], "has_more": False}
