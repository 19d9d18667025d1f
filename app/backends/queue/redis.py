"""Rung 2+: Huey's RedisHuey on the shared connection pool; workers on any node consume the same queue.

Huey pickles tasks, so whoever can write to this Redis can run code in the workers: keep it on a private network
with a password. Dequeues poll (RPOP) rather than block, so run_pending() returns as soon as the queue is empty;
the consumers' polling (initial 50 ms, at most 0.5 s apart) is the same as on SQLite.
"""

from __future__ import annotations

from typing import Any

from huey import RedisHuey

from app.backends.queue.huey_queue import HueyQueue
from app.backends.redis_server import RedisServer

CLAIM_PREFIX = "queue:periodic:"  # beside Huey's own "huey.*" keys
# A claim outlives its minute by far, so a consumer whose scheduler checks late still finds it.
CLAIM_SECONDS = 3600


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

    def claim_minute(self, name: str, minute: int) -> bool:
        with self.server.client() as r:
            return bool(r.set(f"{CLAIM_PREFIX}{name}:{minute}", 1, nx=True, ex=CLAIM_SECONDS))

    def check(self) -> str:
        return f"{self.server.check()}: huey queue ({self.pending()} pending)"
