"""The two scanners give identical results: a randomised comparison over terms and documents."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from tradewatch.matching import load_rulebook
from tradewatch.matching.scan import HyperscanScanner, PythonScanner
from tradewatch.models import Document

ALPHABET = ["ab", "ba", "a", "b", "ab-", " ", "稀", "土", "稀土", "出口", "ｂ", "AB", "9", "%"]


def _word(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(parts))


def test_scanners_report_the_same_occurrences() -> None:
    """Every (literal, start) pair, overlapping and nested ones included, is found by both scanners."""
    rng = random.Random(7)
    for _ in range(30):
        literals = sorted({_word(rng, rng.randint(1, 4)).encode() for _ in range(40)} - {b""})
        fast, slow = HyperscanScanner(literals), PythonScanner(literals)
        for _ in range(20):
            data = _word(rng, rng.randint(0, 60)).encode()
            assert sorted(fast.scan(data)) == sorted(slow.scan(data)), (literals, data)


def test_rulebooks_agree_on_random_rules_and_documents(tmp_path: Path) -> None:
    """Random trees of terms, prefixes, near and none give the same matches on both backends."""
    rng = random.Random(11)
    rules = []
    for i in range(60):
        terms = [_word(rng, rng.randint(1, 3)).strip() or "ab" for _ in range(4)]
        terms = [t + ("*" if rng.random() < 0.3 else "") for t in terms]
        match = {"all": [{"any": terms[:2]}, {"any": terms[2:]}]}
        if i % 3 == 0:
            match["none"] = [terms[0]]
        if i % 4 == 0:
            match["all"].append({"near": {"terms": terms[1:3], "within": rng.randint(1, 4)}})
        rules.append(
            {
                "id": f"r{i}",
                "title": "r",
                "match": match,
                "fields": rng.choice([["title"], ["lead"], ["title", "text"]]),
            }
        )
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({"rules": rules}, allow_unicode=True), encoding="utf-8")
    fast, slow = load_rulebook(tmp_path, backend="hyperscan"), load_rulebook(tmp_path, backend="python")
    fired = 0
    for _ in range(300):
        doc = Document(title=_word(rng, rng.randint(0, 12)), text=_word(rng, rng.randint(0, 40)))
        expected = slow.match(doc)
        assert fast.match(doc) == expected, doc
        fired += len(expected)
    assert fired > 50  # the comparison exercised real matches


@pytest.mark.parametrize("backend", ["hyperscan", "python"])
def test_backend_is_reported(backend: str, tmp_path: Path) -> None:
    """The chosen backend is visible on the rulebook (the worker logs it)."""
    assert load_rulebook(tmp_path, backend=backend).backend == backend
