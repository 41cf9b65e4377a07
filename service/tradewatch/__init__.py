"""tradewatch: watch trade-policy sources, match user rules, alert once."""

__all__ = ["__version__"]

__version__ = "0.1.0"
