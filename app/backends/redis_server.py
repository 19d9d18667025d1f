"""One Redis server as a process sees it: the connection pool every seam on that server shares, and its errors.

The factory builds one RedisServer per distinct URL and Backends.close() closes it. Every seam talks to Redis inside
`with server.client() as r:`, which turns any failure into RedisUnavailable naming the server (host:port/db, never
a password): the web layer answers 503, the cache reads through to the database. After a connection failure the
server is answered "unavailable" for DOWN_SECONDS without trying it, so a server that stopped answering costs one
timeout a second rather than one per request.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.config import mask_dsn

DOWN_SECONDS = 1.0


class RedisUnavailable(Exception):
    """A Redis server cannot be reached or refused the command; the caller answers 503, nothing was written."""


class RedisServer:
    def __init__(self, url: str, timeout_seconds: float):
        self.url = url
        self.timeout = timeout_seconds
        self.pool = redis.ConnectionPool.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            # One retry, at once: a pooled connection that died with a server restart is replaced silently, and a
            # server that is down fails in one attempt, not after redis-py's default ten with backoff.
            retry=Retry(NoBackoff(), 1),
            client_name="pinhole",
            # RESP2, not redis-py 8's default RESP3 (HELLO): servers older than Redis 6 answer, and a missing password
            # reads "Authentication required" rather than a complaint about HELLO.
            protocol=2,
        )
        self.redis = redis.Redis(connection_pool=self.pool)
        params = self.pool.connection_kwargs
        place = params["path"] if "path" in params else f"{params.get('host', 'localhost')}:{params.get('port', 6379)}"
        self.db: int = params.get("db", 0)
        self.label = f"{place}/{self.db}"
        self._password = params.get("password") or ""
        self._down_until = 0.0
        self._down_reason = ""

    def unavailable(self, reason: str) -> RedisUnavailable:
        reason = mask_dsn(reason.strip().splitlines()[0] if reason.strip() else "no reason given")
        if self._password:
            reason = reason.replace(self._password, "***")
        return RedisUnavailable(f"redis server {self.label} is unavailable: {reason}")

    @contextmanager
    def client(self) -> Iterator[redis.Redis]:
        """The client, with every Redis failure raised as RedisUnavailable."""
        if time.monotonic() < self._down_until:
            raise self.unavailable(self._down_reason)
        try:
            yield self.redis
        except (redis.ConnectionError, redis.TimeoutError) as exc:  # ConnectionError covers a wrong password
            self._down_reason = str(exc) or type(exc).__name__
            self._down_until = time.monotonic() + DOWN_SECONDS
            raise self.unavailable(self._down_reason) from exc
        except redis.RedisError as exc:  # out of memory, a read-only replica, ...
            raise self.unavailable(str(exc) or type(exc).__name__) from exc

    def check(self) -> str:
        """Which server answered: `redis HOST:PORT/DB (Redis 7.0.15)`."""
        with self.client() as r:
            version = r.info("server").get("redis_version", "?")
        return f"redis {self.label} (Redis {version})"

    def close(self) -> None:
        self.pool.disconnect()
