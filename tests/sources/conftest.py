"""Fixtures for the source-kind tests (defined in helpers.py, shared with tests/test_fetch.py)."""

from tests.sources.helpers import _fast_retries, fetcher, server

__all__ = ["_fast_retries", "fetcher", "server"]
