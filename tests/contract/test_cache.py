"""The Cache seam: JSON values with a ttl, only-if-absent adds, and read-through with one filler per key."""

from __future__ import annotations

import json
import stat
import threading
import time
import zlib

import apsw
import pytest
import redis

JSON_VALUES = [
    {"user": 1, "tags": ["a", "b"], "nested": {"ok": True}},
    [1, "two", 3.5, None],
    "héllo wörld",
    12345678901234,
    0,
    False,
    "",
]


def _wait_until(predicate, timeout: float) -> float:
    """Poll until predicate() is true; return the seconds it took."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, f"not true within {timeout}s"
        time.sleep(0.02)
    return time.monotonic() - start


def test_miss_is_none(cache):
    assert cache.get("nothing-here") is None
    assert cache.get_many(["nothing-here", "nor-here"]) == {}


@pytest.mark.parametrize("value", JSON_VALUES, ids=lambda v: type(v).__name__ + ":" + repr(v)[:12])
def test_json_values_round_trip(cache, value):
    cache.set("k", value, 60)
    got = cache.get("k")
    assert got == value and type(got) is type(value)


def test_tuples_come_back_as_lists_like_json(cache):
    cache.set("t", (1, 2), 60)
    assert cache.get("t") == [1, 2]


def test_set_overwrites_and_delete_removes(cache):
    cache.set("k", "one", 60)
    cache.set("k", "two", 60)
    assert cache.get("k") == "two"
    cache.delete("k")
    assert cache.get("k") is None
    cache.delete("k")  # deleting a missing key is fine (writers delete blindly)
    cache.delete("never-set")


def test_ttl_expires_entries_and_leases(cache):
    assert cache.add("lease", "a", 1) is True
    assert cache.add("lease", "b", 1) is False
    cache.set("long", "v", 60)
    cache.set("short", "v", 1)
    assert cache.get("short") == "v"
    waited = _wait_until(lambda: cache.get("short") is None, timeout=3)
    assert waited > 0.5, "expired long before its ttl"
    assert cache.get("long") == "v"
    # Polled, not assumed from "short": memcached servers each tick their own second, so two keys on two servers
    # with the same ttl may expire up to a second apart.
    _wait_until(lambda: cache.add("lease", "c", 60), timeout=3)  # an expired lease must be takeable
    assert cache.get("lease") == "c"


def test_add_sets_only_when_absent(cache):
    assert cache.add("k", {"v": 1}, 60) is True
    assert cache.add("k", {"v": 2}, 60) is False
    assert cache.get("k") == {"v": 1}
    cache.set("other", 1, 60)
    assert cache.add("other", 2, 60) is False
    cache.delete("k")
    assert cache.add("k", {"v": 3}, 60) is True
    assert cache.get("k") == {"v": 3}


def test_add_is_won_by_one_thread_only(cache):
    winners = []
    barrier = threading.Barrier(8)

    def contend(i):
        barrier.wait()
        if cache.add("contended", i, 60):
            winners.append(i)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(winners) == 1
    assert cache.get("contended") == winners[0]


def test_get_many_returns_present_keys_by_the_callers_key(cache):
    long_key = "feed:" + "x" * 5000
    cache.set("a", 1, 60)
    cache.set("with space", [2], 60)
    cache.set(long_key, {"three": 3}, 60)
    assert cache.get_many(["a", "missing", "with space", long_key]) == {
        "a": 1,
        "with space": [2],
        long_key: {"three": 3},
    }


def test_none_cannot_be_cached(cache):
    with pytest.raises(ValueError):
        cache.set("k", None, 60)
    assert cache.get("k") is None


@pytest.mark.parametrize("value", [{1, 2}, object(), b"bytes"], ids=["set", "object", "bytes"])
def test_values_that_are_not_json_are_refused(cache, value):
    with pytest.raises((TypeError, ValueError)):
        cache.set("k", value, 60)
    assert cache.get("k") is None


def test_awkward_keys_work_and_stay_distinct(cache):
    keys = [
        "with space",
        "with_space",
        "tab\there",
        "new\nline",
        "ünïcode 🌅",
        "k" * 250,
        "k" * 251,
        "k" * 10_000,
        "k" * 10_000 + "!",
        "lease:x",
        "x",
    ]
    for i, key in enumerate(keys):
        cache.set(key, i, 60)
    assert [cache.get(k) for k in keys] == list(range(len(keys)))
    cache.delete("k" * 10_000)
    assert cache.get("k" * 10_000) is None
    assert cache.get("k" * 10_000 + "!") == 8


def test_storage_is_private_and_never_pickled(cache, cache_name):
    secret = {"viewer": 7, "html": "<p>private</p>"}
    cache.set("page:7", secret, 60)
    cache.add("flag", True, 60)
    payloads = _stored_payloads(cache_name, cache)
    assert payloads, "found nothing stored"
    decoded = [json.loads(p) for p in payloads]  # JSON, so never a pickle
    assert secret in decoded and True in decoded


def _stored_payloads(cache_name: str, cache) -> list[bytes]:
    """The raw stored values, read past the backend as an attacker with its storage would."""
    if cache_name == "memcached":
        return _memcached_payloads(cache.servers)
    if cache_name == "redis":  # the test's database holds nothing else
        raw = redis.Redis.from_url(cache.server.url)
        try:
            keys = list(raw.scan_iter("*"))
            assert all(raw.ttl(key) > 0 for key in keys), "a cache entry without an expiry lives forever"
            return [raw.get(key) for key in keys]
        finally:
            raw.close()
    if cache_name != "disk":
        raise NotImplementedError(f"add how to read {cache_name!r}'s raw stored values to this test")
    mode = stat.S_IMODE(cache.directory.stat().st_mode)
    assert mode == 0o700, f"cache dir is {oct(mode)}, should be owner-only"
    conn = apsw.Connection(str(cache.directory / "cache.db"), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        rows = list(conn.execute("SELECT mode, value, filename FROM Cache"))
    finally:
        conn.close()
    payloads = []
    for row_mode, value, filename in rows:
        assert row_mode != 4, "a value was stored with diskcache's pickle mode"  # diskcache.core.MODE_PICKLE
        raw = value if filename is None else (cache.directory / filename).read_bytes()
        payloads.append(zlib.decompress(raw))
    return payloads


def _memcached_payloads(servers: list[str]) -> list[bytes]:
    """Every value on every server, by a plain client (no deserializer) over the keys memcached lists."""
    from pymemcache.client.base import Client

    from tests.server_memcached import stored_keys

    payloads = []
    for address in servers:
        host, _, port = address.rpartition(":")
        client = Client((host, int(port)), timeout=5)
        try:
            payloads.extend(client.get(key) for key in stored_keys(address))
        finally:
            client.close()
    return payloads


# --- read-through -------------------------------------------------------------------------------


def test_get_or_fill_fills_once_then_serves_from_cache(cache):
    calls = []

    def fill():
        calls.append(1)
        return {"n": len(calls)}

    assert cache.get_or_fill("k", fill, 60) == {"n": 1}
    assert cache.get_or_fill("k", fill, 60) == {"n": 1}
    assert len(calls) == 1
    assert cache.get("k") == {"n": 1}


def test_get_or_fill_does_not_cache_none(cache):
    calls = []

    def fill():
        calls.append(1)
        return None

    assert cache.get_or_fill("k", fill, 60) is None
    assert cache.get_or_fill("k", fill, 60) is None
    assert len(calls) == 2


def test_get_or_fill_runs_one_fill_for_racing_callers(cache):
    fills = []
    barrier = threading.Barrier(8)
    results = [None] * 8

    def fill():
        fills.append(1)
        time.sleep(0.3)  # a slow query; the others must wait for it, not run their own
        return ["expensive"]

    def reader(i):
        barrier.wait()
        results[i] = cache.get_or_fill("hot", fill, 60)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [["expensive"]] * 8
    assert len(fills) == 1


def test_invalidate_during_a_slow_fill_keeps_the_stale_value_out(cache):
    started, go = threading.Event(), threading.Event()
    result = {}

    def stale_fill():
        started.set()
        assert go.wait(5)
        return "stale"

    reader = threading.Thread(target=lambda: result.setdefault("v", cache.get_or_fill("post:1", stale_fill, 60)))
    reader.start()
    assert started.wait(5)
    cache.invalidate("post:1")  # the writer committed a change while the fill was reading
    go.set()
    reader.join(5)
    assert result["v"] == "stale"  # that caller gets what it read...
    assert cache.get("post:1") is None  # ...but nobody else will
    assert cache.get_or_fill("post:1", lambda: "fresh", 60) == "fresh"
    assert cache.get("post:1") == "fresh"


def test_invalidate_removes_the_value(cache):
    cache.set("a", 1, 60)
    cache.set("b", 2, 60)
    cache.invalidate("a", "b", "never-set")
    assert cache.get_many(["a", "b"]) == {}


def _outage(*args, **kwargs):
    raise ConnectionError("cache server is down")


def test_a_cache_outage_reads_through(cache, monkeypatch):
    monkeypatch.setattr(cache, "get", _outage)
    assert cache.get_or_fill("k", lambda: "from the database", 60) == "from the database"
    for method in ("add", "set", "delete", "get_many"):
        monkeypatch.setattr(cache, method, _outage)
    assert cache.get_or_fill("k", lambda: "again", 60) == "again"
    cache.invalidate("k")  # never raises: the ttl cleans up


def test_a_cache_that_fails_to_lease_still_answers(cache, monkeypatch):
    monkeypatch.setattr(cache, "add", _outage)
    assert cache.get_or_fill("k", lambda: "v1", 60) == "v1"


def test_a_failed_store_does_not_hold_up_the_next_reader(cache, monkeypatch):
    # A value the cache will not take (too big for memcached, a blip) must not leave the lease
    # behind: the next reader would wait LEASE_WAIT_SECONDS for a fill that never comes.
    monkeypatch.setattr(cache, "set", _outage)
    assert cache.get_or_fill("k", lambda: "v1", 60) == "v1"
    monkeypatch.undo()
    start = time.monotonic()
    assert cache.get_or_fill("k", lambda: "v2", 60) == "v2"
    assert time.monotonic() - start < 0.5, "the failed fill's lease made the next reader wait"
    assert cache.get("k") == "v2"


def test_a_failing_fill_does_not_hold_up_the_next_reader(cache):
    def broken_fill():
        raise TimeoutError("database busy")

    with pytest.raises(TimeoutError):
        cache.get_or_fill("k", broken_fill, 60)
    start = time.monotonic()
    assert cache.get_or_fill("k", lambda: "v2", 60) == "v2"
    assert time.monotonic() - start < 0.5, "the failed fill's lease made the next reader wait"
    assert cache.get("k") == "v2"
