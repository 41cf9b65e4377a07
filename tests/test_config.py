"""Configuration: lookup order, interpolation, overrides, and errors that name the key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tradewatch.config import BUILTIN_CONFIG, PACKAGED_RULES, find_config, load_settings
from tradewatch.durations import format_duration, parse_duration
from tradewatch.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tradewatch.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--config beats $TRADEWATCH_CONFIG beats ./tradewatch.yaml beats the built-in default."""
    monkeypatch.chdir(tmp_path)
    assert find_config(None, {}) == BUILTIN_CONFIG
    write(tmp_path, "key_prefix: local\n")
    assert find_config(None, {}) == Path("tradewatch.yaml")
    assert find_config(None, {"TRADEWATCH_CONFIG": "/x.yaml"}) == Path("/x.yaml")
    assert find_config(Path("/y.yaml"), {"TRADEWATCH_CONFIG": "/x.yaml"}) == Path("/y.yaml")


def test_interpolation_and_defaults(tmp_path: Path) -> None:
    """${VAR} and ${VAR:-default} come from the environment."""
    path = write(tmp_path, "redis_url: ${REDIS:-redis://127.0.0.1:1/0}\nkey_prefix: ${PREFIX}\n")
    settings = load_settings(path, env={"PREFIX": "acme"})
    assert settings.redis_url == "redis://127.0.0.1:1/0"
    assert settings.key_prefix == "acme"


