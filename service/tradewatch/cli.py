"""The `tradewatch` command: thin typer commands, each handing off to one part.

Errors the user can fix (config, rules, bad input) print one clear line per
problem on stderr and exit 1, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from tradewatch.config import Settings, load_settings
from tradewatch.errors import ConfigError, TradewatchError
from tradewatch.observe import configure_logging

__all__ = ["app", "main"]

app = typer.Typer(
    name="tradewatch",
    help="Watch trade-policy sources, match them against your rules, and alert once.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="config file (default: $TRADEWATCH_CONFIG, ./tradewatch.yaml, built-in)"),
]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print each line of `message` to stderr and exit."""
    for line in message.splitlines() or [message]:
        typer.echo(line, err=True)
    raise typer.Exit(code)


def settings_or_exit(config: Path | None) -> Settings:
    """Load settings and set up logging, or exit 1 naming every bad key."""
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        fail(f"config error: {exc}" if "\n" not in str(exc) else "\n".join(
            f"config error: {line}" for line in str(exc).splitlines()))
    configure_logging(settings.log_level, settings.log_format)
    return settings


@app.command()
def run(
    config: ConfigOption = None,
    once: Annotated[bool, typer.Option("--once", help="poll every enabled source once, deliver, exit")] = False,
) -> None:
    """Run the worker: poll sources on their schedules, match, deduplicate, deliver."""
    from tradewatch.worker import run_worker  # noqa: PLC0415 - keep `--help` fast

    settings = settings_or_exit(config)
    try:
        code = run_worker(settings, once=once)
    except TradewatchError as exc:
        fail(str(exc))
    raise typer.Exit(code)


# --- rules and replay commands (matching/) ---------------------------------------------------

# --- sources commands (sources/) -------------------------------------------------------------

# --- alerts commands (store/outbox) ----------------------------------------------------------

# --- deadlines and digest commands (deadlines.py, notify/) -----------------------------------


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
