"""Rule-file validation: every defect named as FILE:LINE: message, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from tradewatch.matching import RuleProblems, check_rules, load_rulebook

BAD = Path(__file__).with_name("bad_rules")

# (file, line, a fragment of the message) for every defect planted in bad_rules/
EXPECTED = [
    ("a.yaml", 8, "unknown key 'severty' (did you mean 'severity'?)"),
    ("a.yaml", 15, "bad regex '(unclosed'"),
    ("a.yaml", 19, "'3x' is not a duration"),
    ("a.yaml", 22, "unknown glossary entry 'export-licenze' (did you mean 'export-licence'?)"),
    ("a.yaml", 26, "slack route 'critcal' is not configured"),
    ("a.yaml", 29, "unknown key 'al' in match (did you mean 'all'?)"),
    ("a.yaml", 30, "missing key 'id'"),
    ("a.yaml", 32, "'Bad_Id' is not kebab-case"),
    ("a.yaml", 37, "severity: Input should be 'info', 'warning' or 'critical'"),
    ("a.yaml", 42, "'pager' is not a notify target"),
    ("a.yaml", 46, "due needs a UTC offset"),
    ("a.yaml", 50, "cancelled_by names unknown rule 'good-rul' (did you mean 'good-rule'?)"),
    ("b.yaml", 2, "duplicate rule id 'good-rule' (first defined at"),
    ("b.yaml", 8, "unknown key 'dedup.windw'"),
    ("b.yaml", 13, "dedup key uses {announcement} but the rule does not extract it"),
    ("b.yaml", 13, "dedup key uses unknown {rats} (did you mean 'rates'?)"),
    ("c.yaml", 4, "YAML error"),
]


@pytest.fixture(scope="module")
def problems() -> list[str]:
    """All problems of the planted directory, as printed."""
    return [str(p) for p in check_rules(BAD, slack_routes={"default", "critical"})]


@pytest.mark.parametrize(("file", "line", "fragment"), EXPECTED, ids=[e[2][:40] for e in EXPECTED])
def test_each_defect_is_named_with_file_and_line(
    problems: list[str], file: str, line: int, fragment: str
) -> None:
    """Each planted defect appears as FILE:LINE: with a message naming it."""
    prefix = f"{BAD / file}:{line}: "
    hits = [p for p in problems if p.startswith(prefix) and fragment in p]
    assert hits, f"no {prefix}…{fragment!r} in:\n" + "\n".join(problems)


def test_no_unexpected_problems(problems: list[str]) -> None:
    """Only the planted defects are reported (the good rule is not)."""
    assert len(problems) == len(EXPECTED), "\n".join(problems)


def test_routes_not_checked_without_config() -> None:
    """Without configured routes, any syntactically valid slack:ROUTE passes."""
    problems = [str(p) for p in check_rules(BAD, slack_routes=None)]
    assert not any("slack route" in p for p in problems)


def test_load_rulebook_raises_with_every_problem() -> None:
    """load_rulebook raises RuleProblems carrying the same list check_rules returns."""
    with pytest.raises(RuleProblems) as info:
        load_rulebook(BAD, slack_routes={"default"})
    assert len(info.value.problems) == len(check_rules(BAD, slack_routes={"default"}))
    assert str(info.value).count("\n") == len(info.value.problems) - 1


def test_missing_directory_is_a_problem(tmp_path: Path) -> None:
    """A rules directory that does not exist is reported, not raised."""
    problems = check_rules(tmp_path / "nope")
    assert len(problems) == 1
    assert "not a directory" in str(problems[0])


def test_glossary_defects_are_named(tmp_path: Path) -> None:
    """A rules directory's own glossary is checked too: unknown keys and empty entries, with lines."""
    (tmp_path / "glossary.yaml").write_text(
        "glossary:\n  tungsten:\n    label: tungsten\n    kindd: item\n    en: [tungsten]\n"
        "  empty:\n    label: nothing\n",
        encoding="utf-8",
    )
    (tmp_path / "r.yaml").write_text(
        "rules:\n  - id: r\n    title: R\n    match: {glossary: rare-earths}\n", encoding="utf-8"
    )
    problems = [str(p) for p in check_rules(tmp_path)]
    glossary = tmp_path / "glossary.yaml"
    assert any(p.startswith(f"{glossary}:4: ") and "kindd" in p for p in problems), problems
    assert any(p.startswith(f"{glossary}:6: ") and "needs at least one en or zh term" in p for p in problems)
    assert any(
        p.startswith(f"{tmp_path / 'r.yaml'}:4: ") and "unknown glossary entry 'rare-earths'" in p
        for p in problems
    ), problems


