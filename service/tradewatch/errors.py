"""The one exception tree, so callers decide by type and data, never by message.

TradewatchError
├── ConfigError        a configuration key is missing or wrong (carries key)
├── RuleError          a rule or deadline file is wrong (carries file and line)
├── SourceError        a source could not be fetched or parsed (carries source, retry_after)
├── StoreError         Redis is unreachable or answered unexpectedly
├── TakenOver          another worker took an outbox entry over while this one waited
└── DeliveryError      a notifier could not deliver (carries notifier, permanent)
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DeliveryError",
    "RuleError",
    "SourceError",
    "StoreError",
    "TakenOver",
    "TradewatchError",
]


class TradewatchError(Exception):
    """Root of every error tradewatch raises on purpose."""


class ConfigError(TradewatchError):
    """A configuration problem; `key` is the dotted path of the offending key."""

    def __init__(self, message: str, *, key: str | None = None, file: str | None = None) -> None:
        self.key = key
        self.file = file
        super().__init__(message)

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        what = f"{self.key}: " if self.key else ""
        lines = str(self.args[0]).splitlines() or [""]
        return "\n".join(f"{where}{what}{line}" for line in lines)


class RuleError(TradewatchError):
    """A rule-file problem, printed as `FILE:LINE: message`."""

    def __init__(self, message: str, *, file: str, line: int = 1) -> None:
        self.file = file
        self.line = line
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.args[0]}"


class SourceError(TradewatchError):
    """A fetch or parse failure of one source; `retry_after` honours the server's wish."""

    def __init__(self, message: str, *, source: str, retry_after: float | None = None) -> None:
        self.source = source
        self.retry_after = retry_after
        super().__init__(message)


class StoreError(TradewatchError):
    """Redis could not be used; callers must not act as if a write happened."""


class TakenOver(TradewatchError):
    """Another worker took this outbox entry over while this one waited (a stall past
    `claim_idle`, a long in-process retry wait): this one must not send it too."""


class DeliveryError(TradewatchError):
    """A notifier failed; `permanent` means retrying cannot help (bad token, bad channel)."""

    def __init__(
        self,
        message: str,
        *,
        notifier: str,
        permanent: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.notifier = notifier
        self.permanent = permanent
        self.retry_after = retry_after
        super().__init__(message)
