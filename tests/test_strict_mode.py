"""CI's strict mode: a skipped or expected-to-fail test fails the run instead of passing quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PROBE = """
import pytest

def test_skipped() -> None:
    pytest.skip("needs something this machine lacks")

@pytest.mark.xfail(reason="known gap")
def test_expected_to_fail() -> None:
    assert False

def test_fine() -> None:
    assert True
"""

MODULE_SKIP = """
import pytest

pytest.skip("a whole module this machine cannot run", allow_module_level=True)


def test_never_collected() -> None:
    assert True
"""


def _run(tmp_path: Path, source: str, *, strict: bool) -> subprocess.CompletedProcess[str]:
    probe = tmp_path / "test_probe.py"
    probe.write_text(source, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "TRADEWATCH_TEST_STRICT"}
    if strict:
        env["TRADEWATCH_TEST_STRICT"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider", str(probe)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_strict_mode_fails_skips_and_xfails(tmp_path: Path) -> None:
    """With TRADEWATCH_TEST_STRICT=1 (as `.ci/run` sets) the run fails and names each one."""
    done = _run(tmp_path, PROBE, strict=True)
    assert done.returncode == 1, done.stdout
    assert "2 failed, 1 passed" in done.stdout
    assert "skipped in strict mode: " in done.stdout
    assert "needs something this machine lacks" in done.stdout


def test_strict_mode_fails_a_module_skipped_at_collection(tmp_path: Path) -> None:
    """A module that skips itself while being collected stops a strict run with its reason."""
    done = _run(tmp_path, MODULE_SKIP, strict=True)
    assert done.returncode != 0, done.stdout
    assert "skipped in strict mode: " in done.stdout
    assert "a whole module this machine cannot run" in done.stdout


def test_without_strict_mode_a_skip_is_reported(tmp_path: Path) -> None:
    """Outside CI a developer without, say, chromium sees the skips counted, and the run passes."""
    done = _run(tmp_path, PROBE, strict=False)
    assert done.returncode == 0, done.stdout
    assert "1 passed, 1 skipped, 1 xfailed" in done.stdout
    module = _run(tmp_path, MODULE_SKIP, strict=False)
    assert module.returncode == 5, module.stdout  # pytest's "no tests ran", not a failure
    assert "1 skipped" in module.stdout
