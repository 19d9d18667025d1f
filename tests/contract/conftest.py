"""Fixtures for the contract tests: one per seam, parametrized over every backend in tests/backends.py.

`db`, `cache`, `blobs`, `feeds`, `queue`, `kv`, `events` are the backend under test; `<seam>_name`
is its name; `build(seam, name, ...)` makes more Backends on the same data dir (a second node),
or in `where=` (another site), and closes everything at teardown.
"""

from __future__ import annotations

import pytest

from tests.backends import BACKENDS, SERVER_FIXTURES
from tests.backends import build as build_backends


@pytest.fixture
def build(request, tmp_path):
    def _build(seam: str, name: str, where=None, **sections):
        fixture = SERVER_FIXTURES.get((seam, name))
        settings = request.getfixturevalue(fixture) if fixture else None
        backends = build_backends(seam, name, where or tmp_path, settings, **sections)
        # Closed before the server fixture's own teardown (which drops the test's databases).
        request.node.addfinalizer(backends.close)
        return backends

    return _build


def _name_fixture(seam: str):
    @pytest.fixture(params=BACKENDS[seam], ids=BACKENDS[seam])
    def name(request):
        return request.param

    return name


database_name = _name_fixture("database")
cache_name = _name_fixture("cache")
blobs_name = _name_fixture("blobs")
feeds_name = _name_fixture("feeds")
queue_name = _name_fixture("queue")
kv_name = _name_fixture("kv")
events_name = _name_fixture("events")


@pytest.fixture
def db(build, database_name):
    return build("database", database_name).db


@pytest.fixture
def cache(build, cache_name):
    return build("cache", cache_name).cache


@pytest.fixture
def blobs(build, blobs_name):
    return build("blobs", blobs_name).blobs


@pytest.fixture
def feeds(build, feeds_name):
    backends = build("feeds", feeds_name)
    backends.db.migrate()
    return backends.feeds


@pytest.fixture
def queue(build, queue_name):
    return build("queue", queue_name).queue


@pytest.fixture
def kv(build, kv_name):
    return build("kv", kv_name).kv


@pytest.fixture
def events(build, events_name):
    return build("events", events_name).events
