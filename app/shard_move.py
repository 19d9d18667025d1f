"""`main.py shards move LOGICAL_SHARD --to SERVER`: move one logical shard to another Postgres server while the site
runs, without losing a write and pausing only that shard's writes, for a moment.

1. Check, changing nothing: the shard and the server exist, the server is not the one holding it, both answer, the
   shard is at the latest schema with only the tables the migrations make, and config.toml can be rewritten (the
   new text is made and read back first).
2. Log: a trigger on each of the shard's tables records the key of every row written from now on, in
   `shard_NNNN_movelog.changes` on the old server.
3. Copy: the new server gets the shard's tables as `shard_NNNN_incoming` (made by the migrations, as `migrate`
   makes them), filled by COPY from one REPEATABLE READ snapshot of the old server.
4. Catch up: take the logged keys out of the log and copy each of those rows again as it is now (or delete it, if it
   is gone); repeat while a round finds many.
5. Switch, with the shard's writes paused: in one transaction on the old server take the shard's WRITE_LOCK
   exclusively (every write transaction of the shard holds it shared, so writes in flight finish and new ones wait;
   other shards use other locks and never wait), catch up the last changes, compare every table's row count, rename
   `shard_NNNN_incoming` to `shard_NNNN` on the new server, rename the old `shard_NNNN` to `shard_NNNN_moved` and
   record the move in MOVES_TABLE on the old server, commit. The writers that waited find the schema gone, read where
   it went, and write there (app/backends/database/postgres.py).
6. Rewrite the two servers' `shards = "..."` lines in config.toml, drop the old copy and the log.

A run stopped before the switch is undone (the incoming copy and the log are dropped, now or by the next run). A run
stopped after it has moved the shard: every process follows it to its new server, and running the same command
again finishes the rewrite of config.toml and the clean-up.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
import tomllib
from collections import defaultdict
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from app.backends.database.base import DatabaseUnavailable, load_migrations, migration_tables
from app.backends.database.postgres import (
    BOOKKEEPING_DDL,
    MOVES_SCHEMA,
    MOVES_TABLE,
    WRITE_LOCK,
    Endpoint,
    PostgresDatabase,
    schema_of,
)
from app.backends.factory import build_database
from app.config import Config, ConfigError, format_shard_ranges, parse_shard_ranges
from app.errors import UserError

Progress = Callable[[str, int, int], None]

CATCH_UP_ROUNDS = 20  # at most this many rounds before pausing writes anyway
FEW_CHANGES = 200  # a catch-up round that found no more rows than this is followed by the switch
LOCK_TIMEOUT = "10s"  # how long the switch waits for the shard's writes in flight before giving up
_KEYS_PER_QUERY = 500
_SERVERS_HEADER = re.compile(r"^\s*\[\[\s*database\s*\.\s*servers\s*\]\]\s*(#.*)?$")
_SHARDS_LINE = re.compile(r"""^(\s*shards\s*=\s*)("[^"\n]*"|'[^'\n]*')(.*)$""")


class ShardMoveError(UserError):
    """The move cannot start or go on; the message says why and what to do."""


@dataclass
class MoveReport:
    shard: int
    source: str
    target: str
    rows: int = 0  # copied from the snapshot
    caught_up: int = 0  # rows copied again (or deleted) because they were written during the copy
    pause_ms: float = 0.0  # how long the shard's writes waited
    counts: dict[str, int] = field(default_factory=dict)  # rows per table, the same on both sides at the switch
    config_lines: list[str] = field(default_factory=list)
    finished_earlier_move: bool = False


