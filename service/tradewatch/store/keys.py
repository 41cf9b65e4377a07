"""Every Redis key, stream and TTL, named once (why each TTL is what it is, in its comment).

All keys live under `key_prefix` so several deployments can share one Redis.
Modules add their keys here, never build key strings elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Keys"]


@dataclass(frozen=True)
class Keys:
    """Key names for one deployment's prefix."""

    prefix: str = "tradewatch"

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))
