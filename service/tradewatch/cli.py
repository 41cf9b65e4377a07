"""The `tradewatch` command: thin typer commands, each handing off to one part.

Errors the user can fix (config, rules, bad input) print one clear line per
problem on stderr and exit 1, never a traceback.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, NoReturn, TextIO

import typer

from tradewatch.config import Settings, load_settings
from tradewatch.errors import ConfigError, TradewatchError
from tradewatch.observe import Progress, configure_logging

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
    typer.Option("--config", "-c", help="config file (else $TRADEWATCH_CONFIG, ./tradewatch.yaml, built-in)"),
]


# Terminal controls (ESC sequences that clear the screen or retitle the window) and bidi
# overrides: an error or a table line may quote a hostile server (an HTTP reason phrase).
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(line: str) -> str:
    """`line` without terminal controls, for the human-readable outputs (tables, errors)."""
    return _UNPRINTABLE.sub("?", line)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print each line of `message` to stderr and exit."""
    for line in message.splitlines() or [message]:
        typer.echo(printable(line), err=True)
    raise typer.Exit(code)


def settings_or_exit(config: Path | None) -> Settings:
    """Load settings and set up logging, or exit 1 naming every bad key."""
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        fail("\n".join(f"config error: {line}" for line in str(exc).splitlines()))
    configure_logging(settings.log_level, settings.log_format)
    return settings


@app.command()
def run(
    config: ConfigOption = None,
    once: Annotated[bool, typer.Option("--once", help="poll every source once, deliver, exit")] = False,
) -> None:
    """Run the worker: poll sources on their schedules, match, deduplicate, deliver."""
    from tradewatch.worker import run_worker

    settings = settings_or_exit(config)
    try:
        code = run_worker(settings, once=once)
    except TradewatchError as exc:
        fail(str(exc))
    raise typer.Exit(code)


# --- rules and replay commands (matching/) ---------------------------------------------------

rules_app = typer.Typer(help="Validate rule files and run their examples.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")

RulesDirArgument = Annotated[Path | None, typer.Argument(help="rules directory (default: from the config)")]


def _rules_target(directory: Path | None, config: Path | None) -> tuple[Path, set[str] | None]:
    """The rules directory to use, and the configured Slack routes when a config file was found.

    A config file without a slack notifier defines no route, so every `slack:ROUTE` is an error.
    """
    settings = settings_or_exit(config)
    return directory or settings.rules, settings.slack_routes()


@rules_app.command("check")
def rules_check(directory: RulesDirArgument = None, config: ConfigOption = None) -> None:
    """Validate every rule, deadline and glossary file; print FILE:LINE: message per problem."""
    from tradewatch.matching import check_rules  # imported here to keep `--help` fast

    rules_dir, routes = _rules_target(directory, config)
    problems = check_rules(rules_dir, slack_routes=routes)
    if problems:
        fail("\n".join(str(p) for p in problems))
    typer.echo(f"{rules_dir}: ok", err=True)


@rules_app.command("test")
def rules_test(directory: RulesDirArgument = None, config: ConfigOption = None) -> None:
    """Run each rule's inline examples; name every failing one."""
    from tradewatch.matching import RuleProblems, load_rulebook, run_examples

    rules_dir, routes = _rules_target(directory, config)
    try:
        rb = load_rulebook(rules_dir, slack_routes=routes)
    except RuleProblems as exc:
        fail(str(exc))
    failures = run_examples(rb)
    if failures:
        fail("\n".join(failures))
    typer.echo(f"{rules_dir}: {len(rb.rules)} rules, all examples pass", err=True)


