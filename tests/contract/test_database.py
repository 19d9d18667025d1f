"""The Database seam: migrations, transactions, shard routing, online snapshots, many writers."""

from __future__ import annotations

import threading
import time

import apsw
import pytest

from app.backends.database.base import NotSupported, load_migrations
from tests.backends import BACKENDS, DATABASE_SNAPSHOTS

SHARDS = 8  # tests/backends.py TEST_LOGICAL_SHARDS
SNAPSHOTTING = [name for name in BACKENDS["database"] if name in DATABASE_SNAPSHOTS]
NOT_SNAPSHOTTING = [name for name in BACKENDS["database"] if name not in DATABASE_SNAPSHOTS]


def _add_username(conn, name: str, user_id: int = 1) -> None:
    conn.run("INSERT INTO usernames (username, user_id) VALUES (?, ?)", (name, user_id))


def _user_id_of(db, shard: int, name: str):
    with db.read(shard) as conn:
        return conn.value("SELECT user_id FROM usernames WHERE username = ?", (name,))


def _in_thread(fn):
    """Run fn in another thread (another connection) and return its result."""
    result = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as exc:  # re-raised in the test's thread
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "the other thread hung"
    if "error" in result:
        raise result["error"]
    return result["value"]


def _count_usernames(db) -> int:
    total = 0
    for reader, _shards in db.shard_groups():
        with reader as conn:
            total += conn.value("SELECT count(*) FROM usernames")
    return total


def test_migrate_applies_every_version_once(db, build, database_name):
    assert db.schema_version() == 0
    wanted = load_migrations(db.dialect)
    assert [m.name for m in wanted][:2] == ["0001_accounts", "0002_feeds"]

    assert db.migrate() == [m.name for m in wanted]
    assert db.schema_version() == wanted[-1].version
    assert db.migrate() == []
    # A second node on the same data finds nothing left to do.
    assert build("database", database_name).db.migrate() == []
    with db.write(0) as conn:
        _add_username(conn, "after-migrate")
    assert _user_id_of(db, 0, "after-migrate") == 1


def test_values_and_counts_come_back_the_same_on_every_backend(db):
    """The portable SQL the services write: flags as 0/1, integer sums, `?` and `%` in literals, rowcounts."""
    db.migrate()
    with db.write(4) as conn:
        assert conn.run("INSERT INTO site_flags (name, value) VALUES (?, ?)", ("100% sure?", "yes")) == 1
        conn.run_many("INSERT INTO usernames (username, user_id) VALUES (?, ?)", [("a", 2**62), ("b", 5), ("c", 7)])
        conn.run_many("INSERT INTO usernames (username, user_id) VALUES (?, ?)", [])
        assert conn.run("UPDATE usernames SET user_id = user_id + 1 WHERE user_id < ?", (100,)) == 2
        assert conn.run("DELETE FROM usernames WHERE username = ?", ("nobody",)) == 0
        conn.run(
            "INSERT INTO posts (id, author_id, status, created_at, updated_at, sensitive, place_lat)"
            " VALUES (?, ?, 'ready', ?, ?, ?, ?)",
            (1, 2, 3, 4, True, 51.5),
        )
    with db.read(4) as conn:
        assert conn.value("SELECT value FROM site_flags WHERE name = '100% sure?' AND value LIKE 'y%'") == "yes"
        assert conn.value("SELECT count(*) FROM site_flags WHERE name = ?", ("100% sure?",)) == 1
        assert conn.value("SELECT sum(user_id) FROM usernames") == 2**62 + 6 + 8
        assert conn.value("SELECT sum(user_id) FROM usernames WHERE username = 'nobody'") is None
        assert conn.value("SELECT '?' || ? AS q", ("!",)) == "?!"
        row = conn.one("SELECT sensitive, place_lat, place_lon, caption FROM posts WHERE id = ?", (1,))
        assert row == {"sensitive": 1, "place_lat": 51.5, "place_lon": None, "caption": ""}
        assert conn.all("SELECT username FROM usernames WHERE user_id > ? ORDER BY username", (6,)) == [
            {"username": "a"},
            {"username": "c"},
        ]
        assert conn.one("SELECT username FROM usernames WHERE username = ?", ("nobody",)) is None


