"""tradewatch: watch trade-policy sources, match user rules, alert once."""

from tradewatch import heap

__all__ = ["__version__"]

__version__ = "0.1.0"

heap.tune()  # before the rest of the package is imported: see heap.py