def test_an_own_glossary_that_hides_a_shipped_entry_says_so(tmp_path: Path) -> None:
    """A folder's glossary.yaml replaces the shipped one; an entry only the shipped one has is
    named with that cause, which the bare "unknown glossary entry" did not give a new user."""
    (tmp_path / "glossary.yaml").write_text(
        "glossary:\n  widgets: {label: widgets, kind: item, en: [widget]}\n"
    )
    (tmp_path / "r.yaml").write_text(
        "rules:\n  - id: w\n    title: W\n    tags: [export-control]\n    severity: info\n"
        "    match: {all: [{glossary: widgets}, {glossary: export-control}, {glossary: nonsense}]}\n"
    )
    messages = [str(p) for p in check_rules(tmp_path)]
    assert any(
        "unknown glossary entry 'export-control'" in m and "replaces the shipped glossary" in m
        for m in messages
    )
    assert any("unknown glossary entry 'nonsense'" in m and "shipped" not in m for m in messages)


def test_rule_model_accepts_a_plain_tree() -> None:
    """Rule.model_validate parses a YAML-shaped match tree, and rejects a bad one naming the key."""
    from pydantic import ValidationError

    from tradewatch.matching import Rule

    rule = Rule.model_validate({"id": "r", "title": "R", "match": {"all": [["a", "b"], {"none": ["c"]}]}})
    assert rule.match.describe() == "all[any[a, b], none[c]]"
    with pytest.raises(ValidationError, match="did you mean 'all'"):
        Rule.model_validate({"id": "r", "title": "R", "match": {"al": ["a"]}})


def test_hidden_folders_are_not_read(tmp_path: Path) -> None:
    """A ConfigMap's hidden `..data` copies do not load every rule twice."""
    rule = (
        "rules:\n  - id: only-once\n    title: T\n    tags: [t]\n"
        "    severity: info\n    match: {any: [tariff]}\n"
    )
    (tmp_path / "a.yaml").write_text(rule, encoding="utf-8")
    hidden = tmp_path / "..2026_12_01_00_00_00.1"
    hidden.mkdir()
    (hidden / "a.yaml").write_text(rule, encoding="utf-8")
    assert check_rules(tmp_path) == []
    assert [r.id for r in load_rulebook(tmp_path).rules] == ["only-once"]


def test_glossary_terms_that_cannot_match_are_named(tmp_path: Path) -> None:
    """An empty or all-wildcard spelling is refused by `rules check`, as it is in a rule's terms."""
    (tmp_path / "glossary.yaml").write_text(
        "glossary:\n  china:\n    label: China\n    kind: country\n    en:\n      - China\n"
        '      - "*"\n      - " "\n    zh: [中国]\n',
        encoding="utf-8",
    )
    (tmp_path / "r.yaml").write_text("rules:\n  - id: r\n    title: R\n    match: {glossary: china}\n")
    problems = [str(p) for p in check_rules(tmp_path)]
    glossary = tmp_path / "glossary.yaml"
    assert any(p.startswith(f"{glossary}:7: ") and "empty term '*'" in p for p in problems), problems
    assert any(p.startswith(f"{glossary}:8: ") and "empty term ' '" in p for p in problems), problems


YAML_TRAPS = [
    ("recursive.yaml", "rules: &a [*a]\n", 1, "an alias refers to a value that contains it"),
    (
        "laughs.yaml",
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefg", "bcdefgh", strict=True)
        )
        + "rules: [*h]\n",
        7,  # `g:` already stands for 10,000,000 values
        "expands to more than 2,000,000 values",
    ),
    (
        "date.yaml",
        "rules: []\ndeadlines:\n  - id: d\n    title: D\n    due: 2025-02-30\n",
        5,
        "deadline d: due: Input should be a valid datetime or date, day value is outside expected range",
    ),
    ("quote.yaml", "rules:\n  - id: r\n    title: 'unclosed\n    match: {any: [x]}\n\n", 3, "YAML error"),
    ("bytes.yaml", b"rules:\n  - id: r\n    title: caf\xe9\n", 3, "not UTF-8: byte 0xe9"),
    (
        "remind.yaml",
        "rules: []\ndeadlines:\n  - id: d\n    title: D\n    due: 2025-03-01T00:00:00Z\n"
        "    remind: [99999999999d]\n",
        6,
        "too long a duration",
    ),
]


