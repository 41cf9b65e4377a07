"""Silences from the config and from Redis: matching by rule, tag, source (globs), expiry, listing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
import typer
from typer.testing import CliRunner

from tests.conftest import ROOT
from tests.notify.alerts import make_alert
from tradewatch.config import Settings
from tradewatch.errors import ConfigError
from tradewatch.notify.silence_cli import silence_app
from tradewatch.store.keys import Keys
from tradewatch.store.silences import Silences, parse_until

NOW = datetime(2025, 11, 3, 12, 0, tzinfo=UTC)


def _silences(redis: aioredis.Redis, *specs: dict[str, str]) -> Silences:
    return Silences(redis, Keys("t"), Settings.model_validate({"silences": list(specs)}))


async def test_config_silence_mutes_matching_alerts(redis: aioredis.Redis) -> None:
    """A config silence on a tag mutes alerts with that tag until `until`, and says why."""
    s = _silences(redis, {"tag": "export-control", "until": "2025-11-04T00:00:00+00:00", "reason": "maint"})
    reason = await s.is_silenced(make_alert(), NOW)
    assert reason is not None
    assert "tag export-control" in reason
    assert "maint" in reason
    assert await s.is_silenced(make_alert(tags=["truce"]), NOW) is None
    assert await s.is_silenced(make_alert(), NOW + timedelta(days=1)) is None


async def test_config_dates_are_read_in_the_configured_timezone(redis: aioredis.Redis) -> None:
    """`until: 2025-11-04` ends at midnight in `timezone`, as `silence add --until 2025-11-04`
    does; a time with an offset keeps it."""
    settings = Settings.model_validate(
        {
            "timezone": "Asia/Shanghai",
            "silences": [
                {"tag": "export-control", "until": "2025-11-04"},
                {"tag": "truce", "until": "2025-11-04T00:00:00+00:00"},
            ],
        }
    )
    by_date, by_time = Silences(redis, Keys("t"), settings).configured
    assert by_date.until == datetime(2025, 11, 3, 16, 0, tzinfo=UTC)
    assert by_date.until == parse_until("2025-11-04", ZoneInfo("Asia/Shanghai"), NOW)
    assert by_time.until == datetime(2025, 11, 4, 0, 0, tzinfo=UTC)


async def test_fields_are_anded_and_globbed(redis: aioredis.Redis) -> None:
    """rule and source must both fit; a glob covers a family of sources (also among cluster sources)."""
    s = _silences(redis, {"rule": "mofcom-*", "source": "mofcom-*", "until": "2026-01-01"})
    assert await s.is_silenced(make_alert(), NOW) is not None
    assert await s.is_silenced(make_alert(source="reuters", sources=[]), NOW) is None
    assert await s.is_silenced(make_alert(rule="us-tariffs"), NOW) is None


async def test_runtime_silence_shared_and_removable(redis: aioredis.Redis, redis_url: str) -> None:
    """A silence added at run time is seen by another worker, listed, and can be lifted."""
    one = _silences(redis)
    added = await one.add(
        until=NOW + timedelta(hours=2), source="trump-truth-mirror", reason="noisy", created_by="ops"
    )
    other_client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        other = _silences(other_client)
        alert = make_alert(source="trump-truth-mirror", sources=[])
        assert await other.is_silenced(alert, NOW) is not None
        assert [x.id for x in await other.active(NOW)] == [added.id]
        assert await other.remove(added.id)
        assert await one.is_silenced(alert, NOW) is None
    finally:
        await other_client.aclose()


async def test_expired_runtime_silences_are_pruned(redis: aioredis.Redis) -> None:
    """An expired silence stops muting and disappears from the list."""
    s = _silences(redis)
    await s.add(until=NOW + timedelta(minutes=5), tag="truce")
    assert await s.active(NOW + timedelta(minutes=6)) == []
    assert await redis.hlen(Keys("t").silences()) == 0


async def test_operator_alerts_are_never_silenced(redis: aioredis.Redis) -> None:
    """tradewatch's own operator alerts get through any silence."""
    s = _silences(redis, {"source": "*", "until": "2030-01-01"})
    assert await s.is_silenced(make_alert(kind="operator"), NOW) is None


