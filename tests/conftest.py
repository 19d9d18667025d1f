"""Shared fixtures: a real rung-0 site in a temp dir, and a Litestar TestClient for it.

The embedded queue workers are off here; tests run queued tasks deterministically with
`ctx.backends.queue.run_pending()`. Tests that need the real server process start `main.py serve`.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, settings
from litestar.testing import TestClient

from app.backends.blobs.s3 import StorageUnavailable
from app.context import Context, build_context
from app.web.app import create_app
from tests.backends import make_config
from tests.rungs import rung_sections
from tests.server_memcached import memcached_processes, memcached_servers  # noqa: F401 (fixtures)
from tests.server_redis import (  # noqa: F401 (fixtures)
    new_redis_url,
    own_redis,
    redis_server,
    redis_settings,
    redis_url,
)
from tests.server_s3 import s3_server, seaweedfs  # noqa: F401 (fixtures)
from tests.servers import (  # noqa: F401 (fixtures)
    pgbouncers,
    postgres_behind_pgbouncer,
    postgres_clusters,
    postgres_one_server,
    postgres_site_templates,
    postgres_two_servers,
    postgres_two_servers_migrated,
)

# Scratch space in RAM when the machine has room for it: on a VM's disk, even with fsync off, each CREATE DATABASE
# (one per top-rung test) took about 1 s; on tmpfs, 0.04 s. An explicit TMPDIR is kept.
RAM_DIR, RAM_NEEDED = "/dev/shm", 4 << 30


def pytest_configure(config):
    if os.environ.get("TMPDIR") or not os.path.isdir(RAM_DIR):
        return
    free = os.statvfs(RAM_DIR)
    if free.f_bavail * free.f_frsize >= RAM_NEEDED:
        os.environ["TMPDIR"] = RAM_DIR  # for the servers and CLI runs the tests start, too
        tempfile.tempdir = None  # forget a temp dir chosen before


# Property tests check logic, not speed: on a busy machine generating inputs or running an example may be slow.
settings.register_profile("pinhole", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("pinhole")

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata" / "images"
PASSWORD = "correct horse battery"
# Argon2 at the app's cost (app/context.py) takes about 0.1 s a hash and the suite makes thousands of accounts, so
# the sites made here hash at the lowest cost; tests/test_security.py checks the app's own cost and the rehash.
TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def site_config(request, tmp_path):
    """Settings for one test's site on the rung under test (tests/rungs.py: rung 0 unless PINHOLE_TEST_RUNG says
    otherwise); override sections with `make_config` directly when needed."""
    sections = {"queue": {"embedded_workers": 0}, "server": {"ops_clients": ["testclient"]}}
    return make_config(tmp_path, **rung_sections(request, tmp_path, sections))


@pytest.fixture
def ctx(site_config) -> Iterator[Context]:
    context = build_context(site_config)
    context.hasher = TEST_HASHER
    context.db.migrate()
    yield context
    context.close()


@pytest.fixture
def client(ctx) -> Iterator[TestClient]:
    with TestClient(create_app(ctx), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


def csrf_token(client: TestClient, path: str = "/login") -> str:
    """The token a browser would have: the page's hidden form field, after a GET sets the cookie."""
    page = client.get(path)
    match = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert match, f"no CSRF field on {path}"
    return match.group(1)


def post_form(client: TestClient, path: str, data: dict, *, token_from: str | None = None, **kwargs):
    token = csrf_token(client, token_from or path)
    return client.post(path, data={**data, "_csrf_token": token}, follow_redirects=False, **kwargs)


def sign_up(client: TestClient, username: str, password: str = PASSWORD, **extra):
    return post_form(client, "/signup", {"username": username, "password": password, **extra})


def log_in(client: TestClient, username: str, password: str = PASSWORD, **extra):
    return post_form(client, "/login", {"username": username, "password": password, **extra})


@pytest.fixture
def make_site(request, tmp_path):
    """Another site with its own settings: `ctx, client = make_site(accounts={"registration": "closed"})`.

    Each call gets its own data directory under tmp_path; embedded queue workers stay off unless given.
    """
    opened = []

    def _make_site(**sections):
        folder = tmp_path / f"site{len(opened)}"
        folder.mkdir()
        sections["queue"] = {"embedded_workers": 0, **sections.get("queue", {})}
        context = build_context(make_config(folder, **rung_sections(request, folder, sections)))
        context.hasher = TEST_HASHER
        context.db.migrate()
        test_client = TestClient(create_app(context), base_url="http://127.0.0.1:8000")
        test_client.__enter__()  # runs the app's lifespan; its shutdown closes the context
        opened.append(test_client)
        return context, test_client

    yield _make_site
    for test_client in reversed(opened):
        test_client.__exit__(None, None, None)


def another_browser(client: TestClient) -> TestClient:
    """A second browser (own cookies) on the same running app; it does not run the app's lifespan."""
    return TestClient(client.app, base_url=str(client.base_url))


def fetch_media(client: TestClient, url: str) -> httpx.Response:
    """A media URL as a browser gets it: served by the app, or (photos on S3) where the app redirects it."""
    answer = client.get(url, follow_redirects=False)
    if answer.status_code in (302, 307) and answer.headers["location"].startswith("http"):
        return httpx.get(answer.headers["location"])
    return answer


def all_rows(ctx: Context, table: str, where: str = "", params: tuple = ()) -> list[dict]:
    """Every row of `table` (filtered and ordered by `where`) on every shard of the site."""
    found: list[dict] = []
    for reader, _shards in ctx.db.shard_groups():
        with reader as conn:
            found.extend(dict(row) for row in conn.all(f"SELECT * FROM {table} {where}", params))
    return found


def all_users(ctx: Context) -> list[dict]:
    """Every user row on the site, across all shards (to prove nothing was created or changed)."""
    return all_rows(ctx, "users", "ORDER BY id")


class FailingBlobs:
    """A site's blob store failing as S3 going away would: the `fail_from`-th put and every later one, and every
    delete while `deletes_fail`, raise StorageUnavailable; the rest goes to the real store. Swap it in with
    monkeypatch.setattr(ctx.backends, "blobs", FailingBlobs(ctx.backends.blobs, ...))."""

    def __init__(self, store, fail_from: int, deletes_fail: bool = False):
        self.store, self.fail_from, self.deletes_fail = store, fail_from, deletes_fail
        self.puts = 0

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.puts += 1
        if self.puts >= self.fail_from:
            raise StorageUnavailable()
        self.store.put(key, data, content_type)

    def delete(self, key: str) -> None:
        if self.deletes_fail:
            raise StorageUnavailable()
        self.store.delete(key)

    def __getattr__(self, name: str):
        return getattr(self.store, name)
