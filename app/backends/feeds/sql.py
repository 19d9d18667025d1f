"""Rung 0: feeds as rows of `feed_items` on each user's shard, through the Database seam."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from app import ids
from app.backends.database.base import Database
from app.backends.feeds.base import FeedStore

_TRIM = """
DELETE FROM feed_items WHERE user_id = ? AND post_id <= (
    SELECT post_id FROM feed_items WHERE user_id = ? ORDER BY post_id DESC LIMIT 1 OFFSET ?)
"""


class SqlFeedStore(FeedStore):
    def __init__(self, db: Database, max_items: int):
        self.db = db
        self.max_items = max_items

    def _by_shard(self, user_ids: Iterable[int]) -> dict[int, list[int]]:
        groups: dict[int, list[int]] = defaultdict(list)
        for user_id in set(user_ids):
            groups[ids.shard_of(user_id)].append(user_id)
        return groups

    def add(self, post_id: int, user_ids: Iterable[int]) -> None:
        for shard, users in self._by_shard(user_ids).items():
            with self.db.write(shard) as conn:
                conn.run_many(
                    "INSERT INTO feed_items (user_id, post_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    [(u, post_id) for u in users],
                )
                conn.run_many(_TRIM, [(u, u, self.max_items) for u in users])

    def remove(self, user_id: int, post_ids: Iterable[int]) -> None:
        rows = [(user_id, p) for p in set(post_ids)]
        if rows:
            with self.db.write(ids.shard_of(user_id)) as conn:
                conn.run_many("DELETE FROM feed_items WHERE user_id = ? AND post_id = ?", rows)

    def remove_post(self, post_id: int, user_ids: Iterable[int]) -> None:
        for shard, users in self._by_shard(user_ids).items():
            with self.db.write(shard) as conn:
                conn.run_many("DELETE FROM feed_items WHERE user_id = ? AND post_id = ?", [(u, post_id) for u in users])

    def page(self, user_id: int, before: int | None, limit: int) -> list[int]:
        with self.db.read(ids.shard_of(user_id)) as conn:
            rows = conn.all(
                "SELECT post_id FROM feed_items WHERE user_id = ? AND post_id < ? ORDER BY post_id DESC LIMIT ?",
                (user_id, before if before is not None else ids.MAX_ID, limit),  # MAX_ID + 1 overflows BIGINT
            )
        return [r["post_id"] for r in rows]

    def check(self) -> str:
        with self.db.read(0) as conn:
            conn.value("SELECT count(*) FROM feed_items WHERE user_id = 0")
        return f"sql table feed_items (capped at {self.max_items} per user)"
