"""The pipeline against a real redis-server: baseline, dedup, updates, clustering, suppressions."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio import Redis

from tests.conftest import CORPUS, need_shared
from tests.store.helpers import NOW, Clock, doc, result, rulebook, settings, spec
from tradewatch import pipeline as pipeline_module
from tradewatch.errors import StoreError
from tradewatch.matching.engine import MATCH_TEXT_MAX, Rulebook
from tradewatch.models import Alert, Document, Match
from tradewatch.pipeline import MAX_CONFLICT_RETRIES, Pipeline
from tradewatch.store.commit import Batch, CommitConflict
from tradewatch.store.events import Event
from tradewatch.store.keys import SEEN_REFRESH_DAYS, SEEN_TTL_MS, Keys
from tradewatch.store.outbox import Outbox
from tradewatch.store.seen import SeenRecord, epoch_day, item_digest
from tradewatch.store.silences import Silence
from tradewatch.store.suppressions import Suppressions

KEYS = Keys("tw-test")
RARE = "商务部公告2025年第18号 关于对部分中重稀土相关物项实施出口管制的决定"
RARE_EN = "MOFCOM Announcement No. 18 of 2025: export controls on medium and heavy rare earth items"


@pytest.fixture
def book(tmp_path: Path) -> Rulebook:
    return rulebook(tmp_path)


def make(
    client: Redis, book: Rulebook, redis_url: str, clock: Clock | None = None, **over: object
) -> Pipeline:
    return Pipeline(settings(redis_url, **over), client, book, keys=KEYS, now=clock or Clock())


async def queued(client: Redis) -> list[Alert]:
    return [a for _, a in reversed(await Outbox(client, KEYS).recent(1000))]


async def test_first_poll_alerts_only_within_window(client: Redis, book: Rulebook, redis_url: str) -> None:
    """The first poll records old items silently and alerts recent and undated ones."""
    pipe = make(client, book, redis_url)
    counts = await pipe.process(
        spec(),
        result(
            doc("old", "Tariff hike announced", published_at=NOW - timedelta(days=10)),
            doc("recent", "New tariff schedule", published_at=NOW - timedelta(days=1)),
            doc("undated", "Tariff exemptions listed", published_at=None),
            doc("other", "Weather report"),
        ),
    )
    assert (counts.new, counts.baseline, counts.alerts, counts.matched) == (4, 1, 2, 3)
    titles = sorted(a.title for a in await queued(client))
    assert titles == ["New tariff schedule", "Tariff exemptions listed"]


async def test_baselined_matches_claim_no_event_or_dedup_key(
    client: Redis, book: Rulebook, redis_url: str
) -> None:
    """A first poll's baselined matches are counted but index no event and hold no dedup window."""
    pipe = make(client, book, redis_url)
    url = "https://example.gov/notices/18"
    old = NOW - timedelta(days=10)
    counts = await pipe.process(
        spec("a"),
        result(
            doc("1", RARE, source="a", url=url, published_at=old),
            doc("2", "Truce holds", source="a", published_at=old),
        ),
    )
    assert (counts.new, counts.matched, counts.baseline, counts.alerts) == (2, 2, 2, 0)
    assert [k async for k in client.scan_iter(match=f"{KEYS.event_index('*', '*')}")] == []
    assert [k async for k in client.scan_iter(match=f"{KEYS.alert_dedup('*', '*')}")] == []
    await pipe.process(
        spec("b"),
        result(doc("3", RARE, source="b", url=url), doc("4", "Truce extended", source="b")),
    )
    assert sorted((a.kind, a.rule) for a in await queued(client)) == [
        ("new", "rare-earth-export-control"),
        ("new", "truce-throttled"),
    ]


class _NoSilences:
    """Silences whose store is down: a poll that consults them fails."""

    async def active(self, now: datetime) -> list[Silence]:
        raise ConnectionError("silences unavailable")


