"""What the Redis backends do beyond the seams' contract tests: exact feed order and cap under concurrency, fan-out
in few round trips, counters that always expire, one pub/sub connection per process surviving a server restart,
and a stopped server (the cache reads through, everything else raises RedisUnavailable naming the server)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from app import ids
from app.backends.events.redis import MANY
from app.backends.factory import Backends
from app.backends.redis_server import DOWN_SECONDS, RedisUnavailable
from tests.backends import build


def on_redis(seam: str, tmp_path, url: str, **sections) -> Backends:
    return build(seam, "redis", tmp_path, {"redis_url": url}, **sections)


@pytest.fixture
def opened() -> Iterator[list[Backends]]:
    made: list[Backends] = []
    yield made
    for backends in made:
        backends.close()


@pytest.fixture
def node(opened, tmp_path, redis_url):
    """`node(seam, **sections)`: Backends whose `seam` is on the test's Redis database, as one more app node."""

    def make(seam: str, **sections) -> Backends:
        backends = on_redis(seam, tmp_path, redis_url, **sections)
        opened.append(backends)
        return backends

    return make


def raw(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


# --- feeds --------------------------------------------------------------------------------------------------------


def test_ids_a_double_cannot_tell_apart_keep_their_order_and_cursor(node):
    feeds = node("feeds").feeds
    # Late in the id space, one millisecond and shard: ids 1 apart, which a sorted-set score (a double, 53 bits)
    # would make equal.
    ms = (1 << ids.TIME_BITS) - 2
    posts = [ids.compose(ms, 4095, seq) for seq in range(0, 1024, 97)]
    assert len({float(p) for p in posts}) < len(posts), "the ids must collide as doubles for this test to mean much"
    user = ids.compose(1, 3, 0)
    for post in reversed(posts):
        feeds.add(post, [user])
    newest_first = sorted(posts, reverse=True)
    assert feeds.page(user, None, 100) == newest_first
    for i, cursor in enumerate(newest_first):
        assert feeds.page(user, cursor, 2) == newest_first[i + 1 : i + 3]
    assert feeds.page(user, ids.MAX_ID, 1) == newest_first[:1]
    assert feeds.page(user, ids.MAX_ID + 1, 1) == newest_first[:1]  # past the largest id: from the top


def test_the_cap_is_exact_under_concurrent_fan_outs(node):
    feeds = node("feeds", feeds={"max_items": 20}).feeds
    users = [ids.compose(10 + n, n % 8, 0) for n in range(30)]
    posts = [ids.compose(1_000_000 + n, n % 8, n % 1024) for n in range(240)]
    errors: list[BaseException] = []
    largest_seen = [0]
    done = threading.Event()

    def writer(mine: list[int]) -> None:
        try:
            for post in mine:
                feeds.add(post, users)
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        while not done.is_set():
            largest_seen[0] = max(largest_seen[0], len(feeds.page(users[0], None, 1000)))

    writers = [threading.Thread(target=writer, args=(posts[i::6],)) for i in range(6)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(60)
    done.set()
    watcher.join(10)
    assert not errors
    assert 0 < largest_seen[0] <= 20, "a reader saw a feed past its cap"
    newest = sorted(posts, reverse=True)[:20]
    for user in users:
        assert feeds.page(user, None, 1000) == newest


def test_a_fan_out_of_a_thousand_followers_is_one_round_trip(node, monkeypatch):
    feeds = node("feeds").feeds
    round_trips: list[str] = []
    original = redis.client.Pipeline.execute
    monkeypatch.setattr(redis.Redis, "execute_command", lambda self, *a, **k: round_trips.append(a[0]))
    monkeypatch.setattr(
        redis.client.Pipeline, "execute", lambda self, *a, **k: (round_trips.append("pipeline"), original(self))[1]
    )
    followers = [ids.compose(5 + n, n % 8, 0) for n in range(2500)]
    feeds.add(ids.compose(9_000_000, 1, 1), followers[:1000])
    assert round_trips == ["EVALSHA"]  # one script call adds and trims every feed
    round_trips.clear()
    feeds.add(ids.compose(9_000_001, 1, 1), followers)
    assert round_trips == ["EVALSHA"] * 3
    round_trips.clear()
    feeds.remove_post(ids.compose(9_000_001, 1, 1), followers)
    assert round_trips == ["pipeline"] * 3


# --- kv -----------------------------------------------------------------------------------------------------------


def test_a_counter_always_has_an_expiry(node, redis_url):
    kv = node("kv").kv
    assert kv.incr("rate:login:x", 60) == 1
    server = raw(redis_url)
    try:
        assert 0 < server.pttl("kv:rate:login:x") <= 60_000
        server.set("kv:rate:login:y", 5)  # left without an expiry (say, by an older version): it gets one now
        assert kv.incr("rate:login:y", 30) == 6
        assert 0 < server.pttl("kv:rate:login:y") <= 30_000
        kv.incr("rate:login:x", 600)  # a later increment does not extend the window
        assert server.pttl("kv:rate:login:x") <= 60_000
    finally:
        server.close()


def test_counters_are_shared_by_every_node(node):
    first, second = node("kv").kv, node("kv").kv
    assert [first.incr("rate:ip", 60), second.incr("rate:ip", 60), first.incr("rate:ip", 60)] == [1, 2, 3]
    first.set("session:abc", {"user_id": 7}, 60)
    assert second.get("session:abc") == {"user_id": 7}


# --- events -------------------------------------------------------------------------------------------------------


def pubsub_clients(url: str) -> int:
    server = raw(url)
    try:
        return sum(1 for client in server.client_list() if "P" in client["flags"])
    finally:
        server.close()


def test_one_pubsub_connection_serves_every_subscription_and_closing_unsubscribes(node, redis_url):
    events = node("events").events
    subs = [events.subscribe([f"user:{n % 25}"]) for n in range(50)]
    server = raw(redis_url)
    try:
        assert pubsub_clients(redis_url) == 1
        assert len(server.pubsub_channels()) == 26  # and publish_many's channel
        events.publish("user:3", {"n": 1})
        assert subs[3].get(timeout=2) == ("user:3", {"n": 1}) and subs[28].get(timeout=2) == ("user:3", {"n": 1})
        for sub in subs[:25]:
            sub.close()
        assert len(server.pubsub_channels()) == 26, "a channel with a listener left was unsubscribed"
        for sub in subs[25:]:
            sub.close()
        deadline = time.monotonic() + 5
        while server.pubsub_channels() != [(events.prefix + MANY).encode()]:
            assert time.monotonic() < deadline, "closed subscriptions left channels subscribed"
            time.sleep(0.02)
    finally:
        server.close()


def test_sites_on_other_databases_of_one_server_never_hear_each_other(opened, tmp_path, new_redis_url):
    site_a = on_redis("events", tmp_path / "a", new_redis_url())
    site_b = on_redis("events", tmp_path / "b", new_redis_url())
    opened.extend([site_a, site_b])
    with site_a.events.subscribe(["user:1"]) as heard_a, site_b.events.subscribe(["user:1"]) as heard_b:
        site_b.events.publish("user:1", "for site b")
        assert heard_b.get(timeout=2) == ("user:1", "for site b")
        assert heard_a.get(timeout=0.3) is None


def test_close_while_another_thread_waits_in_get(node):
    # live.py abandons a waiting get() when the client leaves, then closes the subscription.
    events = node("events").events
    sub = events.subscribe(["user:1"])
    waited: list[object] = []
    waiter = threading.Thread(target=lambda: waited.append(sub.get(timeout=1.0)))
    waiter.start()
    time.sleep(0.1)
    start = time.monotonic()
    sub.close()
    assert time.monotonic() - start < 0.5
    waiter.join(3)
    assert waited == [None]
    events.close()


def test_an_open_subscription_hears_again_after_the_server_restarts(opened, tmp_path, own_redis):
    backends = on_redis("events", tmp_path, own_redis.url(5))
    opened.append(backends)
    events = backends.events
    with events.subscribe(["user:9"]) as sub:
        events.publish("user:9", "before")
        assert sub.get(timeout=2) == ("user:9", "before")
        own_redis.stop()
        with pytest.raises(RedisUnavailable, match=re.escape(f"127.0.0.1:{own_redis.port}/5")):
            events.publish("user:9", "while down")
        own_redis.start()
        deadline = time.monotonic() + 15
        while True:  # the listener reconnects and subscribes again within a few seconds
            assert time.monotonic() < deadline, "the subscription never heard anything after the restart"
            try:
                events.publish("user:9", "after")
            except RedisUnavailable:
                pass
            if sub.get(timeout=0.3) == ("user:9", "after"):
                break
    assert events.check().startswith(f"redis 127.0.0.1:{own_redis.port}/5")


def noop(*args) -> None:
    """A task body (module level: Huey finds tasks by module and name)."""


# --- a stopped server ---------------------------------------------------------------------------------------------


def test_a_stopped_server_degrades_the_cache_and_names_itself_everywhere_else(opened, tmp_path, own_redis):
    url = own_redis.url(1)
    sections = {s: {"backend": "redis", "redis_url": url} for s in ("cache", "feeds", "sessions", "queue", "events")}
    backends = build("kv", "redis", tmp_path, {"redis_url": url}, **sections)
    opened.append(backends)
    backends.cache.set("k", "cached", 60)
    backends.kv.set("session:a", {"user_id": 1}, 60)
    own_redis.stop()

    start = time.monotonic()
    assert backends.cache.get_or_fill("k", lambda: "from the database", 60) == "from the database"
    assert backends.cache.get_or_fill("other", lambda: "also", 60) == "also"
    backends.cache.invalidate("k")  # never raises
    where = f"redis server 127.0.0.1:{own_redis.port}/1 is unavailable"
    backends.queue.register("noop", noop, retries=0)
    failing = {
        "kv.get": lambda: backends.kv.get("session:a"),
        "kv.incr": lambda: backends.kv.incr("rate:x", 60),
        "queue.enqueue": lambda: backends.queue.enqueue("noop", 1),
        "queue.pending": backends.queue.pending,
        "feeds.page": lambda: backends.feeds.page(1, None, 10),
        "feeds.add": lambda: backends.feeds.add(2, [1]),
        "feeds.fill": lambda: backends.feeds.fill([(1, [2])]),
        "events.publish": lambda: backends.events.publish("user:1", "x"),
        "events.publish_many": lambda: backends.events.publish_many(["user:1", "user:2"], "x"),
        "events.subscribe": lambda: backends.events.subscribe(["user:1"]),
    }
    for name, call in failing.items():
        with pytest.raises(RedisUnavailable) as raised:
            call()
        assert where in str(raised.value), name
    assert time.monotonic() - start < 3, "a stopped server must fail fast, not wait out timeouts"
    for seam, (ok, detail) in backends.checks().items():
        if seam in ("cache", "feeds", "queue", "kv", "events"):
            assert not ok and where in detail, (seam, detail)

    own_redis.start()  # back, empty (nothing is saved): sessions are gone, everything works again
    time.sleep(DOWN_SECONDS)
    assert backends.kv.get("session:a") is None
    backends.kv.set("session:b", {"user_id": 2}, 60)
    assert backends.kv.get("session:b") == {"user_id": 2}
    assert backends.cache.get_or_fill("k", lambda: "filled again", 60) == "filled again"
    assert backends.cache.get("k") == "filled again"
    assert all(ok for ok, _ in backends.checks().values())
