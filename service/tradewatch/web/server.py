"""Run the web app with uvicorn on the worker's own event loop, stopping when the worker stops.

uvicorn normally owns SIGINT/SIGTERM; here the worker does (it drains in-flight work
first), so the server captures no signals and exits when `stop` is set. The socket is
bound here, not by uvicorn, so a taken port is a `ConfigError` naming `server.port`
instead of uvicorn's `sys.exit(1)` inside the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Generator

import structlog
import uvicorn
from starlette.types import ASGIApp

from tradewatch.errors import ConfigError

__all__ = ["bind", "serve"]

log = structlog.get_logger(__name__)

SHUTDOWN_GRACE = 3
"""Seconds open requests get to finish after `stop`: the worker's own shutdown waits on us."""


class _WorkerOwnedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the worker."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0 picks a free one); errors name the config key."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", key="server.port"
        ) from exc


async def serve(
    app: ASGIApp,
    host: str,
    port: int,
    stop: asyncio.Event,
    *,
    started: Callable[[int], None] | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve `app` until `stop` is set; `started(port)` is called once it listens.

    Pass `sock` (from `bind`) to find a taken port before anything else starts.
    """
    sock = sock if sock is not None else bind(host, port)
    bound_port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE,
        proxy_headers=False,
    )
    server = _WorkerOwnedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="web-uvicorn")
    stopper = asyncio.create_task(stop.wait(), name="web-stop")
    # The socket already listens, so connections queue in its backlog until uvicorn accepts them.
    log.info("web_server_started", host=host, port=bound_port)
    if started is not None:
        started(bound_port)
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopper.cancel()
        await task
        sock.close()
        log.info("web_server_stopped", host=host, port=bound_port)