async def test_silences_are_read_only_when_an_alert_may_follow(
    client: Redis, book: Rulebook, redis_url: str
) -> None:
    """A poll of unmatched or baselined items decides without silences; a fresh match consults them."""
    pipe = make(client, book, redis_url)
    pipe.silences = _NoSilences()  # type: ignore[assignment]
    old = NOW - timedelta(days=10)
    counts = await pipe.process(
        spec(), result(doc("1", "Weather report"), doc("2", "Tariff hike", published_at=old))
    )
    assert (counts.new, counts.baseline, counts.alerts) == (2, 1, 0)
    with pytest.raises(StoreError):
        await pipe.process(spec(), result(doc("3", "Tariff cut")))


async def test_unmatched_item_alerts_once_a_change_makes_it_match(
    client: Redis, book: Rulebook, redis_url: str
) -> None:
    """An item that matched nothing claims no event; edited to match, it alerts as a new event."""
    pipe = make(client, book, redis_url)
    url = "https://example.gov/notices/7"
    counts = await pipe.process(spec(), result(doc("1", "Weather report", url=url)))
    assert (counts.new, counts.matched, counts.alerts) == (1, 0, 0)
    assert [k async for k in client.scan_iter(match=f"{KEYS.event_index('*', '*')}")] == []
    counts = await pipe.process(spec(), result(doc("1", "Tariff hike on steel", url=url)))
    assert (counts.updated, counts.matched, counts.alerts) == (1, 1, 1)
    (alert,) = await queued(client)
    assert (alert.kind, alert.rule, alert.title) == ("new", "tariff-change", "Tariff hike on steel")


async def test_zero_window_alerts_nothing_on_first_poll(
    client: aioredis.Redis, book: Rulebook, redis_url: str
) -> None:
    """first_poll_window 0 records the first poll without alerting; later items alert."""
    pipe = make(client, book, redis_url)
    await pipe.process(spec(first_poll_window="0s"), result(doc("a", "Tariff hike"), doc("b", "Tariff cut")))
    assert await queued(client) == []
    counts = await pipe.process(
        spec(first_poll_window="0s"), result(doc("a", "Tariff hike"), doc("c", "Tariffs"))
    )
    assert (counts.unchanged, counts.new, counts.alerts) == (1, 1, 1)


async def test_seen_item_never_alerts_again_across_restart(
    client: aioredis.Redis, book: Rulebook, redis_url: str
) -> None:
    """An item alerts once; a new Pipeline on a new connection (a restart) sees it as known."""
    await make(client, book, redis_url).process(spec(), result(doc("a", "Tariff hike")))
    other = aioredis.from_url(redis_url, decode_responses=True)
    try:
        counts = await make(other, book, redis_url).process(spec(), result(doc("a", "Tariff hike")))
    finally:
        await other.aclose()
    assert (counts.unchanged, counts.alerts) == (1, 0)
    assert len(await queued(client)) == 1


async def test_changed_item_is_an_update_in_the_thread(
    client: aioredis.Redis, book: Rulebook, redis_url: str
) -> None:
    """Changed content of an alerted item queues an `update` threaded on the first alert."""
    pipe = make(client, book, redis_url)
    await pipe.process(spec(), result(doc("a", "Tariff hike", text="25%")))
    counts = await pipe.process(spec(), result(doc("a", "Tariff hike", text="30%")))
    assert (counts.updated, counts.alerts) == (1, 1)
    first, update = await queued(client)
    assert (first.kind, update.kind) == ("new", "update")
    assert (update.thread_of, update.event_id) == (first.id, first.event_id)
    again = await pipe.process(spec(), result(doc("a", "Tariff hike", text="30%")))
    assert again.alerts == 0


async def test_three_sources_one_alert_two_replies(
    client: aioredis.Redis, book: Rulebook, redis_url: str
) -> None:
    """One announcement from three sources: one alert, two `also` replies; the official one confirms."""
    pipe = make(client, book, redis_url)
    await pipe.process(spec("wire"), result(doc("w1", RARE_EN, source="wire")))
    await pipe.process(spec("social"), result(doc("s1", "Breaking: " + RARE_EN, source="social")))
    await pipe.process(spec("mofcom", official=True), result(doc("m1", RARE, source="mofcom")))
    new, also1, also2 = await queued(client)
    assert (new.kind, also1.kind, also2.kind) == ("new", "also", "also")
    assert also1.thread_of == also2.thread_of == new.id
    assert {also1.event_id, also2.event_id} == {new.event_id}
    assert also2.facts.get("confirmation") is True
    assert "confirmation" not in also1.facts
    assert [s.source for s in also2.sources] == ["wire", "social", "mofcom"]