def move_shard(config: Config, shard: int, to: str, progress: Progress | None = None) -> MoveReport:
    if config.database.backend != "postgres":
        raise ConfigError(
            f"{config.source}: [database] backend = {config.database.backend!r} keeps every logical shard in one "
            "file; `shards move` moves shards between the [[database.servers]] of backend = 'postgres'"
        )
    count = config.database.logical_shards
    if not 0 <= shard < count:
        raise ConfigError(
            f"{config.source}: there is no logical shard {shard}: [database] logical_shards = {count}, "
            f"so they are 0-{count - 1}"
        )
    db = build_database(config)
    assert isinstance(db, PostgresDatabase)
    try:
        index = _server_index(config, db, to)
        source, target = db.server_of(shard), db.primaries[index]
        if target is source:
            raise ConfigError(
                f"{config.source}: logical shard {shard} is already on servers[{index}] ({target.label}); "
                "name another server"
            )
        return _Move(config, db, shard, index, progress or (lambda *_: None)).run()
    finally:
        db.close()


def _server_index(config: Config, db: PostgresDatabase, to: str) -> int:
    """SERVER as its number in [[database.servers]] (0 is the first), `servers[N]`, or host:port/dbname."""
    number = re.fullmatch(r"(?:servers\[)?(\d+)\]?", to.strip())
    if number and int(number.group(1)) < len(db.primaries):
        return int(number.group(1))
    for i, endpoint in enumerate(db.primaries):
        if endpoint.label == to.strip():
            return i
    known = ", ".join(f"{i} = {e.label}" for i, e in enumerate(db.primaries))
    raise ConfigError(
        f"{config.source}: there is no server {to!r} in [[database.servers]]; name one by its number or "
        f"host:port/dbname ({known})"
    )