def test_read_sees_committed_writes_from_any_thread(db):
    db.migrate()
    with db.write(3) as conn:
        _add_username(conn, "alice", 42)
    assert _user_id_of(db, 3, "alice") == 42
    assert _in_thread(lambda: _user_id_of(db, 3, "alice")) == 42


def test_open_write_is_visible_to_itself_only(db):
    db.migrate()
    with db.write(2) as conn:
        _add_username(conn, "pending", 7)
        with db.read(2) as inner:
            assert inner.value("SELECT user_id FROM usernames WHERE username = 'pending'") == 7
        assert _in_thread(lambda: _user_id_of(db, 2, "pending")) is None
    assert _in_thread(lambda: _user_id_of(db, 2, "pending")) == 7


def test_write_rolls_back_when_the_block_raises(db):
    db.migrate()
    with pytest.raises(LookupError):
        with db.write(1) as conn:
            _add_username(conn, "half-done")
            raise LookupError("the request failed half way")
    assert _user_id_of(db, 1, "half-done") is None
    # The database is usable afterwards.
    with db.write(1) as conn:
        _add_username(conn, "whole")
    assert _user_id_of(db, 1, "whole") == 1


def test_nested_write_is_refused_and_the_outer_one_still_commits(db):
    db.migrate()
    with db.write(0) as conn:
        _add_username(conn, "outer")
        for shard in (0, 5):
            with pytest.raises(RuntimeError, match="nested"):
                with db.write(shard):
                    pass
    assert _user_id_of(db, 0, "outer") == 1


@pytest.mark.parametrize("shard", [-1, SHARDS, 4096, 10**9])
def test_shard_out_of_range_is_refused(db, shard):
    with pytest.raises(ValueError, match=str(shard)):
        with db.read(shard):
            pass
    with pytest.raises(ValueError, match=str(shard)):
        with db.write(shard):
            pass


def test_shard_for_key_is_stable_and_in_range(db, build, database_name):
    # Pinned: the directory (username -> id) is found by this hash; changing it orphans every row.
    assert [db.shard_for_key(k) for k in ("alice", "bob", "sunset", "ünïcode")] == [1, 2, 0, 5]
    big = build("database", database_name, database={"logical_shards": 256}).db
    assert [big.shard_for_key(k) for k in ("alice", "bob", "sunset", "ünïcode")] == [137, 146, 80, 141]

    keys = [f"user{i}" for i in range(400)]
    shards = [db.shard_for_key(k) for k in keys]
    assert all(0 <= s < SHARDS for s in shards)
    assert set(shards) == set(range(SHARDS)), "keys should spread over every shard"
    assert shards == [db.shard_for_key(k) for k in keys]


def test_shard_groups_cover_every_logical_shard_exactly_once(db):
    db.migrate()
    for shard in range(SHARDS):
        with db.write(shard) as conn:
            _add_username(conn, f"on-{shard}", shard)
    seen: list[int] = []
    found: set[str] = set()
    for reader, shards in db.shard_groups():
        seen.extend(shards)
        with reader as conn:
            found |= {r["username"] for r in conn.all("SELECT username FROM usernames")}
    assert sorted(seen) == list(range(SHARDS))
    assert found == {f"on-{s}" for s in range(SHARDS)}