async def test_same_url_from_another_source_joins(client: Redis, book: Rulebook, redis_url: str) -> None:
    """The same canonical URL from a second source never raises a second alert."""
    pipe = make(client, book, redis_url)
    url = "https://www.federalregister.gov/documents/2025/04/09/2025-06063/tariffs?utm_source=x"
    await pipe.process(spec("a"), result(doc("1", "Tariff notice", source="a", url=url)))
    await pipe.process(
        spec("b"),
        result(
            doc(
                "2",
                "Notice of tariff action",
                source="b",
                url="http://federalregister.gov/documents/2025/04/09/2025-06063/tariffs/",
            )
        ),
    )
    (new,) = await queued(client)  # no `also` reply either: it is the same item
    event = Event.parse(str(await client.get(KEYS.event(new.event_id))))
    assert [s.source for s in event.sources] == ["a", "b"]
    # When the page changes, both sources see the change; it is one update, not one per source.
    changed = "Tariff notice, corrected"
    await pipe.process(spec("a"), result(doc("1", changed, source="a", url=url)))
    other = "http://federalregister.gov/documents/2025/04/09/2025-06063/tariffs/"  # the same page
    await pipe.process(spec("b"), result(doc("2", changed, source="b", url=other)))
    kinds = [(a.kind, a.thread_of) for a in await queued(client)]
    assert kinds == [("new", None), ("update", new.id)]


async def test_near_duplicate_text_joins(client: Redis, book: Rulebook, redis_url: str) -> None:
    """A lightly edited copy of a story (SimHash close) from another source joins the event."""
    text = (
        "The United States will raise tariffs on Chinese electric vehicles, semiconductors, solar cells "
        "and batteries next month, the trade representative said on Tuesday, citing unfair practices "
        "and overcapacity in several industries that threaten American producers and workers."
    )
    pipe = make(client, book, redis_url)
    await pipe.process(spec("a"), result(doc("1", "US raises tariffs", source="a", text=text)))
    edited = text.replace("Tuesday", "Monday")
    await pipe.process(spec("b"), result(doc("2", "US to raise tariffs", source="b", text=edited)))
    await pipe.process(
        spec("c"),
        result(
            doc(
                "3", "Tariff on steel", source="c", text="Steel tariffs were unchanged today in a quiet week."
            )
        ),
    )
    kinds = [a.kind for a in await queued(client)]
    assert kinds == ["new", "also", "new"]


async def test_rule_dedup_window_suppresses_and_records(
    client: aioredis.Redis, book: Rulebook, redis_url: str
) -> None:
    """Within a rule's dedup window a second alert is suppressed with its reason; after it, it alerts."""
    clock = Clock()
    pipe = make(client, book, redis_url, clock)
    await pipe.process(spec(), result(doc("a", "Truce agreed in Geneva", text="short")))
    counts = await pipe.process(spec(), result(doc("b", "Truce details published", text="other words")))
    assert (counts.alerts, counts.suppressed) == (0, 1)
    records = await Suppressions(client, KEYS).recent()
    assert [(r.reason, r.rule) for r in records] == [("duplicate", "truce-throttled")]
    # the window is the dedup key's TTL (`window: 1d`), kept by Redis in real time
    [key] = await client.keys(KEYS.alert_dedup("truce-throttled", "*"))
    assert (
        timedelta(hours=23, minutes=59) < timedelta(milliseconds=await client.pttl(key)) <= timedelta(days=1)
    )
    clock.advance(timedelta(days=1, minutes=1))
    await client.delete(key)  # what Redis does when the TTL runs out
    counts = await pipe.process(spec(), result(doc("d", "Truce extended again")))
    assert counts.alerts == 1


