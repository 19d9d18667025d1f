"""Rung 2+: Huey's RedisHuey on the shared connection pool; workers on any node consume the same queue.

Huey pickles tasks, so whoever can write to this Redis can run code in the workers: keep it on a private network
with a password. A consumer's workers wait on BRPOP, so a task starts the moment it is enqueued (polling, as on
SQLite, left an idle worker up to 0.5 s behind); run_pending() (tests, the CLI) pops without waiting in processes
that run no consumer.
"""

from __future__ import annotations

from typing import Any

from huey import RedisHuey
from huey.consumer import Consumer

from app.backends.queue.huey_queue import HueyQueue, _Consumer
from app.backends.redis_server import RedisServer

CLAIM_PREFIX = "queue:periodic:"  # beside Huey's own "huey.*" keys
# A claim outlives its minute by far, so a consumer whose scheduler checks late still finds it.
CLAIM_SECONDS = 3600
# A worker's longest wait in BRPOP: how long stopping a consumer may take. Below the socket timeout (1 s or more).
BLOCK_SECONDS = 0.5


class RedisHueyQueue(HueyQueue):
    """HueyQueue whose calls from requests and the CLI raise RedisUnavailable naming the server."""

    def __init__(self, server: RedisServer):
        huey = RedisHuey(name="pinhole", results=False, connection_pool=server.pool, blocking=False)
        super().__init__(huey, f"huey on redis {server.label}")
        self.server = server

    def enqueue(self, name: str, *args: Any, delay: float | None = None) -> None:
        with self.server.client():
            super().enqueue(name, *args, delay=delay)

    def pending(self) -> int:
        with self.server.client():
            return super().pending()

    def run_pending(self, limit: int = 1000) -> int:
        with self.server.client():
            return super().run_pending(limit)

    def _consumer(self, cls: type[_Consumer], workers: int) -> Consumer:
        # Huey's storage blocks in every dequeue once a consumer runs in this process (run_pending's too, by at most
        # BLOCK_SECONDS when the queue is empty): worker nodes and app nodes with embedded workers never call it.
        self.huey.storage.blocking = True
        self.huey.storage.read_timeout = BLOCK_SECONDS
        return super()._consumer(cls, workers)

    def claim_minute(self, name: str, minute: int) -> bool:
        with self.server.client() as r:
            return bool(r.set(f"{CLAIM_PREFIX}{name}:{minute}", 1, nx=True, ex=CLAIM_SECONDS))

    def check(self) -> str:
        return f"{self.server.check()}: huey queue ({self.pending()} pending)"
