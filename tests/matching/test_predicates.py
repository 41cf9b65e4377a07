"""Compiled closures and the candidate index give exactly what walking every rule's tree gives."""

from __future__ import annotations

import random
import re
from bisect import bisect_left
from pathlib import Path
from typing import Any

import pytest
from bench.bench_matching import _documents, _load, _rules

from tests.conftest import CORPUS, ROOT, need_shared
from tradewatch.matching import Rulebook, load_rulebook
from tradewatch.matching.backtest import read_documents
from tradewatch.matching.compiler import Node
from tradewatch.matching.predicates import predicate
from tradewatch.matching.prepared import Prepared, prepare
from tradewatch.matching.schema import LEAD_CHARS
from tradewatch.models import Document

EDGE = Path(__file__).parents[1] / "corpus" / "edge_documents.jsonl"


def _near(groups: tuple[frozenset[int], ...], within: int, p: Prepared, mask: int) -> bool:
    """The reference `near`: every occurrence of every group, positions by word index."""
    found: list[dict[int, list[int]]] = []
    for group in groups:
        out: dict[int, list[int]] = {}
        for pid in group:
            for start in p.starts.get(pid, ()):
                zone = 1 if start < p.sep else 2
                if mask & (zone if zone == 1 else (6 if start < p.lead_end else 2)):
                    out.setdefault(zone, []).append(p.token_at(start))
        found.append({zone: sorted(spots) for zone, spots in out.items()})
    first, *others = found
    if not first or any(not o for o in others):
        return False

    def close(spots: list[int], word: int) -> bool:
        i = bisect_left(spots, word - within)
        return i < len(spots) and spots[i] <= word + within

    return any(
        all(close(other.get(zone, []), word) for other in others)
        for zone, words in first.items()
        for word in words
    )


def evaluate(node: Node, p: Prepared, mask: int) -> bool:
    """The reference: the compiled tuple tree walked node by node, every child in order."""
    kind = node[0]
    if kind == "t":
        return bool(p.hits.get(node[1], 0) & mask)
    if kind == "any":
        return any(evaluate(child, p, mask) for child in node[1])
    if kind == "all":
        return all(evaluate(child, p, mask) for child in node[1])
    if kind == "none":
        return not any(evaluate(child, p, mask) for child in node[1])
    if kind == "re":
        pattern: re.Pattern[str] = node[1]
        if mask & 1 and pattern.search(p.title):
            return True
        if mask & 2:
            return pattern.search(p.text) is not None
        return bool(mask & 4) and pattern.search(p.text[:LEAD_CHARS]) is not None
    if kind == "in":
        return evaluate(node[2], p, node[1])
    return _near(node[1], node[2], p, mask)


def _every_rule(rb: Rulebook, doc: Document) -> list[str]:
    """The rules that hold, found without the index: every rule's tree walked."""
    c: Any = rb._compiled
    p = prepare(doc, c, rb._scanner)
    return [
        rule.id
        for i, rule in enumerate(rb.rules)
        if rb._applies(rule, doc) and evaluate(c.trees[i], p, c.masks[i])
    ]


def _variants(docs: list[Document]) -> list[Document]:
    """Each document as is, title and text swapped, text moved past the lead, and from other sources."""
    rnd = random.Random(20251110)
    out = list(docs)
    for doc in docs:
        out.append(doc.model_copy(update={"title": doc.text[:300], "text": doc.title}))
        out.append(doc.model_copy(update={"text": "filler words here. " * 60 + doc.text}))
        source = rnd.choice(["mofcom-announcements", "ustr-press", "whitehouse", "truthsocial-trump", "wire"])
        out.append(doc.model_copy(update={"source": source, "lang": rnd.choice(["zh", "en", "zh-CN"])}))
    return out


@pytest.fixture(scope="module")
def corpus() -> list[Document]:
    """The shared corpus and our edge cases, with variants that move terms between fields."""
    docs: list[Document] = []
    for path in (need_shared(CORPUS) / "documents.jsonl", EDGE):
        docs += list(read_documents(path.read_text(encoding="utf-8").splitlines()))
    return _variants(docs)


@pytest.mark.parametrize("backend", ["hyperscan", "python"])
def test_shipped_rules_fire_as_walking_every_tree(corpus: list[Document], backend: str) -> None:
    """On the corpus, the indexed closures fire exactly the rules that walking every tree fires."""
    rb = load_rulebook(ROOT / "rules", backend=backend)
    fired = 0
    for doc in corpus:
        expected = _every_rule(rb, doc)
        assert [rule.id for rule in rb.matching_rules(doc)[0]] == expected, doc.id
        fired += len(expected)
    assert fired > len(corpus) // 4  # the comparison saw many firing rules, not only silence


def test_each_closure_agrees_with_its_tree(corpus: list[Document]) -> None:
    """Every shipped rule's closure gives its tree's answer on every document, fired or not."""
    rb = load_rulebook(ROOT / "rules")
    c: Any = rb._compiled
    closures = [predicate(tree, mask) for tree, mask in zip(c.trees, c.masks, strict=True)]
    for doc in corpus:
        p = prepare(doc, c, rb._scanner)
        for i, rule in enumerate(rb.rules):
            assert closures[i](p) == evaluate(c.trees[i], p, c.masks[i]), (rule.id, doc.id)


def test_generated_rules_fire_as_walking_every_tree() -> None:
    """The benchmark's generated rules (none, near, regex, shared frequent terms) agree too."""
    rng = random.Random(7)
    rules, pool = _rules(300, rng)
    rb = _load(rules, None)
    docs = _documents(rng, pool, 300)
    fired = 0
    for doc in docs:
        expected = _every_rule(rb, doc)
        assert [rule.id for rule in rb.matching_rules(doc)[0]] == expected, doc.id
        fired += len(expected)
    assert fired > 0


def test_word_indices_count_as_tokenising_does(corpus: list[Document]) -> None:
    """Word indices by counting word starts equal the tokeniser's, at every byte of every document."""
    rb = load_rulebook(ROOT / "rules")
    samples = [*corpus[:150], Document(title="中文标题 and words", text="x"), Document(title="a", text="")]
    for doc in samples:
        p = prepare(doc, rb._compiled, rb._scanner)  # type: ignore[attr-defined]
        offsets = set(range(len(p.buf)))
        assert p.word_indices(offsets) == {o: p.token_at(o) for o in offsets}, doc.id
        some = set(list(offsets)[::7])
        assert p.word_indices(some) == {o: p.token_at(o) for o in some}, doc.id
