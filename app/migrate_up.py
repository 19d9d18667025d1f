"""`main.py migrate-up --to NEW_CONFIG`: copy an install's data onto the backends of another config.

Climbing the ladder is a copy, not a redesign: every id carries its owner's logical shard, and every other row has a
fixed home (TABLES), so each row goes to the same logical shard on the new backends. Everything goes through the
seams that app/backends/factory.py builds from each config (Database, BlobStore, FeedStore), so any target the
factory can build works the same: Postgres shards over several servers, photos in another directory or in S3,
feeds in the database or elsewhere.

What is copied:
- every row of every table the migrations make, onto its logical shard (the target's `migrate` makes the tables);
- every home feed: as `feed_items` rows when both configs keep feeds in the database (the sql FeedStore's own
  table), otherwise read with FeedStore.page and written with FeedStore.add;
- every blob, by key.
Sessions (people sign in again), the queue (the sweeps redo what it held) and the cache are not copied.

Resumable: the target records its progress in `migrate_up_progress` on logical shard 0: which source it copies
from, and per step (a table on one place of the source, the feeds, the blobs) the last key copied; rows and feeds
go in primary-key order, blobs in sorted key order. Every write is idempotent by key (INSERT ... ON CONFLICT DO
NOTHING, FeedStore.add, BlobStore.put), so a run that was interrupted carries on from its marks and a batch written
but not yet marked is written again harmlessly. Once everything is verified the progress table is dropped, and a
target with data but no progress table is refused as not empty.

Verification reads both sides again: per table and logical shard the row count and a checksum of the rows (a sum
of per-row hashes, so the two sides' orders need not agree), every feed, and the sha256 of every blob. The copy
assumes the site is stopped: a row changed after it was copied shows up as a difference.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app import ids
from app.backends.blobs.base import BlobNotFound
from app.backends.database.base import (
    Connection,
    Database,
    DatabaseUnavailable,
    Row,
    load_migrations,
    migration_tables,
)
from app.backends.factory import Backends, build_backends
from app.config import Config, ConfigError, prepare_data_dir
from app.errors import UserError

Progress = Callable[[str, int, int], None]

PROGRESS_TABLE = "migrate_up_progress"
FEED_TABLE = "feed_items"  # the sql FeedStore's table
BATCH_ROWS = 20_000  # rows read per page and marked per batch
BATCH_USERS = 500  # feeds copied per batch
BATCH_BLOBS = 50  # blobs copied between two marks
WRITERS = 4  # threads writing a page's rows to their shards
_CHECKSUM_MOD = 1 << 128
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

ShardOf = Callable[[Database, Row], int]


def _by_id(column: str) -> ShardOf:
    return lambda db, row: ids.shard_of(row[column])


def _by_key(column: str) -> ShardOf:
    return lambda db, row: db.shard_for_key(row[column])


def _site(db: Database, row: Row) -> int:
    return 0


@dataclass(frozen=True)
class Placement:
    key: tuple[str, ...]  # the primary key: rows are paged, marked and compared by it
    shard_of: ShardOf


# Where each table's rows live (scaling/LADDER.md, "Where rows live"). A table the migrations make and this map
# lacks stops migrate-up before it copies anything.
TABLES: dict[str, Placement] = {
    "id_sequences": Placement(("shard",), lambda db, row: row["shard"]),
    "users": Placement(("id",), _by_id("id")),
    "usernames": Placement(("username",), _by_key("username")),
    "name_words": Placement(("word", "user_id"), _by_id("user_id")),
    "invites": Placement(("code_hash",), _site),
    "site_flags": Placement(("name",), _site),
    FEED_TABLE: Placement(("user_id", "post_id"), _by_id("user_id")),
    "posts": Placement(("id",), _by_id("id")),
    "post_media": Placement(("id",), _by_id("post_id")),
    "following": Placement(("user_id", "target_id"), _by_id("user_id")),
    "followers": Placement(("user_id", "follower_id"), _by_id("user_id")),
    "blocks": Placement(("user_id", "target_id"), _by_id("user_id")),
    "blocked_by": Placement(("user_id", "blocker_id"), _by_id("user_id")),
    "mutes": Placement(("user_id", "target_id"), _by_id("user_id")),
    "celebrities": Placement(("user_id",), _site),
    "likes": Placement(("post_id", "user_id"), _by_id("post_id")),
    "liked": Placement(("user_id", "post_id"), _by_id("user_id")),
    "comments": Placement(("id",), _by_id("post_id")),
    "post_tags": Placement(("post_id", "tag"), _by_id("post_id")),
    "tag_posts": Placement(("tag", "post_id"), _by_key("tag")),
    "tags": Placement(("tag",), _by_key("tag")),
    "place_posts": Placement(("cell", "post_id"), _by_key("cell")),
    "notifications": Placement(("id",), _by_id("user_id")),
    "oauth_apps": Placement(("client_id",), _by_key("client_id")),
    "oauth_codes": Placement(("code_hash",), _by_key("code_hash")),
    "oauth_tokens": Placement(("token_hash",), _by_key("token_hash")),
    "oauth_refresh_tokens": Placement(("refresh_hash",), _by_key("refresh_hash")),
    "oauth_grants": Placement(("user_id", "token_hash"), _by_id("user_id")),
    "bookmarks": Placement(("user_id", "post_id"), _by_id("user_id")),
    "media_attachments": Placement(("id",), _by_id("user_id")),
}


class MigrateUpError(UserError):
    """The copy cannot start or go on; the message says why and what to do."""


@dataclass
class TableCheck:
    table: str
    source_rows: int
    target_rows: int
    shards: int  # logical shards holding rows on either side


@dataclass
class Report:
    source: str
    target: str
    resumed: bool
    tables: list[TableCheck] = field(default_factory=list)
    feeds: int = 0
    feed_entries: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def feeds_in_database(config: Config) -> bool:
    """Whether the config keeps home feeds as `feed_items` rows in its database (the sql FeedStore)."""
    return config.feeds.backend == "sql"


def _feeds_as_rows(source: Config, target: Config) -> bool:
    """Copy the feeds as `feed_items` rows (bulk, fast) when both sides keep them there, else through FeedStore."""
    return feeds_in_database(source) and feeds_in_database(target)


def migrate_up(
    source_config: Config, target_config: Config, progress: Progress | None = None, batch_rows: int = BATCH_ROWS
) -> Report:
    """Copy everything from the install of `source_config` onto the backends of `target_config`, then verify."""
    _refuse_configs(source_config, target_config)
    prepare_data_dir(target_config)
    source, target = build_backends(source_config), build_backends(target_config)
    try:
        copy = _Copy(source_config, source, target_config, target, progress or (lambda *_: None), batch_rows)
        copy.preflight()
        try:
            copy.run()
            report = copy.verify()
        except (DatabaseUnavailable, OSError) as exc:
            raise MigrateUpError(f"{exc}; what was copied is kept: run the same command again to continue") from None
        if report.ok:
            copy.marks.drop()
        return report
    finally:
        source.close()
        target.close()


def _refuse_configs(source: Config, target: Config) -> None:
    """Refusals that need no server: the same config, or a different shard count."""
    if Path(source.source).resolve() == Path(target.source).resolve():
        raise ConfigError(f"{target.source} is the running install's own config; give the config of the new backends")
    if source.database.logical_shards != target.database.logical_shards:
        raise ConfigError(
            f"{target.source}: [database] logical_shards = {target.database.logical_shards}, but the install in "
            f"{source.source} has {source.database.logical_shards}; logical shards are fixed at install, so set "
            f"logical_shards = {source.database.logical_shards}"
        )
    if source.media == target.media and (source.media.backend != "local" or source.data_dir == target.data_dir):
        where = f"{source.data_dir / 'media'}" if source.media.backend == "local" else "the same store"
        raise ConfigError(
            f"{target.source}: [media] keeps photos where the running install does ({where}); "
            "give the new config its own [storage] data_dir or [media] store"
        )


class _Marks:
    """This copy's progress, kept in the target (logical shard 0) so an interrupted run continues where it stopped."""

    def __init__(self, db: Database):
        self.db = db
        self.steps: dict[str, tuple[Any, bool]] = {}

    def exists(self) -> bool:
        return PROGRESS_TABLE in self.db.tables(0)

    def create(self, source: str) -> None:
        """The table and the source it copies from, in one transaction."""
        with self.db.write(0) as conn:
            conn.run(
                f"CREATE TABLE {PROGRESS_TABLE} (step TEXT PRIMARY KEY, mark TEXT NOT NULL, done INTEGER NOT NULL)"
            )
            conn.run(f"INSERT INTO {PROGRESS_TABLE} (step, mark, done) VALUES ('source', ?, 0)", (json.dumps(source),))
        self.steps["source"] = (source, False)

    def load(self) -> None:
        with self.db.read(0) as conn:
            rows = conn.all(f"SELECT step, mark, done FROM {PROGRESS_TABLE}")
        self.steps = {r["step"]: (json.loads(r["mark"]), bool(r["done"])) for r in rows}

    def after(self, step: str) -> Any:
        return self.steps.get(step, (None, False))[0]

    def done(self, step: str) -> bool:
        return self.steps.get(step, (None, False))[1]

    def save(self, step: str, mark: Any, done: bool = False) -> None:
        with self.db.write(0) as conn:
            conn.run(
                f"INSERT INTO {PROGRESS_TABLE} (step, mark, done) VALUES (?, ?, ?)"
                " ON CONFLICT (step) DO UPDATE SET mark = excluded.mark, done = excluded.done",
                (step, json.dumps(mark), int(done)),
            )
        self.steps[step] = (mark, done)

    def drop(self) -> None:
        with self.db.write(0) as conn:
            conn.run(f"DROP TABLE {PROGRESS_TABLE}")


