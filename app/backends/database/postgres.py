"""Rungs 2 and 3: logical shards as PostgreSQL schemas over one or more servers, through psycopg 3.

Each logical shard is one schema (`shard_0042`) with the same tables, made by the same migration
files; `[[database.servers]]` says which server holds which shards (config.py checks that every
shard has exactly one). Every transaction names its shard with `SET LOCAL search_path`, sent with
its `BEGIN`, so a connection carries no session state between transactions: the pools here can be
pointed at pgbouncer in transaction mode, and prepared statements are off for the same reason. Reads of many
shards at once (`each_shard`, `read_all`: search, batch loads by id) go to each server as one read-only
transaction that sets the search_path before each statement, sent as one statement list: one round trip per server.

Services write SQL once for every rung: `?` placeholders (turned into psycopg's `%s` here, never
inside string literals), portable types, rows as dicts. Reads may go to a server's replicas, except
that a write on a shard sends this thread's reads of that shard to the primary for
`read_primary_after_write_seconds` (read-your-writes for the request that wrote).

A server that cannot be reached raises DatabaseUnavailable naming it (host:port/dbname and its
shards, never a password); after one failure the server is probed directly before its pool is
waited on again, so requests to a dead server fail at once and a server that returns is used again
at once. Backups of this backend are pg_dump's job: `snapshot()` and `restore()` say so.

A shard can move between servers while the app runs (`main.py shards move`, app/shard_move.py): every write
transaction holds the shard's WRITE_LOCK shared, which the mover takes exclusively while it switches, and every
transaction checks that the shard's schema is still on the server. A shard that is gone has left a row in
MOVES_TABLE naming where it went, and this process routes the shard there from then on.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg.adapt import Loader
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from app.backends.database.base import (
    Connection,
    Database,
    DatabaseUnavailable,
    NotSupported,
    Row,
    load_migrations,
)
from app.config import DatabaseConfig, format_shard_ranges, mask_dsn

log = logging.getLogger("pinhole.db")

# Advisory lock key (with the shard as second key) serialising two nodes migrating one shard.
_MIGRATE_LOCK = 0x50494E48  # "PINH"
# Advisory lock key (with the shard as second key): every write transaction of a shard holds it shared until it ends;
# `shards move` holds it exclusively while it switches the shard to another server, pausing that shard's writes only.
WRITE_LOCK = 0x50494E57  # "PINW"
# On a server a shard moved away from: shard -> the server it went to (its index in [[database.servers]], its label).
MOVES_SCHEMA = "pinhole_moves"
MOVES_TABLE = f"{MOVES_SCHEMA}.moved_shards"
# What `migrate` makes in every shard schema before the migrations: which versions it has, what it was made for.
BOOKKEEPING_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL); "
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
)
_SHARD_SCHEMA = r"^shard_[0-9]{4}$"
# Connections per server that migrate its shards in parallel.
_MIGRATE_CONNECTIONS = 4
# How long a server that failed is answered "unavailable" without trying it again.
_DOWN_SECONDS = 1.0


def schema_of(shard: int) -> str:
    """The schema holding a logical shard (an int formatted here, so safe to put in SQL)."""
    return f"shard_{int(shard):04d}"


@functools.lru_cache(maxsize=4096)
def to_pyformat(sql: str) -> str:
    """`?` placeholders to psycopg's `%s`, and `%` to `%%`; quoted text and comments keep their `?`."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:  # '' or "" inside quotes
                        j += 2
                        continue
                    break
                j += 1
            end = min(j + 1, n)
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            end = n if j < 0 else j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            end = n if j < 0 else j + 2
        else:
            out.append("%s" if c == "?" else "%%" if c == "%" else c)
            i += 1
            continue
        out.append(sql[i:end].replace("%", "%%"))  # psycopg reads % even inside literals
        i = end
    return "".join(out)


