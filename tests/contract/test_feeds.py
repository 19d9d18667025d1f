"""The FeedStore seam: each user's home feed as post ids, newest first, capped, paged by cursor."""

from __future__ import annotations

import pytest

from app import ids

SHARDS = 8  # tests/backends.py TEST_LOGICAL_SHARDS
T0 = 40_000_000_000  # ms since the ID epoch; any fixed time keeps the tests deterministic


def user(shard: int, n: int = 0) -> int:
    return ids.compose(T0 + n, shard, 0)


def post(n: int, shard: int = 0) -> int:
    """The n-th post in time order (later n, larger id), by an author on `shard`."""
    return ids.compose(T0 + 1000 + n, shard, n % 1024)


def test_a_new_feed_is_empty(feeds):
    assert feeds.page(user(0), None, 10) == []
    assert feeds.page(user(0), post(5), 10) == []


def test_add_is_idempotent(feeds):
    alice = user(1)
    feeds.add(post(1), [alice])
    feeds.add(post(1), [alice])  # a retried fan-out task
    feeds.add(post(1), [alice, alice])
    assert feeds.page(alice, None, 10) == [post(1)]


def test_pages_are_newest_first_without_gaps_or_repeats(feeds):
    alice = user(2)
    posts = [post(n, shard=n % SHARDS) for n in range(23)]
    for p in reversed(posts[::2]):  # arrival order must not matter
        feeds.add(p, [alice])
    for p in posts[1::2]:
        feeds.add(p, [alice])
    seen: list[int] = []
    before = None
    while True:
        page = feeds.page(alice, before, 5)
        assert len(page) <= 5
        if not page:
            break
        seen.extend(page)
        before = page[-1]
    assert seen == sorted(posts, reverse=True)


def test_the_cursor_is_exclusive(feeds):
    alice = user(0)
    for n in range(5):
        feeds.add(post(n), [alice])
    assert feeds.page(alice, post(3), 10) == [post(2), post(1), post(0)]
    assert feeds.page(alice, post(0), 10) == []
    assert feeds.page(alice, None, 2) == [post(4), post(3)]


def test_remove_takes_posts_out_of_one_feed(feeds):
    alice, bob = user(3), user(4)
    for n in range(4):
        feeds.add(post(n), [alice, bob])
    feeds.remove(alice, [post(1), post(3), post(99)])
    assert feeds.page(alice, None, 10) == [post(2), post(0)]
    assert feeds.page(bob, None, 10) == [post(3), post(2), post(1), post(0)]
    feeds.remove(alice, [])
    feeds.remove(alice, [post(1)])  # again: nothing to do, no error
    assert feeds.page(alice, None, 10) == [post(2), post(0)]


def test_remove_post_takes_one_post_out_of_many_feeds(feeds):
    followers = [user(s, n) for s in range(SHARDS) for n in range(2)]
    feeds.add(post(1), followers)
    feeds.add(post(2), followers)
    feeds.remove_post(post(2), followers[:-1])
    for follower in followers[:-1]:
        assert feeds.page(follower, None, 10) == [post(1)]
    assert feeds.page(followers[-1], None, 10) == [post(2), post(1)]


def test_fan_out_reaches_users_on_every_shard(feeds):
    followers = [user(s, n) for s in range(SHARDS) for n in range(3)]
    assert {ids.shard_of(u) for u in followers} == set(range(SHARDS))
    feeds.add(post(7), followers)
    feeds.add(post(8), iter(followers[::2]))  # any iterable
    for i, follower in enumerate(followers):
        expected = [post(8), post(7)] if i % 2 == 0 else [post(7)]
        assert feeds.page(follower, None, 10) == expected
    assert feeds.page(user(0, 99), None, 10) == [], "a user nobody fanned out to"


def test_feeds_are_capped_at_max_items_keeping_the_newest(build, feeds_name):
    backends = build("feeds", feeds_name, feeds={"max_items": 10})
    backends.db.migrate()
    feeds = backends.feeds
    alice, bob = user(5), user(6)
    cap = feeds.max_items
    assert cap == 10
    total = cap + 15
    for n in range(total):
        feeds.add(post(n), [alice])
    kept = feeds.page(alice, None, total)
    assert kept == [post(n) for n in reversed(range(total - cap, total))]
    # A late-arriving older post does not push out a newer one.
    feeds.add(post(0), [alice])
    assert feeds.page(alice, None, total) == kept
    # Exactly at the cap nothing is trimmed.
    for n in range(cap):
        feeds.add(post(n), [bob])
    assert len(feeds.page(bob, None, total)) == cap


def test_fill_replaces_whole_feeds_on_every_shard(feeds):
    users = [user(s, n) for s in range(SHARDS) for n in range(2)]
    stale, kept = users[0], users[-1]
    feeds.add(post(1), [stale, kept])
    wanted = {u: [post(10 + i + j, shard=j % SHARDS) for j in range(i % 4 + 1)] for i, u in enumerate(users[:-1])}
    feeds.fill((u, iter(reversed(p))) for u, p in wanted.items())  # any order, any iterables
    for u, expected in wanted.items():
        assert feeds.page(u, None, 10) == sorted(expected, reverse=True)
    assert feeds.page(kept, None, 10) == [post(1)], "a feed not given is left alone"
    feeds.fill([(stale, [post(2), post(2)]), (kept, [])])
    assert feeds.page(stale, None, 10) == [post(2)]
    assert feeds.page(kept, None, 10) == []
    feeds.add(post(3), [stale])  # fan-out carries on as usual after a fill
    assert feeds.page(stale, None, 10) == [post(3), post(2)]
    feeds.fill([])


def test_fill_keeps_the_newest_max_items(build, feeds_name):
    backends = build("feeds", feeds_name, feeds={"max_items": 10})
    backends.db.migrate()
    feeds = backends.feeds
    alice = user(7)
    feeds.fill([(alice, [post(n) for n in range(25)])])
    assert feeds.page(alice, None, 100) == [post(n) for n in reversed(range(15, 25))]
    feeds.add(post(0), [alice])  # older than all ten: no room for it
    assert feeds.page(alice, None, 100) == [post(n) for n in reversed(range(15, 25))]


@pytest.mark.parametrize("limit", [1, 3])
def test_limit_is_respected(feeds, limit):
    alice = user(6)
    for n in range(5):
        feeds.add(post(n), [alice])
    assert feeds.page(alice, None, limit) == [post(n) for n in range(4, 4 - limit, -1)]


def test_check_reports_the_store(feeds):
    assert feeds.check()
