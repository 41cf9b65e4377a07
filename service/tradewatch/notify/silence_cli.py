"""`tradewatch silence add|list|remove`: run-time silences in Redis, honoured by every worker.

A typer sub-app kept beside the silences store; `cli.py` registers it with
`app.add_typer(silence_app, name="silence")`. Config silences are listed too, but are
changed by editing the config.
"""

from __future__ import annotations

import asyncio
import fnmatch
import getpass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from tradewatch.config import Settings
from tradewatch.errors import TradewatchError
from tradewatch.matching.tree import did_you_mean
from tradewatch.store.connection import open_redis
from tradewatch.store.keys import Keys
from tradewatch.store.silences import Silence, Silences, parse_until

__all__ = ["silence_app"]

silence_app = typer.Typer(help="Mute alerts of a rule, tag or source for a while.", no_args_is_help=True)

_Config = Annotated[Path | None, typer.Option("--config", "-c", help="config file")]


def _settings(config: Path | None) -> Settings:
    from tradewatch.cli import settings_or_exit

    return settings_or_exit(config)


async def _add(
    settings: Settings, until: datetime, rule: str | None, tag: str | None, source: str | None, reason: str
) -> Silence:
    handle = await open_redis(settings.redis_url, settings.state_dir)
    try:
        silences = Silences(handle.client, Keys(settings.key_prefix), settings)
        return await silences.add(
            until=until, rule=rule, tag=tag, source=source, reason=reason, created_by=getpass.getuser()
        )
    finally:
        await handle.close()


async def _list(settings: Settings) -> list[Silence]:
    handle = await open_redis(settings.redis_url, settings.state_dir)
    try:
        return await Silences(handle.client, Keys(settings.key_prefix), settings).active(datetime.now(UTC))
    finally:
        await handle.close()


async def _remove(settings: Settings, silence_id: str) -> bool:
    handle = await open_redis(settings.redis_url, settings.state_dir)
    try:
        return await Silences(handle.client, Keys(settings.key_prefix), settings).remove(silence_id)
    finally:
        await handle.close()


def _unmatched(settings: Settings, **given: str | None) -> list[str]:
    """A warning per name (or glob) that matches no rule, tag or source of this config: such a
    silence mutes nothing, which is easy to miss (`tarrif-*`). Rules and tags are not checked
    when the rules cannot be read."""
    from tradewatch.matching import RuleProblems
    from tradewatch.worker import load_rules_or_report

    known: dict[str, set[str]] = {"source": {s.name for s in settings.sources}}
    if given.get("rule") or given.get("tag"):  # the rulebook is read only when a rule or tag is named
        try:
            rulebook = load_rules_or_report(settings)
        except (RuleProblems, TradewatchError):
            given = {"source": given.get("source")}
        else:
            known["rule"] = {r.id for r in rulebook.rules}
            known["tag"] = {t for r in rulebook.rules for t in r.tags} | {
                t for d in rulebook.deadlines for t in d.tags
            }
    warnings = []
    for field, pattern in given.items():
        if pattern and not any(fnmatch.fnmatchcase(name, pattern) for name in known[field]):
            hint = did_you_mean(pattern, known[field])
            warnings.append(
                f"warning: no {field} of this config matches {pattern!r}{hint}; the silence mutes nothing"
            )
    return warnings


@silence_app.command("add")
def add(
    until: Annotated[str, typer.Option("--until", help="2h, 3d, 2025-12-01 or an ISO time")],
    rule: Annotated[str | None, typer.Option("--rule", help="rule id (glob)")] = None,
    tag: Annotated[str | None, typer.Option("--tag", help="tag (glob)")] = None,
    source: Annotated[str | None, typer.Option("--source", help="source name (glob)")] = None,
    reason: Annotated[str, typer.Option("--reason", help="why, shown with every muted alert")] = "",
    config: _Config = None,
) -> None:
    """Mute alerts of a rule, tag and/or source until a time; prints the silence's id."""
    settings = _settings(config)
    try:
        when = parse_until(until, settings.tz(), datetime.now(UTC))
        silence = asyncio.run(_add(settings, when, rule, tag, source, reason))
    except TradewatchError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    for warning in _unmatched(settings, rule=rule, tag=tag, source=source):
        typer.echo(warning, err=True)
    typer.echo(silence.id)


@silence_app.command("list")
def list_(config: _Config = None) -> None:
    """Silences in force, from the config and added at run time."""
    settings = _settings(config)
    found = asyncio.run(_list(settings))
    for silence in found:
        typer.echo(silence.describe())
    if not found:
        typer.echo("No silences in force.", err=True)


@silence_app.command("remove")
def remove(
    silence_id: Annotated[str, typer.Argument(help="id printed by `silence add`")], config: _Config = None
) -> None:
    """Lift a run-time silence early."""
    settings = _settings(config)
    if not asyncio.run(_remove(settings, silence_id)):
        typer.echo(f"no run-time silence {silence_id!r} (config silences live in the config)", err=True)
        raise typer.Exit(1)