def test_missing_variable_names_key(tmp_path: Path) -> None:
    """An unset ${VAR} without default is an error naming the key and the variable."""
    path = write(tmp_path, "notifiers:\n  slack: {token: '${SLACK_BOT_TOKEN}'}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert "notifiers.slack.token: environment variable SLACK_BOT_TOKEN is not set" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={"SLACK_BOT_TOKEN": ""})
    assert "environment variable SLACK_BOT_TOKEN is empty" in str(info.value)


def test_missing_variable_is_reported_with_the_other_problems(tmp_path: Path) -> None:
    """An unset ${VAR} no longer hides the file's other mistakes, and names its line."""
    path = write(tmp_path, "htp: {}\nnotifiers:\n  slack: {token: '${SLACK_BOT_TOKEN}'}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    lines = str(info.value).splitlines()
    assert any(
        "tradewatch.yaml:3: notifiers.slack.token: environment variable SLACK_BOT_TOKEN" in x for x in lines
    )
    assert any("htp: unknown key" in x for x in lines)


def test_env_overrides(tmp_path: Path) -> None:
    """TRADEWATCH_<KEY> and TRADEWATCH_HTTP__<KEY> override the file."""
    path = write(tmp_path, "key_prefix: file\nhttp: {timeout: 5}\n")
    env = {"TRADEWATCH_KEY_PREFIX": "env", "TRADEWATCH_HTTP__TIMEOUT": "7.5"}
    settings = load_settings(path, env=env)
    assert settings.key_prefix == "env"
    assert settings.http.timeout == 7.5


def test_every_simple_top_level_key_has_its_variable(tmp_path: Path) -> None:
    """Each top-level key with one value is settable as TRADEWATCH_<KEY> (reminder_grace was not)."""
    path = write(tmp_path, "reminder_grace: 12h\n")
    assert load_settings(path, env={"TRADEWATCH_REMINDER_GRACE": "2d"}).reminder_grace == timedelta(days=2)
    assert load_settings(path, env={"TRADEWATCH_FAILURE_ALERT_AFTER": "5"}).failure_alert_after == 5


def test_a_bad_variable_is_named_in_the_error(tmp_path: Path) -> None:
    """A bad value from the environment names the variable, not the config file's line."""
    path = write(tmp_path, "first_poll_window: 3d\n")
    env = {"TRADEWATCH_FIRST_POLL_WINDOW": "bogus", "TRADEWATCH_HTTP__TIMEOUT": "soon"}
    with pytest.raises(ConfigError) as info:
        load_settings(path, env=env)
    lines = str(info.value).splitlines()
    assert any(x.startswith("TRADEWATCH_FIRST_POLL_WINDOW (environment): first_poll_window: ") for x in lines)
    assert any(x.startswith("TRADEWATCH_HTTP__TIMEOUT (environment): http.timeout: ") for x in lines)


def test_relative_paths_resolve_against_file(tmp_path: Path) -> None:
    """rules and state_dir are relative to the config file's folder."""
    sub = tmp_path / "conf"
    sub.mkdir()
    path = write(sub, "rules: ./myrules\nstate_dir: ../state\n")
    settings = load_settings(path, env={})
    assert settings.rules == sub / "myrules"
    assert settings.state_dir.resolve() == (tmp_path / "state").resolve()


def test_relative_paths_follow_the_files_path_not_its_symlinks(tmp_path: Path) -> None:
    """A Kubernetes ConfigMap mounts the file as a link into a hidden timestamped folder
    (`..data/` → `..2026_12_02/`): `../rules` is next to the mount as the user sees it."""
    hidden = tmp_path / "etc" / "config" / "..2026_12_02"
    hidden.mkdir(parents=True)
    (hidden / "tradewatch.yaml").write_text("rules: ../rules\n", encoding="utf-8")
    (tmp_path / "etc" / "config" / "..data").symlink_to(hidden.name)
    (tmp_path / "etc" / "config" / "tradewatch.yaml").symlink_to("..data/tradewatch.yaml")
    settings = load_settings(tmp_path / "etc" / "config" / "tradewatch.yaml", env={})
    assert settings.rules == tmp_path / "etc" / "rules"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http: {timeout: -1}\n", "http.timeout:"),
        ("htp: {}\n", "htp: unknown key"),
        ("sources:\n  - {name: a, kind: nope, url: 'http://x'}\n", "sources[0].kind: unknown kind 'nope'"),
        ("sources:\n  - {name: a, kind: rss, url: 'http://x', every: 5 minutes}\n", "sources[0].every:"),
        ("timezone: Mars/Base\n", "timezone: unknown timezone"),
        ("timezone: Europe\n", "timezone: unknown timezone 'Europe'"),
        (
            "notifiers:\n  email: {host: 127.0.0.1, from: a@b.c, to: [d@e.f],\n"
            "         digest: {timezone: Europe/Berln}}\n",
            "notifiers.email.digest.timezone: unknown timezone 'Europe/Berln'",
        ),
        (
            "notifiers:\n  slack: {token: xoxb-1, timezone: Europe/Berln}\n",
            "notifiers.slack.timezone: unknown timezone",
        ),
        (
            "sources:\n  - {name: a, kind: rss, url: 'http://x', every: 0s}\n",
            "sources[0].every: every must be",
        ),
        ("silences:\n  - {tag: truce, until: tomorrow}\n", "silences[0].until:"),
        ("first_poll_window: 3 days\n", "first_poll_window:"),
        ("http: {proxy: 'socks5://127.0.0.1:1080'}\n", "http.proxy: a proxy is an http://"),
        (
            "sources:\n  - {name: a, kind: rss, url: 'http://x', proxy: 'proxy:3128'}\n",
            "sources[0].proxy: a proxy is an http://",
        ),
        (
            "notifiers:\n  console: {format: jsn}\n",
            "notifiers.console.format: Input should be 'text' or 'json'",
        ),
        (
            "sources:\n  - {name: m, kind: mofcom, url: 'http://x', timezone: Asia/Shangai}\n",
            "sources[0].timezone: unknown timezone 'Asia/Shangai'",
        ),
        ("key: [unclosed\n", "tradewatch.yaml:2: YAML error"),
        ("server: {port: 1}\nserver: {port: 2}\n", "tradewatch.yaml:2: duplicate key 'server'"),
    ],
)
def test_bad_config_names_key(tmp_path: Path, text: str, expected: str) -> None:
    """Each kind of mistake is reported with the key path and the problem."""
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), env={})
    assert expected in str(info.value)


