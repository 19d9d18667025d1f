"""The session and rate-limit store: JSON values with an expiry, atomic counters per window."""

from __future__ import annotations

import threading
import time

import pytest

from tests.backends import KV_NATIVE_EXPIRY


def test_get_set_delete(kv):
    assert kv.get("session:abc") is None
    session = {"user_id": 1234567890123, "csrf": "t0k", "flags": [1, 2], "admin": False}
    kv.set("session:abc", session, 60)
    assert kv.get("session:abc") == session
    kv.set("session:abc", {"user_id": 2}, 60)
    assert kv.get("session:abc") == {"user_id": 2}
    kv.delete("session:abc")
    assert kv.get("session:abc") is None
    kv.delete("session:abc")  # logging out twice is fine


@pytest.mark.parametrize("value", [0, False, "", [], {}, "ünïcode", 2**62])
def test_falsy_and_odd_values_survive(kv, value):
    kv.set("k", value, 60)
    got = kv.get("k")
    assert got == value and type(got) is type(value)


def test_keys_are_independent(kv):
    kv.set("a", 1, 60)
    kv.set("a ", 2, 60)
    kv.set("A", 3, 60)
    assert [kv.get(k) for k in ("a", "a ", "A")] == [1, 2, 3]


def test_incr_counts_from_one(kv):
    assert [kv.incr("login:ip:10.0.0.1", 60) for _ in range(5)] == [1, 2, 3, 4, 5]
    assert kv.incr("login:ip:10.0.0.2", 60) == 1


def test_entries_and_counters_expire(kv, kv_name):
    assert [kv.incr("window", 1) for _ in range(3)] == [1, 2, 3]
    kv.incr("stale-counter", 1)
    kv.set("long", "v", 60)
    kv.set("short", "v", 1)  # set last: once it has expired, so have the counters
    assert kv.get("short") == "v"
    start = time.monotonic()
    while kv.get("short") is not None:
        assert time.monotonic() - start < 3, "a 1 s entry outlived 3 s"
        time.sleep(0.02)
    assert time.monotonic() - start > 0.5, "expired long before its ttl"
    assert kv.get("long") == "v"
    assert kv.incr("window", 60) == 1, "a counter must start again after its window"
    assert kv.incr("window", 60) == 2

    purged = kv.purge_expired()
    assert purged == (0 if kv_name in KV_NATIVE_EXPIRY else 2)  # "short" and "stale-counter"
    assert kv.purge_expired() == 0
    assert kv.get("long") == "v" and kv.get("short") is None
    assert kv.incr("stale-counter", 60) == 1
    assert kv.incr("window", 60) == 3


def test_incr_is_atomic_across_threads(kv):
    threads_n, each = 8, 50
    barrier = threading.Barrier(threads_n)
    seen: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def hammer():
        try:
            barrier.wait()
            mine = [kv.incr("hot", 60) for _ in range(each)]
            with lock:
                seen.extend(mine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert sorted(seen) == list(range(1, threads_n * each + 1)), "two callers got the same count"
    assert kv.incr("hot", 60) == threads_n * each + 1


def test_check_reports_the_store(kv):
    assert kv.check()
