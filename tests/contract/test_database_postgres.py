"""What only the Postgres backend has: shards as schemas on the right server, servers that are down or
refuse the password, a shard map that disagrees with where the data is, and the `?` translation."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from app.backends.database.base import DatabaseUnavailable
from app.backends.database.postgres import PostgresDatabase, schema_of, to_pyformat
from app.backends.factory import build_database
from app.cli import main as cli_main
from app.config import DatabaseConfig, DatabaseServer
from tests.backends import make_config
from tests.servers import PgCluster, dbname_of, free_port, postgres_schemas, start_clusters, stop_clusters

SHARDS = 8
PASSWORD = "correct-horse-7f3a9"  # the real one for the user `pinhole` on the private cluster
WRONG = "wrong-horse-51c2e"


def _add_username(conn, name: str, user_id: int = 1) -> None:
    conn.run("INSERT INTO usernames (username, user_id) VALUES (?, ?)", (name, user_id))


def _user_id_of(db, shard: int, name: str):
    with db.read(shard) as conn:
        return conn.value("SELECT user_id FROM usernames WHERE username = ?", (name,))


def _port_of(dsn: str) -> int:
    return int(dsn.split("port=")[1].split()[0])


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PgCluster]:
    """A cluster of this module's own, to stop and start, where `pinhole` must give a password."""
    clusters, root = start_clusters(1, setup=lambda c: c.require_password("pinhole"))
    cluster = clusters[0]
    cluster.sql(f"CREATE ROLE pinhole LOGIN PASSWORD '{PASSWORD}'")
    yield cluster
    stop_clusters(clusters, root)


def _database(tmp_path, servers: list[dict], **keys) -> PostgresDatabase:
    """Through config.toml and the factory, as the app builds it."""
    settings = {"backend": "postgres", "connect_timeout_seconds": 2, "servers": servers, **keys}
    return build_database(make_config(tmp_path, database=settings))


# --- where rows live -------------------------------------------------------------------------------


@pytest.mark.parametrize("database_name", ["postgres/one-server", "postgres/two-servers"])
def test_each_shard_is_a_schema_on_the_server_that_holds_it(db, postgres_clusters, database_name):
    db.migrate()
    for shard in range(SHARDS):
        with db.write(shard) as conn:
            _add_username(conn, f"on-{shard}", shard)
    by_port = {c.port: c for c in postgres_clusters}
    for endpoint in db.primaries:
        cluster, dbname = by_port[_port_of(endpoint.dsn)], dbname_of(endpoint.dsn)
        assert postgres_schemas(cluster, dbname) == {schema_of(s) for s in endpoint.shards}
        for shard in endpoint.shards:
            rows = cluster.sql(f"SELECT username, user_id FROM {schema_of(shard)}.usernames", dbname)
            assert rows == [(f"on-{shard}", shard)]
    if database_name == "postgres/two-servers":
        first, second = db.primaries
        assert (first.shards, second.shards) == ([0, 1, 2, 3], [4, 5, 6, 7])
        assert db.server_of(5) is second
        # Written through shard 5: physically on the second cluster, and nowhere on the first.
        assert "shard_0005" not in postgres_schemas(postgres_clusters[0], dbname_of(first.dsn))
        rows = postgres_clusters[1].sql("SELECT username FROM shard_0005.usernames", dbname_of(second.dsn))
        assert rows == [("on-5",)]


@pytest.mark.parametrize("database_name", ["postgres/two-servers"])
def test_migrate_refuses_a_map_that_puts_shards_where_their_data_is_not(db, tmp_path, postgres_clusters):
    db.migrate()
    with db.write(5) as conn:
        _add_username(conn, "lives-on-5", 5)
    first, second = (e.dsn for e in db.primaries)
    swapped = PostgresDatabase(
        DatabaseConfig(
            backend="postgres",
            logical_shards=SHARDS,
            servers=[DatabaseServer(dsn=second, shards="0-3"), DatabaseServer(dsn=first, shards="4-7")],
        )
    )
    try:
        with pytest.raises(ValueError, match="logical shard 0") as caught:
            swapped.migrate()
        message = str(caught.value)
        assert f":{_port_of(first)}/" in message and f":{_port_of(second)}/" in message
        # Refused before anything changed: each cluster still holds exactly its own shards.
        assert postgres_schemas(postgres_clusters[0], dbname_of(first)) == {schema_of(s) for s in range(4)}
        assert postgres_schemas(postgres_clusters[1], dbname_of(second)) == {schema_of(s) for s in range(4, 8)}
        assert "lacks logical shards 0-3" in swapped.integrity()
        assert swapped.schema_version() == 0  # its servers lack the shards it expects
    finally:
        swapped.close()
    assert _user_id_of(db, 5, "lives-on-5") == 5


@pytest.mark.parametrize("database_name", ["postgres/two-servers"])
def test_integrity_and_schema_version_notice_a_missing_shard_and_migrate_repairs_it(db, postgres_clusters):
    db.migrate()
    version = db.schema_version()
    assert version > 0 and db.integrity() == "ok"
    second = db.primaries[1]
    postgres_clusters[1].sql("DROP SCHEMA shard_0006 CASCADE", dbname_of(second.dsn))
    assert "lacks logical shards 6" in db.integrity()
    assert db.schema_version() == 0
    assert db.migrate() != []
    assert db.integrity() == "ok" and db.schema_version() == version


# --- servers down, wrong passwords ---------------------------------------------------------------


