"""docker-compose.yml: Redis with persistence, two workers, config and rules mounted, secrets from a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.deploy.conftest import DEPLOY, ROOT
from tradewatch.config import load_settings

COMPOSE: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))


def test_redis_persists_to_a_named_volume() -> None:
    """Redis runs with AOF on and its /data on a named volume, with a healthcheck."""
    redis = COMPOSE["services"]["redis"]
    assert "--appendonly" in redis["command"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    volume = redis["volumes"][0].split(":")
    assert volume[1] == "/data"
    assert volume[0] in COMPOSE["volumes"]
    assert "redis-cli" in redis["healthcheck"]["test"]


def test_two_workers_wait_for_redis() -> None:
    """The worker service runs two replicas and starts once Redis is healthy."""
    worker = COMPOSE["services"]["worker"]
    assert worker["deploy"]["replicas"] == 2
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert worker["environment"]["REDIS_URL"].startswith("redis://redis:6379")
    assert worker["stop_grace_period"]


def test_worker_mounts_config_rules_and_state() -> None:
    """Config and rules are mounted read-only from the repository; state is a volume."""
    worker = COMPOSE["services"]["worker"]
    mounts = {v.split(":")[1]: v.split(":") for v in worker["volumes"]}
    assert mounts["/etc/tradewatch/tradewatch.yaml"][2] == "ro"
    assert mounts["/etc/tradewatch/rules"][2] == "ro"
    assert (DEPLOY / mounts["/etc/tradewatch/rules"][0]).resolve() == ROOT / "rules"
    assert mounts["/var/lib/tradewatch"][0] in COMPOSE["volumes"]
    build = worker["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == ROOT / "Dockerfile"


def test_secrets_come_from_an_env_file_not_the_compose_file() -> None:
    """Tokens reach the workers through env_file; the compose file itself names no secret values."""
    worker = COMPOSE["services"]["worker"]
    assert worker["env_file"] == ["tradewatch.env"]
    example = (DEPLOY / "tradewatch.env.example").read_text()
    assert "SLACK_BOT_TOKEN=" in example
    for name in worker["environment"]:
        assert not any(word in name.upper() for word in ("TOKEN", "PASSWORD", "SECRET"))


def test_published_ports_are_loopback_only() -> None:
    """The status page is published on 127.0.0.1 only; a reverse proxy publishes it further."""
    for port in COMPOSE["services"]["worker"]["ports"]:
        assert port.startswith("127.0.0.1:")


def test_compose_config_is_a_valid_tradewatch_config(tmp_path: Path) -> None:
    """deploy/tradewatch.yaml loads with tradewatch's validation given the env file's variables."""
    env = {"REDIS_URL": "redis://redis:6379/0", "SLACK_BOT_TOKEN": "xoxb-1"}
    settings = load_settings(DEPLOY / "tradewatch.yaml", env=env)
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.server.host == "0.0.0.0"
    assert settings.server.token in (None, "")
    assert settings.state_dir == Path("/var/lib/tradewatch")