def test_config_errors_name_the_line(tmp_path: Path) -> None:
    """Each problem names the line of its key, as rule files do (a missing key: its parent's)."""
    text = (
        "http:\n  timeout: -1\nsources:\n  - name: a\n    kind: html\n    url: 'http://x/'\n"
        "    selectors: {item: li}\nhtp: {}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text), env={})
    lines = str(err.value).splitlines()
    assert any(
        line.endswith("tradewatch.yaml:2: http.timeout: Input should be greater than 0") for line in lines
    )
    assert any(line.endswith("tradewatch.yaml:4: sources[0].select: Field required") for line in lines)
    assert any(
        line.endswith("tradewatch.yaml:7: sources[0].selectors: unknown key (did you mean 'select'?)")
        for line in lines
    )
    assert any(line.endswith("tradewatch.yaml:8: htp: unknown key (did you mean 'http'?)") for line in lines)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("log_levle: info\n", "log_levle: unknown key (did you mean 'log_level'?)"),
        ("notifiers:\n  consol: {}\n", "notifiers.consol: unknown key (did you mean 'console'?)"),
        ("notifiers:\n  slack: {tokn: x}\n", "notifiers.slack.tokn: unknown key (did you mean 'token'?)"),
        (
            "notifiers:\n  email: {host: h, from: a@b.c, to: [d@e.f], digest: {atx: '08:00'}}\n",
            "notifiers.email.digest.atx: unknown key (did you mean 'at'?)",
        ),
        (
            "sources:\n  - {name: a, kind: rss, url: 'http://x', evry: 5m}\n",
            "sources[0].evry: unknown key (did you mean 'every'?)",
        ),
        (
            "sources:\n  - {name: a, kind: html, url: 'http://x', select: {item: li, titel: a}}\n",
            "sources[0].select.titel: unknown key (did you mean 'title'?)",
        ),
        ("zzzzzz: 1\n", "zzzzzz: unknown key\n"),
    ],
)
def test_unknown_key_suggests_a_close_one(tmp_path: Path, text: str, expected: str) -> None:
    """A misspelt key, at any depth, names the allowed key it is closest to (as rule files do)."""
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), env={})
    assert expected in str(info.value) + "\n"


def test_builtin_default_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The built-in default validates: real sources, embedded Redis, console alerts."""
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, env={})
    assert settings.redis_url is None
    assert settings.sources
    assert settings.notifiers.configured() == ["console"]


def test_builtin_default_with_an_empty_rules_folder_uses_the_packaged_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty ./rules (the image's /etc/tradewatch/rules without a mount) is no rulebook: the
    built-in default then runs the packaged rules instead of none at all."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules").mkdir()
    assert load_settings(None, env={}).rules == PACKAGED_RULES
    (tmp_path / "rules" / ".hidden").mkdir()
    (tmp_path / "rules" / ".hidden" / "copy.yaml").write_text("rules: []\n", encoding="utf-8")
    assert load_settings(None, env={}).rules == PACKAGED_RULES
    (tmp_path / "rules" / "china").mkdir()
    (tmp_path / "rules" / "china" / "mine.yaml").write_text("rules: []\n", encoding="utf-8")
    assert load_settings(None, env={}).rules == tmp_path / "rules"  # in a subfolder, as the loader reads
    named = tmp_path / "mounted-nothing"
    assert load_settings(None, env={"TRADEWATCH_RULES": str(named)}).rules == named  # named on purpose


def test_example_config_validates() -> None:
    """tradewatch.example.yaml documents a configuration that actually loads."""
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SMTP_USER": "u", "SMTP_PASSWORD": "p", "WEBHOOK_SECRET": "s"}
    settings = load_settings(ROOT / "tradewatch.example.yaml", env=env)
    assert {"console", "slack", "email", "webhook"} <= set(settings.notifiers.configured())


@pytest.mark.parametrize(
    ("text", "seconds"), [("1s", 1), ("5m", 300), ("2h", 7200), ("7d", 604800), ("0s", 0), (0, 0)]
)
def test_durations(text: str | int, seconds: int) -> None:
    """Durations are a number and a unit s, m, h or d."""
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (7, "7 has no unit; write it with s, m, h or d"),  # `remind: [7]` meant days, not seconds
        (float("inf"), "inf has no unit"),
        ("99999999999d", "too long a duration"),
        ("5 minutes", "is not a duration"),
    ],
)
def test_durations_refused(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(value)


def test_duration_round_trip() -> None:
    """Formatting gives back the shortest exact spelling."""
    assert format_duration(timedelta(days=7)) == "7d"
    assert format_duration(timedelta(seconds=90)) == "90s"
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")