@app.command()
def replay(
    docs: Annotated[str, typer.Argument(help="documents as JSONL, - for stdin")],
    config: ConfigOption = None,
    rules: Annotated[Path | None, typer.Option("--rules", help="rules directory (default: config)")] = None,
    labels: Annotated[Path | None, typer.Option("--labels", help="JSONL labels: backtest report")] = None,
) -> None:
    """Run documents through the rules (no network, no dedup, no delivery); print match records."""
    from tradewatch.matching import RuleProblems, load_rulebook
    from tradewatch.matching.backtest import BadInput, replay_lines

    rules_dir, routes = _rules_target(rules, config)
    try:
        rb = load_rulebook(rules_dir, slack_routes=routes)
    except RuleProblems as exc:
        fail(str(exc))
    if docs == "-" and sys.stdin is None:
        fail("cannot read: stdin is closed")
    try:
        # undecodable bytes become surrogates, so that the reader names their line
        stream = (
            io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", errors="surrogateescape")
            if docs == "-"
            else Path(docs).open(encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
        )
        label_lines = (
            labels.read_text(encoding="utf-8", errors="surrogateescape").splitlines() if labels else None
        )
    except OSError as exc:
        fail(f"cannot read: {exc}")
    piped = docs == "-"
    progress = _file_progress(stream, "replay", "documents", piped=piped)
    try:
        for line in replay_lines(rb, _counted(stream, progress), label_lines):
            typer.echo(line)
    except BadInput as exc:
        fail(f"{docs if exc.source == 'docs' else labels}: {exc}")
    finally:
        progress.done()
        if piped:
            stream.detach()  # leave the process's stdin open
        else:
            stream.close()


def _file_progress(stream: TextIO, label: str, unit: str, *, piped: bool = False) -> Progress:
    """A terminal progress line over a file's lines (stdin or a pipe has no known length: none)."""
    if piped or not sys.stderr.isatty() or not stream.seekable():  # a pipe (`<(zcat …)`) is read once
        return Progress(0, label)
    total = sum(1 for _ in stream)
    stream.seek(0)
    return Progress(total, label, unit=unit)


def _counted(lines: Iterable[str], progress: Progress) -> Iterator[str]:
    for line in lines:
        progress.step()
        yield line


# --- sources commands (sources/) -------------------------------------------------------------

sources_app = typer.Typer(help="List configured sources and try one.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")


@sources_app.command("list")
def sources_list(config: ConfigOption = None) -> None:
    """Configured sources with kind, interval, last poll status and URL."""
    import asyncio  # keep `--help` fast

    from tradewatch.sources.commands import list_sources

    settings = settings_or_exit(config)
    for line in asyncio.run(list_sources(settings)):
        typer.echo(printable(line))


@sources_app.command("test")
def sources_test(
    name: Annotated[str, typer.Argument(help="source name from the config")],
    config: ConfigOption = None,
) -> None:
    """Fetch one source once and print its documents as JSONL (no dedup, no alerts)."""
    import asyncio  # keep `--help` fast

    from tradewatch.sources.commands import document_line, try_source

    settings = settings_or_exit(config)
    try:
        documents = asyncio.run(try_source(settings, name))
    except ConfigError as exc:
        fail(f"config error: {exc}")
    except TradewatchError as exc:
        fail(f"source {name}: {exc}")
    for doc in documents:
        typer.echo(document_line(doc))


# --- alerts commands (store/outbox) ----------------------------------------------------------

alerts_app = typer.Typer(help="Inspect the outbox and re-drive dead-lettered alerts.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("list")
def alerts_list(
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option("--limit", help="recent alerts and suppressions shown")] = 20,
) -> None:
    """Pending alerts per notifier, dead letters, recent alerts and suppressions (tab-separated)."""
    import asyncio  # keep `--help` fast

    from tradewatch.delivery import alerts_listing

    settings = settings_or_exit(config)
    try:
        lines = asyncio.run(alerts_listing(settings, limit=limit))
    except TradewatchError as exc:
        fail(str(exc))
    for line in lines:
        typer.echo(printable(line))


@alerts_app.command("retry")
def alerts_retry(
    ids: Annotated[list[str] | None, typer.Argument(help="dead-letter ids (from `alerts list`)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="re-drive every dead-lettered alert")] = False,
    config: ConfigOption = None,
) -> None:
    """Put dead-lettered alerts back in the outbox for the notifier that gave up on them."""
    import asyncio  # keep `--help` fast

    from tradewatch.delivery import requeue_dead

    if not ids and not all_:
        fail("name dead-letter ids (see `tradewatch alerts list`) or pass --all")
    settings = settings_or_exit(config)
    try:
        count = asyncio.run(requeue_dead(settings, None if all_ else list(ids or [])))
    except TradewatchError as exc:
        fail(str(exc))
    typer.echo(f"requeued {count}", err=True)


# --- silences (notify/silence_cli.py) ---------------------------------------------------------

from tradewatch.notify.silence_cli import silence_app  # noqa: E402 - grouped with its section

app.add_typer(silence_app, name="silence")

# --- deadlines and digest commands (deadlines.py, notify/) -----------------------------------


@app.command()
def deadlines(
    config: ConfigOption = None,
    ics: Annotated[bool, typer.Option("--ics", help="write an RFC 5545 calendar to stdout")] = False,
) -> None:
    """Upcoming deadlines and their reminders (rule files and dates taken from matches)."""
    import asyncio
    from datetime import UTC, datetime

    from tradewatch.matching import RuleProblems
    from tradewatch.notify.commands import deadlines_output

    settings = settings_or_exit(config)
    try:
        out = asyncio.run(deadlines_output(settings, ics=ics, now=datetime.now(UTC)))
    except RuleProblems as exc:
        fail(str(exc))
    except TradewatchError as exc:
        fail(str(exc))
    sys.stdout.buffer.write(out)
    sys.stdout.flush()


@app.command()
def digest(
    config: ConfigOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print it; send and move nothing")] = False,
    html: Annotated[bool, typer.Option("--html", help="with --dry-run: print the HTML part")] = False,
) -> None:
    """Mail the email digest of alerts since the last digest (`--dry-run`: print it)."""
    import asyncio
    from datetime import UTC, datetime

    from tradewatch.notify.commands import digest_output

    settings = settings_or_exit(config)
    try:
        out, _sent = asyncio.run(digest_output(settings, dry_run=dry_run, html=html, now=datetime.now(UTC)))
    except TradewatchError as exc:
        fail(str(exc))
    if dry_run:
        typer.echo(out)
    else:
        typer.echo(out, err=True)


def main() -> None:
    """Console-script entry point: Redis or tradewatch errors end in one line, never a traceback."""
    from redis.exceptions import RedisError

    from tradewatch.observe import redact_text

    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except RedisError as exc:
        hint = "(is redis_url right and Redis running?)"
        print(printable(f"redis error: {redact_text(str(exc))} {hint}"), file=sys.stderr)
        sys.exit(1)
    except TradewatchError as exc:
        print(printable(f"error: {redact_text(str(exc))}"), file=sys.stderr)
        sys.exit(1)
