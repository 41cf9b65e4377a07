"""HTTP validators in Redis: a repeated 304 costs no write."""

from __future__ import annotations

from redis.asyncio import Redis

from tradewatch.store.keys import Keys
from tradewatch.store.validators import RedisValidatorCache, Validators

KEYS = Keys("tw-validators")
URL = "https://www.mofcom.gov.cn/zwgk/zcfb/index.html"


async def test_unchanged_validators_are_not_rewritten(client: Redis) -> None:
    """Putting back what get() just read skips the write; new validators are stored."""
    cache = RedisValidatorCache(client, KEYS)
    await cache.put(URL, Validators('"v1"', None))
    assert await cache.get(URL) == Validators('"v1"', None)
    await client.delete(KEYS.http_validators(URL))  # a write would bring it back
    await cache.put(URL, Validators('"v1"', None))
    assert await client.exists(KEYS.http_validators(URL)) == 0
    await cache.put(URL, Validators('"v2"', None))
    assert await cache.get(URL) == Validators('"v2"', None)


async def test_a_read_cursor_moves_forward_and_lives_with_the_validators(client: Redis) -> None:
    """The newest post id read only moves forward (a late or parallel commit of an older poll
    cannot send the next poll back), and the validators' daily renewal keeps it alive while
    the account answers 304 for weeks."""
    cache = RedisValidatorCache(client, KEYS)
    statuses = "https://truthsocial.com/api/v1/accounts/1/statuses?limit=40"
    await cache.put_cursor(statuses, "115")
    await cache.put_cursor(statuses, "112")
    assert await cache.cursor(statuses) == "115"
    await cache.put(statuses, Validators('"v1"', None))
    assert await cache.get(statuses) == Validators('"v1"', None)
    assert await cache.cursor(statuses) == "115"
    await client.expire(KEYS.http_validators(statuses), 60)  # weeks of 304s later
    await RedisValidatorCache(client, KEYS).put(statuses, Validators('"v1"', None))  # a day's renewal
    assert await client.ttl(KEYS.http_validators(statuses)) > 86_400
    assert await cache.cursor(statuses) == "115"