def _pages(
    conn: Connection, table: str, key: tuple[str, ...], after: Any, size: int, columns: str = "*"
) -> Iterator[list[Row]]:
    """The rows of `table` in key order after the key `after`, page by page."""
    order = ", ".join(key)
    while True:
        where, params = "", ()
        if after is not None:
            where, params = f"WHERE ({order}) > ({', '.join('?' * len(key))})", tuple(after)
        rows = conn.all(f"SELECT {columns} FROM {table} {where} ORDER BY {order} LIMIT ?", (*params, size))
        if rows:
            yield rows
        if len(rows) < size:
            return
        after = [rows[-1][k] for k in key]


def _row_shard(db: Database, group: list[int], placement: Placement, row: Row) -> int:
    """The logical shard a row is on: its place's, where a place holds one shard, else where TABLES puts it."""
    return group[0] if len(group) == 1 else placement.shard_of(db, row)


def _row_hash(row: Row) -> int:
    text = repr(sorted(row.items()))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big")


def _content_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


class _Copy:
    def __init__(
        self, source_config: Config, source: Backends, target_config: Config, target: Backends, progress: Progress,
        batch_rows: int,
    ):  # fmt: skip
        self.source_config, self.source = source_config, source
        self.target_config, self.target = target_config, target
        self.progress = progress
        self.batch_rows = batch_rows
        self.marks = _Marks(target.db)
        self.resumed = False
        self.totals: dict[str, int] = {}
        self.shards = range(source.db.logical_shards)
        self.feed_rows = _feeds_as_rows(source_config, target_config)
        self.tables = migration_tables(target.db.dialect)
        unplaced = [t for t in self.tables if t not in TABLES]
        if unplaced:
            raise MigrateUpError(
                f"table {', '.join(unplaced)} (from app/migrations) has no place in app/migrate_up.py TABLES: "
                "migrate-up would not know which logical shard its rows belong to"
            )

    @property
    def source_name(self) -> str:
        return ", ".join(self.source.db.locations())

    # --- before anything changes ---------------------------------------------------------------------------------

    def preflight(self) -> None:
        """Every refusal that needs the servers, before the target is changed in any way."""
        src, dst = self.source_config.source, self.target_config.source
        for config, db in ((self.source_config, self.source.db), (self.target_config, self.target.db)):
            try:
                db.check()
            except DatabaseUnavailable as exc:
                raise ConfigError(f"{config.source}: [database] {exc}") from None
        same = set(self.source.db.locations()) & set(self.target.db.locations())
        if same:
            raise ConfigError(f"{dst}: [database] {', '.join(sorted(same))} is where the running install's data is")
        checks = [("media", self.target.blobs)] + ([] if feeds_in_database(self.target_config) else [
            ("feeds", self.target.feeds)])  # fmt: skip
        for section, backend in checks:
            try:
                backend.check()
            except Exception as exc:  # whatever the backend raises, it is not usable: name it and stop
                raise ConfigError(f"{dst}: [{section}] backend is not usable: {type(exc).__name__}: {exc}") from None
        latest = load_migrations(self.source.db.dialect)[-1].version
        if self.source.db.schema_version() != latest:
            raise MigrateUpError(
                f"the database of {src} is at schema v{self.source.db.schema_version()}, this Pinhole's is "
                f"v{latest}: run `main.py migrate --config {src}` first"
            )
        if self.marks.exists():
            self.marks.load()
            began = self.marks.after("source")
            if began != self.source_name:
                raise ConfigError(
                    f"{dst}: [database] holds an unfinished migrate-up from another install ({began}); "
                    "migrate-up continues only the copy of the same source"
                )
            self.resumed = True
            return
        for group, table in self._rows_in(self.target.db):
            where = f"logical shard {group[0]} already has" if len(group) == 1 else "it already has"
            raise ConfigError(
                f"{dst}: [database] is not empty: {where} rows in {table}; migrate-up copies onto empty "
                "backends only (a new database, or one that `main.py migrate` just made)"
            )
        for key in self.target.blobs.keys():
            raise ConfigError(
                f"{dst}: [media] is not empty: it already holds {key}; migrate-up copies onto an empty store only"
            )
        # Feeds kept outside the database need no such check: a feed is keyed by a user id of this install, made
        # here, so the only feeds of these users a target can hold are those a previous run copied.

    def _rows_in(self, db: Database) -> Iterator[tuple[list[int], str]]:
        """(the shards of a place, a table) for each place of `db` where a data table has rows."""
        for group in db.groups_for(self.shards):
            present = sorted(db.tables(group[0]) & set(TABLES))
            if not present:
                continue
            probe = " UNION ALL ".join(f"SELECT '{t}' AS name WHERE EXISTS (SELECT 1 FROM {t})" for t in present)
            with db.read(group[0]) as conn:
                found = conn.all(probe)
            if found:
                yield group, found[0]["name"]

    # --- copying -------------------------------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self.target.db.migrate()
        except ValueError as exc:  # the target was made for another logical_shards
            raise ConfigError(f"{self.target_config.source}: {exc}") from None
        if not self.resumed:
            self.marks.create(self.source_name)
        self.totals = self._source_counts()
        for table in self.tables:
            if table != FEED_TABLE or self.feed_rows:
                self._copy_table(table, self.totals[table])
        if not self.feed_rows:
            self._copy_feeds(self.totals["users"])
        self._copy_blobs()

    def _source_counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for group in self.source.db.groups_for(self.shards):
            with self.source.db.read(group[0]) as conn:
                for table in self.tables:
                    counts[table] += conn.value(f"SELECT count(*) FROM {table}")
        return counts

    def _copy_table(self, table: str, total: int) -> None:
        placement = TABLES[table]
        copied = 0
        for group in self.source.db.groups_for(self.shards):
            step = f"rows {table} {group[0]}"
            after, count = self.marks.after(step) or (None, 0)
            copied += count
            if self.marks.done(step):
                continue
            with self.source.db.read(group[0]) as conn:
                for rows in _pages(conn, table, placement.key, after, self.batch_rows):
                    by_shard: dict[int, list[Row]] = defaultdict(list)
                    for row in rows:
                        by_shard[_row_shard(self.source.db, group, placement, row)].append(row)
                    # Shards side by side: a page spreads over every shard, each its own transaction.
                    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
                        list(pool.map(lambda item: self._insert(item[0], table, item[1]), by_shard.items()))
                    after, count = [rows[-1][k] for k in placement.key], count + len(rows)
                    copied += len(rows)
                    self.marks.save(step, [after, count])
                    self.progress(f"copying {table}", copied, total)
            self.marks.save(step, [after, count], done=True)

    def _insert(self, shard: int, table: str, rows: list[Row]) -> None:
        columns = list(rows[0])
        bad = [c for c in columns if not _NAME.match(c)]
        if bad:
            raise MigrateUpError(f"table {table} has a column named {bad[0]!r}, which migrate-up cannot copy")
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
            "ON CONFLICT DO NOTHING"
        )
        with self.target.db.write(shard) as conn:
            conn.run_many(sql, [tuple(r[c] for c in columns) for r in rows])

    def _copy_feeds(self, total: int) -> None:
        """Each user's feed, read through the source's FeedStore and written through the target's: a batch of users
        at a time, one FeedStore.add per post (oldest first, so a cap keeps the newest)."""
        copied = 0
        for group in self.source.db.groups_for(self.shards):
            step = f"feeds {group[0]}"
            after, count = self.marks.after(step) or (None, 0)
            copied += count
            if self.marks.done(step):
                continue
            for users in self._users(group, after):
                readers: dict[int, list[int]] = defaultdict(list)
                for user_id in users:
                    for post_id in self.source.feeds.page(user_id, None, self.source.feeds.max_items):
                        readers[post_id].append(user_id)
                for post_id in sorted(readers):
                    self.target.feeds.add(post_id, readers[post_id])
                after, count = [users[-1]], count + len(users)
                copied += len(users)
                self.marks.save(step, [after, count])
                self.progress("copying feeds", copied, total)
            self.marks.save(step, [after, count], done=True)

    def _users(self, group: list[int], after: Any) -> Iterator[list[int]]:
        """The source's user ids on a place, in order after `after`, a batch at a time (each batch its own read)."""
        while True:
            with self.source.db.read(group[0]) as conn:
                users = [r["id"] for r in next(_pages(conn, "users", ("id",), after, BATCH_USERS, "id"), [])]
            if users:
                yield users
            if len(users) < BATCH_USERS:
                return
            after = [users[-1]]

    def _copy_blobs(self) -> None:
        if self.marks.done("blobs"):
            return
        keys = sorted(self.source.blobs.keys())
        after = self.marks.after("blobs")
        todo = [k for k in keys if after is None or k > after]
        done = len(keys) - len(todo)
        for i, key in enumerate(todo, 1):
            try:
                self.target.blobs.put(key, self.source.blobs.get(key), _content_type(key))
            except BlobNotFound:
                pass  # deleted since it was listed: verification says so if it matters
            if i % BATCH_BLOBS == 0 or i == len(todo):
                self.marks.save("blobs", key)
                self.progress("copying photos", done + i, len(keys))
        self.marks.save("blobs", keys[-1] if keys else None, done=True)

    # --- verifying -----------------------------------------------------------------------------------------------

    def verify(self) -> Report:
        report = Report(self.source_name, ", ".join(self.target.db.locations()), self.resumed)
        tables = [t for t in self.tables if t != FEED_TABLE or self.feed_rows]
        source = self._digests(self.source.db, tables, "verifying the source")
        target = self._digests(self.target.db, tables, "verifying the target")
        for table in tables:
            shards = sorted(set(source[table]) | set(target[table]))
            for shard in shards:
                (sc, sh), (tc, th) = source[table].get(shard, (0, 0)), target[table].get(shard, (0, 0))
                if sc != tc:
                    report.problems.append(
                        f"{table} on logical shard {shard}: {sc} rows in the source, {tc} in the target"
                    )
                elif sh != th:
                    report.problems.append(
                        f"{table} on logical shard {shard}: {sc} rows each, but their contents differ"
                    )
            counts = [sum(c for c, _ in side[table].values()) for side in (source, target)]
            report.tables.append(TableCheck(table, *counts, len(shards)))
        if not self.feed_rows:  # else the feeds were compared as feed_items rows
            self._verify_feeds(report)
        self._verify_blobs(report)
        return report

    def _digests(self, db: Database, tables: list[str], label: str) -> dict[str, dict[int, tuple[int, int]]]:
        """Per table and logical shard: (rows, checksum of the rows); one read per place."""
        sums: dict[str, dict[int, tuple[int, int]]] = {table: {} for table in tables}
        groups = db.groups_for(self.shards)
        for done, group in enumerate(groups):
            self.progress(label, done, len(groups))
            with db.read(group[0]) as conn:
                counts = conn.all(" UNION ALL ".join(f"SELECT '{t}' AS name, count(*) AS n FROM {t}" for t in tables))
                for table in (r["name"] for r in counts if r["n"]):
                    placement, found = TABLES[table], sums[table]
                    for rows in _pages(conn, table, placement.key, None, self.batch_rows):
                        for row in rows:
                            shard = _row_shard(db, group, placement, row)
                            count, total = found.get(shard, (0, 0))
                            found[shard] = (count + 1, (total + _row_hash(row)) % _CHECKSUM_MOD)
        return sums

    def _verify_feeds(self, report: Report) -> None:
        limit = min(self.source.feeds.max_items, self.target.feeds.max_items)
        differ: list[int] = []
        for group in self.source.db.groups_for(self.shards):
            for users in self._users(group, None):
                for user_id in users:
                    feed = self.source.feeds.page(user_id, None, limit)
                    if feed != self.target.feeds.page(user_id, None, limit):
                        differ.append(user_id)
                    report.feeds += 1
                    report.feed_entries += len(feed)
                self.progress("verifying feeds", report.feeds, self.totals["users"])
        if differ:
            shown = ", ".join(map(str, differ[:5])) + (" ..." if len(differ) > 5 else "")
            report.problems.append(f"{len(differ)} home feed(s) differ (users {shown})")

    def _verify_blobs(self, report: Report) -> None:
        keys = sorted(self.source.blobs.keys())
        extra = sorted(set(self.target.blobs.keys()) - set(keys))
        missing: list[str] = []
        vanished: list[str] = []  # deleted from the source since it was listed: was the site running?
        differ: list[str] = []
        for done, key in enumerate(keys, 1):
            try:
                data = self.source.blobs.get(key)
                copy = self.target.blobs.get(key)
            except BlobNotFound:
                (missing if self.source.blobs.exists(key) else vanished).append(key)
                continue
            if hashlib.sha256(data).digest() != hashlib.sha256(copy).digest():
                differ.append(key)
            report.blobs += 1
            report.blob_bytes += len(data)
            if done % BATCH_BLOBS == 0 or done == len(keys):
                self.progress("verifying photos", done, len(keys))
        found_where = {
            "missing from the target": missing,
            "with a different sha256": differ,
            "in the target only": extra,
            "deleted from the source meanwhile": vanished,
        }
        for what, found in found_where.items():
            if found:
                report.problems.append(f"{len(found)} photo file(s) {what} (e.g. {found[0]})")


