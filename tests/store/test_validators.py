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