def rewrite_shard_ranges(path: Path, servers: list[list[int]]) -> tuple[str, list[str]]:
    """config.toml's text with each [[database.servers]] entry's `shards = "..."` set to `servers[i]`, every other
    byte kept; and one line per change for the operator. Read back before it is returned."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    found: dict[int, int] = {}  # server index -> line number
    index, in_server = -1, False
    for n, line in enumerate(lines):
        if line.lstrip().startswith("["):
            in_server = bool(_SERVERS_HEADER.match(line))
            index += in_server
        elif in_server and _SHARDS_LINE.match(line.rstrip("\r\n")):
            found[index] = n
    changes: list[str] = []
    for i, shards in enumerate(servers):
        if i not in found:
            raise ShardMoveError(
                f'{path}: cannot find the `shards = "..."` line of servers[{i}]; write each server as its own '
                "[[database.servers]] table with its shards on one line (see README.md), then run again"
            )
        n = found[i]
        body = lines[n].rstrip("\r\n")
        ending = lines[n][len(body) :]
        head, value, tail = _SHARDS_LINE.match(body).groups()  # type: ignore[union-attr]
        wanted = format_shard_ranges(shards)
        if parse_shard_ranges(value[1:-1]) != shards:
            lines[n] = f'{head}"{wanted}"{tail}{ending}'
            changes.append(f"{path} line {n + 1}: {body.strip()}  ->  {lines[n].strip()}")
    new_text = "".join(lines)
    try:
        read_back = [parse_shard_ranges(s["shards"]) for s in tomllib.loads(new_text)["database"]["servers"]]
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError):
        read_back = []
    if read_back != servers:
        raise ShardMoveError(
            f"{path}: its [[database.servers]] are not the ones in effect (set from the environment?), so "
            "`shards move` cannot say where the shard went; put them in the file, then run again"
        )
    return new_text, changes


def _write_atomically(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _Move:
    def __init__(self, config: Config, db: PostgresDatabase, shard: int, index: int, progress: Progress):
        self.config, self.db, self.shard, self.index, self.progress = config, db, shard, index, progress
        self.source: Endpoint = db.server_of(shard)
        self.target: Endpoint = db.primaries[index]
        self.schema = schema_of(shard)
        # The new copy while it is filled, the old one between the switch and its drop, the change log.
        self.incoming, self.moved, self.log = (f"{self.schema}_{end}" for end in ("incoming", "moved", "movelog"))
        self.report = MoveReport(shard, self.source.label, self.target.label)
        self.tables: list[str] = []  # the shard's tables, bookkeeping first, then in the order the migrations make them
        self.columns: dict[str, list[str]] = {}
        self.keys: dict[str, list[str]] = {}

    def run(self) -> MoveReport:
        src, dst = self._connect(self.source), self._connect(self.target)
        try:
            if self._already_switched(src, dst):
                self.report.finished_earlier_move = True
                self._finish(src)
                return self.report
            self._check(src)
            try:
                self._prepare(src, dst)
                self._copy(src, dst)
                self._catch_up(src, dst)
                self._switch(dst)
            except BaseException:
                self._undo(src, dst)
                raise
            self._finish(src)
            return self.report
        except psycopg.OperationalError as exc:
            raise ShardMoveError(f"lost a database server while moving: {exc}; run the same command again") from None
        finally:
            src.close()
            dst.close()

    def _connect(self, endpoint: Endpoint) -> psycopg.Connection:
        try:
            conn = endpoint.connect()
        except DatabaseUnavailable as exc:
            raise ConfigError(f"{self.config.source}: [database] {exc}") from None
        conn.row_factory = tuple_row
        return conn

    @staticmethod
    def _has_schema(conn: psycopg.Connection, name: str) -> bool:
        return conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (name,)).fetchone()[0] == 1

    # --- before anything changes ---------------------------------------------------------------------------------

    def _already_switched(self, src: psycopg.Connection, dst: psycopg.Connection) -> bool:
        """True when an earlier run moved the shard here and stopped before it had rewritten config.toml."""
        here, there = self._has_schema(src, self.schema), self._has_schema(dst, self.schema)
        if here and there:
            raise ShardMoveError(
                f"{self.target.label} already has a schema {self.schema}, though {self.config.source} gives logical "
                f"shard {self.shard} to {self.source.label}: a copy left by a move stopped while it switched. The site "
                f"uses the one on {self.source.label}; drop the other (DROP SCHEMA {self.schema} CASCADE on "
                f"{self.target.label}) and run again"
            )
        if here:
            return False
        went = None
        if src.execute(f"SELECT to_regclass('{MOVES_TABLE}')").fetchone()[0] is not None:
            row = src.execute(f"SELECT to_label FROM {MOVES_TABLE} WHERE shard = %s", (self.shard,)).fetchone()
            went = row and row[0]
        if there and went == self.target.label:
            return True
        raise ShardMoveError(
            f"logical shard {self.shard} is not on {self.source.label}, where {self.config.source} puts it"
            + (f"; it moved to {went}: set the shards ranges in config.toml to match" if went else "")
        )

    def _check(self, src: psycopg.Connection) -> None:
        """Refusals that need the servers (config.toml's new text is made here too, to refuse early)."""
        migrations = load_migrations(self.db.dialect)
        made = ["schema_migrations", "meta", *migration_tables(self.db.dialect)]
        present = {
            r[0]
            for r in src.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (self.schema,)
            ).fetchall()
        }
        version = src.execute(f"SELECT max(version) FROM {self.schema}.schema_migrations").fetchone()[0]
        if version != migrations[-1].version or set(made) - present:
            raise ShardMoveError(
                f"{self.schema} on {self.source.label} is at schema v{version}, not v{migrations[-1].version}: run "
                "`main.py migrate` first"
            )
        extra = sorted(present - set(made))
        if extra:
            raise ShardMoveError(
                f"{self.schema} on {self.source.label} has tables the migrations do not make ({', '.join(extra)}); "
                "`shards move` would leave them behind: finish or remove what made them, then run again"
            )
        self.tables = made
        for table in made:
            self.columns[table] = [
                r[0]
                for r in src.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
                    " ORDER BY ordinal_position",
                    (self.schema, table),
                ).fetchall()
            ]
            self.keys[table] = [
                r[0]
                for r in src.execute(
                    "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
                    " AND a.attnum = ANY (i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary"
                    " ORDER BY array_position(i.indkey::int2[], a.attnum)",
                    (f"{self.schema}.{table}",),
                ).fetchall()
            ]
        self._new_config_text()

    def _new_config_text(self) -> tuple[str, list[str]]:
        servers = [list(e.shards) for e in self.db.primaries]
        servers[self.db.primaries.index(self.source)].remove(self.shard)
        servers[self.index] = sorted(servers[self.index] + [self.shard])
        return rewrite_shard_ranges(Path(self.config.source), servers)

    # --- copying -------------------------------------------------------------------------------------------------

    def _prepare(self, src: psycopg.Connection, dst: psycopg.Connection) -> None:
        """Leftovers of an earlier stopped run gone, the move record's table on both servers, the log started."""
        moves = (
            f"CREATE SCHEMA IF NOT EXISTS {MOVES_SCHEMA}; CREATE TABLE IF NOT EXISTS {MOVES_TABLE} ("
            " shard INTEGER PRIMARY KEY, to_server INTEGER NOT NULL, to_label TEXT NOT NULL, moved_at BIGINT NOT NULL)"
        )
        dst.execute(f"BEGIN; DROP SCHEMA IF EXISTS {self.incoming} CASCADE; {moves}; COMMIT")
        triggers = "; ".join(
            f"CREATE TRIGGER pinhole_move AFTER INSERT OR UPDATE OR DELETE ON {self.schema}.{table} FOR EACH ROW"
            f" EXECUTE FUNCTION {self.log}.record({', '.join(repr(k) for k in self.keys[table])})"
            for table in self.tables
        )
        src.execute(
            f"BEGIN; DROP SCHEMA IF EXISTS {self.log} CASCADE; DROP SCHEMA IF EXISTS {self.moved} CASCADE; {moves}; "
            f"CREATE SCHEMA {self.log}; "
            f"CREATE TABLE {self.log}.changes (id BIGSERIAL PRIMARY KEY, tbl TEXT NOT NULL, pk JSONB NOT NULL); "
            f"CREATE FUNCTION {self.log}.record() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "DECLARE old_key jsonb; new_key jsonb;\n"
            "BEGIN\n"
            "  IF TG_OP <> 'INSERT' THEN\n"
            "    SELECT jsonb_object_agg(k, v) INTO old_key FROM jsonb_each(to_jsonb(OLD)) AS e(k, v)"
            " WHERE k = ANY (TG_ARGV);\n"
            "  END IF;\n"
            "  IF TG_OP <> 'DELETE' THEN\n"
            "    SELECT jsonb_object_agg(k, v) INTO new_key FROM jsonb_each(to_jsonb(NEW)) AS e(k, v)"
            " WHERE k = ANY (TG_ARGV);\n"
            f"    INSERT INTO {self.log}.changes (tbl, pk) VALUES (TG_TABLE_NAME, new_key);\n"
            "  END IF;\n"
            "  IF old_key IS NOT NULL AND old_key IS DISTINCT FROM new_key THEN\n"
            f"    INSERT INTO {self.log}.changes (tbl, pk) VALUES (TG_TABLE_NAME, old_key);\n"
            "  END IF;\n"
            "  RETURN NULL;\n"
            "END $$; "
            f"{triggers}; COMMIT"
        )

    def _copy(self, src: psycopg.Connection, dst: psycopg.Connection) -> None:
        """The shard's tables made on the new server and filled from one snapshot of the old one (taken after the
        log began, so every later write is in the log)."""
        src.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        dst.execute(f"BEGIN; CREATE SCHEMA {self.incoming}; SET LOCAL search_path TO {self.incoming}")
        dst.execute(BOOKKEEPING_DDL)
        for migration in load_migrations(self.db.dialect):
            dst.execute(migration.sql)
        counts = {t: src.execute(f"SELECT count(*) FROM {self.schema}.{t}").fetchone()[0] for t in self.tables}
        total = sum(counts.values())
        for table in self.tables:
            columns = ", ".join(self.columns[table])
            with (
                src.cursor().copy(f"COPY {self.schema}.{table} ({columns}) TO STDOUT") as out,
                dst.cursor().copy(f"COPY {self.incoming}.{table} ({columns}) FROM STDIN") as into,
            ):
                for chunk in out:
                    into.write(chunk)
            self.report.rows += counts[table]
            self.progress(f"copying {table}", self.report.rows, total)
        dst.execute("COMMIT")
        src.execute("COMMIT")

    def _catch_up(self, src: psycopg.Connection, dst: psycopg.Connection) -> None:
        for round_ in range(1, CATCH_UP_ROUNDS + 1):
            src.execute("BEGIN")
            found = self._sync_logged(src, dst)
            src.execute("COMMIT")
            self.progress("catching up", round_, CATCH_UP_ROUNDS)
            if found <= FEW_CHANGES:
                return

    def _sync_logged(self, src: psycopg.Connection, dst: psycopg.Connection) -> int:
        """Take the logged keys out of the log (in `src`'s open transaction) and make those rows on the new server
        what they are now on the old one. Returns how many rows that was."""
        logged: dict[str, set[tuple]] = defaultdict(set)
        for table, key in src.execute(f"DELETE FROM {self.log}.changes RETURNING tbl, pk").fetchall():
            logged[table].add(tuple(key[k] for k in self.keys[table]))
        current: dict[str, list[tuple]] = {}
        gone: dict[str, list[tuple]] = {}
        for table, keys in logged.items():
            current[table] = self._rows_now(src, table, sorted(keys, key=repr))
            positions = [self.columns[table].index(k) for k in self.keys[table]]
            found = {tuple(row[p] for p in positions) for row in current[table]}
            gone[table] = [k for k in keys if k not in found]
        dst.execute("BEGIN")
        for table in reversed(self.tables):  # deletes before the rows they may make room for; children first
            key = ", ".join(self.keys[table])
            for batch in _chunks(gone.get(table, []), _KEYS_PER_QUERY):
                dst.execute(f"DELETE FROM {self.incoming}.{table} WHERE ({key}) IN ({_values(batch)})", _flat(batch))
        for table in self.tables:  # parents first
            if current.get(table):
                with dst.cursor() as cur:
                    cur.executemany(self._upsert(table), current[table])
        dst.execute("COMMIT")
        count = sum(map(len, logged.values()))
        self.report.caught_up += count
        return count

    def _rows_now(self, src: psycopg.Connection, table: str, keys: list[tuple]) -> list[tuple]:
        columns, key = ", ".join(self.columns[table]), ", ".join(self.keys[table])
        rows: list[tuple] = []
        for batch in _chunks(keys, _KEYS_PER_QUERY):
            sql = f"SELECT {columns} FROM {self.schema}.{table} WHERE ({key}) IN ({_values(batch)})"
            rows += src.execute(sql, _flat(batch)).fetchall()
        return rows

    def _upsert(self, table: str) -> str:
        columns, keys = self.columns[table], self.keys[table]
        others = [c for c in columns if c not in keys]
        action = "DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in others) if others else "DO NOTHING"
        return (
            f"INSERT INTO {self.incoming}.{table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
            f" ON CONFLICT ({', '.join(keys)}) {action}"
        )

    # --- the switch ----------------------------------------------------------------------------------------------

    def _switch(self, dst: psycopg.Connection) -> None:
        """Pause the shard's writes, catch up the last changes, verify, move the shard; see the module docstring."""
        lock = self._connect(self.source)
        try:
            try:
                lock.execute(
                    f"BEGIN; SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; "
                    f"SELECT pg_advisory_xact_lock({WRITE_LOCK}, {self.shard})"
                )
            except psycopg.errors.LockNotAvailable:
                raise ShardMoveError(
                    f"a write of logical shard {self.shard} ran longer than {LOCK_TIMEOUT}, so its writes could not be "
                    "paused; nothing was switched: run again"
                ) from None
            paused = time.monotonic()
            self.progress("writes paused", 0, 1)
            self._sync_logged(lock, dst)
            self._verify_counts(lock, dst)
            dst.execute(
                f"BEGIN; ALTER SCHEMA {self.incoming} RENAME TO {self.schema}; "
                f"DELETE FROM {MOVES_TABLE} WHERE shard = {self.shard}; COMMIT"
            )
            try:
                lock.execute(f"ALTER SCHEMA {self.schema} RENAME TO {self.moved}")
                lock.execute(
                    f"INSERT INTO {MOVES_TABLE} (shard, to_server, to_label, moved_at) VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT (shard) DO UPDATE SET to_server = EXCLUDED.to_server, to_label = EXCLUDED.to_label,"
                    " moved_at = EXCLUDED.moved_at",
                    (self.shard, self.index, self.target.label, int(time.time() * 1000)),
                )
                lock.execute("COMMIT")
            except BaseException:
                self._take_back(lock, dst)
                raise
            self.report.pause_ms = (time.monotonic() - paused) * 1000
        finally:
            lock.close()

    def _take_back(self, lock: psycopg.Connection, dst: psycopg.Connection) -> None:
        """The old server's half of the switch failed: if it still has the shard (it goes on with it), take the new
        copy out of the way again. If that cannot be known, both copies stay and the next run says which to drop."""
        lock.close()  # its transaction ends (a COMMIT the server had received still commits)
        with suppress(psycopg.Error, ShardMoveError, ConfigError):
            check = self._connect(self.source)
            try:
                # Behind the write lock: the switch transaction has certainly ended, one way or the other.
                check.execute(
                    f"BEGIN; SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; "
                    f"SELECT pg_advisory_xact_lock_shared({WRITE_LOCK}, {self.shard})"
                )
                if self._has_schema(check, self.schema):
                    dst.execute(f"ALTER SCHEMA {self.schema} RENAME TO {self.incoming}")
            finally:
                check.close()

    def _verify_counts(self, lock: psycopg.Connection, dst: psycopg.Connection) -> None:
        for table in self.tables:
            old = lock.execute(f"SELECT count(*) FROM {self.schema}.{table}").fetchone()[0]
            new = dst.execute(f"SELECT count(*) FROM {self.incoming}.{table}").fetchone()[0]
            if old != new:
                raise ShardMoveError(
                    f"after catching up, {table} has {old} rows on {self.source.label} but {new} on "
                    f"{self.target.label}; nothing was switched"
                )
            self.report.counts[table] = old

    def _undo(self, src: psycopg.Connection, dst: psycopg.Connection) -> None:
        """Before the switch: drop the new copy and the log (best effort; the next run drops what is left)."""
        for conn, schema in ((dst, self.incoming), (src, self.log)):
            with suppress(psycopg.Error):
                conn.rollback()
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    def _finish(self, src: psycopg.Connection) -> None:
        """After the switch: config.toml says where the shard is now, and the old copy and the log are dropped."""
        self.progress("switched", 1, 1)
        text, self.report.config_lines = self._new_config_text()
        _write_atomically(Path(self.config.source), text)
        self.progress("dropping the old copy", 0, 1)
        src.execute(f"BEGIN; DROP SCHEMA IF EXISTS {self.moved} CASCADE; DROP SCHEMA IF EXISTS {self.log} CASCADE")
        src.execute("COMMIT")


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _values(keys: list[tuple]) -> str:
    width = len(keys[0])
    row = "(" + ", ".join(["%s"] * width) + ")"
    return "VALUES " + ", ".join([row] * len(keys))


def _flat(keys: list[tuple]) -> list[Any]:
    return [value for key in keys for value in key]
