"""Backtest of the shipped rulebook on the labelled corpus (../shared/corpus) and our edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import CORPUS, ROOT, need_shared
from tradewatch.matching import Rulebook, load_rulebook
from tradewatch.matching.backtest import read_documents, read_labels, score
from tradewatch.models import Document

RULES = ROOT / "rules"
EDGE = Path(__file__).parent
TAGS = ("export-control", "export-license", "tariff-change", "truce")

# Reached and recorded on 2026-12-01 (precision, recall) per tag. Raise these when the
# rulebook improves; a rule change that lowers one fails here.
SHARED_FLOORS = {tag: (1.0, 1.0) for tag in TAGS}
EDGE_FLOORS = {tag: (1.0, 1.0) for tag in TAGS}


@pytest.fixture(scope="module", params=["hyperscan", "python"])
def rulebook(request: pytest.FixtureRequest) -> Rulebook:
    """The shipped rulebook, on each backend."""
    return load_rulebook(RULES, backend=request.param)


def _read(path: Path) -> list[Document]:
    return list(read_documents(path.read_text(encoding="utf-8").splitlines()))


def _check(
    rb: Rulebook, docs: list[Document], labels_path: Path, floors: dict[str, tuple[float, float]]
) -> None:
    labels = read_labels(labels_path.read_text(encoding="utf-8").splitlines())
    result, _ = score(rb, docs, labels)
    problems = []
    for tag, (precision, recall) in floors.items():
        ts = result.tags[tag]
        if ts.precision < precision or ts.recall < recall:
            problems.append(
                f"{tag}: precision {ts.precision:.2f} (floor {precision}), "
                f"recall {ts.recall:.2f} (floor {recall}); misses {ts.misses}; "
                f"false alarms {ts.false_alarms}"
            )
    assert not problems, "\n".join(problems)
    assert not result.too_severe, result.too_severe


def test_shared_corpus_precision_and_recall(rulebook: Rulebook) -> None:
    """Each tag keeps its recorded precision and recall on the shared corpus; no market report above info."""
    corpus = need_shared(CORPUS)
    _check(rulebook, _read(corpus / "documents.jsonl"), corpus / "labels.jsonl", SHARED_FLOORS)


def test_edge_cases_precision_and_recall(rulebook: Rulebook) -> None:
    """Our hand-written edge cases (scripts, width, third-country measures, market reports) stay right."""
    _check(rulebook, _read(EDGE / "edge_documents.jsonl"), EDGE / "edge_labels.jsonl", EDGE_FLOORS)


def test_backends_agree_on_the_corpus() -> None:
    """Hyperscan and the Python fallback produce identical match records for every corpus document."""
    corpus = need_shared(CORPUS)
    docs = _read(corpus / "documents.jsonl") + _read(EDGE / "edge_documents.jsonl")
    fast, slow = load_rulebook(RULES, backend="hyperscan"), load_rulebook(RULES, backend="python")
    for doc in docs:
        assert fast.match(doc) == slow.match(doc), doc.id
