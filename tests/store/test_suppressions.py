"""Suppression records and dedup keys rendered from a rule's template."""

from __future__ import annotations

from datetime import UTC, datetime

import redis.asyncio as aioredis

from tradewatch.models import Match
from tradewatch.store.commit import Batch
from tradewatch.store.keys import Keys
from tradewatch.store.suppressions import Suppressions, dedup_value

NOW = datetime(2025, 10, 9, 12, tzinfo=UTC)


def test_dedup_value_from_facts() -> None:
    """Templates name facts (lists joined) and the rule; a missing fact means no dedup."""
    facts = {"announcement": "2025年第18号", "items": ["Sm", "Gd"]}
    match = Match(doc_id="d", rule="r", title="R", facts=facts)
    assert dedup_value("{announcement}", match) == "2025年第18号"
    assert dedup_value("{rule}:{items}", match) == "r:Sm,Gd"
    assert dedup_value("{effective_date}", match) is None


async def test_recorded_with_reason_newest_first(client: aioredis.Redis) -> None:
    """Suppressions staged in a batch are readable with their reason, newest first."""
    store = Suppressions(client, Keys("tw-test"))
    for reason in ("silenced", "duplicate"):
        batch = Batch()
        store.stage(batch, reason=reason, rule="r", source="s", title="t", url="u", detail="why", at=NOW)
        await batch.commit(client)
    assert [s.reason for s in await store.recent()] == ["duplicate", "silenced"]