async def test_empty_silence_refused(redis: aioredis.Redis) -> None:
    """A silence without rule, tag or source would mute nothing; adding one is an error."""
    with pytest.raises(ConfigError):
        await _silences(redis).add(until=NOW + timedelta(hours=1))


def test_parse_until_forms() -> None:
    """An ISO time, a date (midnight in the zone) or a duration from now."""
    berlin = ZoneInfo("Europe/Berlin")
    assert parse_until("2025-12-01T08:00+01:00", berlin) == datetime(2025, 12, 1, 7, 0, tzinfo=UTC)
    assert parse_until("2025-12-01", berlin) == datetime(2025, 12, 1, tzinfo=berlin)
    assert parse_until("2h", berlin, NOW) == NOW + timedelta(hours=2)
    with pytest.raises(ConfigError):
        parse_until("soon", berlin, NOW)


def test_silence_commands(tmp_path: Path, redis_url: str) -> None:
    """`silence add` prints an id, `list` shows it with the config's, `remove` lifts it."""
    app = typer.Typer()
    app.add_typer(silence_app, name="silence")
    config = tmp_path / "tradewatch.yaml"
    silences = "silences:\n  - {tag: truce, until: '2099-01-01', reason: cfg}\n"
    config.write_text(f"redis_url: {redis_url}\n{silences}", encoding="utf-8")
    runner = CliRunner()
    added = runner.invoke(
        app,
        [
            "silence",
            "add",
            "--source",
            "mofcom-*",
            "--until",
            "2h",
            "--reason",
            "maint",
            "--config",
            str(config),
        ],
    )
    assert added.exit_code == 0, added.output
    sid = added.stdout.strip()
    listed = runner.invoke(app, ["silence", "list", "--config", str(config)])
    assert f"redis {sid}]: maint" in listed.stdout
    assert "tag truce" in listed.stdout
    assert runner.invoke(app, ["silence", "remove", sid, "--config", str(config)]).exit_code == 0
    assert runner.invoke(app, ["silence", "remove", sid, "--config", str(config)]).exit_code == 1
    bad = runner.invoke(app, ["silence", "add", "--until", "2h", "--config", str(config)])
    assert bad.exit_code == 1


def test_silence_add_warns_of_a_name_that_matches_nothing(tmp_path: Path, redis_url: str) -> None:
    """A misspelt rule (or a glob matching no source) is added, as asked, with a warning that it
    mutes nothing and the name it may have meant; a name that matches says nothing."""
    app = typer.Typer()
    app.add_typer(silence_app, name="silence")
    config = tmp_path / "tradewatch.yaml"
    config.write_text(
        f"redis_url: {redis_url}\nrules: {ROOT / 'rules'}\n"
        "sources:\n  - {name: mofcom-en, kind: rss, url: 'http://127.0.0.1/feed'}\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    common = ["--until", "2h", "--config", str(config)]
    typo = runner.invoke(app, ["silence", "add", "--rule", "us-tariff-action-oficial", *common])
    assert typo.exit_code == 0, typo.output
    assert (
        "warning: no rule of this config matches 'us-tariff-action-oficial' "
        "(did you mean 'us-tariff-action-official'?); the silence mutes nothing"
    ) in typo.stderr
    fine = runner.invoke(app, ["silence", "add", "--source", "mofcom-*", "--tag", "tariff-*", *common])
    assert fine.exit_code == 0, fine.output
    assert "warning" not in fine.stderr
    nothing = runner.invoke(app, ["silence", "add", "--source", "reuters-*", *common])
    assert "no source of this config matches 'reuters-*'" in nothing.stderr