async def test_silence_suppresses_and_records(client: Redis, book: Rulebook, redis_url: str) -> None:
    """A silence on a tag mutes matching alerts until its end, with the reason recorded."""
    pipe = make(
        client,
        book,
        redis_url,
        silences=[
            {"tag": "tariff-change", "until": (NOW + timedelta(hours=1)).isoformat(), "reason": "maintenance"}
        ],
    )
    counts = await pipe.process(spec(), result(doc("a", "Tariff hike"), doc("b", RARE)))
    assert (counts.alerts, counts.suppressed) == (1, 1)
    [record] = await Suppressions(client, KEYS).recent()
    assert record.reason == "silenced"
    assert record.detail.endswith(": maintenance")


async def test_run_time_silence_is_honoured(client: Redis, book: Rulebook, redis_url: str) -> None:
    """A silence added at run time (in Redis) mutes the next poll's matching alerts."""
    from tradewatch.store.silences import Silences

    pipe = make(client, book, redis_url)
    await Silences(client, KEYS, pipe.settings).add(until=NOW + timedelta(hours=1), rule="tariff-*")
    counts = await pipe.process(spec(), result(doc("a", "Tariff hike")))
    assert (counts.alerts, counts.suppressed) == (0, 1)


async def test_concurrent_pipelines_alert_once(client: Redis, book: Rulebook, redis_url: str) -> None:
    """Three pipelines on separate connections processing the same poll at once queue each alert once."""
    clients = [aioredis.from_url(redis_url, decode_responses=True) for _ in range(3)]
    docs = [doc(f"i{n}", f"Tariff item {n}") for n in range(30)]
    try:
        pipes = [make(c, book, redis_url) for c in clients]
        totals = await asyncio.gather(*(p.process(spec(), result(*docs)) for p in pipes))
    finally:
        for c in clients:
            await c.aclose()
    assert sum(t.alerts for t in totals) == 30
    alerts = await queued(client)
    assert len(alerts) == len({a.id for a in alerts}) == 30


async def test_concurrent_sources_share_one_event(client: Redis, book: Rulebook, redis_url: str) -> None:
    """Two sources reporting one announcement at the same moment still make one event."""
    clients = [aioredis.from_url(redis_url, decode_responses=True) for _ in range(2)]
    try:
        a, b = (make(c, book, redis_url) for c in clients)
        await asyncio.gather(
            a.process(spec("x"), result(doc("1", RARE, source="x"))),
            b.process(spec("y"), result(doc("2", RARE_EN, source="y"))),
        )
    finally:
        for c in clients:
            await c.aclose()
    kinds = sorted(a.kind for a in await queued(client))
    assert kinds == ["also", "new"]


async def test_similar_text_with_different_numbers_stays_apart(
    client: Redis, book: Rulebook, redis_url: str
) -> None:
    """Two announcements sharing boilerplate but with different numbers are two events."""
    body = (
        "Officials said the measure takes effect immediately and covers several product groups including "
        "magnets, alloys and oxides, with licences required for each shipment of rare earth items."
    )
    pipe = make(client, book, redis_url)
    await pipe.process(
        spec("a"),
        result(
            doc(
                "1", "MOFCOM Announcement No. 18 of 2025 on rare earth export controls", source="a", text=body
            )
        ),
    )
    await pipe.process(
        spec("b"),
        result(
            doc(
                "2", "MOFCOM Announcement No. 19 of 2025 on rare earth export controls", source="b", text=body
            )
        ),
    )
    assert [a.kind for a in await queued(client)] == ["new", "new"]


async def test_replies_per_event_are_capped(client: Redis, book: Rulebook, redis_url: str) -> None:
    """A story repeated by very many sources raises at most MAX_REPLIES replies; the rest are recorded."""
    from tradewatch.store.events import MAX_REPLIES

    pipe = make(client, book, redis_url)
    for n in range(MAX_REPLIES + 3):
        await pipe.process(spec(f"s{n}"), result(doc(str(n), RARE_EN, source=f"s{n}")))
    kinds = [a.kind for a in await queued(client)]
    assert (kinds.count("new"), kinds.count("also")) == (1, MAX_REPLIES)
    reasons = {r.reason for r in await Suppressions(client, KEYS).recent()}
    assert reasons == {"thread_full"}