def _params(params: Sequence[Any]) -> tuple:
    # SQLite stores True as 1 and the portable schema keeps flags in INTEGER columns.
    return tuple(int(p) if isinstance(p, bool) else p for p in params)


class _NumberLoader(Loader):
    """NUMERIC (what sum() of BIGINT returns) as int or float, as SQLite would give it."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        if text.lstrip("-").isdigit():
            return int(text)
        return float(text)


def _configure(conn: psycopg.Connection) -> None:
    conn.adapters.register_loader("numeric", _NumberLoader)


def _is_unreachable(exc: BaseException) -> bool:
    """A lost or refused connection, as opposed to an error in the SQL or the data."""
    if isinstance(exc, (PoolTimeout, PoolClosed)):
        return True
    if isinstance(exc, psycopg.OperationalError):
        state = exc.sqlstate
        # None: libpq's own (connection refused, reset); 08: connection exceptions; 57P0x: server shutting
        # down or starting; 53300: too many connections.
        return state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03", "53300")
    return isinstance(exc, psycopg.InterfaceError)


def _roll_back(conn: psycopg.Connection) -> None:
    if not conn.closed:
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            pass  # a broken connection rolls back by itself; the pool discards it


def _first_line(text: str) -> str:
    return " ".join(text.strip().splitlines()[:1]).strip() or "no details"


class ShardNotHere(Exception):
    """The shard's schema is not on the server asked (moved away, or never made); where it went, if recorded."""

    def __init__(self, shard: int, to_server: int | None, to_label: str | None):
        super().__init__(f"logical shard {shard} is not here")
        self.shard, self.to_server, self.to_label = shard, to_server, to_label


def _here_sql(schema: str) -> str:
    # A catalog scan, not a cached lookup: it sees a rename committed while this transaction waited for a lock.
    return f"SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = '{schema}') AS here"


