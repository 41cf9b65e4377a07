"""Loading a rules directory: every file validated, every defect named as FILE:LINE, then compiled.

`check_rules` collects every problem instead of stopping at the first, so one run of
`tradewatch rules check` shows the author all that needs fixing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from tradewatch.errors import RuleError
from tradewatch.matching.engine import Rulebook
from tradewatch.matching.glossary import GLOSSARY_FILE, Glossary, default_glossary_path, load_glossary
from tradewatch.matching.schema import EXTRACTORS, DeadlineSpec, Dedup, Example, Examples, Rule
from tradewatch.matching.tree import did_you_mean, only_excludes, parse_tree
from tradewatch.matching.yamlfile import LineDict, LineList, line_of, read_yaml, rule_files

__all__ = ["RuleProblems", "check_rules", "load_rulebook", "rule_files"]

log = structlog.get_logger(__name__)

_TOP_KEYS = ("rules", "deadlines")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_BROKEN_ENTRY = re.compile(r"glossary (\S+): ")
_UNKNOWN_ENTRY = re.compile(r"unknown glossary entry '([^']+)'")
# What a dedup key may name besides the rule's facts (store/suppressions.dedup_value fills these).
DEDUP_FIELDS = ("rule",)


class RuleProblems(RuleError):
    """Every defect found in a rules directory; `str()` is one `FILE:LINE: message` per line."""

    def __init__(self, problems: list[RuleError]) -> None:
        self.problems = problems
        first = problems[0] if problems else RuleError("no problems", file="-")
        super().__init__(first.args[0], file=first.file, line=first.line)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


def _nested_keys(kind: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The allowed keys at `loc`, for a "did you mean" on an unknown nested key."""
    if kind is Rule and loc and loc[0] == "dedup":
        return list(Dedup.model_fields)
    if kind is Rule and loc and loc[0] == "examples":
        return list(Examples.model_fields) if len(loc) <= 2 else list(Example.model_fields)
    return list(kind.model_fields)


