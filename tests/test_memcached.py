"""memcached as the cache (rung 2): a server that dies, stalls or comes back slows Pinhole down and never breaks it,
and `[cache]` mistakes are one line naming the key. The seam's own contract is in tests/contract/test_cache.py."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from app.backends.cache import memcached as memcached_backend
from app.backends.cache.memcached import MemcachedCache
from app.config import ConfigError
from app.services import accounts, graph
from tests.backends import make_config
from tests.conftest import log_in, post_form
from tests.server_memcached import Memcached, stored_keys
from tests.test_feed import share, user


@pytest.fixture
def two_servers() -> Iterator[list[Memcached]]:
    """Two servers of this test's own, which it may stop."""
    servers = [Memcached(), Memcached()]
    yield servers
    for server in servers:
        server.stop()


def keys_on(server: Memcached) -> list[str]:
    return stored_keys(server.address)


def timed(call):
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


def test_pages_are_served_from_the_database_when_memcached_stops(make_site, two_servers):
    ctx, client = make_site(cache={"backend": "memcached", "servers": [s.address for s in two_servers]})
    ana, bob = user(ctx, "ana"), user(ctx, "bob")
    graph.follow(ctx, bob, ana)
    post_id = share(ctx, ana, caption="sunset over the harbour")
    assert log_in(client, "bob").status_code == 303
    first = client.get("/")
    assert first.status_code == 200 and f'id="post-{post_id}"' in first.text
    cards = [k for s in two_servers for k in keys_on(s) if k.startswith("card:")]
    assert cards, "the home feed did not use memcached"

    for stopped in range(len(two_servers)):  # one server down, then both
        two_servers[stopped].stop()
        for path, expected in (("/", f'id="post-{post_id}"'), (f"/p/{post_id}", "sunset over the harbour")):
            page, seconds = timed(lambda path=path: client.get(path))
            assert page.status_code == 200, (path, page.status_code)
            assert expected in page.text, path
            assert seconds < 3, f"{path} took {seconds:.1f}s with {stopped + 1} memcached server(s) down"
        explore = client.get("/explore")
        assert explore.status_code == 200 and f"/p/{post_id}" in explore.text
        # Writes invalidate cache keys: with the servers down they still succeed.
        comment = post_form(
            client, f"/p/{post_id}/comments", {"body": f"still here {stopped}"}, token_from=f"/p/{post_id}"
        )
        assert comment.status_code in (200, 303), comment.text[:300]
        assert f"still here {stopped}" in client.get(f"/p/{post_id}").text


def test_a_dead_server_is_ejected_and_its_keys_go_to_the_others(two_servers):
    cache = MemcachedCache([s.address for s in two_servers])
    try:
        keys = [f"k{i}" for i in range(40)]
        for key in keys:
            cache.set(key, key, 60)
        assert keys_on(two_servers[0]) and keys_on(two_servers[1]), "rendezvous hashing used one server only"
        two_servers[0].stop()
        failures = 0
        for key in keys:  # the first calls to reach the dead server fail (the caller reads through)...
            try:
                cache.set(key, key + "!", 60)
            except Exception:
                failures += 1
        # One on the pooled connection the server closed (if it was still open), one refused: then it is out.
        assert 1 <= failures <= 2
        # ...then every key lives on the server that answers.
        for key in keys:
            cache.set(key, key + "!", 60)
        assert cache.get_many(keys) == {key: key + "!" for key in keys}
        assert set(keys_on(two_servers[1])) >= set(keys)
        assert "down:" in cache.check() and two_servers[1].address in cache.check()
    finally:
        cache.close()


def test_a_server_that_comes_back_is_used_again(two_servers, monkeypatch):
    monkeypatch.setattr(memcached_backend, "DEAD_RETRY_SECONDS", 1)
    cache = MemcachedCache([s.address for s in two_servers])
    try:
        port = two_servers[0].port
        two_servers[0].stop()
        with pytest.raises(OSError):
            for i in range(20):  # some key hashes to the dead server
                cache.set(f"k{i}", i, 60)
        two_servers[0].start(port)
        time.sleep(1.2)
        for i in range(20):
            cache.set(f"k{i}", i, 60)
        assert keys_on(two_servers[0]), "the server that came back was never used again"
        assert cache.get_many([f"k{i}" for i in range(20)]) == {f"k{i}": i for i in range(20)}
    finally:
        cache.close()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers: a stalled memcached."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    listener.close()


def test_a_stalled_server_costs_one_short_timeout_then_is_skipped(silent_server):
    cache = MemcachedCache([silent_server])
    try:
        fills = []
        value, seconds = timed(lambda: cache.get_or_fill("k", lambda: fills.append(1) or "from the database", 60))
        assert value == "from the database" and fills == [1]
        assert seconds < 1.5, f"a stalled server held a read for {seconds:.1f}s"
        value, seconds = timed(lambda: cache.get_or_fill("k", lambda: "again", 60))
        assert value == "again" and seconds < 0.2, "the stalled server was not ejected"
        with pytest.raises(ConnectionError):
            cache.check()
    finally:
        cache.close()


def test_the_doctor_names_each_server(make_site, two_servers, capsys):
    from app.cli import main

    ctx, _client = make_site(cache={"backend": "memcached", "servers": [s.address for s in two_servers]})
    accounts.create_user(ctx, "ana", "correct horse battery", by_operator=True)
    assert main(["doctor", "--config", ctx.config.source]) == 0
    out = capsys.readouterr().out
    assert f"ok  [cache] memcached {two_servers[0].address}" in out and two_servers[1].address in out
    two_servers[0].stop()
    two_servers[1].stop()
    assert main(["doctor", "--config", ctx.config.source]) == 1
    assert "FAIL [cache] ConnectionError: no memcached server answers" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("cache", "says"),
    [
        ({"backend": "memcached"}, "[cache] backend = 'memcached' needs servers"),
        ({"backend": "memcached", "servers": ["localhost"]}, "[cache] servers[0] = 'localhost' is not \"host:port\""),
        ({"backend": "memcached", "servers": ["10.0.0.5:99999"]}, "servers[0] = '10.0.0.5:99999'"),
        ({"backend": "memcached", "servers": ["a:1", "a:1"]}, "names a server twice"),
        ({"servers": ["10.0.0.5:11211"]}, "[cache] servers are for backend = 'memcached'"),
        ({"backend": "memcache"}, "[cache] backend must be one of 'disk', 'memcached'"),
    ],
)
def test_cache_mistakes_name_the_key(tmp_path, cache, says):
    with pytest.raises(ConfigError) as caught:
        make_config(tmp_path, cache=cache)
    assert says in str(caught.value) and "\n" not in str(caught.value)
