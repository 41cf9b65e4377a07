"""YAML reading that remembers the line of every key and item, so rule errors can say FILE:LINE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tradewatch.errors import RuleError

__all__ = ["LineDict", "LineList", "line_of", "read_yaml"]

# libyaml's parser when PyYAML was built with it: ten times faster on a 10,000-rule file.
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_STR_TAG = "tag:yaml.org,2002:str"
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineDict(dict[str, Any]):
    """A mapping that knows its own line and the line of each key (1-based)."""

    line: int = 1
    key_lines: dict[str, int]


class LineList(list[Any]):
    """A sequence that knows its own line and the line of each item (1-based)."""

    line: int = 1
    item_lines: list[int]


def line_of(container: Any, key: Any = None) -> int:
    """The line of `container[key]`, or of the container itself; 1 when unknown."""
    if key is not None:
        if isinstance(container, LineDict) and key in container.key_lines:
            return container.key_lines[key]
        if isinstance(container, LineList) and isinstance(key, int) and 0 <= key < len(container.item_lines):
            return container.item_lines[key]
    return getattr(container, "line", 1)


# Values a file may expand to through aliases: a 10,000-rule file is about 300,000; a few
# hundred bytes of nested aliases ("billion laughs") would otherwise expand without end.
MAX_VALUES = 2_000_000


class _Refused(Exception):
    """Reading stops: the file's aliases recurse or expand beyond MAX_VALUES."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


class _Builder:
    """Builds one document's values, with lines; counts them and follows aliases without looping."""

    def __init__(self, loader: yaml.SafeLoader, problems: list[RuleError], file: str) -> None:
        self.loader = loader
        self.problems = problems
        self.file = file
        self.values = 0
        self.open: set[int] = set()  # ids of the collection nodes being built: an alias back is a loop
        # Lines of the keys being built: an alias node carries its anchor's line, not its own,
        # so a refusal points at the innermost key whose value led there.
        self.keys: list[int] = []

    def build(self, node: yaml.Node) -> Any:
        line = node.start_mark.line + 1
        where = self.keys[-1] if self.keys else line
        self.values += 1
        if self.values > MAX_VALUES:
            raise _Refused(f"the file expands to more than {MAX_VALUES:,} values (aliases?); refused", where)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            if id(node) in self.open:
                raise _Refused("an alias refers to a value that contains it (a loop); refused", where)
            self.open.add(id(node))
            try:
                return (
                    self._mapping(node, line)
                    if isinstance(node, yaml.MappingNode)
                    else self._sequence(node, line)
                )
            finally:
                self.open.discard(id(node))
        if node.tag == _STR_TAG:
            return node.value  # the common case, without the constructor's bookkeeping
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, OverflowError, TypeError) as exc:  # e.g. a date such as 2025-02-30
            if node.tag != _TIMESTAMP_TAG:  # a date is judged where it is used, with its key: said once
                self.problems.append(
                    RuleError(f"cannot read {node.value!r}: {exc}", file=self.file, line=line)
                )
            return node.value

    def _mapping(self, node: yaml.MappingNode, line: int) -> LineDict:
        self.loader.flatten_mapping(node)
        out = LineDict()
        out.line = line
        out.key_lines = {}
        for key_node, value_node in node.value:
            key = key_node.value if key_node.tag == _STR_TAG else self.build(key_node)
            key_line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                self.problems.append(
                    RuleError(
                        f"duplicate key {key!r} (first at line {out.key_lines[key]})",
                        file=self.file,
                        line=key_line,
                    )
                )
                continue
            self.keys.append(key_line)
            try:
                out[key] = self.build(value_node)
            finally:
                self.keys.pop()
            out.key_lines[key] = key_line
        return out

    def _sequence(self, node: yaml.SequenceNode, line: int) -> LineList:
        seq = LineList()
        seq.line = line
        seq.item_lines = []
        for item in node.value:
            seq.append(self.build(item))
            seq.item_lines.append(item.start_mark.line + 1)
        return seq


def read_yaml(path: Path, problems: list[RuleError], *, display: str | None = None) -> Any:
    """Parse one YAML file into LineDict/LineList/scalars; syntax errors go to `problems`, result None."""
    file = display or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problems.append(RuleError(f"cannot read: {exc}", file=file, line=1))
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(
            RuleError(f"not UTF-8: byte {raw[exc.start]:#04x} ({exc.reason})", file=file, line=line)
        )
        return None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        return _Builder(loader, problems, file).build(node)
    except _Refused as exc:
        problems.append(RuleError(str(exc), file=file, line=exc.line))
        return None
    except yaml.MarkedYAMLError as exc:
        problems.append(_marked(exc, file))
        return None
    except yaml.YAMLError as exc:
        problems.append(RuleError(f"YAML error: {exc}", file=file, line=1))
        return None
    finally:
        loader.dispose()


def _marked(exc: yaml.MarkedYAMLError, file: str) -> RuleError:
    """A syntax error at its line; one found at the end of the file points where its construct began."""
    mark = exc.problem_mark or exc.context_mark
    message = f"YAML error: {exc.problem or exc}"
    context = exc.context_mark
    if context is not None and mark is not None and context.line != mark.line and exc.context:
        if "end of stream" in (exc.problem or "") or "<stream end>" in (exc.problem or ""):
            mark = context  # an unclosed quote or bracket: where it opened, not the last line
        else:
            message += f" ({exc.context} at line {context.line + 1})"
    line = mark.line + 1 if mark is not None else 1
    return RuleError(message, file=file, line=line)


def rule_files(rules_dir: Path) -> list[Path]:
    """Rule and deadline files under a directory (recursively), the glossary excluded, sorted.

    Hidden files and folders are skipped: a Kubernetes ConfigMap volume keeps a second
    copy of every file under `..<timestamp>/`, which would load each rule twice. Here, not
    in the loader, so that the config can ask it without importing the matcher.
    """
    found = [p for pattern in ("*.yaml", "*.yml") for p in rules_dir.rglob(pattern)]
    visible = [p for p in found if not any(part.startswith(".") for part in p.relative_to(rules_dir).parts)]
    return sorted(p for p in visible if p.name != "glossary.yaml" and p.is_file())
