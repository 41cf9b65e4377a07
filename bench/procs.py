"""The processes a benchmark starts: the feed server, a throwaway redis-server, and timed child runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = ["FeedServer", "RedisServer", "Timed", "progress_line", "run_timed", "tradewatch_cmd"]

REPO = Path(__file__).resolve().parent.parent


def tradewatch_cmd() -> list[str]:
    """`python -m tradewatch` with the interpreter running the benchmark (the venv's)."""
    return [sys.executable, "-m", "tradewatch"]


def progress_line(enabled: bool, text: str) -> None:
    """Rewrite one status line on a terminal; nothing otherwise."""
    if enabled:
        sys.stderr.write("\r\033[K" + text)
        sys.stderr.flush()


class FeedServer:
    """`python -m bench.feeds` in its own process; `base(i)` is source i's host and port."""

    def __init__(self, sources: int, hosts: int = 50, change_every: float = 0.0) -> None:
        self.sources = sources
        self.hosts = hosts
        self.change_every = change_every
        self.port = 0
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> FeedServer:
        cmd = [
            sys.executable,
            "-m",
            "bench.feeds",
            "--sources",
            str(self.sources),
            "--hosts",
            str(self.hosts),
            "--change-every",
            str(self.change_every),
        ]
        self.process = subprocess.Popen(
            cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("READY "):
            self.process.kill()
            self.process.wait()
            self.process.stdout.close()
            raise RuntimeError(f"feed server did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            if self.process.stdout is not None:
                self.process.stdout.close()

    def host(self, index: int) -> str:
        from bench.feeds import host_of

        return f"{host_of(index, self.hosts)}:{self.port}"

    def stats(self) -> dict[str, int]:
        """Answers given so far (connections, 200, 304, 404), from the server itself."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/__stats", timeout=10) as resp:
            data: dict[str, int] = json.loads(resp.read())
        return data

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


class RedisServer:
    """A redis-server on a unix socket in `directory`, no persistence, killed on exit."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def __enter__(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            from tradewatch.store.connection import redis_server_binary

            binary = redis_server_binary()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.socket.exists():
                try:
                    if self.command("PING") in (True, "PONG"):
                        return self
                except OSError:
                    pass
            time.sleep(0.02)
        self.__exit__()
        raise RuntimeError("redis-server did not start")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def command(self, *args: str) -> Any:
        """One command through a fresh synchronous connection."""
        import redis

        client = redis.Redis(unix_socket_path=str(self.socket), decode_responses=True)
        try:
            return client.execute_command(*args)  # type: ignore[no-untyped-call]
        finally:
            client.close()

    def info(self, section: str = "memory") -> dict[str, Any]:
        import redis

        client = redis.Redis(unix_socket_path=str(self.socket), decode_responses=True)
        try:
            data: dict[str, Any] = client.info(section)
        finally:
            client.close()
        return data

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


@dataclass
class Timed:
    """One child run: wall seconds, CPU seconds (user + system, the child and its children)."""

    wall: float
    cpu: float
    returncode: int
    extra: dict[str, Any] = field(default_factory=dict)


def run_timed(
    cmd: list[str],
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    stdout: IO[Any] | int | None = subprocess.DEVNULL,
    stderr: IO[Any] | int | None = subprocess.DEVNULL,
    timeout: float = 600.0,
) -> Timed:
    """Run `cmd` to the end and read its own resource usage from wait4 (not the whole process tree's)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=stdout, stderr=stderr)
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        killer.cancel()
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Timed(wall=wall, cpu=usage.ru_utime + usage.ru_stime, returncode=proc.returncode)
