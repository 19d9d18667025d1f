"""The FeedStore seam: each user's home feed as post ids, newest first, capped.

Fan-out adds one post to many feeds; adding twice changes nothing, so a retried task is harmless. `fill` writes many
whole feeds at once (`main.py seed`), one round trip or transaction per batch rather than one per post.
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
    def fill(self, feeds: Iterable[tuple[int, Iterable[int]]]) -> None:
        """Make each (user id, post ids) user's feed exactly those posts, the newest `max_items` of them, replacing
        what it held (an empty list empties it)."""

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
