"""The one place that turns config into backends. Views, services and tasks get a Backends and
never import a backend module; each backend module is imported here only when configured."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from app.backends.blobs.base import BlobStore
from app.backends.cache.base import Cache
from app.backends.database.base import Database
from app.backends.events.base import Events
from app.backends.feeds.base import FeedStore
from app.backends.kv.base import KeyValueStore
from app.backends.queue.base import Queue
from app.config import Config, ConfigError, redis_url

if TYPE_CHECKING:
    from app.backends.redis_server import RedisServer

log = logging.getLogger("pinhole.backends")


class Closeable(Protocol):
    def close(self) -> None: ...


@dataclass
class Backends:
    db: Database
    cache: Cache
    blobs: BlobStore
    feeds: FeedStore
    queue: Queue
    kv: KeyValueStore
    events: Events
    # Connection pools that several backends share (one per Redis server); closed after the backends.
    pools: list[Closeable] = field(default_factory=list)

    def checks(self) -> dict[str, tuple[bool, str]]:
        """Each backend's health: (ok, what was found or what went wrong)."""
        results = {}
        for name in ("db", "cache", "blobs", "feeds", "queue", "kv", "events"):
            try:
                results[name] = (True, getattr(self, name).check())
            except Exception as exc:  # any failure of any backend is a finding, not a crash
                results[name] = (False, f"{type(exc).__name__}: {exc}")
        return results

    def close(self) -> None:
        closers = [self.cache.close, self.kv.close, self.events.close, self.db.close]
        for closer in closers + [pool.close for pool in self.pools]:
            try:
                closer()
            except Exception:
                log.warning("closing a backend failed", exc_info=True)


def build_database(config: Config) -> Database:
    if config.database.backend == "sqlite":
        from app.backends.database.sqlite import SqliteDatabase

        return SqliteDatabase(
            config.data_dir / "pinhole.sqlite3", config.database.logical_shards, config.database.busy_timeout_ms
        )
    if config.database.backend == "postgres":
        from app.backends.database.postgres import PostgresDatabase

        try:
            return PostgresDatabase(config.database)
        except ValueError as exc:  # a DSN libpq cannot read
            raise ConfigError(f"{config.source}: [database] {exc}") from None
    raise ValueError(f"unknown database backend {config.database.backend!r}")


def build_backends(config: Config) -> Backends:
    data = config.data_dir

    # The blob store first: its start-up check may refuse the config before anything is opened or written.
    if config.media.backend == "local":
        from app.backends.blobs.local import LocalBlobStore

        blobs: BlobStore = LocalBlobStore(data / "media")

    if config.media.backend == "s3":
        from app.backends.blobs.s3 import S3BlobStore

        blobs = S3BlobStore(config.media, config.source)  # refuses a missing bucket or bad credentials

    db = build_database(config)
    servers: dict[str, RedisServer] = {}  # one connection pool per Redis server, whichever seams use it

    def redis_server(section: str) -> RedisServer:
        from app.backends.redis_server import RedisServer

        url = redis_url(config, section)
        if url not in servers:
            servers[url] = RedisServer(url, config.redis.timeout_seconds)
        return servers[url]

    if config.cache.backend == "disk":
        from app.backends.cache.disk import DiskCache

        cache: Cache = DiskCache(data / "cache", config.cache.size_limit_mb * 1024 * 1024)
    if config.cache.backend == "redis":
        from app.backends.cache.redis import RedisCache

        cache = RedisCache(redis_server("cache"))

    if config.cache.backend == "memcached":
        from app.backends.cache.memcached import MemcachedCache

        cache = MemcachedCache(config.cache.servers)

    if config.feeds.backend == "sql":
        from app.backends.feeds.sql import SqlFeedStore

        feeds: FeedStore = SqlFeedStore(db, config.feeds.max_items)
    if config.feeds.backend == "redis":
        from app.backends.feeds.redis import RedisFeedStore

        feeds = RedisFeedStore(redis_server("feeds"), config.feeds.max_items)

    if config.queue.backend == "sqlite":
        from app.backends.queue.sqlite import SqliteHueyQueue

        queue: Queue = SqliteHueyQueue(data / "queue.sqlite3", config.database.busy_timeout_ms)
    if config.queue.backend == "redis":
        from app.backends.queue.redis import RedisHueyQueue

        queue = RedisHueyQueue(redis_server("queue"))

    if config.sessions.backend == "sqlite":
        from app.backends.kv.sqlite import SqliteKeyValueStore

        kv: KeyValueStore = SqliteKeyValueStore(data / "state.sqlite3", config.database.busy_timeout_ms)
    if config.sessions.backend == "redis":
        from app.backends.kv.redis import RedisKeyValueStore

        kv = RedisKeyValueStore(redis_server("sessions"))

    if config.events.backend == "local":
        from app.backends.events.local import LocalEvents

        events: Events = LocalEvents()
    if config.events.backend == "redis":
        from app.backends.events.redis import RedisEvents

        events = RedisEvents(redis_server("events"))

    return Backends(
        db=db, cache=cache, blobs=blobs, feeds=feeds, queue=queue, kv=kv, events=events, pools=list(servers.values())
    )