@pytest.mark.parametrize(("name", "text", "line", "fragment"), YAML_TRAPS, ids=[t[0] for t in YAML_TRAPS])
def test_yaml_traps_are_named_not_raised(
    tmp_path: Path, name: str, text: str | bytes, line: int, fragment: str
) -> None:
    """Recursive or exponential aliases, impossible dates, an unclosed quote, a stray byte and a
    huge duration are each one FILE:LINE: problem, never a traceback or a hang."""
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    problems = [str(p) for p in check_rules(tmp_path)]
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:{line}: "), problems
    assert fragment in problems[0], problems


def test_an_empty_rules_folder_loads_with_a_warning(tmp_path: Path) -> None:
    """No rule and no deadline (an empty or wrongly mounted folder): a worker that can never alert
    says so, instead of one info line with `rules=0`."""
    with structlog.testing.capture_logs() as logs:
        book = load_rulebook(tmp_path)
    assert (book.rules, book.deadlines) == ([], [])
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["no_rules_loaded"]


_MATCH_DEFECTS = [
    ("near: {terms: [rare earth, export], within: 0}", "near.within must be a whole number of words ≥ 1"),
    ("near: {terms: [rare earth, export], within: true}", "near.within must be a whole number of words ≥ 1"),
    ("near: {terms: [rare earth]}", "near.terms needs a list of at least two terms"),
    (
        "near: {terms: [rare earth, export], whithin: 3}",
        "unknown key 'whithin' in near (did you mean 'within'?)",
    ),
    ("near: {terms: [{all: [a, b]}, export]}", "near.terms may hold terms, lists of terms and glossary"),
    ("near: [rare earth, export]", "near needs a mapping"),
    ("{in: titel, any: [tariff]}", "in: expected title, lead or text, got 'titel' (did you mean 'title'?)"),
    ("{in: title}", "`in` needs a condition beside it"),
    ("{any: []}", "any needs at least one item"),
    ("{any: [tariff, true]}", "match: expected a term, a list or a mapping, got True"),
    ("{}", "empty match mapping"),
    ("{none: [draft]}", "match: only `none` matches nearly every document"),
    ("{in: title, none: [draft]}", "match: only `none` matches nearly every document"),
]


@pytest.mark.parametrize(("match", "fragment"), _MATCH_DEFECTS, ids=[d[1][:36] for d in _MATCH_DEFECTS])
def test_match_defects_name_their_line(tmp_path: Path, match: str, fragment: str) -> None:
    """`near`, `in` and term lists are checked as they are written, each defect on its own line."""
    body = (
        "rules:\n"
        "  - id: probe\n"
        "    title: Probe\n"
        "    tags: [probe]\n"
        "    severity: info\n"
        f"    match: {match if match.startswith('{') else '{' + match + '}'}\n"
    )
    (tmp_path / "r.yaml").write_text(body, encoding="utf-8")
    problems = [str(p) for p in check_rules(tmp_path)]
    assert any(p.startswith(f"{tmp_path / 'r.yaml'}:6: ") and fragment in p for p in problems), problems


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("lang: [english]", "lang: 'english' is not a language code; use zh, en or another two-letter"),
        ("lang: [zh-hant]", "lang: 'zh-hant' is not a language code"),
        ("remind: [7d]", "remind: needs a valid deadline_from (effective_date or dates)"),
        ('notify: [sms, pager, "slack:"]', "notify: 'sms', 'pager', 'slack:' are not notify targets"),
        ("extract: [{rates: 1}]", "extract.0: Input should be a valid string"),
        ("notify: [{slack: x}]", "notify.0: Input should be a valid string"),
    ],
)
def test_a_value_that_would_keep_a_rule_silent_is_refused(tmp_path: Path, line: str, fragment: str) -> None:
    """A value typo that would make a rule never fire (or never remind) is an error on its line,
    as a key typo is."""
    body = (
        "rules:\n  - id: probe\n    title: Probe\n    tags: [probe]\n    severity: info\n"
        f"    {line}\n    match: {{any: [tariff]}}\n"
    )
    (tmp_path / "r.yaml").write_text(body, encoding="utf-8")
    problems = [str(p) for p in check_rules(tmp_path)]
    assert any(p.startswith(f"{tmp_path / 'r.yaml'}:6: ") and fragment in p for p in problems), problems