async def test_an_item_changing_every_poll_is_capped(client: Redis, book: Rulebook, redis_url: str) -> None:
    """A page that changes on every poll cannot flood its thread: updates count against the reply cap."""
    from tradewatch.store.events import MAX_REPLIES

    pipe = make(client, book, redis_url)
    for n in range(MAX_REPLIES + 5):
        await pipe.process(spec(), result(doc("live", "Tariff tracker", text=f"revision {n}")))
    kinds = [a.kind for a in await queued(client)]
    assert (kinds.count("new"), kinds.count("update")) == (1, MAX_REPLIES)


ZH_NOTICE = (
    "商务部 海关总署公告2025年第18号 关于对部分中重稀土相关物项实施出口管制的决定",
    "根据《中华人民共和国出口管制法》等法律法规有关规定，为维护国家安全和利益，经国务院批准，决定对钐、钆、铽、"
    "镝、镥、钪、钇等7类中重稀土相关物项实施出口管制措施。本公告自公布之日起正式实施。",
)
EN_WIRE = (
    "China imposes export controls on seven rare earth elements",
    "Beijing said on Friday it would impose export controls on samarium, gadolinium, terbium, dysprosium, "
    "lutetium, scandium and yttrium, effective immediately, in retaliation for US tariffs.",
)
EN_OTHER = (
    "China imposes export controls on gallium and germanium",
    "Beijing said on Friday it would impose export controls on gallium and germanium products, effective "
    "immediately, citing national security.",
)


@pytest.fixture
def shipped() -> Rulebook:
    from tradewatch.matching.loader import load_rulebook

    return load_rulebook(Path(__file__).resolve().parents[1] / "rules")


async def test_chinese_notice_and_english_story_join_by_facts(
    client: Redis, shipped: Rulebook, redis_url: str
) -> None:
    """With the shipped rules, a Chinese MOFCOM notice and an English wire story on it form one event."""
    pipe = make(client, shipped, redis_url)
    await pipe.process(
        spec("mofcom", official=True), result(doc("m", ZH_NOTICE[0], source="mofcom", text=ZH_NOTICE[1]))
    )
    await pipe.process(spec("wire"), result(doc("w", EN_WIRE[0], source="wire", text=EN_WIRE[1])))
    await pipe.process(spec("wire2"), result(doc("o", EN_OTHER[0], source="wire2", text=EN_OTHER[1])))
    kinds = [a.kind for a in await queued(client)]
    assert kinds == ["new", "also", "new"]


def _corpus(*ids: str) -> dict[str, Document]:
    from tradewatch.matching.backtest import read_documents

    lines = need_shared(CORPUS / "documents.jsonl").read_text(encoding="utf-8").splitlines()
    return {d.id: d for d in read_documents(lines) if d.id in ids}


async def test_reports_of_one_extension_join_by_its_end_date(
    client: Redis, shipped: Rulebook, redis_url: str
) -> None:
    """A Chinese and an English report of the August 2025 truce extension ("until 10 November")
    share no link, number or text: one critical alert and a reply, not two critical alerts."""
    docs = _corpus("ev-0016", "ev-0114")
    pipe = make(client, shipped, redis_url, clock=Clock(datetime(2025, 8, 12, 12, tzinfo=UTC)))
    await pipe.process(spec("hk-news"), result(docs["ev-0016"].model_copy(update={"source": "hk-news"})))
    await pipe.process(spec("wire"), result(docs["ev-0114"].model_copy(update={"source": "wire"})))
    alerts = await queued(client)
    assert [(a.kind, a.severity) for a in alerts] == [("new", "critical"), ("also", "critical")]
    assert alerts[1].thread_of == alerts[0].id


