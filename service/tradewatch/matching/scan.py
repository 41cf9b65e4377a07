"""Multi-literal scanners: find every occurrence of every literal in one pass over a document.

Two backends with identical output (each occurrence as `(literal_id, start_byte)`):
hyperscan where its wheel installs, and a pure-Python fallback that walks a trie
compiled into one regular expression. Word boundaries and fields are decided later,
by the same code for both, so the backends cannot drift apart.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Protocol

import structlog

__all__ = ["BACKENDS", "HyperscanScanner", "PythonScanner", "Scanner", "make_scanner"]

log = structlog.get_logger(__name__)


class Scanner(Protocol):
    """Finds literal occurrences in UTF-8 bytes."""

    backend: str

    def scan(self, data: bytes) -> list[tuple[int, int]]:
        """Every `(literal_id, start)` in `data`, in no particular order."""
        ...


class HyperscanScanner:
    """All literals in one hyperscan block-mode database."""

    backend = "hyperscan"

    def __init__(self, literals: list[bytes]) -> None:
        import hyperscan  # optional dependency, imported only when chosen

        self._lengths = [len(lit) for lit in literals]
        self._db: Any = None
        self._scratch: Any = None
        self._owner = threading.get_ident()
        self._local = threading.local()
        if literals:
            db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            db.compile(
                expressions=literals,
                ids=list(range(len(literals))),
                elements=len(literals),
                flags=0,
                literal=True,
            )
            self._db = db
            self._scratch = hyperscan.Scratch(db)

    def _thread_scratch(self) -> Any:
        """Hyperscan scratch space is per thread: the first scan on another thread clones it."""
        if threading.get_ident() == self._owner:
            return self._scratch
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._scratch.clone()
        return scratch

    def scan(self, data: bytes) -> list[tuple[int, int]]:
        """Every `(literal_id, start)`; hyperscan reports ends, lengths give the starts."""
        if self._db is None or not data:
            return []
        found: list[tuple[int, int]] = []
        lengths = self._lengths
        append = found.append

        def on_match(lid: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            append((lid, end - lengths[lid]))

        self._db.scan(data, match_event_handler=on_match, scratch=self._thread_scratch())
        return found


def _trie_regex(literals: list[bytes]) -> bytes:
    """One regex alternation shaped like a trie, so the engine never retries a shared prefix."""
    trie: dict[int, Any] = {}
    for lit in literals:
        node = trie
        for byte in lit:
            node = node.setdefault(byte, {})
        node[-1] = {}

    def render(node: dict[int, Any]) -> bytes:
        branches = [
            re.escape(bytes([byte])) + render(child) for byte, child in sorted(node.items()) if byte >= 0
        ]
        if not branches:
            return b""
        optional = -1 in node
        if len(branches) == 1 and not optional:
            return branches[0]
        return b"(?:" + b"|".join(branches) + (b"|" if optional else b"") + b")"

    return render(trie)


class PythonScanner:
    """A trie-shaped regex finds the longest literal at each start; shorter ones are its prefixes."""

    backend = "python"

    def __init__(self, literals: list[bytes]) -> None:
        self._ids = {lit: i for i, lit in enumerate(literals)}
        self._prefixes: dict[bytes, list[int]] = {}
        for lit in literals:
            self._prefixes[lit] = [self._ids[lit[:n]] for n in range(1, len(lit) + 1) if lit[:n] in self._ids]
        self._regex = re.compile(b"(?=(" + _trie_regex(literals) + b"))", re.DOTALL) if literals else None

    def scan(self, data: bytes) -> list[tuple[int, int]]:
        """Every `(literal_id, start)`, the same set hyperscan reports."""
        if self._regex is None:
            return []
        found: list[tuple[int, int]] = []
        prefixes = self._prefixes
        for m in self._regex.finditer(data):
            start = m.start()
            found.extend((lid, start) for lid in prefixes[m.group(1)])
        return found


BACKENDS = ("hyperscan", "python")


def make_scanner(literals: list[bytes], backend: str | None = None) -> Scanner:
    """The requested backend, else hyperscan when importable, else the Python fallback."""
    if backend == "python":
        return PythonScanner(literals)
    if backend not in (None, "hyperscan"):
        raise ValueError(f"unknown matcher backend {backend!r}; use hyperscan or python")
    try:
        return HyperscanScanner(literals)
    except ImportError:
        if backend == "hyperscan":
            raise
        log.warning("matcher_fallback", backend="python", reason="hyperscan not importable")
        return PythonScanner(literals)
