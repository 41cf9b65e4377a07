"""The `truthsocial` kind: the Mastodon statuses API (hand-made responses) and the recorded mirror feed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import redis.asyncio as aioredis

from tests.servers import LocalServer, Request, Response
from tests.sources.helpers import data_bytes, fixture_bytes, http_settings, spec
from tradewatch.fetch import Fetcher
from tradewatch.sources.truthsocial import TruthSocialSource
from tradewatch.store.keys import Keys
from tradewatch.store.validators import RedisValidatorCache

JSON = {"Content-Type": "application/json"}
ACCOUNT = "107780257626128497"


def _api(server: LocalServer) -> None:
    server.routes["/api/v1/accounts/lookup"] = Response(200, data_bytes("truthsocial/lookup.json"), JSON)
    server.routes[f"/api/v1/accounts/{ACCOUNT}/statuses"] = Response(
        200, data_bytes("truthsocial/statuses.json"), JSON
    )


async def test_api_by_handle(server: LocalServer, fetcher: Fetcher) -> None:
    """A handle is looked up once; posts, media-only posts and reblogs are documents; replies are not."""
    _api(server)
    source = TruthSocialSource(spec("truthsocial", url=server.base_url, handle="@realDonaldTrump"))
    result = await source.fetch(fetcher)
    ids = [d.id.rsplit("/", 1)[1] for d in result.documents]
    assert ids == ["114500000000000003", "114500000000000002", "114500000000000001"]
    post, media, reblog = result.documents
    assert post.text == (
        "China has agreed to suspend its export controls on Rare Earths & Magnets. Tariffs will go to 10%!"
    )
    assert post.title == post.text
    assert post.published_at == datetime(2026, 5, 12, 13, 5, tzinfo=UTC)
    assert media.extra["media"] == ["https://static-assets.truthsocial.com/media/video.mp4"]
    assert media.title == "[media] post of 2026-05-12"
    assert reblog.text.startswith("RT @WhiteHouse: FACT SHEET: President Trump secures a trade deal")
    assert reblog.extra["reblog_of"] == "https://truthsocial.com/@WhiteHouse/114499999999999999"
    assert reblog.extra["card_url"] == "https://www.whitehouse.gov/fact-sheets/2026/05/x/"
    statuses = [r for r in server.requests if "/statuses" in r.path]
    assert "exclude_replies=true" in statuses[0].path
    await source.fetch(fetcher)
    assert server.hits("/api/v1/accounts/lookup") == 1


async def test_api_keeps_the_parts_of_his_own_thread(server: LocalServer, fetcher: Fetcher) -> None:
    """A reply to the account's own post is the next part of a thread: kept even with replies off."""
    statuses = json.loads(data_bytes("truthsocial/statuses.json"))
    part = {
        **statuses[0],
        "id": "114500000000000004",
        "url": "https://truthsocial.com/@realDonaldTrump/114500000000000004",
        "in_reply_to_id": "114500000000000003",
        "in_reply_to_account_id": ACCOUNT,
        "content": "<p>Starting November 1, 2026, China will pay a 100% Tariff.</p>",
    }
    server.routes[f"/api/v1/accounts/{ACCOUNT}/statuses"] = Response(
        200, json.dumps([part, *statuses]).encode(), JSON
    )
    docs = (
        await TruthSocialSource(spec("truthsocial", url=server.base_url, account=ACCOUNT)).fetch(fetcher)
    ).documents
    ids = [d.id.rsplit("/", 1)[1] for d in docs]
    assert ids == ["114500000000000004", "114500000000000003", "114500000000000002", "114500000000000001"]
    assert docs[0].extra["thread"] is True
    assert docs[0].text == "Starting November 1, 2026, China will pay a 100% Tariff."


async def test_a_repost_without_a_page_links_the_original(server: LocalServer, fetcher: Fetcher) -> None:
    """Mastodon gives a re-post no `url` of its own: the link is the original's page, not the
    ActivityPub address (`…/activity`), which stays the id."""
    statuses = json.loads(data_bytes("truthsocial/statuses.json"))
    repost = {**statuses[2], "url": None, "uri": "https://truthsocial.com/users/x/statuses/1/activity"}
    server.routes[f"/api/v1/accounts/{ACCOUNT}/statuses"] = Response(200, json.dumps([repost]).encode(), JSON)
    source = TruthSocialSource(spec("truthsocial", url=server.base_url, account=ACCOUNT))
    (doc,) = (await source.fetch(fetcher)).documents
    assert doc.url == "https://truthsocial.com/@WhiteHouse/114499999999999999"
    assert doc.id == "https://truthsocial.com/users/x/statuses/1/activity"