async def test_two_measures_until_one_date_stay_apart(
    client: Redis, shipped: Rulebook, redis_url: str
) -> None:
    """A tariff suspension and an export-control suspension that both run until 10 November 2026
    share a rule, an end date, countries and rates, but not their goods: two alerts."""
    pipe = make(client, shipped, redis_url, clock=Clock(NOW))
    tariffs = doc(
        "t",
        "China keeps 24% tariff on US goods suspended for one year until November 10, 2026",
        source="wire",
        text="China will keep its 24% additional tariff on U.S. goods suspended for one year, until "
        "November 10, 2026, while retaining a 10% tariff, the Tariff Commission said.",
    )
    controls = doc(
        "c",
        "China extends suspension of rare earth export controls on US for one year until November 10, 2026",
        source="wire2",
        text="China suspends its rare earth export controls on the U.S. for one year, until November 10, "
        "2026, as part of the truce that keeps the 24% tariff suspended and a 10% tariff in place.",
    )
    await pipe.process(spec("wire"), result(tariffs))
    await pipe.process(spec("wire2"), result(controls))
    alerts = await queued(client)
    assert [a.kind for a in alerts] == ["new", "new"], [(a.kind, a.rule, a.facts) for a in alerts]


async def test_reports_of_one_suspension_join_by_its_end_date(
    client: Redis, shipped: Rulebook, redis_url: str
) -> None:
    """Three reports of China suspending its gallium, germanium and antimony export ban (November
    2025, "until November 27, 2026"), in different words: one alert and two replies."""
    docs = _corpus("ev-0005", "ev-0111", "ev-0159")
    pipe = make(client, shipped, redis_url, clock=Clock(datetime(2025, 11, 9, 12, tzinfo=UTC)))
    for n, doc_id in enumerate(("ev-0005", "ev-0111", "ev-0159")):
        source = f"news-{n}"
        await pipe.process(spec(source), result(docs[doc_id].model_copy(update={"source": source})))
    alerts = await queued(client)
    assert [a.kind for a in alerts] == ["new", "also", "also"]
    assert {a.thread_of for a in alerts[1:]} == {alerts[0].id}


TIED = """
rules:
  - id: export-control-news
    title: China export controls in the news
    tags: [export-control]
    severity: warning
    match:
      all:
        - any: [export control*]
        - none: [weather]
  - id: tariff-news
    title: China tariffs in the news
    tags: [tariff-change]
    severity: warning
    match:
      any: [tariff*]
"""


async def test_tied_rules_headline_the_one_the_title_names(
    client: Redis, tmp_path: Path, redis_url: str
) -> None:
    """Two rules of one severity fire: the header is the rule whose own terms are in the title,
    and its tag comes first (the digest groups by it); with neither in the title, file order.
    Before, the first rule in file order won, so a tariff story had an export-control header."""
    pipe = make(client, rulebook(tmp_path, TIED), redis_url, first_poll_window="30d")
    await pipe.process(
        spec(),
        result(
            doc("a", "China imposes 34% tariffs on US goods", text="It also tightened export controls."),
            doc("c", "A day of trade news", text="New export controls and tariffs."),
        ),
    )
    alerts = {a.title: a for a in await queued(client)}
    tariff_story = alerts["China imposes 34% tariffs on US goods"]
    assert (tariff_story.rule, tariff_story.tags) == ("tariff-news", ["tariff-change", "export-control"])
    neither = alerts["A day of trade news"]
    assert (neither.rule, neither.tags) == ("export-control-news", ["export-control", "tariff-change"])


ESCALATING = """
rules:
  - id: tariff-news
    title: Tariffs in the news
    tags: [tariff-change]
    severity: warning
    notify: ["slack:news"]
    match:
      any: [tariff*]
  - id: official-tariff-notice
    title: Official tariff notice
    tags: [tariff-change]
    severity: critical
    notify: ["slack:critical", email]
    sources: [ustr*]
    match:
      any: [tariff*]
"""


