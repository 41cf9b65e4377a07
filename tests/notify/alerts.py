"""Alert factories shared by the notifier tests (and by other tests that need a realistic alert)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tradewatch.models import Alert, SourceRef

HOSTILE = "<!channel> Tariffs <https://evil.example|bank login> &amp; <script>alert(1)</script>"


def make_alert(**over: Any) -> Alert:
    """A realistic MOFCOM export-control alert; keyword arguments override fields."""
    data: dict[str, Any] = {
        "id": "alert-1",
        "kind": "new",
        "event_id": "event-1",
        "rule": "mofcom-rare-earth-export-control",
        "rule_title": "MOFCOM export controls on rare-earth items",
        "severity": "critical",
        "tags": ["export-control"],
        "title": "商务部 海关总署公告2025年第18号 关于对部分中重稀土相关物项实施出口管制的决定",
        "url": "https://www.mofcom.gov.cn/zwgk/zcfb/art/2025/art_18.html",
        "source": "mofcom-announcements",
        "lang": "zh",
        "published_at": datetime(2025, 4, 4, 9, 0, tzinfo=UTC),
        "seen_at": datetime(2025, 4, 4, 9, 3, tzinfo=UTC),
        "facts": {
            "announcement": "2025年第18号",
            "effective_date": "2025-04-04",
            "items": ["samarium", "gadolinium", "terbium", "dysprosium"],
        },
        "sources": [
            SourceRef(
                source="mofcom-announcements",
                official=True,
                url="https://www.mofcom.gov.cn/zwgk/zcfb/art/2025/art_18.html",
            )
        ],
    }
    data.update(over)
    return Alert.model_validate(data)
