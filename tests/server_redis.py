"""Throwaway Redis servers for the tests: `redis-server` on a free loopback port, nothing saved to disk.

Fixtures (made available to every test by tests/conftest.py):
- `redis_server`: one server for the whole session, stopped at its end.
- `redis_url`: a URL on that server naming a database of its own, emptied before and after the test;
  `new_redis_url()` hands out more (one per site when a test makes several).
- `redis_settings`: `{"redis_url": ...}` for a seam's section (tests/backends.py SERVER_FIXTURES).
- `own_redis`: a server of the test's own, to stop and start again.

Tests that need a password start their own `RedisProcess`. A missing redis-server skips the tests
that need it, saying how to install it, except under CI=true, where it fails them. Each server gets SIGTERM when
the test process dies, even when it is killed (`setpriv --pdeathsig`), so none outlives a run.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.servers import free_port, need

REDIS_HINT = "install Redis (Debian: apt-get install redis-server), or set PINHOLE_REDIS_SERVER to its path"
DATABASES = 64  # the session server's databases: one per test in turn, emptied each time


def redis_binary() -> str:
    binary = os.environ.get("PINHOLE_REDIS_SERVER") or shutil.which("redis-server")
    if not binary or not os.access(binary, os.X_OK):
        need("redis-server not found", REDIS_HINT)
    return binary


def _die_with_us() -> list[str]:
    """A command prefix that gives the server SIGTERM when the test process ends, however it ends (util-linux)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM"] if setpriv else []


class RedisProcess:
    """One redis-server in its own temp dir; `stop()` then `start()` brings it back on the same port, empty."""

    def __init__(self, password: str = ""):
        self.binary = redis_binary()
        self.dir = Path(tempfile.mkdtemp(prefix="pinhole-redis-"))
        self.password = password
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [
            *_die_with_us(), self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.dir), "--databases", str(DATABASES),
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        if self.password:
            cmd += ["--requirepass", self.password]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        client = self.client()
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
                    self.stop()
                    raise RuntimeError(f"redis-server did not start on port {self.port}: {log}") from None
                time.sleep(0.02)
            finally:
                client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, db: int = 0, password: str | None = None) -> str:
        password = self.password if password is None else password
        auth = f":{password}@" if password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=self.port, db=db, password=self.password or None, retry=Retry(NoBackoff(), 0)
        )


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProcess]:
    server = RedisProcess()
    try:
        server.start()
        yield server
    finally:
        server.remove()


_next_db = itertools.count()


@pytest.fixture
def new_redis_url(redis_server) -> Iterator[Callable[[], str]]:
    """Hands out URLs of databases of the session server that are empty and used by nothing else (pub/sub
    channels carry the database number too); emptied again after the test."""
    given: list[int] = []

    def new_url() -> str:
        db = next(_next_db) % DATABASES
        with redis_server.client(db) as client:
            client.flushdb()
        given.append(db)
        return redis_server.url(db)

    yield new_url
    for db in given:
        with redis_server.client(db) as client:
            client.flushdb()


@pytest.fixture
def redis_url(new_redis_url) -> str:
    """A database of the session server for this test alone."""
    return new_redis_url()


@pytest.fixture
def redis_settings(redis_url) -> dict[str, Any]:
    return {"redis_url": redis_url}


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    """A server of the test's own, which it may stop and start again (on the same port, empty)."""
    server = RedisProcess()
    try:
        server.start()
        yield server
    finally:
        server.remove()