def _timeline(server: LocalServer, shown: dict[str, int]) -> None:
    """An account whose posts so far are ids 1..shown["upto"], two per page, newest first."""
    template = json.loads(data_bytes("truthsocial/statuses.json"))[0]

    def post(n: int) -> dict[str, object]:
        return {**template, "id": str(n), "url": f"https://truthsocial.com/@realDonaldTrump/{n}"}

    def statuses(req: Request) -> Response:
        query = parse_qs(urlsplit(req.path).query)
        below = int(query["max_id"][0]) if "max_id" in query else shown["upto"] + 1
        page = [post(n) for n in range(shown["upto"], 0, -1) if n < below][:2]
        return Response(200, json.dumps(page).encode(), JSON)

    server.routes[f"/api/v1/accounts/{ACCOUNT}/statuses"] = statuses


async def test_api_reads_back_to_the_last_post_seen(server: LocalServer, fetcher: Fetcher) -> None:
    """After an outage more posts than one page are new: older pages are read (max_id) down to
    the newest post of the previous poll, at most max_pages pages."""
    shown = {"upto": 10}
    _timeline(server, shown)
    source = TruthSocialSource(spec("truthsocial", url=server.base_url, account=ACCOUNT, limit=2))
    first = await source.fetch(fetcher)
    assert [d.id.rsplit("/", 1)[1] for d in first.documents] == ["10", "9"]
    shown["upto"] = 15  # five posts while the source failed
    await source.fetch(fetcher)  # a poll whose processing failed (not committed) teaches nothing
    await fetcher.commit(first)
    again = await source.fetch(fetcher)
    assert [d.id.rsplit("/", 1)[1] for d in again.documents] == ["15", "14", "13", "12", "11", "10"]
    assert again.requests == 3
    capped = TruthSocialSource(
        spec("truthsocial", url=server.base_url, account=ACCOUNT, limit=2, max_pages=2)
    )
    await fetcher.commit(await capped.fetch(fetcher))  # it has seen up to 15
    shown["upto"] = 20
    assert [d.id.rsplit("/", 1)[1] for d in (await capped.fetch(fetcher)).documents] == [
        "20",
        "19",
        "18",
        "17",
    ]


async def test_read_back_survives_a_restart(server: LocalServer, redis_url: str) -> None:
    """How far the account was read is kept in Redis with the validators: a restarted worker
    (a new process, a new source object) still reads back every post of its downtime."""
    shown = {"upto": 10}
    _timeline(server, shown)
    options = spec("truthsocial", url=server.base_url, account=ACCOUNT, limit=2)
    client = aioredis.from_url(redis_url)
    try:
        async with Fetcher(http_settings(), RedisValidatorCache(client, Keys("t"))) as before:
            first = await TruthSocialSource(options).fetch(before)
            await before.commit(first)
        shown["upto"] = 15  # five posts while no worker ran
        async with Fetcher(http_settings(), RedisValidatorCache(client, Keys("t"))) as after:
            again = await TruthSocialSource(options).fetch(after)
    finally:
        await client.aclose()
    assert [d.id.rsplit("/", 1)[1] for d in again.documents] == ["15", "14", "13", "12", "11", "10"]


async def test_api_reblogs_off_and_replies_on(server: LocalServer, fetcher: Fetcher) -> None:
    """reblogs: false drops re-posts; replies: true keeps replies with their parent id and edit time."""
    _api(server)
    source = TruthSocialSource(
        spec("truthsocial", url=server.base_url, account=ACCOUNT, reblogs=False, replies=True)
    )
    docs = (await source.fetch(fetcher)).documents
    assert all("reblog_of" not in d.extra for d in docs)
    reply = docs[-1]
    assert reply.extra["in_reply_to_id"] == "114400000000000000"
    assert reply.extra["edited_at"] == "2026-05-12T10:05:00.000Z"
    assert server.hits("/api/v1/accounts/lookup") == 0


async def test_mirror_feed(server: LocalServer, fetcher: Fetcher) -> None:
    """The trumpstruth.org feed read as a truthsocial source marks re-posts; reblogs: false drops them."""
    server.routes["/feed"] = Response(
        200, fixture_bytes("truthsocial/feed-trumpstruth-2026-08-25-truncated.xml")
    )
    kept = (await TruthSocialSource(spec("truthsocial", url=server.url("/feed"))).fetch(fetcher)).documents
    reposts = [d for d in kept if d.extra.get("reblog")]
    assert len(kept) == 26
    assert reposts
    assert all(d.text.startswith("RT") for d in reposts)
    dropped = await TruthSocialSource(
        spec("truthsocial", name="t2", url=server.url("/feed"), reblogs=False)
    ).fetch(fetcher)
    assert len(dropped.documents) == 26 - len(reposts)
    assert "https://trumpstruth.org/statuses/41187" in {d.id for d in dropped.documents}