def print_report(report: Report, target_config: str) -> None:
    """What was copied and what verification found, for the operator."""
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True)
    console.print(f"copied from {report.source}", highlight=False, markup=False)
    console.print(f"to {report.target}" + (" (continued)" if report.resumed else ""), highlight=False, markup=False)
    table = Table()
    for column in ("table", "rows in source", "rows in target", "logical shards"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for check in report.tables:
        table.add_row(check.table, f"{check.source_rows:,}", f"{check.target_rows:,}", str(check.shards))
    console.print(table)
    if report.feeds:
        console.print(f"home feeds: {report.feeds:,} ({report.feed_entries:,} entries) compared")
    else:
        console.print(f"home feeds: copied and compared as {FEED_TABLE} rows")
    console.print(f"photos: {report.blobs:,} files, {report.blob_bytes / 2**20:.1f} MiB, sha256 compared")
    if report.problems:
        console.print(f"[bold red]verification found {len(report.problems)} difference(s):[/]", highlight=False)
        for problem in report.problems:
            console.print(f"  - {problem}", highlight=False, markup=False)
        console.print(
            "If the site ran during the copy, stop it (serve and workers) and run migrate-up again: it continues "
            "and verifies again. Rows changed in place need a fresh, empty target.",
            highlight=False,
        )
        return
    console.print(
        "[bold green]verified:[/] row counts and contents per table and logical shard, every home feed and every "
        "photo's sha256 match.",
        highlight=False,
    )
    console.print(
        f"Next: run the site with --config {target_config} (or make it ./config.toml). Sessions are not copied: "
        "people sign in again.",
        highlight=False,
        markup=False,
    )
