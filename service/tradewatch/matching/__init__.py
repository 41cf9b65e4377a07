"""Rule matching: rule files, normalisation, glossary, the compiled matcher and fact extractors.

Pure functions over models: no network, no Redis, no clock.
"""

from tradewatch.matching.engine import Rulebook
from tradewatch.matching.examples import run_examples
from tradewatch.matching.extract import extract_facts
from tradewatch.matching.glossary import Glossary, GlossaryEntry
from tradewatch.matching.lead import lead_line
from tradewatch.matching.loader import RuleProblems, check_rules, load_rulebook
from tradewatch.matching.normalize import normalize
from tradewatch.matching.schema import DeadlineSpec, Dedup, MatchNode, Rule

__all__ = [
    "DeadlineSpec",
    "Dedup",
    "Glossary",
    "GlossaryEntry",
    "MatchNode",
    "Rule",
    "RuleProblems",
    "Rulebook",
    "check_rules",
    "extract_facts",
    "lead_line",
    "load_rulebook",
    "normalize",
    "run_examples",
]
