"""`main.py shards move LOGICAL_SHARD --to SERVER` between two real Postgres servers, while threads keep writing:
no acknowledged write is lost, only the moved shard's writes pause, config.toml gets exactly the two new ranges, and
a move stopped before or after its switch is undone or finished by the next run."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from app.backends.database.base import DatabaseUnavailable
from app.backends.database.postgres import PostgresDatabase, schema_of
from app.backends.factory import build_database
from app.config import load_config
from app.context import build_context
from app.seed import SeedOptions, seed
from app.services import accounts
from app.shard_move import ShardMoveError, move_shard, rewrite_shard_ranges
from tests.backends import make_config
from tests.procs import one_line_error, run_cli
from tests.servers import dbname_of

MOVED, SAME_SERVER, OTHER_SERVER = 2, 1, 6  # shards 0-3 start on the first server, 4-7 on the second

CONFIG = """\
# A rung-3 site: two Postgres servers.
[storage]
data_dir = "data"  # beside this file

[queue]
embedded_workers = 0

[database]
backend = "postgres"
logical_shards = 8
connect_timeout_seconds = 2

# db1 holds the first half.
[[database.servers]]
dsn = "{dsn0}"
shards = "0-3"   # `main.py shards move` rewrites this line
pool_min = 0

[[database.servers]]
dsn = "{dsn1}"
shards = '4-7'
pool_min = 0
"""


@pytest.fixture
def site(tmp_path, postgres_two_servers):
    """config.toml of a seeded two-server site, written as an operator would (comments, [[database.servers]])."""
    servers = postgres_two_servers(tmp_path, {"logical_shards": 8})["servers"]
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(dsn0=servers[0]["dsn"], dsn1=servers[1]["dsn"]))
    ctx = build_context(load_config(path, environ={}), register_tasks=False)
    ctx.db.migrate()
    seed(ctx, SeedOptions(users=40, posts=120, follows_per_user=3))
    ctx.close()
    return path


def config_of(path: Path):
    return load_config(path, environ={})


def cluster_of(dsn: str, clusters):
    port = int(dsn.split("port=")[1].split()[0])
    return next(c for c in clusters if c.port == port)


def schemas(config, clusters) -> list[set[str]]:
    """Every schema named after a shard (leftovers of a move included) on each server, in config order."""
    found = []
    for server in config.database.servers:
        rows = cluster_of(server.dsn, clusters).sql(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'shard%'", dbname_of(server.dsn)
        )
        found.append({r[0] for r in rows})
    return found


def shard_rows(db, shard: int, skip: tuple[str, ...] = ()) -> dict[str, list]:
    with db.read(shard) as conn:
        tables = sorted(db.tables(shard) - {"schema_migrations", *skip})
        return {t: sorted(map(repr, conn.all(f"SELECT * FROM {t}"))) for t in tables}


class Writer(threading.Thread):
    """An app thread writing one shard without pause: inserts, an update, deletes. `kept` is what it was told is
    committed, `writes` when each write began and when it was acknowledged."""

    def __init__(self, db: PostgresDatabase, shard: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.db, self.shard, self.stop = db, shard, stop
        self.kept: dict[str, str] = {}
        self.writes: list[tuple[float, float]] = []
        self.errors: list[BaseException] = []

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            name, old = f"w{self.shard}-{n}", f"w{self.shard}-{n - 2}"
            begun = time.monotonic()
            try:
                with self.db.write(self.shard) as conn:
                    conn.run("INSERT INTO site_flags (name, value) VALUES (?, ?)", (name, str(n)))
                    conn.run(
                        "INSERT INTO site_flags (name, value) VALUES ('counter', ?)"
                        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                        (str(n),),
                    )
                    if n % 4 == 0:
                        conn.run("DELETE FROM site_flags WHERE name = ?", (old,))
            except BaseException as exc:
                self.errors.append(exc)
                return
            self.kept.update({name: str(n), "counter": str(n)})
            if n % 4 == 0:
                del self.kept[old]
            self.writes.append((begun, time.monotonic()))
            time.sleep(0.002)

    def acknowledged_between(self, start: float, end: float) -> int:
        """Writes begun and acknowledged within the span. A write committed just before it may be acknowledged
        within it: the thread can lose the CPU between its commit and reading the clock."""
        return sum(start < begun and done < end for begun, done in self.writes)


def flags(db, shard: int) -> dict[str, str]:
    with db.read(shard) as conn:
        return {r["name"]: r["value"] for r in conn.all("SELECT name, value FROM site_flags")}


def test_a_shard_moves_while_it_is_written_losing_nothing_and_pausing_no_other_shard(site, postgres_clusters):
    before_text = site.read_text()
    config = config_of(site)
    app_db = build_database(config)  # an app process that keeps running through the move
    before = shard_rows(app_db, MOVED, skip=("site_flags",))
    assert before["users"] and before["posts"]  # the seed put real data on the shard
    stop = threading.Event()
    writers = {s: Writer(app_db, s, stop) for s in (MOVED, SAME_SERVER, OTHER_SERVER)}
    window: dict[str, float] = {}

    def progress(label: str, done: int, total: int) -> None:
        if label == "writes paused":  # hold the pause long enough to see who waits
            window["start"] = time.monotonic()
            time.sleep(1.0)
            window["end"] = time.monotonic()

    for writer in writers.values():
        writer.start()
    try:
        time.sleep(0.3)
        report = move_shard(config, MOVED, "1", progress)
        time.sleep(0.3)
    finally:
        stop.set()
        for writer in writers.values():
            writer.join(10)
    assert all(not w.errors for w in writers.values()), {s: w.errors for s, w in writers.items()}
    # Only the moved shard waited; the shard beside it on the same server and one on the other never did.
    moved = writers[MOVED]
    assert moved.acknowledged_between(window["start"], window["end"]) == 0
    assert writers[SAME_SERVER].acknowledged_between(window["start"], window["end"]) >= 10
    assert writers[OTHER_SERVER].acknowledged_between(window["start"], window["end"]) >= 10
    assert moved.acknowledged_between(window["end"], time.monotonic()) > 0  # and it carried on, on the new server
    assert report.caught_up > 0 and report.rows > 0 and 1000 <= report.pause_ms < 5000
    # The running process followed the shard; a process started from the new config.toml finds it there too.
    assert app_db.server_of(MOVED) is app_db.primaries[1]
    new_config = config_of(site)
    assert [s.shards for s in new_config.database.servers] == ["0-1, 3", "2, 4-7"]
    fresh = build_database(new_config)
    try:
        for shard, writer in writers.items():
            assert flags(fresh, shard) == writer.kept, f"writes to shard {shard} lost or changed"
        assert shard_rows(fresh, MOVED, skip=("site_flags",)) == before
        assert fresh.integrity() == "ok"
        # A process that has not heard of the move (the old map) still reads every shard at once, following it.
        stale = build_database(config)
        counters = stale.each_shard("SELECT value FROM site_flags WHERE name = 'counter'")
        assert sorted(r["value"] for r in counters) == sorted(w.kept["counter"] for w in writers.values())
        assert stale.server_of(MOVED) is stale.primaries[1]
        stale.close()
    finally:
        fresh.close()
        app_db.close()
    # Nothing left behind on the old server; config.toml changed in those two lines only, comments kept.
    assert schemas(new_config, postgres_clusters) == [
        {schema_of(s) for s in (0, 1, 3)},
        {schema_of(s) for s in (2, 4, 5, 6, 7)},
    ]
    comment = "   # `main.py shards move` rewrites this line"
    changed = [(a, b) for a, b in zip(before_text.splitlines(), site.read_text().splitlines(), strict=True) if a != b]
    assert changed == [
        ('shards = "0-3"' + comment, 'shards = "0-1, 3"' + comment),
        ("shards = '4-7'", 'shards = "2, 4-7"'),
    ]
    assert report.config_lines == [
        f'{site} line 16: shards = "0-3"{comment}  ->  shards = "0-1, 3"{comment}',
        f"{site} line 21: shards = '4-7'  ->  shards = \"2, 4-7\"",
    ]


def test_the_command_moves_a_shard_and_says_which_lines_changed(site):
    db = build_database(config_of(site))
    try:
        with db.read(MOVED) as conn:
            name = conn.value("SELECT username FROM users ORDER BY id LIMIT 1")
        label = db.primaries[0].label
    finally:
        db.close()
    done = run_cli("shards", "move", str(MOVED), "--to", "1", config=site)
    assert done.returncode == 0, done.stderr
    assert f"moved logical shard {MOVED} from {label} to " in done.stdout
    assert f"changed {site} line 16" in done.stdout and f"changed {site} line 21" in done.stdout
    ctx = build_context(config_of(site), register_tasks=False)
    try:
        user = accounts.find_user(ctx, name)
        assert user is not None and user.shard == MOVED
    finally:
        ctx.close()
    # And back, naming the server by host:port/dbname.
    back = run_cli("shards", "move", str(MOVED), "--to", label, config=site)
    assert back.returncode == 0, back.stderr
    assert [s.shards for s in config_of(site).database.servers] == ["0-3", "4-7"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["2", "--to", "0"], "logical shard 2 is already on servers[0]"),
        (["2", "--to", "2"], "there is no server '2' in [[database.servers]]"),
        (["2", "--to", "db9.internal:5432/pinhole"], "name one by its number or host:port/dbname (0 = 127.0.0.1:"),
        (["8", "--to", "1"], "there is no logical shard 8: [database] logical_shards = 8, so they are 0-7"),
    ],
)
def test_bad_moves_are_refused_before_anything_changes(site, postgres_clusters, argv, expected):
    text, config = site.read_text(), config_of(site)
    before = schemas(config, postgres_clusters)
    refused = run_cli("shards", "move", *argv, config=site)
    assert refused.returncode == 2
    assert expected in one_line_error(refused)
    assert site.read_text() == text and schemas(config, postgres_clusters) == before


def test_a_sqlite_site_has_no_shards_to_move(tmp_path):
    config = make_config(tmp_path)
    refused = run_cli("shards", "move", "1", "--to", "0", config=config.source)
    assert refused.returncode == 2
    assert "[database] backend = 'sqlite' keeps every logical shard in one file" in one_line_error(refused)


def triggers_on(cluster, dbname: str, schema: str) -> int:
    rows = cluster.sql(
        "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n"
        f" ON n.oid = c.relnamespace WHERE n.nspname = '{schema}' AND NOT t.tgisinternal",
        dbname,
    )
    return rows[0][0]


class Stop(Exception):
    pass


def stopping_at(label: str):
    def progress(at: str, done: int, total: int) -> None:
        if at == label:
            raise Stop(label)

    return progress


@pytest.mark.parametrize("label", ["copying users", "catching up", "writes paused"])
def test_a_move_stopped_before_its_switch_is_undone_and_can_run_again(site, postgres_clusters, label):
    text, config = site.read_text(), config_of(site)
    before = schemas(config, postgres_clusters)
    with pytest.raises(Stop):
        move_shard(config, MOVED, "1", stopping_at(label))
    assert site.read_text() == text and schemas(config, postgres_clusters) == before
    old = config.database.servers[0].dsn
    assert triggers_on(cluster_of(old, postgres_clusters), dbname_of(old), schema_of(MOVED)) == 0
    db = build_database(config)
    try:
        with db.write(MOVED) as conn:  # the shard is still where it was, and writable
            conn.run("INSERT INTO site_flags (name, value) VALUES ('after', 'stop')")
    finally:
        db.close()
    move_shard(config, MOVED, "1")
    fresh = build_database(config_of(site))
    try:
        assert flags(fresh, MOVED) == {"after": "stop"}
    finally:
        fresh.close()


def test_a_move_stopped_after_its_switch_is_followed_and_finished_by_the_next_run(site, postgres_clusters):
    text, config = site.read_text(), config_of(site)
    with pytest.raises(Stop):
        move_shard(config, MOVED, "1", stopping_at("switched"))
    assert site.read_text() == text  # config.toml not rewritten yet
    # A process with the old config.toml follows the shard to its new server...
    db = build_database(config)
    try:
        with db.write(MOVED) as conn:
            conn.run("INSERT INTO site_flags (name, value) VALUES ('written', 'after the switch')")
        assert db.server_of(MOVED) is db.primaries[1]
    finally:
        db.close()
    # ...but a node started with it is refused, naming the fix.
    refused = run_cli("migrate", config=site)
    assert refused.returncode == 2 and "shards move" in one_line_error(refused)
    finished = run_cli("shards", "move", str(MOVED), "--to", "1", config=site)
    assert finished.returncode == 0, finished.stderr
    assert f"logical shard {MOVED} had already moved to " in finished.stdout and "changed " in finished.stdout
    new_config = config_of(site)
    assert [s.shards for s in new_config.database.servers] == ["0-1, 3", "2, 4-7"]
    assert schemas(new_config, postgres_clusters)[0] == {schema_of(s) for s in (0, 1, 3)}
    fresh = build_database(new_config)
    try:
        assert flags(fresh, MOVED) == {"written": "after the switch"} and fresh.integrity() == "ok"
    finally:
        fresh.close()


def test_config_rewriting_keeps_everything_else_and_refuses_what_it_cannot_rewrite(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(dsn0="host=a dbname=p", dsn1="host=b dbname=p"))
    text, lines = rewrite_shard_ranges(path, [[0, 1, 2], [3, 4, 5, 6, 7]])
    assert text == CONFIG.format(dsn0="host=a dbname=p", dsn1="host=b dbname=p").replace(
        'shards = "0-3"', 'shards = "0-2"'
    ).replace("shards = '4-7'", 'shards = "3-7"')
    assert len(lines) == 2
    # Servers written as inline tables have no line of their own to rewrite.
    inline = make_config(tmp_path / "inline", database={"backend": "postgres", "logical_shards": 8, "servers": [
        {"dsn": "host=a dbname=p", "shards": "0-3"}, {"dsn": "host=b dbname=p", "shards": "4-7"}]})  # fmt: skip
    with pytest.raises(ShardMoveError, match=r"cannot find the `shards = \"...\"` line of servers\[0\]"):
        rewrite_shard_ranges(Path(inline.source), [[0, 1, 2], [3, 4, 5, 6, 7]])


def test_a_switch_that_fails_on_the_old_server_leaves_the_shard_there(site, postgres_clusters):
    """The new server's half of the switch is done when the old server's fails: the new copy is taken back."""
    text, config = site.read_text(), config_of(site)
    before = schemas(config, postgres_clusters)
    old = config.database.servers[0].dsn
    cluster = cluster_of(old, postgres_clusters)

    def progress(label: str, done: int, total: int) -> None:
        if label == "writes paused":  # the name the old copy is about to take
            cluster.sql(f"CREATE SCHEMA {schema_of(MOVED)}_moved", dbname_of(old))

    with pytest.raises(Exception, match="already exists"):
        move_shard(config, MOVED, "1", progress)
    cluster.sql(f"DROP SCHEMA {schema_of(MOVED)}_moved", dbname_of(old))
    assert site.read_text() == text and schemas(config, postgres_clusters) == before
    db = build_database(config)
    try:
        with db.write(MOVED) as conn:
            conn.run("INSERT INTO site_flags (name, value) VALUES ('still', 'here')")
        assert db.server_of(MOVED) is db.primaries[0]
    finally:
        db.close()


def test_a_read_that_the_switch_overtakes_is_told_to_try_again(site, postgres_clusters):
    """A read transaction still running on the old server when the shard's schema is renamed away: a 503 that says
    to try again (the next transaction finds the shard where it went), not a missing-table error."""
    config = config_of(site)
    old = config.database.servers[0].dsn
    cluster, dbname = cluster_of(old, postgres_clusters), dbname_of(old)
    db = build_database(config)
    try:
        with pytest.raises(DatabaseUnavailable, match=f"logical shard {MOVED} moved to another server meanwhile"):
            with db.read(MOVED) as conn:
                assert conn.value("SELECT count(*) FROM users") > 0
                cluster.sql(f"ALTER SCHEMA {schema_of(MOVED)} RENAME TO {schema_of(MOVED)}_moved", dbname)
                conn.value("SELECT count(*) FROM users")
    finally:
        db.close()
        cluster.sql(f"ALTER SCHEMA {schema_of(MOVED)}_moved RENAME TO {schema_of(MOVED)}", dbname)
