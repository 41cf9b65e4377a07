"""Matching semantics, table-driven from cases.yaml, on both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tradewatch.matching import Rulebook, load_rulebook
from tradewatch.models import Document

CASES = yaml.safe_load((Path(__file__).with_name("cases.yaml")).read_text(encoding="utf-8"))
BACKENDS = ["hyperscan", "python"]


def _doc(spec: str | dict[str, Any]) -> Document:
    if isinstance(spec, str):
        return Document(title=spec, text=spec)
    return Document(**spec)


def _book(tmp_path: Path, case: dict[str, Any], backend: str) -> Rulebook:
    rule = {"id": "case", "title": "case", "match": case["match"]}
    for key in ("fields", "sources", "lang"):
        if key in case:
            rule[key] = case[key]
    text = yaml.safe_dump({"rules": [rule]}, allow_unicode=True)
    (tmp_path / "case.yaml").write_text(text, encoding="utf-8")
    return load_rulebook(tmp_path, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: dict[str, Any], backend: str, tmp_path: Path) -> None:
    """Each table case matches its match_docs and none of its no_match_docs, on each backend."""
    rb = _book(tmp_path, case, backend)
    assert rb.backend == backend
    for spec in case.get("match_docs", []):
        assert rb.match(_doc(spec)), f"should match: {spec!r}"
    for spec in case.get("no_match_docs", []):
        assert not rb.match(_doc(spec)), f"should not match: {spec!r}"