async def test_official_report_raises_the_event_it_joins(
    client: Redis, tmp_path: Path, redis_url: str
) -> None:
    """A news story opens the event at warning; the official notice of it joins as a reply that
    carries the critical rule, its severity and recipients, and says so in the channel (`raises`).
    Before, the notice was a warning reply hidden in the news story's thread."""
    text = (
        "The United States will raise tariffs on Chinese electric vehicles, semiconductors, solar cells "
        "and batteries next month, the trade representative said on Tuesday, citing unfair practices "
        "and overcapacity in several industries that threaten American producers and workers."
    )
    pipe = make(client, rulebook(tmp_path, ESCALATING), redis_url)
    await pipe.process(spec("wire"), result(doc("1", "US raises tariffs", source="wire", text=text)))
    notice = text.replace("Tuesday", "Monday")
    await pipe.process(
        spec("ustr", official=True), result(doc("2", "USTR notice", source="ustr", text=notice))
    )
    await pipe.process(
        spec("wire2"), result(doc("3", "US to raise tariffs", source="wire2", text=text + " "))
    )
    new, official, later = await queued(client)
    assert (new.kind, new.severity, new.raises) == ("new", "warning", False)
    assert (official.kind, official.thread_of, official.rule, official.severity) == (
        "also",
        new.id,
        "official-tariff-notice",
        "critical",
    )
    assert official.raises
    assert official.facts.get("confirmation") is True
    assert set(official.notify) == {"slack:news", "slack:critical", "email"}
    assert (later.severity, later.raises, later.rule) == ("critical", False, "official-tariff-notice")
    event = json.loads(await client.get(KEYS.event(new.event_id)))
    assert "official-tariff-notice" in event["rules"]  # later copies firing only it join the event


async def test_a_silenced_rule_raises_no_event(client: Redis, tmp_path: Path, redis_url: str) -> None:
    """A silence on the more severe rule: its report still joins as a reply, at the event's
    severity, instead of raising the event to that rule (a silenced rule alerts nowhere)."""
    text = "The United States will raise tariffs on Chinese electric vehicles next month, officials said."
    until = (NOW + timedelta(days=30)).isoformat()
    book = rulebook(tmp_path, ESCALATING)
    pipe = make(client, book, redis_url, silences=[{"rule": "official-tariff-notice", "until": until}])
    await pipe.process(spec("wire"), result(doc("1", "US raises tariffs", source="wire", text=text)))
    await pipe.process(
        spec("ustr", official=True), result(doc("2", "USTR notice", source="ustr", text=text + " "))
    )
    _new, reply = await queued(client)
    assert (reply.kind, reply.severity, reply.raises, reply.rule) == ("also", "warning", False, "tariff-news")


SIDE_RULE = """
rules:
  - id: export-control-news
    title: Export controls in the news
    severity: warning
    match: {any: [export control*]}
    extract: [effective_date]
  - id: tariffs-mentioned
    title: Tariffs mentioned
    severity: info
    match: {any: [tariff*]}
    extract: [rates]
"""


async def test_a_lower_severity_side_rule_adds_no_facts(
    client: Redis, tmp_path: Path, redis_url: str
) -> None:
    """The alert's facts are its lead rule's (and those of its severity): an info-level side rule's
    rates (a threat in the background) are not shown as the export-control alert's rates."""
    pipe = make(client, rulebook(tmp_path, SIDE_RULE), redis_url, first_poll_window="30d")
    text = "Export controls take effect on December 1, 2025, after threats of 100% tariffs."
    await pipe.process(spec(), result(doc("a", "China suspends export controls", text=text)))
    [new] = await queued(client)
    assert new.rule == "export-control-news"
    assert "rates" not in new.facts
    assert new.facts["effective_date"] == "2025-12-01"


