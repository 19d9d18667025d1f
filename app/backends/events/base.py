"""The live-events seam: publish small JSON messages on named channels; subscribers wait for them.

Channels are per user (`user:<id>`) so a new post or a notification count reaches that user's open
pages through server-sent events. Delivery is best effort: a page that misses one catches up on load.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any


class Subscription(ABC):
    @abstractmethod
    def get(self, timeout: float) -> tuple[str, Any] | None:
        """The next (channel, message), or None after `timeout` seconds."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Events(ABC):
    @abstractmethod
    def publish(self, channel: str, message: Any) -> None: ...

    @abstractmethod
    def publish_many(self, channels: Iterable[str], message: Any) -> None:
        """The same message on each channel (a new post announced to every follower): in bulk, where the backend
        can, rather than one round trip per channel."""

    @abstractmethod
    def subscribe(self, channels: list[str]) -> Subscription: ...

    @abstractmethod
    def check(self) -> str: ...

    def close(self) -> None:
        """Release connections; the default has none."""
