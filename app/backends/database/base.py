"""The Database seam: rows, transactions and routing by logical shard.

Services write SQL once, with `?` placeholders and portable types (BIGINT ids, INTEGER times in Unix
ms, TEXT), and say which logical shard it runs on. A backend decides where that shard lives: the one
SQLite file on rung 0, a Postgres schema on some server higher up. Nothing joins across shards, and
one transaction never spans two shards: `write()` may not be nested.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from app.errors import UserError

K = TypeVar("K", bound=Hashable)

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_CREATE_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-z_][a-z0-9_]*)", re.I | re.M)

Row = dict[str, Any]


class DatabaseUnavailable(Exception):
    """The shard's server cannot be reached; the caller answers 503, nothing was written."""


class NotSupported(UserError):
    """This backend cannot do what was asked; the message says what to use instead."""


class Connection(ABC):
    @abstractmethod
    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    @abstractmethod
    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute a statement; return the number of rows it changed."""

    @abstractmethod
    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.one(sql, params)
        return None if row is None else next(iter(row.values()))


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Versioned SQL files `NNNN_name.sql`; `NNNN_name.<dialect>.sql` replaces one for a dialect."""
    chosen: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        stem, _, rest = path.name.partition(".")
        if rest not in ("sql", f"{dialect}.sql"):
            continue
        match = _MIGRATION_NAME.match(f"{stem}.sql")
        if not match:
            raise ValueError(f"bad migration file name: {path.name}")
        version = int(match.group(1))
        if version in chosen and rest == "sql":
            continue  # a dialect-specific file already won
        chosen[version] = Migration(version, stem, path.read_text(encoding="utf-8"))
    return [chosen[v] for v in sorted(chosen)]


def migration_tables(dialect: str) -> list[str]:
    """Every table the migrations make, in the order they make them (a table before those that refer to it)."""
    names: list[str] = []
    for migration in load_migrations(dialect):
        names += [n for n in _CREATE_TABLE.findall(migration.sql) if n not in names]
    return names


class Database(ABC):
    dialect: str
    logical_shards: int

    @abstractmethod
    def read(self, shard: int) -> AbstractContextManager[Connection]:
        """A connection for reads on `shard` (sees this thread's open write, if any)."""

    @abstractmethod
    def write(self, shard: int) -> AbstractContextManager[Connection]:
        """A transaction on `shard`: committed when the block ends, rolled back if it raises."""

    @abstractmethod
    def shard_groups(self) -> Iterator[tuple[AbstractContextManager[Connection], list[int]]]:
        """For queries over every shard: (read connection, the logical shards it holds) per place."""

    def each_shard(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """The rows of a read run on every logical shard, all together in no particular order (the caller sorts
        and limits; a LIMIT in `sql` holds per place)."""
        return self.read_all([(group[0], sql, params) for group in self.groups_for(range(self.logical_shards))])

    def read_all(self, reads: Sequence[tuple[int, str, Sequence[Any]]]) -> list[Row]:
        """The rows of several reads, each (shard, sql, params), all together in no particular order. One
        transaction per read here; a backend that reaches several shards over one connection needs fewer."""
        rows: list[Row] = []
        for shard, sql, params in reads:
            with self.read(shard) as conn:
                rows += conn.all(sql, params)
        return rows

    def read_in(self, sql: str, keys: Iterable[K], shard_of: Callable[[K], int]) -> list[Row]:
        """Rows by key: `sql`'s `IN ({})` gets one `?` per key, and it runs once for each place's keys (by_place),
        all places in one read_all."""
        batches = self.by_place(keys, shard_of)
        return self.read_all([(shard, sql.format(", ".join("?" * len(batch))), batch) for shard, batch in batches])

    def groups_for(self, shards: Iterable[int]) -> list[list[int]]:
        """These logical shards grouped by place: one connection, `read(group[0])`, reaches every shard of a group
        with plain SQL, so a page asks one query per place instead of one per logical shard. Each shard is in
        exactly one group; groups and their shards in ascending order. This default puts every shard on its own
        (always correct); a backend whose shards share a place says so."""
        return [[shard] for shard in sorted({self.check_shard(s) for s in shards})]

    def by_place(self, keys: Iterable[K], shard_of: Callable[[K], int]) -> list[tuple[int, list[K]]]:
        """Keys (ids, directory keys) batched by place: (the shard to open the place with, its keys), each key
        once, in the order given within a batch. Keys of no shard of this database (a forged id) are left out."""
        shard_by_key = {key: shard_of(key) for key in dict.fromkeys(keys)}
        shard_by_key = {key: shard for key, shard in shard_by_key.items() if 0 <= shard < self.logical_shards}
        groups = self.groups_for(set(shard_by_key.values()))
        place = {shard: i for i, group in enumerate(groups) for shard in group}
        batches: list[tuple[int, list[K]]] = [(group[0], []) for group in groups]
        for key, shard in shard_by_key.items():
            batches[place[shard]][1].append(key)
        return batches

    @abstractmethod
    def migrate(self) -> list[str]:
        """Apply pending migrations on every shard; return the names applied."""

    @abstractmethod
    def schema_version(self) -> int: ...

    @abstractmethod
    def check(self) -> str:
        """Say what was found (one line), or raise DatabaseUnavailable."""

    @abstractmethod
    def snapshot(self, dest: Path) -> None:
        """Write a consistent copy of all data to `dest` while others keep writing."""

    @abstractmethod
    def restore(self, snapshot: Path) -> None:
        """Load a snapshot made by `snapshot()` into an empty database; refuse if data exists."""

    @abstractmethod
    def integrity(self) -> str:
        """'ok', or what the database's own consistency check found."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def locations(self) -> list[str]:
        """Where the data lives, one line per file or server (`main.py migrate-up` refuses to copy onto itself)."""

    @abstractmethod
    def tables(self, shard: int) -> set[str]:
        """The tables a logical shard has (none before `migrate`)."""

    def shard_for_key(self, key: str) -> int:
        """The directory shard for a lookup key (lowercase username, tag): stable everywhere."""
        digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.logical_shards

    def check_shard(self, shard: int) -> int:
        if not (isinstance(shard, int) and 0 <= shard < self.logical_shards):
            raise ValueError(f"logical shard {shard!r} is outside 0..{self.logical_shards - 1}")
        return shard
