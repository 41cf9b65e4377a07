"""Status-page data written through the real store classes, hostile text included."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import redis.asyncio as aioredis
import yaml

from tradewatch.matching import Rulebook, load_rulebook
from tradewatch.models import Alert, SourceRef
from tradewatch.store.commit import Batch
from tradewatch.store.events import Event, EventSource
from tradewatch.store.health import SourceHealth
from tradewatch.store.keys import EVENT_TTL_MS, Keys
from tradewatch.store.outbox import Outbox
from tradewatch.store.suppressions import Suppressions

HOSTILE = '<script>document.title="pwned";window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
HOSTILE_URL = "javascript:window.__pwned=3"


@dataclass(frozen=True)
class RuleInfo:
    """What the seed needs of a rule it writes."""

    id: str
    title: str
    tags: list[str]


RULES = [
    RuleInfo(
        "mofcom-rare-earth-export-control", "MOFCOM export controls on rare-earth items", ["export-control"]
    ),
    RuleInfo("us-tariff-change", "US tariff rates changed", ["tariff-change"]),
    RuleInfo("truce-news", "Trade truce news", ["truce", "trade-talks"]),
]


def write_rulebook(folder: Path, now: datetime) -> Rulebook:
    """A real rulebook: the three rules, two upcoming deadlines (one hostile) and one long past."""
    rules = [
        {
            "id": r.id,
            "title": r.title,
            "tags": r.tags,
            "severity": "critical",
            "match": {"any": [r.title.split()[0]]},
        }
        for r in RULES
    ]
    deadlines = [
        {
            "id": "us-china-truce",
            "title": "US–China tariff truce expires unless extended",
            "due": (now + timedelta(days=9)).isoformat(),
            "remind": ["7d", "1d"],
            "tags": ["truce"],
        },
        {
            "id": "hostile-deadline",
            "title": "Deadline " + HOSTILE,
            "due": (now + timedelta(days=20)).isoformat(),
            "tags": ["tariff-change"],
        },
        {"id": "old-deadline", "title": "Long gone", "due": (now - timedelta(days=40)).isoformat()},
    ]
    folder.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump({"rules": rules, "deadlines": deadlines}, allow_unicode=True, sort_keys=False)
    (folder / "rules.yaml").write_text(text, encoding="utf-8")
    return load_rulebook(folder)


async def seed(redis: aioredis.Redis, keys: Keys, now: datetime) -> None:
    """Health for two sources, four events over the month, outbox alerts, two suppressions."""
    health = SourceHealth(redis, keys)
    await health.record_success(
        "mofcom-announcements", status=200, documents=12, duration=0.4, next_poll=now + timedelta(minutes=5)
    )
    for _ in range(6):
        await health.record_failure("ustr-press", "ConnectError " + HOSTILE, threshold=5)
    await redis.delete(keys.outbox(), keys.notices())  # its operator alert: the one below has a known time

    batch = Batch()
    events = [
        (
            "ev-rare-earth",
            RULES[0],
            now - timedelta(hours=3),
            "商务部 海关总署公告2025年第18号 关于对部分中重稀土相关物项实施出口管制的决定",
            "https://www.mofcom.gov.cn/article/zwgk/gkzcfb/202504/20250404.shtml",
            "mofcom-announcements",
            True,
        ),
        (
            "ev-tariff",
            RULES[1],
            now - timedelta(days=2),
            "Notice of Modification of Section 301 Action",
            "https://www.federalregister.gov/d/2025-06063",
            "federal-register-tariffs",
            True,
        ),
        (
            "ev-truce",
            RULES[2],
            now - timedelta(days=12),
            "Leaders agree to extend tariff truce by 90 days",
            "https://example.com/wire/truce",
            "wire-feed",
            False,
        ),
        (
            "ev-hostile",
            RULES[1],
            now - timedelta(days=5),
            "Tariffs " + HOSTILE,
            HOSTILE_URL,
            "evil-feed",
            False,
        ),
    ]
    outbox = Outbox(redis, keys)
    for event_id, rule, created, title, url, source, official in events:
        sources = [EventSource(source, url, title, official, created.isoformat())]
        if event_id == "ev-rare-earth":
            sources.append(
                EventSource(
                    "reuters-wire",
                    "https://example.com/reuters/rare-earth",
                    "China tightens rare earth export controls",
                    False,
                    None,
                )
            )
        event = Event(
            id=event_id,
            root=f"alert-{event_id}",
            rule=rule.id,
            severity="critical",
            notify=[],
            rules=[rule.id],
            created=created.isoformat(),
            sources=sources,
        )
        batch.set(keys.event(event_id), event.dump(), EVENT_TTL_MS)
        if event_id in ("ev-rare-earth", "ev-hostile"):
            outbox.stage(
                batch,
                Alert(
                    id=f"alert-{event_id}",
                    event_id=event_id,
                    rule=rule.id,
                    rule_title=rule.title,
                    severity="critical",
                    tags=rule.tags,
                    title=title,
                    url=url,
                    source=source,
                    seen_at=created,
                    facts={"announcement": "2025年第18号", "items": ["钐", "钆", HOSTILE]},
                    sources=[SourceRef(source=s.source, url=s.url, title=s.title) for s in sources],
                ),
            )
    suppressions = Suppressions(redis, keys)
    suppressions.stage(
        batch,
        reason="duplicate",
        rule=RULES[0].id,
        source="reuters-wire",
        title="China tightens rare earth export controls",
        url="https://example.com/r",
        detail="same announcement as ev-rare-earth",
        at=now - timedelta(hours=2),
    )
    suppressions.stage(
        batch,
        reason="silenced",
        rule=RULES[2].id,
        source="evil-feed",
        title="Silenced " + HOSTILE,
        url=HOSTILE_URL,
        detail="tag trade-talks: " + HOSTILE,
        at=now - timedelta(hours=1),
    )
    await batch.commit(redis)
    await outbox.enqueue_operator(
        Alert(
            id="op-ustr",
            kind="operator",
            rule="source-failing",
            rule_title="Source failing",
            severity="warning",
            title="ustr-press is failing",
            source="ustr-press",
            seen_at=now - timedelta(minutes=30),
        )
    )
