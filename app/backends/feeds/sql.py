"""Rung 0: feeds as rows of `feed_items` on each user's shard, through the Database seam.

Fan-out writes one post into the feeds of a chunk of followers spread over many shards. Shards that share a place
(`Database.groups_for`: every shard of the rung-0 SQLite file; a single shard's schema on Postgres) are written in
one transaction on that place, so a chunk costs one commit per place rather than one per logical shard. Each row
still lives on its user's shard; nothing spans two places.

Trimming a feed to max_items means finding its max_items-th newest entry: a walk of up to max_items index entries
(about 100 µs for a full feed of 800 here), ten times the cost of the insert itself. So add() trims each feed on
about one add in TRIM_EVERY (chosen by a hash of the user and the post, so every chunk carries an even share), and
a feed may hold up to about TRIM_EVERY entries past max_items between trims. Reads stay within the cap where it
shows: a page from the top never returns more than max_items entries, and those are exactly the newest.
"""

from __future__ import annotations

from collections.abc import Iterable

from app import ids
from app.backends.database.base import Database
from app.backends.feeds.base import FeedStore

TRIM_EVERY = 16  # a power of two
_MIX, _MASK = 0x9E3779B97F4A7C15, (1 << 64) - 1  # Fibonacci hashing: every bit of both ids moves the result
_TRIM = """
DELETE FROM feed_items WHERE user_id = ? AND post_id <= (
    SELECT post_id FROM feed_items WHERE user_id = ? ORDER BY post_id DESC LIMIT 1 OFFSET ?)
"""


def _trim_due(user_id: int, post_id: int) -> bool:
    """True for about one (user, post) pair in TRIM_EVERY, the same in every process."""
    return (((user_id * _MIX) & _MASK ^ post_id) * _MIX & _MASK) >> 40 & (TRIM_EVERY - 1) == 0


class SqlFeedStore(FeedStore):
    def __init__(self, db: Database, max_items: int):
        self.db = db
        self.max_items = max_items

    def _by_place(self, user_ids: Iterable[int]) -> list[tuple[int, list[int]]]:
        """Users batched by the place their shard lives in (Database.by_place), in key order within a batch:
        neighbouring index pages, fewer page reads."""
        return self.db.by_place(sorted(set(user_ids)), ids.shard_of)

    def add(self, post_id: int, user_ids: Iterable[int]) -> None:
        for shard, users in self._by_place(user_ids):
            due = [u for u in users if _trim_due(u, post_id)]
            with self.db.write(shard) as conn:
                conn.run_many(
                    "INSERT INTO feed_items (user_id, post_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    [(u, post_id) for u in users],
                )
                if due:
                    conn.run_many(_TRIM, [(u, u, self.max_items) for u in due])

    def fill(self, feeds: Iterable[tuple[int, Iterable[int]]]) -> None:
        newest = {user_id: sorted(set(post_ids))[-self.max_items :] for user_id, post_ids in feeds}
        for shard, users in self._by_place(newest):
            with self.db.write(shard) as conn:
                conn.run_many("DELETE FROM feed_items WHERE user_id = ?", [(u,) for u in users])
                rows = [(u, p) for u in users for p in newest[u]]
                conn.run_many("INSERT INTO feed_items (user_id, post_id) VALUES (?, ?)", rows)

    def remove(self, user_id: int, post_ids: Iterable[int]) -> None:
        rows = [(user_id, p) for p in set(post_ids)]
        if rows:
            with self.db.write(ids.shard_of(user_id)) as conn:
                conn.run_many("DELETE FROM feed_items WHERE user_id = ? AND post_id = ?", rows)

    def remove_post(self, post_id: int, user_ids: Iterable[int]) -> None:
        for shard, users in self._by_place(user_ids):
            with self.db.write(shard) as conn:
                conn.run_many("DELETE FROM feed_items WHERE user_id = ? AND post_id = ?", [(u, post_id) for u in users])

    def page(self, user_id: int, before: int | None, limit: int) -> list[int]:
        if before is None:  # from the top: never past the cap, even between trims
            before, limit = ids.MAX_ID, min(limit, self.max_items)  # (MAX_ID + 1 would overflow BIGINT)
        with self.db.read(ids.shard_of(user_id)) as conn:
            rows = conn.all(
                "SELECT post_id FROM feed_items WHERE user_id = ? AND post_id < ? ORDER BY post_id DESC LIMIT ?",
                (user_id, before, limit),
            )
        return [r["post_id"] for r in rows]

    def check(self) -> str:
        with self.db.read(0) as conn:
            conn.value("SELECT count(*) FROM feed_items WHERE user_id = 0")
        return f"sql table feed_items (capped at {self.max_items} per user)"
