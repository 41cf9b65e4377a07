"""Reading the config: the file's lookup, `${VAR}` interpolation, `TRADEWATCH_*` overrides, and
every problem named by key (and by the file's line)."""

from __future__ import annotations

import os
import re
import typing
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)

from tradewatch.config.settings import Settings, format_validation_error, validate_sources
from tradewatch.errors import ConfigError, RuleError
from tradewatch.matching.yamlfile import line_of, read_yaml, rule_files

__all__ = [
    "BUILTIN_CONFIG",
    "PACKAGED_RULES",
    "find_config",
    "load_settings",
]

BUILTIN_CONFIG = Path(__file__).parents[1] / "default_config.yaml"
# The shipped rulebook: inside the wheel, or at the top of a source checkout.
PACKAGED_RULES = next(
    (
        p
        for p in (Path(__file__).parents[1] / "_rules", Path(__file__).resolve().parents[3] / "rules")
        if p.is_dir()
    ),
    Path(__file__).parents[1] / "_rules",
)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def _interpolate(value: Any, env: dict[str, str], path: str, missing: list[str]) -> Any:
    """`${VAR}` and `${VAR:-default}` from the environment; an unset one is added to `missing`
    (`key.path: problem`), so it is reported with the file's other problems, not alone."""
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env and env[name] != "":
                return env[name]
            if default is not None:
                return default
            state = "is empty" if name in env else "is not set"  # empty counts as unset, as with :-
            missing.append(f"{path}: environment variable {name} {state} (write ${{{name}:-default}})")
            return m.group(0)

        return _VAR.sub(repl, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, env, f"{path}.{k}" if path else str(k), missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env, f"{path}[{i}]", missing) for i, v in enumerate(value)]
    return value


_ENV_SECTIONS = ("http", "server", "delivery")


def _simple_keys() -> tuple[str, ...]:
    """Top-level keys with one value (no section, no list): each is settable as TRADEWATCH_<KEY>."""
    return tuple(
        name
        for name, field in Settings.model_fields.items()
        if name != "config_file"
        and name not in _ENV_SECTIONS
        and not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel))
        and typing.get_origin(field.annotation) is not list
    )


def _env_overrides(data: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    """`TRADEWATCH_<KEY>` for top-level keys, `TRADEWATCH_<SECTION>__<KEY>` for http/server/delivery.

    Returns the variable behind each key path it set, so that an error names the variable.
    """
    used: dict[str, str] = {}
    for key in _simple_keys():
        name = f"TRADEWATCH_{key.upper()}"
        value = env.get(name)
        if value is not None:
            data[key] = value
            used[key] = name
    for section in _ENV_SECTIONS:
        prefix = f"TRADEWATCH_{section.upper()}__"
        for name, value in env.items():
            if name.startswith(prefix):
                sub = data.setdefault(section, {})
                if isinstance(sub, dict):
                    key = name[len(prefix) :].lower()
                    sub[key] = value
                    used[f"{section}.{key}"] = name
    return used


def find_config(explicit: Path | None, env: dict[str, str] | None = None) -> Path:
    """The config file to use, by the contract's lookup order."""
    env = dict(os.environ) if env is None else env
    if explicit is not None:
        return explicit
    if env.get("TRADEWATCH_CONFIG"):
        return Path(env["TRADEWATCH_CONFIG"])
    local = Path("tradewatch.yaml")
    if local.is_file():
        return local
    return BUILTIN_CONFIG


def load_settings(explicit: Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read, interpolate, override and validate; raise ConfigError naming each bad key."""
    env = dict(os.environ) if env is None else env
    path = find_config(explicit, env)
    builtin = path == BUILTIN_CONFIG
    if not path.is_file():
        raise ConfigError("cannot read config file: no such file", file=str(path))
    problems: list[RuleError] = []
    data = read_yaml(path, problems) or {}  # the rule files' reader: duplicate keys are errors too
    if problems:
        raise ConfigError("\n".join(f"{path}:{p.line}: {p.args[0]}" for p in problems))
    if not isinstance(data, dict):
        raise ConfigError("the config file must be a mapping of keys", file=str(path))
    tree = data  # keeps each key's line, for the messages below
    missing: list[str] = []
    data = _interpolate(data, env, "", missing)
    from_env = _env_overrides(data, env)
    # the folder the file is in as its path says, symlinks not followed: a Kubernetes ConfigMap
    # mounts each file as a link into a hidden timestamped folder
    base = Path.cwd() if builtin else path.absolute().parent
    for key in ("state_dir", "rules"):
        if isinstance(data.get(key), str):
            p = Path(data[key]).expanduser()
            data[key] = p if p.is_absolute() else Path(os.path.normpath(base / p))
    if (
        builtin
        and "rules" not in from_env  # a folder named on purpose is used, empty or not
        and isinstance(data.get("rules"), Path)
        and not _has_rule_files(data["rules"])
        and PACKAGED_RULES.is_dir()
    ):
        data["rules"] = PACKAGED_RULES  # the built-in default runs the packaged rules (e.g. in the image)
    data["config_file"] = None if builtin else path.absolute()
    raw_sources = data.pop("sources", None) or []
    errors: list[str] = list(missing)
    settings = None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        errors.extend(format_validation_error(exc, model=Settings))
    if not isinstance(raw_sources, list):
        errors.append("sources: expected a list of sources")
        raw_sources = []
    specs, source_errors = validate_sources(raw_sources)
    errors.extend(source_errors)
    if errors or settings is None:
        raise ConfigError("\n".join(_located(str(path), tree, error, from_env) for error in errors))
    return settings.model_copy(update={"sources": specs})


def _has_rule_files(folder: Path) -> bool:
    """Any rule file the loader would read there (recursively, hidden folders skipped)."""
    return folder.is_dir() and bool(rule_files(folder))


_KEY_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _located(file: str, tree: Any, error: str, from_env: dict[str, str] | None = None) -> str:
    """`FILE:LINE: key.path: problem`, the line of the deepest part of the key path in the file;
    `VARIABLE (environment): key.path: problem` for a key an environment variable set."""
    key_path, sep, _ = error.partition(": ")
    variable = (from_env or {}).get(key_path) if sep else None
    if variable is not None:
        return f"{variable} (environment): {error}"
    line = None
    node = tree
    for name, index in _KEY_PART.findall(key_path) if sep else []:
        key: Any = int(index) if index else name
        found = key in node if isinstance(node, dict) else isinstance(node, list) and isinstance(key, int)
        if not found or (isinstance(node, list) and key >= len(node)):
            break
        line = line_of(node, key)
        node = node[key]
    return f"{file}:{line}: {error}" if line is not None else f"{file}: {error}"
