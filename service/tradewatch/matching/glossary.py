"""The bilingual glossary: one entry names a trade concept in Chinese and English.

Rules reference an entry (`glossary: export-licence`) so one condition matches both
languages; extractors use `item` and `country` entries to name what a document is
about; the lead line uses an entry's English `label` to translate Chinese text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tradewatch.errors import RuleError
from tradewatch.matching.normalize import term_problem
from tradewatch.matching.tree import did_you_mean
from tradewatch.matching.yamlfile import LineDict, line_of, read_yaml

__all__ = ["Glossary", "GlossaryEntry", "default_glossary_path", "load_glossary"]

EntryKind = Literal["term", "item", "country", "measure", "body"]
GLOSSARY_FILE = "glossary.yaml"


class GlossaryEntry(BaseModel):
    """One concept: its English label, its English and Chinese spellings, and what kind of thing it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    kind: EntryKind = "term"
    en: list[str] = Field(default_factory=list)
    zh: list[str] = Field(default_factory=list)

    def terms(self) -> list[str]:
        """Every spelling, English first."""
        return [*self.en, *self.zh]


class Glossary:
    """Entries by id, in file order."""

    def __init__(self, entries: dict[str, GlossaryEntry]) -> None:
        self.entries = entries

    def ids(self) -> set[str]:
        """Every entry id, for reference checks."""
        return set(self.entries)

    def terms(self, entry_id: str) -> list[str]:
        """All spellings of one entry."""
        return self.entries[entry_id].terms()

    def of_kind(self, kind: str) -> dict[str, GlossaryEntry]:
        """The entries of one kind (e.g. `item`), in file order."""
        return {key: entry for key, entry in self.entries.items() if entry.kind == kind}


def default_glossary_path() -> Path | None:
    """The shipped glossary: the packaged copy, else the checkout's `rules/`."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[1] / "_rules" / GLOSSARY_FILE, here.parents[3] / "rules" / GLOSSARY_FILE):
        if candidate.is_file():
            return candidate
    return None


def load_glossary(path: Path, problems: list[RuleError], *, display: str | None = None) -> Glossary:
    """Read a glossary file; every defect goes to `problems` with its line."""
    file = display or str(path)
    raw = read_yaml(path, problems, display=file)
    entries: dict[str, GlossaryEntry] = {}
    if raw is None:
        return Glossary(entries)
    if not isinstance(raw, LineDict) or set(raw) != {"glossary"} or not isinstance(raw["glossary"], LineDict):
        problems.append(
            RuleError(
                "a glossary file holds one mapping `glossary:` of id → entry", file=file, line=line_of(raw)
            )
        )
        return Glossary(entries)
    table = raw["glossary"]
    for entry_id, body in table.items():
        line = line_of(table, entry_id)
        try:
            entry = GlossaryEntry.model_validate(body)
        except ValidationError as exc:
            for err in exc.errors():
                loc = [p for p in err["loc"] if isinstance(p, str | int)]
                where = line_of(body, loc[0]) if loc and isinstance(body, LineDict) else line
                key = ".".join(map(str, loc))
                if err["type"] == "extra_forbidden":  # as rule files say it
                    what = (
                        f"unknown key {key!r}{did_you_mean(str(loc[-1]), list(GlossaryEntry.model_fields))}"
                    )
                elif err["type"] == "missing":
                    what = f"missing key {key!r}"
                else:
                    what = f"{key}: {str(err['msg']).removeprefix('Value error, ')}"
                problems.append(RuleError(f"glossary {entry_id}: {what}", file=file, line=where))
            continue
        if not entry.terms():
            problems.append(
                RuleError(f"glossary {entry_id}: needs at least one en or zh term", file=file, line=line)
            )
            continue
        bad = [
            RuleError(f"glossary {entry_id}: {lang}: {why}", file=file, line=line_of(body.get(lang), i))
            for lang in ("en", "zh")
            for i, term in enumerate(getattr(entry, lang))
            if (why := term_problem(term))
        ]
        if bad:
            problems.extend(bad)
            continue
        entries[entry_id] = entry
    return Glossary(entries)