class Endpoint:
    """One server (a primary or a replica) and its connection pool, opened on first use."""

    def __init__(self, dsn: str, where: str, role: str, shards: list[int], pool_min: int, pool_max: int, timeout: int):
        try:
            parts = conninfo_to_dict(dsn)
        except psycopg.Error as exc:
            raise ValueError(
                f"{where} is not a PostgreSQL connection string ({mask_dsn(_first_line(str(exc)))})"
            ) from None
        self.dsn = dsn
        self._password = parts.get("password") or ""
        host = parts.get("host") or parts.get("hostaddr") or "localhost"
        self.label = f"{host}:{parts.get('port') or 5432}/{parts.get('dbname') or parts.get('user') or ''}"
        self.role = role
        self.shards = shards
        self.pool_min, self.pool_max, self.timeout = pool_min, pool_max, timeout
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._down_reason = ""
        self._was_down = False

    def describe(self) -> str:
        return f"{self.label} ({self.role} for logical shards {format_shard_ranges(self.shards)})"

    def unavailable(self, reason: str) -> DatabaseUnavailable:
        reason = mask_dsn(_first_line(reason))
        if self._password:
            reason = reason.replace(self._password, "***")
        return DatabaseUnavailable(f"database server {self.describe()} is unavailable: {reason}")

    def _connect_kwargs(self) -> dict[str, Any]:
        return {
            "autocommit": True,  # transactions are explicit: BEGIN + SET LOCAL in one round trip
            "prepare_threshold": None,  # no server-side prepared statements: pgbouncer-safe
            "row_factory": dict_row,
            "connect_timeout": max(2, self.timeout),
            "application_name": "pinhole",
        }

    def _new_pool(self) -> ConnectionPool:
        pool = ConnectionPool(
            self.dsn,
            kwargs=self._connect_kwargs(),
            min_size=self.pool_min,
            max_size=self.pool_max,
            open=False,
            configure=_configure,
            timeout=self.timeout,
            name=self.label,
        )
        pool.open(wait=False)
        return pool

    def _probe(self) -> str | None:
        """Connect directly, bypassing the pool: None if the server answers, else why not."""
        try:
            with psycopg.connect(self.dsn, **{**self._connect_kwargs(), "row_factory": None}) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            return str(exc)
        return None

    def _mark_down(self, reason: str) -> DatabaseUnavailable:
        self._down_reason = reason
        self._down_until = time.monotonic() + _DOWN_SECONDS
        self._was_down = True
        return self.unavailable(reason)

    def pool(self) -> ConnectionPool:
        with self._lock:
            if time.monotonic() < self._down_until:
                raise self.unavailable(self._down_reason)
            if self._was_down or self._pool is None:
                # Ask the server itself before trusting a pool: a refused connection or a wrong password is
                # reported at once instead of after the pool's timeout, and a pool that may be backing off
                # for minutes after an outage is replaced by a fresh one as soon as the server is back.
                reason = self._probe()
                if reason is not None:
                    raise self._mark_down(reason)
                self._was_down = False
                if self._pool is not None:
                    self._pool.close(timeout=0)
                    self._pool = None
            if self._pool is None:
                self._pool = self._new_pool()
            return self._pool

    def getconn(self) -> tuple[ConnectionPool, psycopg.Connection]:
        pool = self.pool()
        try:
            return pool, pool.getconn()
        except (PoolTimeout, PoolClosed) as exc:
            reason = self._probe()
            with self._lock:
                if reason is not None:
                    raise self._mark_down(reason) from exc
            raise self.unavailable(f"no free connection within {self.timeout} s (pool_max = {self.pool_max})") from exc

    def begin(self, shard: int, read_only: bool) -> tuple[ConnectionPool, psycopg.Connection]:
        """A connection inside a new transaction whose search_path is the shard's schema; ShardNotHere if the
        schema is not on this server."""
        schema = schema_of(shard)
        start = f"BEGIN{' READ ONLY' if read_only else ''}; SET LOCAL search_path TO {schema}; "
        if not read_only:
            start += f"SELECT pg_advisory_xact_lock_shared({WRITE_LOCK}, {shard}); "
        start += _here_sql(schema)
        for _attempt in range(2):
            pool, conn = self.getconn()
            try:
                cur = conn.execute(start)
                while cur.nextset():
                    pass
                if cur.fetchone()["here"]:
                    return pool, conn
                gone = self._moved(conn, shard)
                conn.execute("ROLLBACK")
                pool.putconn(conn)
                raise gone
            except psycopg.Error as exc:
                pool.putconn(conn)
                if not _is_unreachable(exc):
                    raise
                error = exc
                self._check_after_losing(pool, exc)
        with self._lock:
            raise self._mark_down(str(error)) from error

    def _check_after_losing(self, pool: ConnectionPool, error: psycopg.Error) -> None:
        """After a lost connection: unavailable if the server does not answer; else (restarted?) drop the idle
        connections that died, so the caller may try once more."""
        reason = self._probe()
        if reason is not None:
            with self._lock:
                raise self._mark_down(reason) from error
        pool.check()

    def read_each(self, reads: Sequence[tuple[int, str, Sequence[Any]]]) -> list[Row] | None:
        """The rows of several reads, each (shard, sql, params), in one read-only transaction sent as one statement
        list: one round trip, where a transaction per read takes two. None if a shard's schema is not here (it
        moved away): the caller reads one by one, following it."""
        for _attempt in range(2):
            pool, conn = self.getconn()
            try:
                with psycopg.ClientCursor(conn) as cur:  # each value quoted by psycopg, as a bound one
                    statements = ["BEGIN READ ONLY;"]
                    for shard, sql, params in reads:  # each ";" on a line of its own: a statement may end in a comment
                        statements += [
                            f"SET LOCAL search_path TO {schema_of(shard)};",
                            cur.mogrify(to_pyformat(sql), _params(params)),
                            ";",
                        ]
                    cur.execute("\n".join([*statements, "COMMIT"]))
                    rows: list[Row] = []
                    while True:
                        if cur.description:
                            rows += cur.fetchall()
                        if not cur.nextset():
                            return rows
            except psycopg.Error as exc:
                _roll_back(conn)
                if isinstance(exc, psycopg.errors.UndefinedTable):
                    return None
                if not _is_unreachable(exc):
                    raise
                error = exc
            finally:
                pool.putconn(conn)
            self._check_after_losing(pool, error)
        with self._lock:
            raise self._mark_down(str(error)) from error

    @staticmethod
    def _moved(conn: psycopg.Connection, shard: int) -> ShardNotHere:
        if conn.execute(f"SELECT to_regclass('{MOVES_TABLE}') IS NOT NULL AS t").fetchone()["t"]:
            row = conn.execute(f"SELECT to_server, to_label FROM {MOVES_TABLE} WHERE shard = %s", (shard,)).fetchone()
            if row is not None:
                return ShardNotHere(shard, row["to_server"], row["to_label"])
        return ShardNotHere(shard, None, None)

    def holds(self, shard: int) -> bool:
        """Whether the shard's schema is on this server now (asked on a connection of its own)."""
        with self.connect() as conn:
            return conn.execute(_here_sql(schema_of(shard))).fetchone()["here"]

    def finish(self, pool: ConnectionPool, conn: psycopg.Connection, commit: bool) -> None:
        try:
            if commit:
                try:
                    conn.execute("COMMIT")
                except psycopg.Error as exc:
                    if _is_unreachable(exc):
                        raise self.unavailable(f"lost during COMMIT (it may or may not have happened): {exc}") from exc
                    raise
            else:
                _roll_back(conn)
        finally:
            pool.putconn(conn)

    def query(self, sql: str) -> list[Row]:
        """A statement in its own transaction, outside any shard (catalog questions)."""
        pool, conn = self.getconn()
        try:
            cur = conn.execute(sql)
            return cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            if _is_unreachable(exc):
                raise self.unavailable(str(exc)) from exc
            raise
        finally:
            pool.putconn(conn)

    def connect(self) -> psycopg.Connection:
        """A connection of its own (migrations), not from the pool."""
        try:
            conn = psycopg.connect(self.dsn, **self._connect_kwargs())
        except psycopg.Error as exc:
            raise self.unavailable(str(exc)) from exc
        _configure(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close(timeout=1)
                self._pool = None


class PgConnection(Connection):
    def __init__(self, raw: psycopg.Connection, endpoint: Endpoint, shard: int):
        self.raw = raw
        self.endpoint = endpoint
        self.shard = shard

    def _failed(self, exc: psycopg.Error) -> Exception:
        """What to raise for a failed statement: unavailable when the server or the shard is gone, else the error."""
        if _is_unreachable(exc):
            return self.endpoint.unavailable(str(exc))
        if isinstance(exc, psycopg.errors.UndefinedTable) and not self.endpoint.holds(self.shard):
            # `shards move` switched the shard while this transaction ran: the next one goes to its new server.
            return self.endpoint.unavailable(f"logical shard {self.shard} moved to another server meanwhile; try again")
        return exc

    def _execute(self, sql: str, params: Sequence[Any]) -> psycopg.Cursor:
        try:
            return self.raw.execute(to_pyformat(sql), _params(params))
        except psycopg.Error as exc:
            failure = self._failed(exc)
            if failure is exc:
                raise
            raise failure from exc

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cur = self._execute(sql, params)
        return cur.fetchall() if cur.description else []

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._execute(sql, params).rowcount

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        rows = [_params(r) for r in rows]
        if not rows:
            return
        try:
            with self.raw.cursor() as cur:
                cur.executemany(to_pyformat(sql), rows)
        except psycopg.Error as exc:
            failure = self._failed(exc)
            if failure is exc:
                raise
            raise failure from exc


class PostgresDatabase(Database):
    dialect = "postgres"

    def __init__(self, config: DatabaseConfig):
        self.config = config
        self.logical_shards = config.logical_shards
        self.pin_seconds = config.read_primary_after_write_seconds
        self.primaries: list[Endpoint] = []
        self.replicas: dict[int, list[Endpoint]] = {}  # index in primaries -> its replicas
        self._owner: dict[int, Endpoint] = {}
        timeout = config.connect_timeout_seconds
        for i, server in enumerate(config.servers):
            shards = server.shard_list
            primary = Endpoint(
                server.dsn, f"servers[{i}].dsn", "primary", shards, server.pool_min, server.pool_max, timeout
            )
            self.primaries.append(primary)
            sizes = (server.pool_min, server.pool_max, timeout)
            self.replicas[i] = [
                Endpoint(dsn, f"servers[{i}].replicas[{j}]", "replica", shards, *sizes)
                for j, dsn in enumerate(server.replicas)
            ]
            for shard in shards:
                self._owner[shard] = primary
        self._replicas_of = {id(p): self.replicas[i] for i, p in enumerate(self.primaries)}
        self._next_replica = 0
        self._local = threading.local()
        self._route_lock = threading.Lock()

    # --- routing ---------------------------------------------------------------------------------

    def server_of(self, shard: int) -> Endpoint:
        """The primary holding a logical shard."""
        return self._owner[self.check_shard(shard)]

    def _pinned(self, shard: int) -> bool:
        pins = getattr(self._local, "pins", None)
        return bool(pins) and pins.get(shard, 0.0) > time.monotonic()

    def _pin(self, shard: int) -> None:
        if self.pin_seconds:
            if getattr(self._local, "pins", None) is None:
                self._local.pins = {}
            self._local.pins[shard] = time.monotonic() + self.pin_seconds

    def _read_replicas(self, shard: int) -> list[Endpoint]:
        """The replicas to try, in turn, before the primary: none right after this thread wrote the shard."""
        replicas = self._replicas_of[id(self.server_of(shard))]
        if not replicas or self._pinned(shard):
            return []
        self._next_replica += 1  # spread reads; a race here only skews the spread
        k = self._next_replica % len(replicas)
        return replicas[k:] + replicas[:k]

    def _follow(self, left: Endpoint, gone: ShardNotHere) -> None:
        """Route a shard that is not on `left` to the server it moved to, or say why that cannot be done."""
        shard = gone.shard
        if gone.to_label is None:
            raise left.unavailable(
                f"its schema {schema_of(shard)} is not there; config.toml gives logical shard {shard} to this "
                "server: fix the shards ranges, or run `main.py migrate`"
            )
        by_label = [p for p in self.primaries if p.label == gone.to_label]
        by_index = [self.primaries[gone.to_server]] if 0 <= (gone.to_server or 0) < len(self.primaries) else []
        target = (by_label or by_index or [None])[0]
        if target is None or target is left:
            raise left.unavailable(
                f"logical shard {shard} moved to {gone.to_label}, which is not among this node's "
                "[[database.servers]]: update config.toml as `main.py shards move` said, and restart"
            )
        with self._route_lock:
            if self._owner[shard] is left:
                left.shards.remove(shard)
                target.shards.append(shard)
                target.shards.sort()
                self._owner[shard] = target
        log.warning(
            "logical shard %d moved from %s to %s (`main.py shards move`); routing it there. "
            "Update config.toml on this node to match.",
            shard, left.label, target.label,
        )  # fmt: skip

    def _begin_primary(self, shard: int, read_only: bool) -> tuple[Endpoint, ConnectionPool, psycopg.Connection]:
        """A transaction on the primary holding the shard, following it if it has moved (at most twice in a row)."""
        for _hop in range(3):
            endpoint = self.server_of(shard)
            try:
                return endpoint, *endpoint.begin(shard, read_only)
            except ShardNotHere as gone:
                self._follow(endpoint, gone)
        raise DatabaseUnavailable(f"logical shard {shard} keeps moving between servers; try again")

    @contextmanager
    def read(self, shard: int) -> Iterator[Connection]:
        self.check_shard(shard)
        current = getattr(self._local, "in_write", None)
        if current is not None and current.shard == shard:
            yield current
            return
        for replica in self._read_replicas(shard):
            try:
                endpoint, (pool, raw) = replica, replica.begin(shard, read_only=True)
                break
            except DatabaseUnavailable:
                log.warning("replica %s unavailable; reading shard %d elsewhere", replica.label, shard)
            except ShardNotHere:
                pass  # it has not replayed a move yet, or the shard left its primary: ask the primary
        else:
            endpoint, pool, raw = self._begin_primary(shard, read_only=True)
        try:
            yield PgConnection(raw, endpoint, shard)
        except BaseException:
            endpoint.finish(pool, raw, commit=False)
            raise
        else:
            endpoint.finish(pool, raw, commit=True)

    @contextmanager
    def write(self, shard: int) -> Iterator[Connection]:
        self.check_shard(shard)
        if getattr(self._local, "in_write", None) is not None:
            raise RuntimeError("write transactions may not be nested: one transaction, one shard")
        endpoint, pool, raw = self._begin_primary(shard, read_only=False)
        conn = PgConnection(raw, endpoint, shard)
        self._local.in_write = conn
        try:
            yield conn
        except BaseException:
            endpoint.finish(pool, raw, commit=False)
            raise
        else:
            endpoint.finish(pool, raw, commit=True)
            self._pin(shard)
        finally:
            self._local.in_write = None

    def shard_groups(self) -> Iterator[tuple[AbstractContextManager[Connection], list[int]]]:
        # One group per logical shard: callers run plain SQL, and each shard is its own schema.
        for shard in range(self.logical_shards):
            yield self.read(shard), [shard]

    def read_all(self, reads: Sequence[tuple[int, str, Sequence[Any]]]) -> list[Row]:
        # One round trip per server, in turn: a pool of threads to ask them side by side would be shared by every
        # request of the process, and queue them under load.
        if getattr(self._local, "in_write", None) is not None:
            return super().read_all(reads)  # reads see this thread's open write
        by_server: dict[int, list[tuple[int, str, Sequence[Any]]]] = {}
        for read in reads:
            by_server.setdefault(id(self.server_of(read[0])), []).append(read)
        rows: list[Row] = []
        for server_reads in by_server.values():
            found = self._read_on_one_server(server_reads)
            rows += found if found is not None else super().read_all(server_reads)  # moved meanwhile: follow it
        return rows

    def _read_on_one_server(self, reads: list[tuple[int, str, Sequence[Any]]]) -> list[Row] | None:
        """On a replica, as read() would choose, or on the primary right after this thread wrote one of the shards;
        None if a shard is not where this process thinks."""
        shards = [shard for shard, _sql, _params in reads]
        pinned = any(self._pinned(shard) for shard in shards)
        for replica in [] if pinned else self._read_replicas(shards[0]):
            try:
                found = replica.read_each(reads)
            except DatabaseUnavailable:
                log.warning("replica %s unavailable; reading its shards elsewhere", replica.label)
                continue
            if found is not None:
                return found
        return self.server_of(shards[0]).read_each(reads)

    def groups_for(self, shards: Iterable[int]) -> list[list[int]]:
        # Each logical shard is its own schema, chosen by the connection's search_path: one group per shard, even
        # for shards on the same server (plain SQL names no schema).
        return [[shard] for shard in sorted({self.check_shard(s) for s in shards})]

    # --- migrations ------------------------------------------------------------------------------

    def _present(self, endpoint: Endpoint, table: str) -> set[int]:
        """Shard schemas on a server that have `table` (every installed shard has meta and schema_migrations)."""
        rows = endpoint.query(
            "SELECT n.nspname AS name FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid "
            f"WHERE n.nspname ~ '{_SHARD_SCHEMA}' AND c.relname = '{table}'"
        )
        return {int(r["name"][len("shard_") :]) for r in rows}

    def _preflight(self) -> None:
        """Refuse before changing anything: a different logical_shards, or a shard found on the wrong server."""
        found: dict[int, list[Endpoint]] = {}
        for endpoint in self.primaries:
            present = sorted(self._present(endpoint, "meta"))
            for shard in present:
                found.setdefault(shard, []).append(endpoint)
            if not present:
                continue
            union = " UNION ALL ".join(
                f"SELECT {s} AS shard, value FROM {schema_of(s)}.meta WHERE key = 'logical_shards'" for s in present
            )
            for row in endpoint.query(union):
                if int(row["value"]) != self.logical_shards:
                    raise ValueError(
                        f"[database] logical_shards = {self.logical_shards}, but the data on {endpoint.label} "
                        f"was created with {row['value']}; it is fixed at install"
                    )
        for shard in range(self.logical_shards):
            owner = self._owner[shard]
            holders = found.get(shard, [])
            if holders and owner not in holders:
                raise ValueError(
                    f"[database] servers give logical shard {shard} to {owner.label}, but its schema "
                    f"{schema_of(shard)} is on {', '.join(e.label for e in holders)}; fix the shards ranges "
                    "(or move the shard with `main.py shards move`) before migrating"
                )

    def _migrate_shards(self, endpoint: Endpoint, shards: list[int], migrations: list) -> set[str]:
        """Each shard in its own transaction, on a connection of its own."""
        applied: set[str] = set()
        conn = endpoint.connect()
        try:
            for shard in shards:
                schema = schema_of(shard)
                try:
                    conn.execute(
                        f"BEGIN; SELECT pg_advisory_xact_lock({_MIGRATE_LOCK}, {shard}); "
                        f"CREATE SCHEMA IF NOT EXISTS {schema}; SET LOCAL search_path TO {schema}; {BOOKKEEPING_DDL}"
                    )
                    stored = conn.execute("SELECT value FROM meta WHERE key = 'logical_shards'").fetchone()
                    if stored is None:
                        conn.execute(
                            "INSERT INTO meta (key, value) VALUES ('logical_shards', %s)", (str(self.logical_shards),)
                        )
                    elif int(stored["value"]) != self.logical_shards:
                        raise ValueError(
                            f"[database] logical_shards = {self.logical_shards}, but {schema} on {endpoint.label} "
                            f"was created with {stored['value']}; it is fixed at install"
                        )
                    done = {r["version"] for r in conn.execute("SELECT version FROM schema_migrations").fetchall()}
                    for migration in migrations:
                        if migration.version in done:
                            continue
                        conn.execute(migration.sql)
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                            (migration.version, migration.name, int(time.time() * 1000)),
                        )
                        applied.add(migration.name)
                    conn.execute("COMMIT")
                except BaseException:
                    if not conn.closed:
                        try:
                            conn.execute("ROLLBACK")
                        except psycopg.Error:
                            pass
                    raise
        except psycopg.Error as exc:
            if _is_unreachable(exc):
                raise endpoint.unavailable(str(exc)) from exc
            raise
        finally:
            conn.close()
        return applied

    def migrate(self) -> list[str]:
        migrations = load_migrations(self.dialect)
        self._preflight()
        # DDL is CPU-bound in the server: a few connections per server migrate its shards side by side.
        jobs = [(e, e.shards[k::_MIGRATE_CONNECTIONS]) for e in self.primaries for k in range(_MIGRATE_CONNECTIONS)]
        jobs = [(e, shards) for e, shards in jobs if shards]
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            results = list(pool.map(lambda job: self._migrate_shards(job[0], job[1], migrations), jobs))
        names = set().union(*results)
        return [m.name for m in migrations if m.name in names]

    def schema_version(self) -> int:
        """The version every logical shard has reached (0 while any shard has no tables)."""
        versions: list[int] = []
        for endpoint in self.primaries:
            if not set(endpoint.shards) <= self._present(endpoint, "schema_migrations"):
                return 0
            union = " UNION ALL ".join(
                f"SELECT max(version) AS v FROM {schema_of(s)}.schema_migrations" for s in endpoint.shards
            )
            versions.append(endpoint.query(f"SELECT min(v) AS v FROM ({union}) t")[0]["v"] or 0)
        return min(versions, default=0)

    # --- health ----------------------------------------------------------------------------------

    def check(self) -> str:
        parts = []
        for i, endpoint in enumerate(self.primaries):
            row = endpoint.query("SELECT current_setting('server_version') AS v")[0]
            part = f"{endpoint.label} v{row['v'].split()[0]} shards {format_shard_ranges(endpoint.shards)}"
            for replica in self.replicas[i]:
                try:
                    replica.query("SELECT 1")
                    part += f", replica {replica.label}"
                except DatabaseUnavailable:
                    part += f", replica {replica.label} UNREACHABLE (its reads go to the primary)"
            parts.append(part)
        return (
            f"postgres: {len(self.primaries)} server(s), {self.logical_shards} logical shards, "
            f"schema v{self.schema_version()} ({'; '.join(parts)})"
        )

    def integrity(self) -> str:
        """'ok' when every server holds each of its shards, migrated to the latest version, and nothing else."""
        latest = max((m.version for m in load_migrations(self.dialect)), default=0)
        problems: list[str] = []
        for endpoint in self.primaries:
            present = self._present(endpoint, "schema_migrations")
            missing = sorted(set(endpoint.shards) - present)
            if missing:
                problems.append(f"{endpoint.label} lacks logical shards {format_shard_ranges(missing)}")
            held = sorted(set(endpoint.shards) & present)
            if held:
                union = " UNION ALL ".join(
                    f"SELECT {s} AS shard, (SELECT max(version) FROM {schema_of(s)}.schema_migrations) AS v, "
                    f"(SELECT value FROM {schema_of(s)}.meta WHERE key = 'logical_shards') AS n"
                    for s in held
                )
                behind = []
                for row in endpoint.query(union):
                    if row["n"] is None or int(row["n"]) != self.logical_shards:
                        problems.append(f"{schema_of(row['shard'])} on {endpoint.label} says logical_shards {row['n']}")
                    if (row["v"] or 0) != latest:
                        behind.append(row["shard"])
                if behind:
                    problems.append(
                        f"{endpoint.label}: logical shards {format_shard_ranges(behind)} are not at schema v{latest}"
                    )
            stray = sorted(present - set(endpoint.shards))
            if stray:
                problems.append(
                    f"{endpoint.label} also holds logical shards {format_shard_ranges(stray)} that config.toml "
                    "gives to another server (a copy left by a shard move?)"
                )
        return "; ".join(problems) or "ok"

    def snapshot(self, dest: Path) -> None:
        raise NotSupported(
            "main.py backup cannot copy a postgres database yet; back up each server with pg_dump "
            "(or continuous archiving), and the media separately (see scaling/LADDER.md)"
        )

    def restore(self, snapshot: Path) -> None:
        raise NotSupported(
            "main.py restore cannot load into a postgres database yet; restore each server with pg_restore "
            "(see scaling/LADDER.md)"
        )

    def locations(self) -> list[str]:
        return [f"postgres {endpoint.label}" for endpoint in self.primaries]

    def tables(self, shard: int) -> set[str]:
        rows = self.server_of(shard).query(
            f"SELECT table_name AS name FROM information_schema.tables WHERE table_schema = '{schema_of(shard)}'"
        )
        return {r["name"] for r in rows}

    def close(self) -> None:
        for endpoint in [*self.primaries, *(r for rs in self.replicas.values() for r in rs)]:
            endpoint.close()
