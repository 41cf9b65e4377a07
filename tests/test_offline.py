"""The suite's own guard: no test resolves a public name, in process or in a worker it starts."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.conftest import tradewatch_env

PROBE = (
    "import socket\n"
    "assert socket.getaddrinfo('localhost', 80)\n"
    "socket.getaddrinfo('www.federalregister.gov', 443)\n"
)


def test_in_process_only_loopback_resolves() -> None:
    """Loopback names and address literals resolve; a public name fails as offline."""
    assert socket.getaddrinfo("localhost", 80)
    assert socket.getaddrinfo("127.0.0.1", 80)
    with pytest.raises(socket.gaierror, match="no DNS in tests"):
        socket.getaddrinfo("www.mofcom.gov.cn", 443)


def test_a_started_worker_process_resolves_no_public_name() -> None:
    """A process started with `tradewatch_env()` gets the same guard at start-up."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=tradewatch_env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "no DNS in tests" in done.stderr
