"""Console notifier: readable lines, JSON lines, threads indented, terminal escapes dropped."""

from __future__ import annotations

import io
import json

from tests.notify.alerts import make_alert
from tradewatch.config import ConsoleSettings
from tradewatch.notify import NOTIFIERS, addressed
from tradewatch.notify.console import ConsoleNotifier


async def test_prints_headline_link_and_facts() -> None:
    """The text form names severity, rule, the English lead, the URL and each fact."""
    out = io.StringIO()
    notifier = ConsoleNotifier(None, stream=out)
    receipt = await notifier.send(make_alert())
    text = out.getvalue()
    assert text.startswith("[CRITICAL] MOFCOM export controls on rare-earth items: MOFCOM Announcement")
    assert "https://www.mofcom.gov.cn/zwgk/zcfb/art/2025/art_18.html" in text
    assert "Effective date: 2025-04-04" in text
    assert receipt == {"channel": "console", "ts": "1"}


async def test_thread_reply_is_indented_and_escapes_dropped() -> None:
    """A reply is shown under its parent; ANSI escapes in a title cannot drive the terminal."""
    out = io.StringIO()
    notifier = ConsoleNotifier(ConsoleSettings(), stream=out)
    parent = await notifier.send(make_alert())
    out.truncate(0)
    out.seek(0)
    hostile = "evil \x1b[2J title \x9b2J \u202egnp.exe\u202c \u2067x\u2069 \x07"
    await notifier.send(make_alert(kind="also", title=hostile), thread=parent)
    assert out.getvalue().startswith("    ↳ [CRITICAL] Also reported: ")
    for unsafe in ("\x1b", "\x9b", "\u202e", "\u202c", "\u2067", "\u2069", "\x07"):
        assert unsafe not in out.getvalue()
    assert "evil  [2J title" in out.getvalue()


async def test_json_format() -> None:
    """`format: json` prints the webhook JSON, one line per alert."""
    out = io.StringIO()
    notifier = NOTIFIERS["console"](ConsoleSettings(format="json"))
    assert isinstance(notifier, ConsoleNotifier)
    notifier._stream = out
    await notifier.send(make_alert(title="csi \x9b2J bidi \u202egnp.exe"))
    assert json.loads(out.getvalue())["id"] == "alert-1"
    assert json.loads(out.getvalue())["title"] == "csi \x9b2J bidi \u202egnp.exe"  # escaped, not lost
    assert "\x9b" not in out.getvalue()
    assert "\u202e" not in out.getvalue()


def test_addressed_follows_notify() -> None:
    """No notify → everyone; `slack:ROUTE` counts as slack; `digest` means the email notifier."""
    assert addressed("webhook", [])
    routed = ["slack:critical", "digest"]
    assert addressed("slack", routed)
    assert addressed("email", routed)
    assert not addressed("console", routed)
    assert addressed("email", ["email"])
