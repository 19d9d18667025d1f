"""Rung 0: in-process broadcast. Reaches only subscribers in this process, so it needs one server
process (`server.workers = 1`) with the queue workers inside it; config validation enforces that."""

from __future__ import annotations

import queue
import threading
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from app.backends.events.base import Events, Subscription

MAX_BACKLOG = 100  # a subscriber that falls this far behind misses messages rather than grow


class LocalSubscription(Subscription):
    def __init__(self, owner: LocalEvents, channels: list[str]):
        self.owner = owner
        self.channels = list(channels)
        self.inbox: queue.Queue[tuple[str, Any]] = queue.Queue(MAX_BACKLOG)

    def get(self, timeout: float) -> tuple[str, Any] | None:
        try:
            return self.inbox.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.owner._unsubscribe(self)


class LocalEvents(Events):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[LocalSubscription]] = defaultdict(set)

    def publish(self, channel: str, message: Any) -> None:
        self.publish_many([channel], message)

    def publish_many(self, channels: Iterable[str], message: Any) -> None:
        with self._lock:  # once for them all: most channels of a fan-out have no subscriber here
            targets = [(c, sub) for c in channels for sub in self._subscribers.get(c, ())]
        for channel, sub in targets:
            try:
                sub.inbox.put_nowait((channel, message))
            except queue.Full:
                pass

    def subscribe(self, channels: list[str]) -> Subscription:
        sub = LocalSubscription(self, channels)
        with self._lock:
            for channel in channels:
                self._subscribers[channel].add(sub)
        return sub

    def _unsubscribe(self, sub: LocalSubscription) -> None:
        with self._lock:
            for channel in sub.channels:
                self._subscribers[channel].discard(sub)
                if not self._subscribers[channel]:
                    del self._subscribers[channel]

    def check(self) -> str:
        with self._lock:
            return f"in-process ({len(self._subscribers)} channels with listeners)"