class _Checker:
    def __init__(self, slack_routes: set[str] | None) -> None:
        self.slack_routes = slack_routes
        self.problems: list[RuleError] = []
        self.rules: list[Rule] = []
        self.deadlines: list[DeadlineSpec] = []
        self.origins: dict[str, tuple[str, int]] = {}
        self.deadline_origins: dict[str, tuple[str, int]] = {}
        self.cancel_refs: list[tuple[str, str, int]] = []
        self.glossary = Glossary({})

    def error(self, message: str, file: str, line: int) -> None:
        self.problems.append(RuleError(message, file=file, line=line))

    def validation(
        self, errors: list[ErrorDetails], raw: Any, kind: type[BaseModel], what: str, file: str
    ) -> None:
        for err in errors:
            loc = tuple(err["loc"])
            line, node = line_of(raw), raw
            path: list[str | int] = []  # the keys and indexes the YAML has: not pydantic's union tags
            found = False
            for part in loc:
                in_dict = isinstance(node, LineDict) and isinstance(part, str) and part in node
                in_list = isinstance(node, LineList) and isinstance(part, int) and part < len(node)
                found = in_dict or in_list
                if found:
                    line, node = line_of(node, part), node[part]
                    path.append(part)
            if err["type"] == "string_type" and loc and loc[-1] == "str" and not found:
                continue  # a `str | mapping` union given a mapping: the mapping's error speaks
            if err["type"] == "missing" and loc and not found:
                path.append(loc[-1])  # the key the YAML lacks
            name = ".".join(str(part) for part in path) or "entry"
            if err["type"] == "extra_forbidden":
                hint = did_you_mean(str(loc[-1]), _nested_keys(kind, loc[:-1]))
                self.error(f"{what}: unknown key {name!r}{hint}", file, line)
            elif err["type"] == "missing":
                self.error(f"{what}: missing key {name!r}", file, line)
            else:
                message = str(err["msg"]).removeprefix("Value error, ")
                self.error(f"{what}: {name}: {message}", file, line)

    def unknown_keys(self, raw: LineDict, allowed: list[str], what: str, file: str) -> LineDict:
        kept = LineDict()
        kept.line, kept.key_lines = raw.line, raw.key_lines
        for key, value in raw.items():
            if key in allowed:
                kept[key] = value
            else:
                hint = did_you_mean(key, allowed)
                self.error(f"{what}: unknown key {key!r}{hint}", file, line_of(raw, key))
        return kept

    def routes(self, raw: LineDict, what: str, file: str) -> None:
        targets = raw.get("notify")
        if self.slack_routes is None or not isinstance(targets, LineList):
            return
        for i, target in enumerate(targets):
            if isinstance(target, str) and target.startswith("slack:"):
                route = target.partition(":")[2]
                if route and route not in self.slack_routes:
                    known = ", ".join(sorted(self.slack_routes)) or "none: the config has no slack notifier"
                    self.error(
                        f"{what}: slack route {route!r} is not configured (configured: {known})"
                        f"{did_you_mean(route, self.slack_routes)}",
                        file,
                        line_of(targets, i),
                    )

    def rule(self, raw: Any, file: str, line: int) -> None:
        if not isinstance(raw, LineDict):
            self.error("a rule must be a mapping with id, title and match", file, line)
            return
        rule_id = raw.get("id") if isinstance(raw.get("id"), str) else None
        what = f"rule {rule_id}" if rule_id else "rule"
        if rule_id is not None:  # an id is taken even by a rule with errors: its copy is named too
            if rule_id in self.origins:
                first = self.origins[rule_id]
                where = line_of(raw, "id")
                self.error(
                    f"duplicate rule id {rule_id!r} (first defined at {first[0]}:{first[1]})", file, where
                )
                return
            self.origins[rule_id] = (file, line)
        raw = self.unknown_keys(raw, list(Rule.model_fields), what, file)
        data = dict(raw)
        ok = True
        if "match" not in raw:
            self.error(f"{what}: missing key 'match'", file, line)
            ok = False
        else:
            tree, problems = parse_tree(
                raw["match"], file=file, line=line_of(raw, "match"), glossary_ids=self.glossary.ids()
            )
            self.problems.extend(
                RuleError(f"{what}: match: {p.args[0]}", file=p.file, line=p.line) for p in problems
            )
            ok = tree is not None
            if tree is not None and only_excludes(tree) and not raw.get("sources"):
                self.error(
                    f"{what}: match: only `none` matches nearly every document; add what it must "
                    "contain (any, all, regex, glossary or near), or limit the rule to `sources`",
                    file,
                    line_of(raw, "match"),
                )
                ok = False
            data["match"] = tree
        self.routes(raw, what, file)
        if not ok:
            data["match"] = None
        try:
            rule = Rule.model_validate(data)
        except ValidationError as exc:
            errors = [e for e in exc.errors() if not (e["loc"] and e["loc"][0] == "match" and not ok)]
            self.validation(errors, raw, Rule, what, file)
            return
        if not ok:
            return
        self.rule_consistency(rule, raw, what, file)
        self.rules.append(rule)

    def rule_consistency(self, rule: Rule, raw: LineDict, what: str, file: str) -> None:
        """Checks across fields: example facts and dedup placeholders must be facts the rule extracts."""
        for i, example in enumerate([*rule.examples.match, *rule.examples.no_match]):
            if not isinstance(example, Example):
                continue
            for key in example.facts:
                if key not in rule.wants():
                    self.error(
                        f"{what}: example {i + 1} expects fact {key!r} that the rule does not extract "
                        f"(add it to extract)",
                        file,
                        line_of(raw, "examples"),
                    )
        if rule.dedup is None:
            return
        dedup_raw = raw.get("dedup")
        line = line_of(dedup_raw, "key") if isinstance(dedup_raw, LineDict) else line_of(raw, "dedup")
        for name in _PLACEHOLDER.findall(rule.dedup.key):
            if name in EXTRACTORS and name not in rule.wants():
                self.error(f"{what}: dedup key uses {{{name}}} but the rule does not extract it", file, line)
            elif name not in EXTRACTORS and name not in DEDUP_FIELDS:
                known = (*EXTRACTORS, *DEDUP_FIELDS)
                self.error(
                    f"{what}: dedup key uses unknown {{{name}}}{did_you_mean(name, known)}", file, line
                )

    def deadline(self, raw: Any, file: str, line: int) -> None:
        if not isinstance(raw, LineDict):
            self.error("a deadline must be a mapping with id, title and due", file, line)
            return
        deadline_id = raw.get("id") if isinstance(raw.get("id"), str) else None
        what = f"deadline {deadline_id}" if deadline_id else "deadline"
        raw = self.unknown_keys(raw, list(DeadlineSpec.model_fields), what, file)
        self.routes(raw, what, file)
        try:
            spec = DeadlineSpec.model_validate(dict(raw))
        except ValidationError as exc:
            self.validation(exc.errors(), raw, DeadlineSpec, what, file)
            return
        if spec.id in self.deadline_origins:
            first = self.deadline_origins[spec.id]
            self.error(
                f"duplicate deadline id {spec.id!r} (first defined at {first[0]}:{first[1]})",
                file,
                line_of(raw, "id"),
            )
            return
        refs = raw.get("cancelled_by")
        for i, ref in enumerate(spec.cancelled_by):
            ref_line = line_of(refs, i) if isinstance(refs, LineList) else line_of(raw, "cancelled_by")
            self.cancel_refs.append((ref, file, ref_line))
        self.deadline_origins[spec.id] = (file, line)
        self.deadlines.append(spec)

    def file(self, path: Path) -> None:
        file = str(path)
        raw = read_yaml(path, self.problems, display=file)
        if raw is None:
            return
        if not isinstance(raw, LineDict):
            self.error("a rule file holds a mapping with `rules:` and/or `deadlines:`", file, line_of(raw))
            return
        raw = self.unknown_keys(raw, list(_TOP_KEYS), "file", file)
        for key, handler in (("rules", self.rule), ("deadlines", self.deadline)):
            items = raw.get(key)
            if items is None:
                continue
            if not isinstance(items, LineList):
                self.error(f"`{key}:` must be a list", file, line_of(raw, key))
                continue
            for i, item in enumerate(items):
                handler(item, file, line_of(items, i))

    def run(self, rules_dir: Path) -> None:
        if not rules_dir.is_dir():
            self.error(
                "not a directory (the rules folder; a relative `rules:` in a config file is read from "
                "that file's folder)",
                str(rules_dir),
                1,
            )
            return
        own = rules_dir / GLOSSARY_FILE
        glossary_path = own if own.is_file() else default_glossary_path()
        if glossary_path is not None:
            self.glossary = load_glossary(glossary_path, self.problems, display=str(glossary_path))
        files = rule_files(rules_dir)
        for path in files:
            self.file(path)
        for stray in sorted(rules_dir.rglob(f"*/{GLOSSARY_FILE}")):
            if not any(part.startswith(".") for part in stray.relative_to(rules_dir).parts):
                self.error(
                    f"a glossary is read only at the top of the rules folder ({own}): move its entries there",
                    str(stray),
                    1,
                )
        for ref, file, line in self.cancel_refs:
            if ref not in self.origins:
                hint = did_you_mean(ref, self.origins)
                self.error(f"cancelled_by names unknown rule {ref!r}{hint}", file, line)
        if own.is_file():
            self._own_glossary_hint(own)

    def _own_glossary_hint(self, own: Path) -> None:
        """A folder's own glossary replaces the shipped one: say so where that is the cause."""
        shipped = default_glossary_path()
        ids = set(load_glossary(shipped, [], display=str(shipped)).entries) if shipped is not None else set()
        broken = {  # entries the folder's glossary has, but with errors of their own (said there)
            m.group(1)
            for problem in self.problems
            if problem.file == str(own) and (m := _BROKEN_ENTRY.match(str(problem.args[0])))
        }
        for i, problem in enumerate(self.problems):
            m = _UNKNOWN_ENTRY.search(str(problem.args[0]))
            if m and m.group(1) in broken:
                message = f"{problem.args[0]} (its entry in {own} has errors, named there)"
                self.problems[i] = RuleError(message, file=problem.file, line=problem.line)
            elif m and m.group(1) in ids:
                message = (
                    f"{problem.args[0]} ({own} replaces the shipped glossary, which has {m.group(1)!r}: "
                    "copy the entries your rules use into it, or remove it to use the shipped one)"
                )
                self.problems[i] = RuleError(message, file=problem.file, line=problem.line)


def check_rules(rules_dir: Path, *, slack_routes: set[str] | None = None) -> list[RuleError]:
    """Every problem in a rules directory, FILE:LINE each; empty when it is valid."""
    checker = _Checker(slack_routes)
    checker.run(rules_dir)
    return sorted(checker.problems, key=lambda p: (p.file, p.line))


def load_rulebook(
    rules_dir: Path, *, slack_routes: set[str] | None = None, backend: str | None = None
) -> Rulebook:
    """Validate and compile a rules directory; raises RuleProblems listing every defect."""
    checker = _Checker(slack_routes)
    checker.run(rules_dir)
    if checker.problems:
        raise RuleProblems(checker.problems)
    book = Rulebook(
        checker.rules, checker.deadlines, checker.glossary, backend=backend, origins=checker.origins
    )
    log.info("rules_loaded", directory=str(rules_dir), **book.stats())
    if not book.rules and not book.deadlines:
        # an empty or wrongly mounted folder: such a worker polls everything and never alerts
        log.warning("no_rules_loaded", directory=str(rules_dir), hint="is the rules folder mounted?")
    return book