async def test_matching_a_long_poll_lets_the_loop_run(
    client: Redis, book: Rulebook, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Matching runs on the event loop: between documents it yields once YIELD_AFTER has passed,
    so health checks and other polls go on during a poll of many long documents."""
    monkeypatch.setattr(pipeline_module, "YIELD_AFTER", 0.0)
    pipe = make(client, book, redis_url)
    turns: list[int] = []
    docs = [doc(f"d{i}", f"Tariff notice {i}", text="tariff " * 2000) for i in range(5)]

    async def beside() -> None:
        while True:  # until cancelled: a turn each time the loop runs it
            turns.append(len(turns))
            await asyncio.sleep(0)

    other = asyncio.create_task(beside())
    await asyncio.sleep(0)  # it starts, then waits for its next turn
    started = len(turns)
    matched: list[int] = []
    original = book.match

    def counting(document: Document, **kw: Any) -> list[Match]:
        matched.append(len(turns))
        return original(document, **kw)

    monkeypatch.setattr(book, "match", counting)
    await pipe.process(spec(), result(*docs))
    other.cancel()
    assert len(matched) == 5
    assert matched[-1] - matched[0] >= 4  # the other task ran between the documents' matches
    assert matched[0] >= started


def test_rules_read_the_first_match_text_max_characters(book: Rulebook) -> None:
    """A term beyond MATCH_TEXT_MAX characters of text is not read (a 2.7 MB text held the loop 3 s)."""
    near = doc("a", "Notice", text="x " * 1000 + "tariff hike")
    far = doc("b", "Notice", text="x " * (MATCH_TEXT_MAX // 2) + "tariff hike")
    assert [m.rule for m in book.match(near)]
    assert book.match(far) == []


async def test_a_document_held_back_on_a_first_poll_keeps_the_first_poll_window(
    client: Redis, book: Rulebook, redis_url: str
) -> None:
    """A source may hold a document back for a later poll (its full text not read yet). On the
    source's first poll an old one is recorded as baseline all the same, so the later poll does
    not take it for news; a recent one waits and alerts when it comes."""
    pipe = make(client, book, redis_url)
    old = doc("old", "Tariff hike announced", published_at=NOW - timedelta(days=90))
    recent = doc("recent", "New tariff schedule", published_at=NOW - timedelta(hours=2))
    first = result(doc("other", "Weather report"))
    first.held = [old, recent]
    counts = await pipe.process(spec(), first)
    assert (counts.new, counts.baseline, counts.alerts) == (2, 1, 0)
    again = await pipe.process(spec(), result(old.model_copy(update={"text": "full text"}), recent))
    assert again.alerts == 1
    assert [a.title for a in await queued(client)] == ["New tariff schedule"]


async def test_an_item_still_listed_is_remembered_past_the_seen_ttl(
    client: Redis, book: Rulebook, redis_url: str
) -> None:
    """A page that lists an item for months (a standing notice) must not alert it again when its
    seen record would expire: every SEEN_REFRESH_DAYS a poll that still lists it renews the record."""
    clock = Clock()
    pipe = make(client, book, redis_url, clock)
    notice = doc("a", "Tariff hike announced", published_at=NOW - timedelta(hours=1))
    assert (await pipe.process(spec(), result(notice))).alerts == 1
    key = KEYS.seen("feed", item_digest(notice.id))
    await client.pexpire(key, 3_600_000)  # an hour of its 90 days left, as after months unrenewed
    clock.advance(timedelta(days=SEEN_REFRESH_DAYS - 1))
    await pipe.process(spec(), result(notice))
    assert await client.pttl(key) <= 3_600_000  # renewed only once the record is a refresh old
    clock.advance(timedelta(days=1))
    counts = await pipe.process(spec(), result(notice))
    assert (counts.unchanged, counts.alerts) == (1, 0)
    assert await client.pttl(key) > SEEN_TTL_MS - 60_000
    assert SeenRecord.parse(await client.get(key)).day == epoch_day(clock())


async def test_a_poll_that_keeps_conflicting_gives_up_with_a_store_error(
    client: Redis, book: Rulebook, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers racing on one source re-read and retry; a commit that never applies ends in StoreError
    (which the worker counts as a poll not processed), not in an endless loop, with nothing queued."""
    tries: list[str] = []

    async def always_conflicting(self: Batch, redis: Redis) -> list[str]:
        tries.append("commit")
        raise CommitConflict("t:seen:feed:x")

    monkeypatch.setattr(Batch, "commit", always_conflicting)
    pipe = make(client, book, redis_url)
    with pytest.raises(StoreError, match="gave up after 8 conflicting concurrent writes"):
        await pipe.process(spec(), result(doc("a", "Tariff hike announced")))
    assert len(tries) == MAX_CONFLICT_RETRIES
    assert await queued(client) == []
