"""The Dockerfile: multi-stage wheel build, pinned slim base, non-root, healthcheck, volume; .dockerignore."""

from __future__ import annotations

import re
import shlex

from tests.deploy.conftest import ROOT

TEXT = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", TEXT)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        found.append((word.upper(), rest.strip()))
    return found


INSTRUCTIONS = _instructions()


def _args(name: str) -> list[str]:
    return [rest for word, rest in INSTRUCTIONS if word == name]


def _base_image() -> str:
    default = next(a for a in _args("ARG") if a.startswith("PYTHON_IMAGE="))
    return default.split("=", 1)[1]


def test_base_image_is_slim_and_pinned_to_a_version() -> None:
    """The base is a slim Python image pinned to a full version, never `latest`."""
    image = _base_image()
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-[a-z]+", image), image
    assert all(f.split()[0] == "${PYTHON_IMAGE}" for f in _args("FROM"))


def test_multi_stage_build_installs_wheels_only() -> None:
    """A build stage makes wheels; the runtime stage installs them offline and keeps no compiler."""
    stages = [f.split() for f in _args("FROM")]
    assert [s[-1] for s in stages] == ["build", "runtime"]
    runs = _args("RUN")
    assert any("pip wheel" in r for r in runs)
    runtime_text = TEXT.split("AS runtime", 1)[1]
    assert "--no-index" in runtime_text
    assert "build-essential" not in runtime_text


def test_runs_as_a_non_root_user() -> None:
    """The final USER is not root."""
    user = _args("USER")[-1].split(":")[0]
    assert user not in ("root", "0")


def test_healthcheck_hits_healthz() -> None:
    """HEALTHCHECK calls /healthz on the configured port."""
    healthcheck = _args("HEALTHCHECK")
    assert len(healthcheck) == 1
    assert "/healthz" in healthcheck[0]
    assert "--interval=" in healthcheck[0]


def test_state_volume_config_location_and_entrypoint() -> None:
    """State is a volume; the working dir is where a mounted tradewatch.yaml is found; it runs the worker."""
    assert _args("VOLUME") == ['["/var/lib/tradewatch"]']
    assert _args("WORKDIR")[-1] == "/etc/tradewatch"
    assert _args("ENTRYPOINT") == ['["tradewatch"]']
    assert _args("CMD") == ['["run"]']
    assert _args("STOPSIGNAL") == ["SIGTERM"]
    env = " ".join(_args("ENV"))
    assert "TRADEWATCH_STATE_DIR=/var/lib/tradewatch" in env
    assert "TRADEWATCH_SERVER__HOST=0.0.0.0" in env


def test_no_secrets_baked_into_the_image() -> None:
    """No ENV or ARG carries a token or password."""
    for word, rest in INSTRUCTIONS:
        if word in ("ENV", "ARG"):
            for token in shlex.split(rest):
                assert not re.search(r"(TOKEN|PASSWORD|SECRET)", token.split("=")[0], re.IGNORECASE), token


def test_copied_paths_exist_and_dockerignore_keeps_state_out() -> None:
    """COPY takes only the package sources; .dockerignore keeps local state and secrets out."""
    for rest in _args("COPY"):
        if "--from" in rest:
            continue
        for source in rest.split()[:-1]:
            assert source in {"pyproject.toml", "README.md", "service", "rules"}, source
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "var", "tests", "tradewatch.yaml", "*.env"} <= ignored
    assert not ({"service", "rules", "pyproject.toml", "README.md"} & ignored)
