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
