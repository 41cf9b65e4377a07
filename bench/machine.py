"""What the figures were measured on: CPU, cores, load, Python and the libraries that set the pace."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["LIBRARIES", "describe", "format_machine", "redis_version"]

LIBRARIES = (
    "tradewatch",
    "httpx",
    "httpcore",
    "aiohttp",
    "feedparser",
    "selectolax",
    "hyperscan",
    "redis",
    "pydantic",
    "structlog",
    "urlwatch",
    "requests",
    "matplotlib",
    "psutil",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def redis_version() -> str | None:
    """The redis-server the benchmarks start (Debian's when on PATH)."""
    binary = shutil.which("redis-server")
    if binary is None:
        try:
            from tradewatch.store.connection import redis_server_binary

            binary = redis_server_binary()
        except Exception:
            return None
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for part in out.split():
        if part.startswith("v="):
            return part[2:]
    return out.strip() or None


def describe() -> dict[str, Any]:
    """Machine facts as plain data, for results.json and the printed header."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": _memory_gib(),
        "machine": platform.machine(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "redis_server": redis_version(),
        "load_average_at_start": load,
        "libraries": versions,
    }


def format_machine(info: dict[str, Any]) -> str:
    """A few lines for the terminal and BENCHMARKS.md."""
    libs = ", ".join(f"{k} {v}" for k, v in info["libraries"].items() if v)
    load = info.get("load_average_at_start")
    return "\n".join(
        [
            f"CPU: {info['cpu']} ({info['cores']} cores, {info['usable_cores']} usable), "
            f"{info['memory_gib']} GiB, {info['machine']}, Linux {info['kernel']}",
            f"Python {info['python']} ({info['python_impl']}), redis-server {info['redis_server']}",
            f"Load average at start (1/5/15 min): {load}",
            f"Libraries: {libs}",
        ]
    )
