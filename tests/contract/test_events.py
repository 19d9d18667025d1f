"""The live-events seam: JSON messages on named channels, best effort, never blocking the publisher."""

from __future__ import annotations

import threading
import time

from tests.backends import EVENTS_SHARED


def test_a_subscriber_gets_what_is_published(events):
    with events.subscribe(["user:1"]) as sub:
        events.publish("user:1", {"type": "post", "id": 42})
        assert sub.get(timeout=2) == ("user:1", {"type": "post", "id": 42})


def test_get_returns_none_after_its_timeout(events):
    with events.subscribe(["user:1"]) as sub:
        start = time.monotonic()
        assert sub.get(timeout=0.2) is None
        assert 0.15 <= time.monotonic() - start < 1.5


def test_get_wakes_up_when_a_message_arrives(events):
    with events.subscribe(["user:1"]) as sub:
        timer = threading.Timer(0.1, events.publish, args=("user:1", "late"))
        timer.start()
        start = time.monotonic()
        assert sub.get(timeout=5) == ("user:1", "late")
        assert time.monotonic() - start < 2
        timer.join()


def test_every_subscriber_gets_each_message_in_order(events):
    subs = [events.subscribe(["user:1"]) for _ in range(3)]
    try:
        for n in range(5):
            events.publish("user:1", {"n": n})
        for sub in subs:
            assert [sub.get(timeout=2) for _ in range(5)] == [("user:1", {"n": n}) for n in range(5)]
    finally:
        for sub in subs:
            sub.close()


def test_only_subscribed_channels_arrive(events):
    with events.subscribe(["user:1", "user:2"]) as sub:
        events.publish("user:3", "not for me")
        events.publish("user:10", "not for me either")
        events.publish("user:2", "for me")
        events.publish("user:1", "me too")
        assert sub.get(timeout=2) == ("user:2", "for me")
        assert sub.get(timeout=2) == ("user:1", "me too")
        assert sub.get(timeout=0.2) is None


def test_publish_many_puts_one_message_on_each_channel(events):
    with events.subscribe(["user:1", "user:3"]) as sub, events.subscribe(["user:2"]) as other:
        events.publish_many(iter(["user:1", "user:2", "user:3", "user:404"]), {"type": "new_post"})
        events.publish_many([], "nothing")
        message = {"type": "new_post"}
        assert sorted([sub.get(timeout=2), sub.get(timeout=2)]) == [("user:1", message), ("user:3", message)]
        assert sub.get(timeout=0.2) is None
        assert other.get(timeout=2) == ("user:2", {"type": "new_post"})
        assert other.get(timeout=0.2) is None


def test_publish_many_reaches_thousands_of_channels(events):
    channels = [f"user:{n}" for n in range(2500)]  # more than one batch of a backend that batches
    with events.subscribe(channels[::1000] + [channels[-1]]) as sub:
        events.publish_many(channels, "hello")
        got = [sub.get(timeout=2) for _ in range(4)]
    assert sorted(got) == sorted((c, "hello") for c in ("user:0", "user:1000", "user:2000", "user:2499"))


def test_publishing_with_no_subscriber_is_fine(events):
    events.publish("user:404", {"ignored": True})
    with events.subscribe(["user:404"]) as sub:
        assert sub.get(timeout=0.1) is None, "an event published before subscribing arrived"


def test_close_unsubscribes(events):
    sub = events.subscribe(["user:1"])
    other = events.subscribe(["user:1"])
    try:
        sub.close()
        events.publish("user:1", "after close")
        assert sub.get(timeout=0.2) is None
        assert other.get(timeout=2) == ("user:1", "after close")
        sub.close()  # closing twice is fine
    finally:
        other.close()


def test_a_slow_subscriber_does_not_block_the_publisher(events):
    with events.subscribe(["user:1"]) as stuck, events.subscribe(["user:1"]) as live:
        start = time.monotonic()
        for n in range(2000):  # far beyond any backlog; `stuck` never reads
            events.publish("user:1", n)
            if n % 100 == 0:
                assert live.get(timeout=2) is not None
                while live.get(timeout=0) is not None:
                    pass
        assert time.monotonic() - start < 5, "publishing waited for a slow subscriber"
        backlog = []
        while (message := stuck.get(timeout=0.1)) is not None:
            backlog.append(message[1])
        assert 0 < len(backlog) < 2000, "the backlog should be bounded"
        assert backlog == sorted(backlog), "kept messages arrive in order"
        # Once it catches up, it hears new messages again.
        events.publish("user:1", "fresh")
        assert stuck.get(timeout=2) == ("user:1", "fresh")


def test_another_node_hears_a_shared_bus_and_never_a_local_one(events, build, events_name):
    # Two Backends from the same config, as two app nodes (or a worker and a web server) of one site.
    other = build("events", events_name).events
    with events.subscribe(["user:1"]) as here, other.subscribe(["user:1"]) as there:
        other.publish("user:1", {"from": "the other node"})
        assert there.get(timeout=2) == ("user:1", {"from": "the other node"})
        if events_name in EVENTS_SHARED:
            assert here.get(timeout=2) == ("user:1", {"from": "the other node"})
        else:  # why [server] workers must stay 1 with this backend
            assert here.get(timeout=0.3) is None


def test_another_node_hears_publish_many(events, build, events_name):
    other = build("events", events_name).events
    with events.subscribe(["user:1", "user:2"]) as here:
        other.publish_many(["user:1", "user:3", "user:2"], {"type": "new_post"})
        if events_name in EVENTS_SHARED:
            got = sorted([here.get(timeout=2), here.get(timeout=2)])
            assert got == [("user:1", {"type": "new_post"}), ("user:2", {"type": "new_post"})]
        assert here.get(timeout=0.3) is None


def test_check_reports_the_bus(events):
    assert events.check()
