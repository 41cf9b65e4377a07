"""docs/rules.md: its first rule is valid and its examples pass, as the guide promises."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT
from tradewatch.matching import check_rules, load_rulebook, run_examples

GUIDE = ROOT / "docs" / "rules.md"


def test_first_rule_in_the_guide_works(tmp_path: Path) -> None:
    """The guide's tungsten rule passes `rules check` and `rules test` with the shipped glossary."""
    blocks = re.findall(r"```yaml\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.DOTALL)
    (tmp_path / "my-tungsten.yaml").write_text(blocks[0], encoding="utf-8")
    assert check_rules(tmp_path) == []
    assert run_examples(load_rulebook(tmp_path)) == []


def test_the_condition_tree_example_matches_what_it_describes(tmp_path: Path) -> None:
    """The guide's nested `match:` example, as printed, finds a tariff raise in English and in
    Chinese and leaves a market report alone (an earlier version needed both languages at once)."""
    blocks = re.findall(r"```yaml\n(match:\n.*?)```", GUIDE.read_text(encoding="utf-8"), re.DOTALL)
    assert blocks, "the guide's condition-tree example"
    tree = "\n".join("    " + line for line in blocks[0].splitlines())
    rule = f"""\
rules:
  - id: tree-example
    title: Condition tree
    tags: [tariff-change]
    severity: info
{tree}
    examples:
      match:
        - China to raise tariffs on US goods
        - 中国决定提高对美关税
      no_match:
        - China to raise tariffs on US goods; stocks fall
        - 中国决定提高对美关税（征求意见稿）
"""
    (tmp_path / "tree.yaml").write_text(rule, encoding="utf-8")
    assert check_rules(tmp_path) == []
    assert run_examples(load_rulebook(tmp_path)) == []
