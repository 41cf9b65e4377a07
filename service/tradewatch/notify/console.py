"""Console notifier: one readable block (or one JSON line) per alert, for first runs and debugging.

It writes to stdout by default because alerts are what `tradewatch run` produces;
`stream: stderr` keeps stdout clean when the output is piped elsewhere.
"""

from __future__ import annotations

import json
import re
import sys
from typing import ClassVar, TextIO

from tradewatch.config import ConsoleSettings
from tradewatch.models import Alert
from tradewatch.notify.render import fact_items, format_time, headline, severity_label

__all__ = ["ConsoleNotifier", "console_text"]

Receipt = dict[str, str]


# C0 and C1 controls (ESC and CSI start terminal escape sequences), DEL, and the bidi controls
# that can make a terminal show text in another order than it is (e.g. a spoofed link).
_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _clean(text: str) -> str:
    """Blank control and bidi characters (escape sequences in a hostile title) but keep newlines."""
    return _UNSAFE.sub(" ", text)


_KIND_WORD = {"update": "Updated: ", "also": "Also reported: "}  # as Slack's header says it


def console_text(alert: Alert) -> str:
    """The alert as a few plain lines."""
    lines = [f"[{severity_label(alert.severity)}] {_KIND_WORD.get(alert.kind, '')}{headline(alert)}"]
    if alert.url:
        lines.append(f"  {alert.url}")
    meta = [
        f"source {alert.source}" if alert.source else "",
        f"published {format_time(alert.published_at)}" if alert.published_at else "",
        f"due {format_time(alert.due)}" if alert.due else "",
        "LATE" if alert.late else "",
    ]
    if any(meta):
        lines.append("  " + ", ".join(m for m in meta if m))
    lines.extend(f"  {label}: {value}" for label, value in fact_items(alert.facts))
    others = [s.source for s in alert.sources if s.source != alert.source]
    if others:
        lines.append("  also reported by: " + ", ".join(others))
    return _clean("\n".join(lines))


class ConsoleNotifier:
    """Prints alerts; the receipt is a sequence number so thread replies can be shown indented."""

    name: ClassVar[str] = "console"

    def __init__(self, settings: ConsoleSettings | None = None, *, stream: TextIO | None = None) -> None:
        self.options = settings or ConsoleSettings()
        self._stream = stream
        self._count = 0

    async def send(self, alert: Alert, thread: Receipt | None = None, *, redelivery: bool = False) -> Receipt:
        """Print the alert; `redelivery` is ignored (a repeated console line harms nobody)."""
        out = self._stream or (sys.stdout if self.options.stream == "stdout" else sys.stderr)
        if self.options.format == "json":
            line = json.dumps(alert.webhook_json(), ensure_ascii=False)
            out.write(_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", line) + "\n")  # still JSON
        else:
            text = console_text(alert)
            if thread is not None:
                text = "\n".join(
                    "    ↳ " + line if i == 0 else "    " + line for i, line in enumerate(text.splitlines())
                )
            out.write(text + "\n\n")
        out.flush()
        self._count += 1
        return {"channel": "console", "ts": str(self._count)}

    async def aclose(self) -> None:
        """Nothing to release."""
