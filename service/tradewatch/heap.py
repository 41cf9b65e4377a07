"""Garbage-collector settings for tradewatch's processes, measured on the poll benchmark.

CPython collects its young generation every 700 new container objects. tradewatch's
start-up (imports, settings, the compiled rulebook) allocates about a million objects
and every HTTP request thousands more, so with that default the collector ran about
370 times in a 1,000-source `run --once` and took 15–30% of its CPU, much of it
traversing the start-up heap again and again. `tune` (at package import, so start-up
is covered too) makes young collections rarer; `settle` (once the worker is set up)
freezes what start-up built, so later collections skip it. Cyclic garbage is still
collected, a little later.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "settle", "tune"]

YOUNG_THRESHOLD = 10_000  # new container objects between two young collections (CPython: 700)


def tune() -> None:
    """Collect the young generation less often; the older generations keep their ratios."""
    young, older, oldest = gc.get_threshold()
    if young < YOUNG_THRESHOLD:
        gc.set_threshold(YOUNG_THRESHOLD, older, oldest)


def settle() -> None:
    """Move everything alive now (the worker's long-lived state) out of the collector's sight."""
    gc.collect()
    gc.freeze()
