"""The worker's HTTP app: probes and metrics for machines, a calendar and a status page for people.

Routes (contract, DESIGN.md "HTTP endpoints"): `/healthz`, `/readyz`, `/metrics`,
`/deadlines.ics` and `/`. Probes and metrics stay open so orchestrators and
Prometheus need no secret; the page and the calendar take the optional token or
basic-auth from `server.*` in the config.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import redis.asyncio as aioredis
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tradewatch.config import Settings
from tradewatch.observe import Metrics
from tradewatch.web.calendar import calendar_ics
from tradewatch.web.page import render_status
from tradewatch.web.status import gather_status

__all__ = ["READY_TIMEOUT", "RulebookView", "WorkerState", "create_app", "readiness"]

log = structlog.get_logger(__name__)

CALENDAR_TIMEOUT = 10.0  # seconds; a calendar that cannot be read in time answers 503
READY_TIMEOUT = 1.0
"""Seconds a readiness PING may take: a probe that hangs is worse than one that says no."""

_SECURITY_HEADERS = {
    # No scripts at all; the page's only styles are inline and its only images inline SVG.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class RulebookView(Protocol):
    """What the web app reads of `tradewatch.matching.Rulebook` (read-only, so any sequence fits)."""

    @property
    def rules(self) -> Sequence[Any]: ...

    @property
    def deadlines(self) -> Sequence[Any]: ...

    def rule(self, rule_id: str) -> Any: ...


class WorkerState(Protocol):
    """The worker's live state as the web app sees it; read on every request, never cached."""

    @property
    def settings(self) -> Settings: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def redis(self) -> aioredis.Redis | None: ...

    @property
    def rules_loaded(self) -> bool: ...

    @property
    def scheduler_running(self) -> bool: ...

    @property
    def rulebook(self) -> RulebookView | None: ...


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Guard:
    """Token (Bearer header or `?token=`) and/or basic-auth; open when neither is configured."""

    def __init__(self, settings: Settings) -> None:
        server = settings.server
        self.token = server.token or None
        self.basic = (server.username, server.password) if server.username and server.password else None

    @property
    def enabled(self) -> bool:
        return self.token is not None or self.basic is not None

    def query_token(self, request: Request) -> str | None:
        """The `?token=` the request authenticated with, so links on the page keep working."""
        given = request.query_params.get("token")
        if self.token and given and secrets.compare_digest(given.encode(), self.token.encode()):
            return given
        return None

    def allows(self, request: Request) -> bool:
        if not self.enabled:
            return True
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if self.token:
            if self.query_token(request):
                return True
            if scheme.lower() == "bearer" and secrets.compare_digest(
                value.strip().encode(), self.token.encode()
            ):
                return True
        if self.basic and scheme.lower() == "basic":
            try:
                user, _, password = (
                    base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                return False
            ok_user = secrets.compare_digest(user.encode(), self.basic[0].encode())
            ok_pass = secrets.compare_digest(password.encode(), self.basic[1].encode())
            return ok_user and ok_pass
        return False

    def challenge(self) -> Response:
        scheme = 'Basic realm="tradewatch", charset="UTF-8"' if self.basic else 'Bearer realm="tradewatch"'
        return PlainTextResponse(
            "authentication required\n",
            status_code=401,
            headers={"WWW-Authenticate": scheme, **_SECURITY_HEADERS},
        )


async def _ping(client: aioredis.Redis) -> str:
    """`ok`, or why Redis is not answering (the exception's type, never its text with a URL)."""
    try:
        answered = await asyncio.wait_for(client.ping(), timeout=READY_TIMEOUT)
    except TimeoutError:
        return f"no answer to PING within {READY_TIMEOUT:g}s"
    except Exception as exc:  # any failure means not ready; the probe must answer
        return f"PING failed: {type(exc).__name__}"
    return "ok" if answered else "PING returned no PONG"


async def readiness(state: WorkerState) -> dict[str, str]:
    """Each readiness check and `ok` or why not; /readyz and the page's header show the same."""
    return {
        "redis": "not connected" if state.redis is None else await _ping(state.redis),
        "rules": "ok" if state.rules_loaded else "no rules loaded",
        "scheduler": "ok" if state.scheduler_running else "scheduler not running",
    }


def create_app(state: WorkerState) -> Starlette:
    """Build the app around the worker's state; routes read `state` on each request."""
    guard = _Guard(state.settings)
    server = state.settings.server
    if not guard.enabled and not _is_loopback(server.host):
        log.warning(
            "status_page_unprotected",
            host=server.host,
            port=server.port,
            hint="set server.token or server.username/password",
        )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        checks = await readiness(state)
        failed = sorted(name for name, result in checks.items() if result != "ok")
        if failed:
            log.info("readiness_failed", failed=failed)
        body = {"status": "fail" if failed else "ok", "failed": failed, "checks": checks}
        return JSONResponse(body, status_code=503 if failed else 200)

    async def metrics(_: Request) -> Response:
        payload = generate_latest(state.metrics.registry)
        return Response(payload, media_type=CONTENT_TYPE_LATEST)

    async def calendar(request: Request) -> Response:
        if not guard.allows(request):
            return guard.challenge()
        try:  # Redis stalled (not down) must not hang calendar apps: answer 503 in bounded time
            body = await asyncio.wait_for(calendar_ics(state, now=datetime.now(UTC)), CALENDAR_TIMEOUT)
        except Exception as exc:  # a broken calendar must not take the server down
            log.warning("calendar_failed", error=type(exc).__name__)
            return PlainTextResponse("calendar unavailable\n", status_code=503, headers=_SECURITY_HEADERS)
        return Response(
            body,
            media_type="text/calendar; charset=utf-8",
            headers={
                "Content-Disposition": 'inline; filename="tradewatch-deadlines.ics"',
                "Cache-Control": "no-cache",
            },
        )

    async def status_page(request: Request) -> Response:
        if not guard.allows(request):
            return guard.challenge()
        checks, data = await asyncio.gather(readiness(state), gather_status(state, now=datetime.now(UTC)))
        data.ready = {name: result == "ok" for name, result in checks.items()}
        html = render_status(data, calendar_token=guard.query_token(request))
        return HTMLResponse(html, headers=_SECURITY_HEADERS)

    routes = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics, methods=["GET", "HEAD"]),
        Route("/deadlines.ics", calendar, methods=["GET", "HEAD"]),
        Route("/", status_page, methods=["GET", "HEAD"]),
    ]
    return Starlette(routes=routes)