def test_a_stopped_server_fails_by_name_and_only_for_its_shards(tmp_path, postgres_clusters, private_pg):
    a, b = postgres_clusters[0], private_pg
    name_a, name_b = a.create_database(), b.create_database(owner="pinhole")
    db = _database(
        tmp_path,
        [
            {"dsn": a.dsn(name_a), "shards": "0-3"},
            {"dsn": b.dsn(name_b, user="pinhole", password=PASSWORD), "shards": "4-7"},
        ],
    )
    try:
        db.migrate()
        for shard in (1, 5):
            with db.write(shard) as conn:
                _add_username(conn, f"before-{shard}", shard)
        b.stop()

        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable) as caught:
            _user_id_of(db, 5, "before-5")
        # Refused connections are seen at once (a probe), not after the pool's 2 s timeout.
        assert time.monotonic() - started < 1.5, "a dead server must not hang the request"
        message = str(caught.value)
        assert f"127.0.0.1:{b.port}/{name_b}" in message and "4-7" in message
        assert PASSWORD not in message
        # Once known to be down, it is answered at once.
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable, match=f":{b.port}/"):
            with db.write(6) as conn:
                _add_username(conn, "never")
        assert time.monotonic() - started < 1
        # Users on the other server's shards are not affected.
        with db.write(2) as conn:
            _add_username(conn, "during-outage", 2)
        assert _user_id_of(db, 1, "before-1") == 1 and _user_id_of(db, 2, "during-outage") == 2
        with pytest.raises(DatabaseUnavailable, match=f":{b.port}/"):
            db.check()
        with pytest.raises(DatabaseUnavailable, match=f":{b.port}/"):  # a read of every shard needs it too
            db.each_shard("SELECT username FROM usernames")

        b.start(port=b.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                assert _user_id_of(db, 5, "before-5") == 5
                break
            except DatabaseUnavailable:
                assert time.monotonic() < deadline, "the server came back but the backend did not use it again"
                time.sleep(0.2)
        with db.write(6) as conn:
            _add_username(conn, "after-outage", 6)
        assert _user_id_of(db, 6, "after-outage") == 6 and _user_id_of(db, 6, "never") is None
        assert "2 server(s)" in db.check()
    finally:
        db.close()
        if not b.running:
            b.start(port=b.port)
        a.drop_database(name_a)
        b.drop_database(name_b)


def test_a_wrong_password_is_refused_naming_the_server_and_never_the_password(tmp_path, private_pg, capsys):
    name = private_pg.create_database(owner="pinhole")
    dsn = f"postgresql://pinhole:{WRONG}@127.0.0.1:{private_pg.port}/{name}"
    db = _database(tmp_path, [{"dsn": dsn, "shards": "0-7"}])
    try:
        for attempt in (db.check, db.migrate):
            with pytest.raises(DatabaseUnavailable) as caught:
                attempt()
            message = str(caught.value)
            assert f"127.0.0.1:{private_pg.port}/{name}" in message
            assert "password authentication failed" in message
            assert WRONG not in message
    finally:
        db.close()
    # The operator's view: `main.py migrate` exits 2 with one line naming the server and the key.
    assert cli_main(["migrate", "--config", str(tmp_path / "config.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "[database]" in err and f":{private_pg.port}/" in err
    assert WRONG not in err
    # The right password works on the same server.
    good = _database(tmp_path / "good", [{"dsn": dsn.replace(WRONG, PASSWORD), "shards": "0-7"}])
    try:
        assert good.migrate() and good.integrity() == "ok"
    finally:
        good.close()
        private_pg.drop_database(name)


def test_an_unreachable_server_is_named(tmp_path, capsys):
    port = free_port()  # nothing listens here
    db = _database(tmp_path, [{"dsn": f"host=127.0.0.1 port={port} dbname=p user=u password={WRONG}", "shards": "0-7"}])
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            db.check()
        assert f"127.0.0.1:{port}/p" in str(caught.value) and WRONG not in str(caught.value)
        with pytest.raises(DatabaseUnavailable, match=f"127.0.0.1:{port}/p"):
            with db.read(3):
                pass
    finally:
        db.close()
    assert cli_main(["migrate", "--config", str(tmp_path / "config.toml")]) == 2
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}/p" in err and WRONG not in err


def test_a_dsn_libpq_cannot_read_is_refused_naming_the_key(tmp_path):
    from app.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        _database(tmp_path, [{"dsn": f"host=127.0.0.1 password={WRONG} bogus", "shards": "0-7"}])
    message = str(caught.value)
    assert "servers[0].dsn" in message and "\n" not in message and WRONG not in message


# --- SQL as the services write it ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s"),
        ("SELECT '?' AS q, ? AS p", "SELECT '?' AS q, %s AS p"),
        ("SELECT 'it''s ?' , ?", "SELECT 'it''s ?' , %s"),
        ("SELECT x FROM t WHERE name LIKE 'a%' AND y = ?", "SELECT x FROM t WHERE name LIKE 'a%%' AND y = %s"),
        ("SELECT 10 % 3, ?", "SELECT 10 %% 3, %s"),
        ('SELECT "odd?col" FROM t WHERE a = ?', 'SELECT "odd?col" FROM t WHERE a = %s'),
        ("SELECT ? -- why? because\n, ?", "SELECT %s -- why? because\n, %s"),
        ("SELECT /* a ? here */ ?", "SELECT /* a ? here */ %s"),
        ("SELECT 'unterminated ?", "SELECT 'unterminated ?"),
    ],
)
def test_question_marks_become_placeholders_only_outside_quotes_and_comments(sql, expected):
    assert to_pyformat(sql) == expected
