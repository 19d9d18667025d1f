"""Rung 2+: sessions and rate-limit counters in Redis, which expires them by itself."""

from __future__ import annotations

import json
from typing import Any

from app.backends.kv.base import KeyValueStore
from app.backends.redis_server import RedisServer

PREFIX = "kv:"  # the cache and the feeds may share the database: their keys have prefixes of their own

# INCR and its expiry in one step, so no counter outlives its window; a counter found without an expiry gets one.
_INCR = """
local count = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count
"""


class RedisKeyValueStore(KeyValueStore):
    def __init__(self, server: RedisServer):
        self.server = server
        self._incr = server.redis.register_script(_INCR)

    def get(self, key: str) -> Any | None:
        with self.server.client() as r:
            raw = r.get(PREFIX + key)
        return None if raw is None else json.loads(raw)

    def set(self, key: str, value: Any, ttl: int) -> None:
        data = json.dumps(value)
        with self.server.client() as r:
            r.set(PREFIX + key, data, ex=ttl)

    def delete(self, key: str) -> None:
        with self.server.client() as r:
            r.delete(PREFIX + key)

    def incr(self, key: str, ttl: int) -> int:
        with self.server.client():
            return int(self._incr(keys=[PREFIX + key], args=[ttl * 1000]))

    def purge_expired(self) -> int:
        return 0  # Redis drops expired keys itself

    def check(self) -> str:
        return f"{self.server.check()}: sessions and rate limits"
