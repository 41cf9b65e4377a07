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


@pytest.mark.parametrize("backend", BACKENDS)
def test_matching_from_several_threads(backend: str, tmp_path: Path) -> None:
    """A rulebook can be shared by threads (hyperscan scratch space is per thread)."""
    from concurrent.futures import ThreadPoolExecutor

    rb = _book(tmp_path, {"match": {"all": ["tariff", {"any": ["china", "中国"]}]}}, backend)
    docs = [_doc("China raises tariff"), _doc("关税 中国 tariff"), _doc("nothing here")] * 50
    expected = [bool(rb.match(d)) for d in docs]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda d: bool(rb.match(d)), docs)) == expected


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_rulebook_and_empty_documents(backend: str, tmp_path: Path) -> None:
    """No rule files, or an empty document, simply match nothing."""
    rb = load_rulebook(tmp_path, backend=backend)
    assert rb.rules == []
    assert rb.match(Document(title="tariff")) == []
    book = _book(tmp_path, {"match": {"any": ["tariff"]}}, backend)
    assert book.match(Document()) == []
