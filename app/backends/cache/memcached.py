"""Rung 2: memcached servers through pymemcache's HashClient, values stored as JSON text (never pickle).

Keys are spread over the servers by rendezvous hashing. A server that fails (refused, reset, timed out) is ejected
at its first failure: that call raises, so the caller reads through to the database, and its keys hash to the
other servers until it is tried again DEAD_RETRY_SECONDS later. Timeouts are short, so a dead or stalled server
costs at most one slow call per DEAD_RETRY_SECONDS, never a hung page. When every server is down each call fails
at once and Pinhole runs from the database. A value may outlive a delete that could not reach its server (the
server was cut off, not restarted); its ttl bounds how long.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from typing import Any

from pymemcache.client.hash import HashClient

from app.backends.cache.base import Cache, safe_key

CONNECT_TIMEOUT_SECONDS = 0.5
IO_TIMEOUT_SECONDS = 0.5
DEAD_RETRY_SECONDS = 30
# memcached reads an expiry beyond 30 days as a unix time, not a number of seconds.
MAX_RELATIVE_EXPIRY = 30 * 24 * 3600


class _HashClient(HashClient):
    """HashClient's bookkeeping of failed servers is not thread-safe (two threads ejecting or bringing back the same
    server corrupt its ring); serialize just that, never the network calls."""

    def __init__(self, *args: Any, **kwargs: Any):
        self._ring_lock = threading.RLock()
        super().__init__(*args, **kwargs)

    def _mark_failed_server(self, server: Any) -> None:
        with self._ring_lock:
            if server not in self._dead_clients:  # another thread ejected it already
                super()._mark_failed_server(server)

    def _retry_dead(self) -> None:
        with self._ring_lock:
            super()._retry_dead()


class MemcachedCache(Cache):
    def __init__(self, servers: list[str]):
        self.servers = list(servers)
        self._client = _HashClient(
            self.servers,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            timeout=IO_TIMEOUT_SECONDS,
            use_pooling=True,  # one connection per thread at a time: the client is shared by every request
            retry_attempts=0,  # eject at the first failure...
            dead_timeout=DEAD_RETRY_SECONDS,  # ...and try the server again this much later
            ignore_exc=False,  # errors reach the caller, which reads through (Cache.get_or_fill)
            default_noreply=False,  # wait for answers: `add` must say whether it won the lease
        )

    def get(self, key: str) -> Any | None:
        raw = self._client.get(_key(key))
        return None if raw is None else json.loads(raw)

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        by_stored = {_key(key): key for key in keys}
        if not by_stored:
            return {}
        found = self._client.get_many(list(by_stored))
        return {by_stored[stored]: json.loads(raw) for stored, raw in found.items()}

    def set(self, key: str, value: Any, ttl: int) -> None:
        if not self._client.set(_key(key), _payload(value), expire=_expiry(ttl)):
            raise RuntimeError(f"memcached did not store {key[:80]!r}")

    def add(self, key: str, value: Any, ttl: int) -> bool:
        return bool(self._client.add(_key(key), _payload(value), expire=_expiry(ttl)))

    def delete(self, key: str) -> None:
        self._client.delete(_key(key))

    def check(self) -> str:
        """Each server's version, or why it does not answer; an error only when none does."""
        found, down = [], []
        for name, client in self._client.clients.items():
            try:
                found.append(f"{name} (memcached {client.version().decode()})")
            except Exception as exc:
                down.append(f"{name} ({type(exc).__name__}: {exc})")
        if not found:
            raise ConnectionError(f"no memcached server answers: {', '.join(down)}")
        return "memcached " + ", ".join(found) + (f"; down: {', '.join(down)}" if down else "")

    def close(self) -> None:
        self._client.close()


def _key(key: str) -> str:
    """memcached takes printable ASCII without spaces, at most 250 bytes: anything else is hashed."""
    return safe_key(key, limit=200 if key.isascii() else 0)


def _payload(value: Any) -> bytes:
    if value is None:
        raise ValueError("None cannot be cached: it means a miss")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _expiry(ttl: int) -> int:
    """memcached's clock ticks once a second, so a ttl of N may end up to a second early: ask for N + 1."""
    ttl = max(1, int(ttl)) + 1
    return ttl if ttl <= MAX_RELATIVE_EXPIRY else int(time.time()) + ttl
