"""Rung 2+: the cache in Redis, values as JSON. Give it its own server (or at least its own database on a server
with `maxmemory` and `maxmemory-policy allkeys-lru`) so that filling it never evicts sessions, feeds or tasks."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from app.backends.cache.base import Cache, safe_key
from app.backends.redis_server import RedisServer

PREFIX = "cache:"


def _key(key: str) -> str:
    return PREFIX + safe_key(key)


def _encode(value: Any) -> str:
    if value is None:
        raise ValueError("None cannot be cached: it means a miss")
    return json.dumps(value)


class RedisCache(Cache):
    def __init__(self, server: RedisServer):
        self.server = server

    def get(self, key: str) -> Any | None:
        with self.server.client() as r:
            raw = r.get(_key(key))
        return None if raw is None else json.loads(raw)

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        with self.server.client() as r:
            values = r.mget([_key(k) for k in keys])
        return {k: json.loads(raw) for k, raw in zip(keys, values, strict=True) if raw is not None}

    def set(self, key: str, value: Any, ttl: int) -> None:
        data = _encode(value)
        with self.server.client() as r:
            r.set(_key(key), data, ex=ttl)

    def add(self, key: str, value: Any, ttl: int) -> bool:
        data = _encode(value)
        with self.server.client() as r:
            return bool(r.set(_key(key), data, ex=ttl, nx=True))

    def delete(self, key: str) -> None:
        with self.server.client() as r:
            r.delete(_key(key))

    def check(self) -> str:
        return f"{self.server.check()}: cache"
