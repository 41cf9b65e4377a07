"""`tradewatch rules check|test` and `tradewatch replay`: exit codes, stderr lines, stdout records."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import ROOT
from tradewatch.cli import app

BAD = Path(__file__).with_name("bad_rules")
RULES = ROOT / "rules"
EDGE = ROOT / "tests" / "corpus"


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from an empty folder so no ./tradewatch.yaml is picked up."""
    monkeypatch.chdir(tmp_path)


def _rule_dir(tmp_path: Path, body: str) -> Path:
    folder = tmp_path / "myrules"
    folder.mkdir()
    (folder / "r.yaml").write_text(body, encoding="utf-8")
    return folder


def test_rules_check_ok() -> None:
    """A valid directory exits 0 and prints nothing on stdout."""
    result = CliRunner().invoke(app, ["rules", "check", str(RULES)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""


def test_rules_check_names_every_problem_without_traceback() -> None:
    """A defective directory exits 1 with one FILE:LINE: message per problem on stderr, no traceback."""
    result = CliRunner().invoke(app, ["rules", "check", str(BAD)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) >= 10
    assert all(line.startswith(str(BAD)) and ":" in line for line in lines), lines
    assert "Traceback" not in result.output


def test_rules_check_with_config_checks_slack_routes(tmp_path: Path) -> None:
    """With a config, a slack:ROUTE the config does not define is an error."""
    rules = _rule_dir(
        tmp_path, "rules:\n  - id: r\n    title: R\n    match: {any: [tariff]}\n    notify: [slack:urgent]\n"
    )
    (tmp_path / "conf").mkdir()
    config = tmp_path / "conf" / "tradewatch.yaml"
    config.write_text(
        'notifiers:\n  slack: {token: "xoxb-test", routes: {default: "#a", critical: "#b"}}\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["rules", "check", str(rules), "--config", str(config)])
    assert result.exit_code == 1
    assert f"{rules / 'r.yaml'}:5: rule r: slack route 'urgent' is not configured" in result.stderr
    without = CliRunner().invoke(app, ["rules", "check", str(rules)])
    assert without.exit_code == 0, without.output
    config.write_text("notifiers:\n  console: {}\n", encoding="utf-8")  # a config without slack
    no_slack = CliRunner().invoke(app, ["rules", "check", str(rules), "--config", str(config)])
    assert no_slack.exit_code == 1
    assert (
        "slack route 'urgent' is not configured (configured: none: the config has no slack" in no_slack.stderr
    )


def test_rules_test_passes_on_the_shipped_rulebook() -> None:
    """`rules test` exits 0 on rules/."""
    result = CliRunner().invoke(app, ["rules", "test", str(RULES)])
    assert result.exit_code == 0, result.output


def test_rules_test_names_each_failing_example(tmp_path: Path) -> None:
    """A failing match, no_match and facts example are each named; exit 1."""
    rules = _rule_dir(
        tmp_path,
        """rules:
  - id: tariff-rule
    title: Tariffs
    match: {any: [tariff]}
    extract: [rates]
    examples:
      match: ["no such word", {title: "tariff of 10%", facts: {rates: [25]}}]
      no_match: ["tariff"]
""",
    )
    result = CliRunner().invoke(app, ["rules", "test", str(rules)])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if "r.yaml" in line and "rules_loaded" not in line]
    assert len(lines) == 3, lines
    assert "match example 1 did not match: 'no such word'" in lines[0]
    assert "match example 2: fact rates: expected [25], got [10]" in lines[1]
    assert "no_match example 1 matched: 'tariff'" in lines[2]


def test_replay_prints_one_match_record_a_line(tmp_path: Path) -> None:
    """Replay prints contract match records as JSONL on stdout, nothing else."""
    docs = tmp_path / "docs.jsonl"
    docs.write_text(
        json.dumps(
            {"id": "d1", "source": "news", "title": "China bans gallium exports to the US", "text": ""}
        )
        + "\n\n"
        + json.dumps({"id": "d2", "title": "Weather", "text": "sunny"})
        + "\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["replay", str(docs), "--rules", str(RULES)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records
    assert {r["doc_id"] for r in records} == {"d1"}
    assert set(records[0]) == {"doc_id", "rule", "title", "tags", "severity", "facts"}


def test_replay_reads_stdin() -> None:
    """`-` reads documents from stdin."""
    doc = json.dumps({"id": "d1", "title": "China bans gallium exports to the US"})
    result = CliRunner().invoke(app, ["replay", "-", "--rules", str(RULES)], input=doc + "\n")
    assert result.exit_code == 0, result.output
    assert '"doc_id": "d1"' in result.stdout


def test_replay_takes_nulls_as_absent_and_a_bom(tmp_path: Path) -> None:
    """`"id": null` is an absent id (derived from the url); a BOM before the first line is skipped."""
    doc = {"id": None, "source": "s", "url": "https://example.org/g", "title": "China bans gallium exports"}
    path = tmp_path / "docs.jsonl"
    path.write_text("\ufeff" + json.dumps(doc) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["replay", str(path), "--rules", str(RULES)])
    assert result.exit_code == 0, result.output
    assert '"doc_id": "https://example.org/g"' in result.stdout


def test_replay_names_the_bad_line(tmp_path: Path) -> None:
    """Bad input exits 1 naming the line number."""
    docs = tmp_path / "docs.jsonl"
    docs.write_text(
        '{"id": "ok", "title": "x"}\n{"id": "bad", "published_at": "2025-01-01T00:00:00"}\nnot json\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["replay", str(docs), "--rules", str(RULES)])
    assert result.exit_code == 1
    assert "line 2: " in result.stderr
    assert "Traceback" not in result.output


def test_replay_names_a_line_whose_extra_is_not_an_object(tmp_path: Path) -> None:
    """Unknown keys join `extra`; an `extra` that is a list is the line's mistake, not a traceback."""
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"id": "a", "title": "x", "agency": "BIS", "extra": [1]}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["replay", str(docs), "--rules", str(RULES)])
    assert result.exit_code == 1
    assert "line 1: " in result.stderr
    assert "extra must be an object" in result.stderr
    assert "Traceback" not in result.output


def test_replay_progress_reads_a_pipe_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """`replay <(zcat docs.gz)` on a terminal: a pipe cannot be counted first and read again, so
    its progress has no total and every line is left for the replay."""
    from tradewatch.cli import _file_progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    read_end, write_end = os.pipe()
    os.write(write_end, b'{"id": "a"}\n{"id": "b"}\n')
    os.close(write_end)
    monkeypatch.setattr(sys, "stderr", Terminal())
    with open(read_end, encoding="utf-8") as stream:
        _file_progress(stream, "replaying", "docs")
        assert stream.read() == '{"id": "a"}\n{"id": "b"}\n'


def test_replay_of_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    """Latin-1 bytes on line 2 (or a UTF-16 file): exit 1 naming the line, no traceback; line 1's
    match is printed before it."""
    docs = tmp_path / "latin1.jsonl"
    first = json.dumps({"id": "d1", "source": "s", "title": "China bans gallium exports"})
    docs.write_bytes(first.encode() + b'\n{"id": "d2", "title": "caf\xe9 tariff"}\n')
    result = CliRunner().invoke(app, ["replay", str(docs), "--rules", str(RULES)])
    assert result.exit_code == 1
    assert '"doc_id": "d1"' in result.stdout
    assert f"{docs}: line 2: not UTF-8 text" in result.stderr
    assert "Traceback" not in result.output
    piped = CliRunner().invoke(app, ["replay", "-", "--rules", str(RULES)], input=docs.read_bytes())
    assert piped.exit_code == 1
    assert '"doc_id": "d1"' in piped.stdout
    assert "-: line 2: not UTF-8 text" in piped.stderr
    wide = tmp_path / "utf16.jsonl"
    wide.write_bytes(first.encode("utf-16"))
    result = CliRunner().invoke(app, ["replay", str(wide), "--rules", str(RULES)])
    assert result.exit_code == 1
    assert "line 1: not UTF-8 text" in result.stderr


def test_replay_with_labels_prints_precision_and_recall() -> None:
    """--labels prints per-tag precision/recall and lists misses and false alarms."""
    result = CliRunner().invoke(
        app,
        [
            "replay",
            str(EDGE / "edge_documents.jsonl"),
            "--rules",
            str(RULES),
            "--labels",
            str(EDGE / "edge_labels.jsonl"),
        ],
    )
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split()[:3] == ["tag", "precision", "recall"]
    assert any(row.startswith("export-control") for row in rows)


def test_replay_labels_name_their_own_mistakes(tmp_path: Path) -> None:
    """A misspelled tag, a label for no document, an unknown key and a document labelled twice
    each get a note; before, a typo scored as a silent miss and the rest was ignored."""
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"id": "a", "source": "news", "title": "China bans gallium exports to the US"}\n')
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        '{"id": "a", "expect": ["export-control", "galium"], "expects": ["x"]}\n'
        '{"id": "zzz", "expect": ["truce"]}\n'
        '{"id": "zzz", "expect": ["tariff-change"]}\n'
    )
    result = CliRunner().invoke(app, ["replay", str(docs), "--rules", str(RULES), "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stdout.splitlines() if line.startswith("note")]
    assert notes == [
        "note        labels line 1: unknown key 'expects' ignored",
        "note        labels line 3: 'zzz' is labelled on line 2 too; the later counts",
        "note        1 labels name no document: zzz",
        "note        no rule has the tag 'galium' (a typo in the labels?)",
    ]


def test_replay_with_bad_rules_exits_1() -> None:
    """Replay refuses to run a defective rulebook, naming its problems."""
    result = CliRunner().invoke(app, ["replay", "-", "--rules", str(BAD)], input="")
    assert result.exit_code == 1
    assert f"{BAD / 'a.yaml'}:8:" in result.stderr
