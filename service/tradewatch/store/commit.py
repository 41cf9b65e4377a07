"""Compare-and-apply: a batch of Redis writes that happens only if what we read is unchanged.

The pipeline reads (seen records, event index, dedup keys), decides in Python, then
commits every write of the batch (seen records, events, outbox entries) in one Lua
script that first re-checks each value it decided on. Either the whole batch lands
or none of it does, so an alert is never queued without its dedup record and a
concurrent worker that read the same state retries instead of doubling.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from tradewatch.errors import StoreError

__all__ = ["Batch", "CommitConflict", "redis_errors"]

# One script for all batches: checks first (GET == expected, false = absent), then ops.
_SCRIPT = """
local spec = cjson.decode(ARGV[1])
for _, c in ipairs(spec.c) do
  local v = redis.call('GET', KEYS[c[1]])
  local want = c[2]
  if want == cjson.null then want = false end
  if v ~= want then return {0, c[1]} end
end
for _, op in ipairs(spec.o) do  -- a write this script does not know fails the batch before any write
  if op[1] ~= 'set' and op[1] ~= 'xadd' then return redis.error_reply('unknown write ' .. tostring(op[1])) end
end
local ids = {}
for _, op in ipairs(spec.o) do
  local kind = op[1]
  local key = KEYS[op[2]]
  if kind == 'set' then
    redis.call('SET', key, op[3], 'PX', op[4])
  elseif kind == 'xadd' then
    local args = {'XADD', key}
    if op[4] > 0 then
      table.insert(args, 'MAXLEN'); table.insert(args, '~'); table.insert(args, op[4])
    end
    table.insert(args, '*')
    for _, v in ipairs(op[3]) do table.insert(args, v) end
    table.insert(ids, redis.call(unpack(args)))
  end
end
return {1, ids}
"""

redis_errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)


class CommitConflict(Exception):
    """Another worker changed a value this batch decided on; re-read and decide again."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(key)


@dataclass
class Batch:
    """Checks and writes collected while deciding; `commit()` applies them atomically."""

    keys: list[str] = field(default_factory=list)
    checks: list[list[Any]] = field(default_factory=list)
    ops: list[list[Any]] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)
    _checked: set[str] = field(default_factory=set)

    def _ki(self, key: str) -> int:
        if key not in self._index:
            self.keys.append(key)
            self._index[key] = len(self.keys)
        return self._index[key]

    def expect(self, key: str, value: str | None) -> None:
        """Apply the batch only if `key` still holds `value` (None: still absent)."""
        if key in self._checked:
            return
        self._checked.add(key)
        self.checks.append([self._ki(key), value])

    def set(self, key: str, value: str, ttl_ms: int) -> None:
        self.ops.append(["set", self._ki(key), value, int(ttl_ms)])

    def xadd(self, stream: str, fields: dict[str, str], maxlen: int = 0) -> None:
        """Append to a stream; `maxlen` > 0 caps it approximately (never for the outbox)."""
        flat: list[str] = []
        for name, value in fields.items():
            flat += [name, value]
        self.ops.append(["xadd", self._ki(stream), flat, maxlen])

    async def commit(self, client: aioredis.Redis) -> list[str]:
        """Apply all writes or raise `CommitConflict`; Redis trouble becomes `StoreError`."""
        if not self.ops:
            return []
        spec = json.dumps({"c": self.checks, "o": self.ops}, ensure_ascii=False)
        try:
            script = client.register_script(_SCRIPT)  # EVALSHA, loading the script once per server
            result = await script(keys=self.keys, args=[spec])
        except redis_errors as exc:
            raise StoreError(f"redis commit failed: {exc}") from exc
        if int(result[0]) == 0:
            raise CommitConflict(self.keys[int(result[1]) - 1])
        return [str(i) for i in result[1]]