def test_a_glossary_in_a_subfolder_is_named_not_ignored(tmp_path: Path) -> None:
    """Only the top folder's glossary.yaml is read: one kept beside your own rules in a subfolder
    is reported (its entries would silently be missing), not taken for a rule file."""
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "glossary.yaml").write_text(
        "glossary:\n  mything: {kind: measure, en: [thing]}\n", encoding="utf-8"
    )
    problems = [str(p) for p in check_rules(tmp_path)]
    assert problems == [
        f"{ours / 'glossary.yaml'}:1: a glossary is read only at the top of the rules folder "
        f"({tmp_path / 'glossary.yaml'}): move its entries there"
    ]


def test_an_example_typo_is_named_as_written(tmp_path: Path) -> None:
    """A misspelt key in an example mapping is named by its YAML path, once, with the key it
    may have meant; not with pydantic's union members (`…0.Example.titel`, `…0.str`)."""
    body = (
        "rules:\n  - id: probe\n    title: Probe\n    tags: [probe]\n    severity: info\n"
        "    match: {any: [tariff]}\n    examples:\n      match: [tariff hike]\n"
        "      no_match:\n        - {titel: nothing}\n"
    )
    (tmp_path / "r.yaml").write_text(body, encoding="utf-8")
    assert [str(p) for p in check_rules(tmp_path)] == [
        f"{tmp_path / 'r.yaml'}:10: rule probe: unknown key 'examples.no_match.0.titel' "
        "(did you mean 'title'?)"
    ]


def test_a_rule_using_a_broken_glossary_entry_points_at_it(tmp_path: Path) -> None:
    """An entry of the folder's glossary with an unknown key is named as rule files name one, and
    a rule using it is told the entry has errors, not that the shipped glossary has it."""
    (tmp_path / "glossary.yaml").write_text(
        "glossary:\n  export-licence: {label: licence, kind: measure, en: [licence], fr: [licence]}\n",
        encoding="utf-8",
    )
    (tmp_path / "r.yaml").write_text(
        "rules:\n  - id: r\n    title: R\n    match: {glossary: export-licence}\n", encoding="utf-8"
    )
    problems = [str(p) for p in check_rules(tmp_path)]
    assert problems == [
        f"{tmp_path / 'glossary.yaml'}:2: glossary export-licence: unknown key 'fr'",
        f"{tmp_path / 'r.yaml'}:4: rule r: match: unknown glossary entry 'export-licence' "
        f"(its entry in {tmp_path / 'glossary.yaml'} has errors, named there)",
    ]


def test_a_duplicate_id_is_named_even_when_the_first_copy_has_errors(tmp_path: Path) -> None:
    """Fixing the first copy's error must not be what reveals the duplicate: both are named at once."""
    rule = "rules:\n  - id: twice\n    title: T\n    match: MATCH\n"
    (tmp_path / "a.yaml").write_text(rule.replace("MATCH", "{nnone: [draft]}"), encoding="utf-8")
    (tmp_path / "b.yaml").write_text(rule.replace("MATCH", "{any: [tariff]}"), encoding="utf-8")
    problems = [str(p) for p in check_rules(tmp_path)]
    assert len(problems) == 2, problems
    assert "unknown key 'nnone' in match" in problems[0]
    assert problems[1].startswith(f"{tmp_path / 'b.yaml'}:2: duplicate rule id 'twice' (first defined at ")


def test_a_match_of_only_none_is_fine_for_a_rule_limited_to_sources(tmp_path: Path) -> None:
    """ "Every MOFCOM notice except drafts" says what to leave out of a source's documents: with
    `sources:` a `none`-only match is a rule, not a mistake; and a post's declared language counts."""
    (tmp_path / "r.yaml").write_text(
        "rules:\n  - id: probe\n    title: P\n    sources: [mofcom*]\n    lang: [zh, es]\n"
        "    match: {none: [征求意见稿]}\n",
        encoding="utf-8",
    )
    assert check_rules(tmp_path) == []
