"""The command line from outside: one clear line per problem, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import tradewatch_env


def tradewatch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = tradewatch_env()
    return subprocess.run(
        [sys.executable, "-m", "tradewatch", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
        check=False,
    )


@pytest.mark.parametrize("command", [["alerts", "list"], ["silence", "list"], ["alerts", "retry", "--all"]])
def test_unreachable_redis_is_one_line(tmp_path: Path, command: list[str]) -> None:
    """A command that needs Redis says it cannot reach it, in one line, exit 1."""
    (tmp_path / "rules").mkdir()
    config = tmp_path / "tradewatch.yaml"
    config.write_text("redis_url: redis://127.0.0.1:1/0\nserver: {enabled: false}\n", encoding="utf-8")
    result = tradewatch(*command, "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "redis error:" in result.stderr


def test_missing_rules_directory_is_named(tmp_path: Path) -> None:
    """`run` with a rules directory that does not exist names it and exits 1."""
    config = tmp_path / "tradewatch.yaml"
    config.write_text("redis_url: redis://127.0.0.1:1/0\nrules: ./nope\n", encoding="utf-8")
    result = tradewatch("run", "--once", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert f"rules: directory {tmp_path / 'nope'} does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_the_contract_commands(tmp_path: Path) -> None:
    """Every command of the contract is in --help."""
    result = tradewatch("--help", cwd=tmp_path)
    assert result.returncode == 0
    for name in ("run", "replay", "rules", "sources", "deadlines", "digest"):
        assert f" {name} " in result.stdout
