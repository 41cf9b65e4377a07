"""The systemd unit: runs the worker as its own user, stops gently, restarts on failure, hardened."""

from __future__ import annotations

from collections import defaultdict

from tests.deploy.conftest import DEPLOY


def _unit() -> dict[str, dict[str, list[str]]]:
    """Sections → key → values (systemd allows repeated keys, so values are lists)."""
    sections: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    current = ""
    for raw in (DEPLOY / "systemd" / "tradewatch.service").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        sections[current][key].append(value)
    return sections


UNIT = _unit()


def test_sections_and_install_target() -> None:
    """The unit has Unit, Service and Install sections and starts with the system."""
    assert set(UNIT) == {"Unit", "Service", "Install"}
    assert UNIT["Install"]["WantedBy"] == ["multi-user.target"]
    assert "network-online.target" in UNIT["Unit"]["After"][0]


def test_runs_the_worker_as_a_dedicated_user() -> None:
    """ExecStart runs `tradewatch run` as the tradewatch user, with a state directory."""
    service = UNIT["Service"]
    assert service["ExecStart"][0].endswith("/tradewatch run")
    assert service["User"] == ["tradewatch"]
    assert service["StateDirectory"] == ["tradewatch"]
    env = " ".join(service["Environment"])
    assert "TRADEWATCH_STATE_DIR=/var/lib/tradewatch" in env
    assert service["EnvironmentFile"][0].lstrip("-") == "/etc/tradewatch/tradewatch.env"


def test_stops_with_sigterm_and_time_to_drain() -> None:
    """SIGTERM first, with a stop timeout long enough for in-flight work; restart on failure."""
    service = UNIT["Service"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert int(service["TimeoutStopSec"][0]) >= 30
    assert service["Restart"] == ["on-failure"]


def test_hardening_is_on() -> None:
    """The sandbox options that cost tradewatch nothing are enabled."""
    service = UNIT["Service"]
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert service[key] == ["yes"], key
    assert service["ProtectSystem"] == ["strict"]
