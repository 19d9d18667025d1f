"""Postgres read replicas: a real streaming standby (pg_basebackup -R) of a primary.

Reads go to the replica, except that a write on a shard sends the writing thread's reads of that
shard to the primary for `read_primary_after_write_seconds`; a replica that is down is skipped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from app.backends.database.postgres import PostgresDatabase
from app.config import DatabaseConfig, DatabaseServer
from tests.servers import PgCluster, cluster_root, stop_clusters

SHARDS = 4


@pytest.fixture(scope="module")
def replicated() -> Iterator[tuple[PgCluster, PgCluster, str]]:
    bin_dir, root = cluster_root()
    primary, standby = PgCluster(bin_dir, root, "primary"), PgCluster(bin_dir, root, "standby")
    try:
        primary.init()
        primary.start()
        name = primary.create_database()
        standby.init_standby_of(primary)
        standby.start()
        yield primary, standby, name
    finally:
        stop_clusters([standby, primary], root)


@pytest.fixture
def db(replicated) -> Iterator[PostgresDatabase]:
    primary, standby, name = replicated
    server = DatabaseServer(dsn=primary.dsn(name), shards=f"0-{SHARDS - 1}", replicas=[standby.dsn(name)])
    database = PostgresDatabase(
        DatabaseConfig(
            backend="postgres",
            logical_shards=SHARDS,
            servers=[server],
            connect_timeout_seconds=2,
            read_primary_after_write_seconds=1,
        )
    )
    database.migrate()
    # The migration's WAL: until the replica has replayed a shard's schema, that shard's reads go to the primary.
    _eventually(lambda: all(_on_replica(database, s) for s in range(SHARDS)))
    yield database
    database.close()


def _on_replica(db, shard: int) -> bool:
    with db.read(shard) as conn:
        return conn.value("SELECT pg_is_in_recovery()")


def _in_thread(fn):
    """fn() in another thread (no pins of this one), its exception re-raised here."""
    result = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(10)
    if "error" in result:
        raise result["error"]
    return result["value"]


def _eventually(check, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the replica never caught up"
        time.sleep(0.05)


def test_reads_go_to_the_replica_except_right_after_this_threads_write(db):
    assert all(_on_replica(db, s) for s in range(SHARDS))
    key = f"k{time.monotonic_ns()}"
    with db.write(2) as conn:
        conn.run("INSERT INTO site_flags (name, value) VALUES (?, 'written')", (key,))
    # The writer reads its own write from the primary, at once...
    with db.read(2) as conn:
        assert conn.value("SELECT pg_is_in_recovery()") is False
        assert conn.value("SELECT value FROM site_flags WHERE name = ?", (key,)) == "written"
    # ...while its other shards, and other threads, still read the replica; a read of every shard at once
    # goes to the primary too, as it includes the shard just written.
    assert not any(r["replica"] for r in db.each_shard("SELECT pg_is_in_recovery() AS replica"))
    assert _on_replica(db, 3)
    assert _in_thread(lambda: _on_replica(db, 2))
    # The write reaches the replica, and once the pin has passed the writer reads there again.
    _eventually(lambda: _in_thread(lambda: _flag_on(db, 2, key)) == "written")
    time.sleep(1.05)
    assert _on_replica(db, 2)
    assert all(r["replica"] for r in db.each_shard("SELECT pg_is_in_recovery() AS replica"))
    assert _flag_on(db, 2, key) == "written"


def _flag_on(db, shard: int, key: str):
    with db.read(shard) as conn:
        return conn.value("SELECT value FROM site_flags WHERE name = ?", (key,))


def test_reads_are_read_only_wherever_they_go(db):
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        with db.read(1) as conn:
            conn.run("INSERT INTO site_flags (name, value) VALUES ('x', 'y')")
    with db.write(1) as conn:
        conn.run("DELETE FROM site_flags WHERE name = 'nothing'")
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):  # pinned to the primary, still a read
        with db.read(1) as conn:
            conn.run("INSERT INTO site_flags (name, value) VALUES ('x', 'y')")


def test_a_replica_that_is_down_is_skipped_and_reported(db, replicated):
    _primary, standby, _name = replicated
    standby.stop()
    try:
        assert not any(_on_replica(db, s) for s in range(SHARDS)), "reads should fall back to the primary"
        report = db.check()
        assert f"replica 127.0.0.1:{standby.port}/" in report and "UNREACHABLE" in report
    finally:
        standby.start(port=standby.port)
    _eventually(lambda: _on_replica(db, 0))
