"""The SQL FeedStore's own promises beyond the seam's contract: trims now and then keep storage near the cap, and a
fan-out chunk is written in one transaction per place."""

from __future__ import annotations

from app import ids
from app.backends.feeds.sql import TRIM_EVERY, SqlFeedStore

T0 = 40_000_000_000


def stored(ctx, user_id: int) -> int:
    with ctx.db.read(ids.shard_of(user_id)) as conn:
        return conn.value("SELECT count(*) FROM feed_items WHERE user_id = ?", (user_id,))


def test_storage_stays_near_the_cap_and_the_top_is_exactly_the_newest(ctx):
    feeds = SqlFeedStore(ctx.db, max_items=10)
    alice = ids.compose(T0, 3, 0)
    sizes = []
    posts = [ids.compose(T0 + 1000 + n, n % 8, n % 1024) for n in range(600)]
    for post in posts:
        feeds.add(post, [alice])
        sizes.append(stored(ctx, alice))
        assert feeds.page(alice, None, 1000) == sorted(posts[: len(sizes)], reverse=True)[:10]
    assert max(sizes) <= 10 + 8 * TRIM_EVERY, "trims keep up"
    assert sizes.count(10) > 600 / (2 * TRIM_EVERY), "and happen about one add in TRIM_EVERY"


def test_a_chunk_over_many_shards_trims_a_share_of_the_feeds_in_one_transaction(ctx, monkeypatch):
    feeds = SqlFeedStore(ctx.db, max_items=10)
    followers = [ids.compose(T0 + n, n % ctx.db.logical_shards, 0) for n in range(400)]
    for n in range(11):
        feeds.add(ids.compose(T0 + 1000 + n, 0, n), followers)
    opened = []
    write = ctx.db.write

    def counting(shard):
        opened.append(shard)
        return write(shard)

    monkeypatch.setattr(ctx.db, "write", counting)
    feeds.add(ids.compose(T0 + 2000, 0, 0), followers)
    assert opened == [0], "every shard of the SQLite file in one transaction"
    over = sum(stored(ctx, f) > 10 for f in followers)
    assert 0 < 400 - over < 400, "some feeds were trimmed, not all"
    for follower in followers:
        assert len(feeds.page(follower, None, 100)) == 10