def test_groups_for_batches_shards_one_connection_reaches(db):
    db.migrate()
    for shard in range(SHARDS):
        with db.write(shard) as conn:
            _add_username(conn, f"on-{shard}", shard)
    asked = [5, 1, 3, 1, 6]
    groups = db.groups_for(asked)
    assert sorted(s for g in groups for s in g) == [1, 3, 5, 6], "each shard asked for, in exactly one group"
    assert all(g == sorted(g) for g in groups) and groups == sorted(groups)
    for group in groups:  # one connection on the group's first shard sees every shard of the group
        with db.read(group[0]) as conn:
            found = {r["username"] for r in conn.all("SELECT username FROM usernames")}
        assert {f"on-{s}" for s in group} <= found
    everything = db.groups_for(range(SHARDS))
    assert len(everything) == len(list(db.shard_groups())), "as many places as shard_groups names"
    assert db.groups_for([]) == []
    with pytest.raises(ValueError):
        db.groups_for([SHARDS])

    # by_place: keys batched by those groups, each once and in the order given; keys of no shard left out.
    batches = db.by_place([51, 12, 51, 53, 64, -10, SHARDS * 10 + 1], lambda key: key // 10)
    assert sorted(k for _, keys in batches for k in keys) == [12, 51, 53, 64]
    assert [shard for shard, _ in batches] == [g[0] for g in db.groups_for([1, 5, 6])]
    for _shard, keys in batches:
        assert keys == [k for k in (51, 12, 53, 64) if k in keys]


def _shard_in(name: str) -> int:
    return int(name.removeprefix("on-"))


def test_each_shard_and_read_all_return_every_row_asked_for_once(db):
    db.migrate()
    for shard in range(SHARDS):
        with db.write(shard) as conn:
            _add_username(conn, f"on-{shard}", shard)
    with db.write(3) as conn:  # quotes, a percent sign and a placeholder mark are values, never SQL
        _add_username(conn, "it's 100%? --", 3)
    names = sorted(r["username"] for r in db.each_shard("SELECT username FROM usernames WHERE username >= ?", ("on-",)))
    assert names == [f"on-{s}" for s in range(SHARDS)]
    asked = [(5, "on-5"), (1, "on-1"), (6, "on-6"), (3, "it's 100%? --"), (6, "missing")]
    by_name = "SELECT username, user_id FROM usernames WHERE username = ? -- one name"
    found = db.read_all([(s, by_name, (n,)) for s, n in asked])
    assert sorted((r["username"], r["user_id"]) for r in found) == [
        ("it's 100%? --", 3),
        ("on-1", 1),
        ("on-5", 5),
        ("on-6", 6),
    ]
    assert db.read_all([]) == []
    by_key = db.read_in("SELECT username FROM usernames WHERE username IN ({})", ["on-6", "on-1", "on-1"], _shard_in)
    assert sorted(r["username"] for r in by_key) == ["on-1", "on-6"]
    assert db.read_in("SELECT username FROM usernames WHERE username IN ({})", [], _shard_in) == []
    with db.write(2) as conn:  # inside a write, they see it as read() does
        _add_username(conn, "on-2-unsaved", 2)
        assert {r["username"] for r in db.each_shard("SELECT username FROM usernames")} >= {"on-2-unsaved", "on-7"}
        conn.run("DELETE FROM usernames WHERE username = 'on-2-unsaved'")


@pytest.mark.parametrize("database_name", SNAPSHOTTING)
def test_snapshot_is_consistent_while_another_thread_writes(db, tmp_path):
    db.migrate()
    committed = 0
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer():
        nonlocal committed
        try:
            while not stop.is_set():
                with db.write(0) as conn:
                    _add_username(conn, f"u{committed:06d}", committed)
                committed += 1
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while committed < 200 and time.monotonic() < deadline:
            time.sleep(0.005)
        before = committed
        dest = tmp_path / "snapshot.db"
        db.snapshot(dest)
        after = committed
    finally:
        stop.set()
        thread.join(10)
    assert not errors
    assert before >= 200, "the writer made no progress"
    assert after > before or committed > before, "the snapshot blocked the writer throughout"

    rows = _snapshot_usernames(db.dialect, dest)
    n = len(rows)
    assert before <= n <= after + 1
    # A consistent copy holds an unbroken prefix of the writer's commits.
    assert rows == [f"u{i:06d}" for i in range(n)]


def _snapshot_usernames(dialect: str, dest) -> list[str]:
    """Open the snapshot as an operator restoring it would, check it, and list its usernames."""
    if dialect != "sqlite":
        raise NotImplementedError(f"add a snapshot check for dialect {dialect!r} to this test")
    conn = apsw.Connection(str(dest), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        assert [r[0] for r in conn.execute("PRAGMA integrity_check")] == ["ok"]
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] >= 2
        return [r[0] for r in conn.execute("SELECT username FROM usernames ORDER BY username")]
    finally:
        conn.close()


@pytest.mark.parametrize("database_name", SNAPSHOTTING)
def test_a_snapshot_restores_into_an_empty_site(db, build, database_name, tmp_path):
    db.migrate()
    for shard in range(SHARDS):
        with db.write(shard) as conn:
            _add_username(conn, f"kept-{shard}", shard)
    dest = tmp_path / "backup.db"
    db.snapshot(dest)
    with db.write(0) as conn:
        _add_username(conn, "after-the-backup")

    restored = build("database", database_name, where=tmp_path / "standby").db
    restored.restore(dest)
    assert restored.integrity() == "ok"
    assert restored.schema_version() == db.schema_version()
    assert restored.migrate() == []
    for shard in range(SHARDS):
        assert _user_id_of(restored, shard, f"kept-{shard}") == shard
    assert _user_id_of(restored, 0, "after-the-backup") is None
    with restored.write(1) as conn:  # the standby is a working database
        _add_username(conn, "on-the-standby")
    assert _user_id_of(restored, 1, "on-the-standby") == 1


@pytest.mark.parametrize("database_name", SNAPSHOTTING)
def test_restore_refuses_to_overwrite_data(db, tmp_path):
    db.migrate()
    with db.write(0) as conn:
        _add_username(conn, "precious")
    dest = tmp_path / "backup.db"
    db.snapshot(dest)
    with pytest.raises(FileExistsError):
        db.restore(dest)
    assert _user_id_of(db, 0, "precious") == 1


@pytest.mark.parametrize("database_name", NOT_SNAPSHOTTING)
def test_backends_without_snapshots_say_which_tool_to_use(db, tmp_path):
    db.migrate()
    with db.write(0) as conn:
        _add_username(conn, "precious")
    dest = tmp_path / "backup.db"
    with pytest.raises(NotSupported, match="pg_dump"):
        db.snapshot(dest)
    with pytest.raises(NotSupported, match="pg_restore"):
        db.restore(dest)
    assert not dest.exists()
    assert _user_id_of(db, 0, "precious") == 1


def test_integrity_is_ok_on_a_healthy_database(db):
    db.migrate()
    assert db.integrity() == "ok"


def test_concurrent_writers_lose_no_rows(db):
    db.migrate()
    threads_n, per_thread = 6, 40
    errors: list[BaseException] = []
    start = threading.Barrier(threads_n)

    def writer(t: int):
        try:
            start.wait()
            for i in range(per_thread):
                shard = (t + i) % SHARDS
                with db.write(shard) as conn:
                    _add_username(conn, f"t{t}-{i}", t)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert _count_usernames(db) == threads_n * per_thread


def test_logical_shards_cannot_change_after_install(db, build, database_name):
    db.migrate()
    again = build("database", database_name).db
    assert again.migrate() == []
    resized = build("database", database_name, database={"logical_shards": 16}).db
    with pytest.raises(ValueError, match="logical_shards") as caught:
        resized.migrate()
    assert "8" in str(caught.value) and "16" in str(caught.value)


def test_check_reports_the_shard_count(db):
    db.migrate()
    assert str(SHARDS) in db.check()
