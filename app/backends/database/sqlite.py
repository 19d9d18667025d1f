"""Rung 0: every logical shard in one SQLite file, through apsw.

WAL lets readers run beside the writer; each thread keeps its own read connection. Writes in this
process go through one connection behind a lock (SQLite allows one writer at a time anyway), and
`BEGIN IMMEDIATE` with a busy timeout queues writers from other processes instead of failing.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import apsw

from app.backends.database.base import (
    Connection,
    Database,
    DatabaseUnavailable,
    Row,
    load_migrations,
)


def _dict_rows(cursor: apsw.Cursor, row: tuple) -> Row:
    return dict(zip((d[0] for d in cursor.get_description()), row, strict=True))


def _as_tuple(cursor: apsw.Cursor, row: tuple) -> tuple:
    return row


def open_sqlite(path: Path, busy_timeout_ms: int) -> apsw.Connection:
    """A WAL connection with rows as dicts; shared by the other SQLite-backed stores."""
    conn = apsw.Connection(str(path))
    conn.set_busy_timeout(busy_timeout_ms)
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL survives a killed process; only a power cut can lose the last commits.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.row_trace = _dict_rows
    return conn


class SqliteConnection(Connection):
    def __init__(self, conn: apsw.Connection):
        self.raw = conn

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        # Rows come back as tuples and are named here, once per query: the connection's per-row tracer
        # (_dict_rows) would fetch the column names again for every row.
        cursor = self.raw.cursor()
        cursor.row_trace = _as_tuple
        cursor.execute(sql, tuple(params))
        try:
            names = [d[0] for d in cursor.get_description()]
        except apsw.ExecutionCompleteError:  # no rows: the statement has already finished
            return []
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        self.raw.execute(sql, tuple(params)).fetchall()
        return self.raw.changes()

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.raw.executemany(sql, [tuple(r) for r in rows])


class SqliteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, path: Path, logical_shards: int, busy_timeout_ms: int = 5000):
        self.path = Path(path)
        self.logical_shards = logical_shards
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._writer: SqliteConnection | None = None
        self._all: list[apsw.Connection] = []
        self._all_lock = threading.Lock()

    def _open(self) -> apsw.Connection:
        try:
            conn = open_sqlite(self.path, self.busy_timeout_ms)
        except apsw.Error as exc:
            raise DatabaseUnavailable(f"cannot open {self.path}: {exc}") from exc
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _reader(self) -> SqliteConnection:
        conn = getattr(self._local, "reader", None)
        if conn is None:
            conn = self._local.reader = SqliteConnection(self._open())
        return conn

    @contextmanager
    def read(self, shard: int) -> Iterator[Connection]:
        self.check_shard(shard)
        yield getattr(self._local, "in_write", None) or self._reader()

    @contextmanager
    def write(self, shard: int) -> Iterator[Connection]:
        self.check_shard(shard)
        if getattr(self._local, "in_write", None):
            raise RuntimeError("write transactions may not be nested: one transaction, one shard")
        with self._write_lock:
            if self._writer is None:
                self._writer = SqliteConnection(self._open())
            conn = self._writer
            conn.raw.execute("BEGIN IMMEDIATE")
            self._local.in_write = conn
            try:
                yield conn
            except BaseException:
                conn.raw.execute("ROLLBACK")
                raise
            else:
                conn.raw.execute("COMMIT")
            finally:
                self._local.in_write = None

    def shard_groups(self) -> Iterator[tuple[AbstractContextManager[Connection], list[int]]]:
        yield self.read(0), list(range(self.logical_shards))

    def groups_for(self, shards: Iterable[int]) -> list[list[int]]:
        # Every logical shard is in the one file: one connection reaches them all.
        wanted = sorted({self.check_shard(s) for s in shards})
        return [wanted] if wanted else []

    def migrate(self) -> list[str]:
        applied: list[str] = []
        with self.write(0) as conn:
            conn.run(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
            )
            conn.run("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            stored = conn.value("SELECT value FROM meta WHERE key = 'logical_shards'")
            if stored is None:
                conn.run("INSERT INTO meta (key, value) VALUES ('logical_shards', ?)", (str(self.logical_shards),))
            elif int(stored) != self.logical_shards:
                raise ValueError(
                    f"[database] logical_shards = {self.logical_shards}, but this data was created with "
                    f"{stored}; it is fixed at install"
                )
            done = {r["version"] for r in conn.all("SELECT version FROM schema_migrations")}
            for migration in load_migrations(self.dialect):
                if migration.version in done:
                    continue
                conn.raw.execute(migration.sql)
                conn.run(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, int(time.time() * 1000)),
                )
                applied.append(migration.name)
        return applied

    def schema_version(self) -> int:
        with self.read(0) as conn:
            exists = conn.value("SELECT count(*) FROM sqlite_master WHERE name = 'schema_migrations'")
            return conn.value("SELECT coalesce(max(version), 0) FROM schema_migrations") if exists else 0

    def check(self) -> str:
        try:
            with self.read(0) as conn:
                conn.value("SELECT 1")
                mode = conn.value("PRAGMA journal_mode")
        except apsw.Error as exc:
            raise DatabaseUnavailable(f"sqlite {self.path}: {exc}") from exc
        return f"sqlite {self.path} ({mode}, schema v{self.schema_version()}, {self.logical_shards} logical shards)"

    def snapshot(self, dest: Path) -> None:
        # VACUUM INTO reads one consistent snapshot while writers carry on in WAL.
        with self.read(0) as conn:
            conn.run("VACUUM INTO ?", (str(dest),))

    def restore(self, snapshot: Path) -> None:
        if self.path.exists() and self.path.stat().st_size > 0:
            raise FileExistsError(f"{self.path} already exists: restore only into an empty data directory")
        self.close()
        tmp = self.path.with_name(self.path.name + ".restoring")
        shutil.copyfile(snapshot, tmp)
        os.replace(tmp, self.path)

    def integrity(self) -> str:
        with self.read(0) as conn:
            rows = conn.all("PRAGMA integrity_check")
        return "; ".join(str(next(iter(r.values()))) for r in rows)

    def locations(self) -> list[str]:
        return [f"sqlite {self.path.resolve()}"]

    def tables(self, shard: int) -> set[str]:
        with self.read(shard) as conn:
            return {r["name"] for r in conn.all("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._writer = None
        self._local = threading.local()
