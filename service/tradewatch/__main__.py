"""`python -m tradewatch` runs the CLI, so tests and containers need no console script."""

from tradewatch.cli import main

main()
