"""The FeedStore seam: each user's home feed as post ids, newest first, capped.

Fan-out adds one post to many feeds; adding twice changes nothing, so a retried task is harmless.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable


class FeedStore(ABC):
    max_items: int

    @abstractmethod
    def add(self, post_id: int, user_ids: Iterable[int]) -> None:
        """Put `post_id` into each user's feed (idempotent), keeping each to `max_items`."""

    @abstractmethod
    def remove(self, user_id: int, post_ids: Iterable[int]) -> None:
        """Take posts out of one user's feed (unfollow, block)."""

    @abstractmethod
    def remove_post(self, post_id: int, user_ids: Iterable[int]) -> None:
        """Take one post out of many feeds (the post was deleted)."""

    @abstractmethod
    def page(self, user_id: int, before: int | None, limit: int) -> list[int]:
        """Up to `limit` post ids older than `before` (or the newest), newest first."""

    @abstractmethod
    def check(self) -> str: ...
