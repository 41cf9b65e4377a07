"""No DNS beyond loopback in tests: a name that is not local fails as it would on a machine
without internet, instead of sending a query to the outside resolver.

Imported at start-up by every Python process whose PYTHONPATH holds this folder (the worker
processes the integration tests start); `tests/conftest.py` applies the same to the suite.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

_LOCAL = {"localhost", "localhost.localdomain", "ip6-localhost"}
_real_getaddrinfo = socket.getaddrinfo


def _local(host: object) -> bool:
    name = host.decode() if isinstance(host, bytes) else host
    if name is None or not isinstance(name, str) or name.lower() in _LOCAL:
        return True
    try:
        ipaddress.ip_address(name.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def offline_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    """`socket.getaddrinfo` for loopback names and address literals; EAI_NONAME for any other name."""
    if _local(host):
        return _real_getaddrinfo(host, *args, **kwargs)
    raise socket.gaierror(socket.EAI_NONAME, f"{host}: no DNS in tests (traffic stays on 127.0.0.1)")


if __name__ == "sitecustomize":  # at a process's start-up; imported from tests, the fixture patches
    socket.getaddrinfo = offline_getaddrinfo
