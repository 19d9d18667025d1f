"""`main.py migrate-up --to NEW_CONFIG`: a rung-0 site (SQLite, photos on disk) copied onto two real Postgres servers
and photos in another directory, row by row and blob by blob; the app on the new config serves the same pages; an
interrupted copy continues; every bad target is refused before anything is changed."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest
from litestar.testing import TestClient

from app import migrate_up as migrate_up_module
from app.backends.database.base import migration_tables
from app.context import build_context
from app.migrate_up import FEED_TABLE, PROGRESS_TABLE, TABLES, migrate_up
from app.seed import SEED_PASSWORD, SeedOptions, seed
from app.services import accounts, attachments, bookmarks, graph, interactions, oauth, posts
from app.services.posts import PhotoUpload, Place
from app.web.app import create_app
from tests.backends import make_config
from tests.conftest import PASSWORD, TESTDATA, all_rows, log_in
from tests.procs import one_line_error, run_cli
from tests.servers import dbname_of, free_port, postgres_schemas

SECTIONS = {"queue": {"embedded_workers": 0}, "feeds": {"max_items": 40, "celebrity_threshold": 10}}
DATA_TABLES = migration_tables("sqlite")
OOB = "urn:ietf:wg:oauth:2.0:oob"


@pytest.fixture(scope="module")
def rung0(tmp_path_factory):
    """A stopped rung-0 site: seeded accounts, posts and feeds, and on top real actions that fill every other table
    (a tagged post with a place and a mention, a like, a comment, a follow request, a block, a mute, an invite).
    Shared by the module's tests: migrate-up only reads it."""
    config = make_config(tmp_path_factory.mktemp("rung0"), **SECTIONS)
    ctx = build_context(config)
    ctx.db.migrate()
    seed(ctx, SeedOptions(users=20, posts=60, follows_per_user=3, celebrities=1, celebrity_followers=12))
    ana = accounts.create_user(ctx, "ana", PASSWORD, by_operator=True)
    bob = accounts.create_user(ctx, "bob", PASSWORD, by_operator=True)
    cy = accounts.create_user(ctx, "cy", PASSWORD, by_operator=True)
    cy = accounts.update_profile(ctx, cy, "Cy", "private account", is_private=True)
    graph.follow(ctx, bob, ana)
    graph.follow(ctx, bob, accounts.find_user(ctx, "seed1"))
    graph.follow(ctx, ana, cy)
    photo = PhotoUpload((TESTDATA / "good" / "flower.jpg").read_bytes(), alt_text="a flower")
    post = posts.create_post(ctx, ana, [photo], caption="Dusk #sunset with @bob", place=Place("Lisbon", 38.72, -9.14))
    ctx.backends.queue.run_pending()
    interactions.like(ctx, bob, post.id)
    interactions.add_comment(ctx, bob, post.id, "Lovely #sunset")
    ctx.backends.queue.run_pending()
    graph.block(ctx, cy, accounts.find_user(ctx, "seed2"))
    graph.mute(ctx, ana, accounts.find_user(ctx, "seed3"))
    accounts.create_invite(ctx, created_by=ana.id)
    # The client API's tables: an app that bob authorized (a token, its refresh token, his grant, and a code not yet
    # exchanged), a bookmark, and a photo uploaded but not yet posted.
    app, _secret = oauth.register_app(ctx, "Phone app", OOB, "read write")
    asked = oauth.check_authorization(
        ctx, client_id=app.client_id, redirect_uri=OOB, response_type="code", scope="read"
    )
    oauth.exchange_code(ctx, app, oauth.grant_code(ctx, bob, asked), OOB)
    oauth.grant_code(ctx, bob, asked)
    bookmarks.bookmark(ctx, bob, post.id)
    attachments.upload(ctx, bob, (TESTDATA / "good" / "flower.jpg").read_bytes(), description="later")
    ctx.backends.queue.run_pending()
    ctx.close()
    return config


def postgres_target(folder: Path, servers, **sections):
    """A config for the climb: two Postgres servers holding the logical shards between them, photos in its folder."""
    database = {"backend": "postgres", "logical_shards": 8}
    database.update(servers(folder, database))
    return make_config(folder, database=database, **{**SECTIONS, **sections})


@pytest.fixture
def target(tmp_path, postgres_two_servers):
    return postgres_target(tmp_path / "new", postgres_two_servers)


def everything(config) -> dict[str, list]:
    """Every row of every table, in a stable order, and every blob: what a copy must carry over."""
    ctx = build_context(config, register_tasks=False)
    try:
        found: dict[str, list] = {}
        for table in DATA_TABLES:
            found[table] = sorted(all_rows(ctx, table), key=repr)
        found["blobs"] = sorted((key, ctx.backends.blobs.get(key)) for key in ctx.backends.blobs.keys())
        return found
    finally:
        ctx.close()


def test_every_table_the_migrations_make_has_a_place_and_its_real_primary_key(rung0):
    assert set(DATA_TABLES) == set(TABLES), "a new table needs a line in app/migrate_up.py TABLES"
    ctx = build_context(rung0, register_tasks=False)
    try:
        with ctx.db.read(0) as conn:
            for table, placement in TABLES.items():
                info = conn.all(f"PRAGMA table_info({table})")
                key = tuple(c["name"] for c in sorted(info, key=lambda c: c["pk"]) if c["pk"])
                assert key == placement.key, table
    finally:
        ctx.close()
    # Parents before the rows that refer to them (post_media -> posts).
    assert DATA_TABLES.index("posts") < DATA_TABLES.index("post_media")
    assert migration_tables("postgres") == DATA_TABLES


def normalized(html: str) -> str:
    """A page without what differs on every response (form tokens, script nonces)."""
    html = re.sub(r'(name="_csrf_token" value=")[^"]*', r"\1", html)
    html = re.sub(r'("x-csrf-token": ")[^"]*', r"\1", html)
    return re.sub(r'nonce="[^"]*"', 'nonce=""', html)


def changes(old: str | bytes, new: str | bytes) -> str:
    if isinstance(old, bytes) or isinstance(new, bytes):
        return f"{len(old)} bytes before, {len(new)} after"
    return "\n".join(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=1))[:4000]


def pages(config, post_id: int) -> dict[str, str | bytes]:
    """What the app on `config` shows: public pages, a signed-in home feed and notifications, a photo."""
    ctx = build_context(config)
    seen: dict[str, str | bytes] = {}
    with TestClient(create_app(ctx), base_url="http://127.0.0.1:8000") as client:
        for path in ["/@ana", "/@seed1", "/@seed1/followers", f"/p/{post_id}", "/tags/sunset", "/explore",
                     "/places/near?lat=38.7&lon=-9.1&km=20", "/search?q=seed"]:  # fmt: skip
            page = client.get(path)
            assert page.status_code == 200, path
            seen[path] = normalized(page.text)
        photo = re.search(r'src="(/media/[^"]+)"', seen[f"/p/{post_id}"]).group(1)
        seen[photo] = client.get(photo).content
        assert log_in(client, "bob").status_code == 303
        for path in ["/", "/notifications", "/@cy"]:
            seen[f"bob {path}"] = normalized(client.get(path).text)
        assert log_in(client, "seed5", SEED_PASSWORD).status_code == 303
        seen["seed5 /"] = normalized(client.get("/").text)
    return seen


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
def test_a_rung0_site_moves_onto_new_backends_row_for_row_and_serves_the_same_pages(rung0, tmp_path, request, kind):
    if kind == "postgres":
        new = postgres_target(tmp_path / "new", request.getfixturevalue("postgres_two_servers"))
    else:
        new = make_config(tmp_path / "new", **SECTIONS)
    before = everything(rung0)
    assert [t for t in DATA_TABLES if not before[t]] == []  # every table has something to carry over
    calls: list[tuple[str, int, int]] = []
    report = migrate_up(rung0, new, lambda *call: calls.append(call))
    assert report.ok, report.problems
    assert not report.resumed
    assert {c.table: c.source_rows for c in report.tables} == {t: len(before[t]) for t in DATA_TABLES}
    assert all(c.source_rows == c.target_rows for c in report.tables)
    assert report.blobs == len(before["blobs"])
    assert any(label == "copying posts" for label, _, _ in calls)
    assert everything(new) == before
    # The copy is verified and done: no progress table is left behind.
    ctx = build_context(new, register_tasks=False)
    try:
        assert all(PROGRESS_TABLE not in ctx.db.tables(s) for s in range(8))
        assert ctx.db.integrity() == "ok"
        if kind == "postgres":
            # Each row on the logical shard TABLES names, which the app then finds: compare the pages.
            for shard in range(8):
                with ctx.db.read(shard) as conn:
                    for table, placement in TABLES.items():
                        for row in conn.all(f"SELECT * FROM {table}"):
                            assert placement.shard_of(ctx.db, row) == shard, (table, row)
    finally:
        ctx.close()
    post_id = next(r["id"] for r in before["posts"] if r["caption"].startswith("Dusk"))
    old_pages, new_pages = pages(rung0, post_id), pages(new, post_id)
    assert new_pages.keys() == old_pages.keys()
    for path, page in old_pages.items():
        assert new_pages[path] == page, f"{path} differs:\n{changes(page, new_pages[path])}"
    if kind == "postgres":  # and on from Postgres, a shard per place, to yet another install
        onward = make_config(tmp_path / "onward", **SECTIONS)
        assert migrate_up(new, onward).ok
        assert everything(onward) == everything(new)  # (signing in to read notifications changed a row on both)


class Interrupt(Exception):
    """Stands for Ctrl+C or a crash: raised from the progress callback, so the copy stops between two batches."""


def interrupting(label: str, at_call: int):
    """A progress callback that records every call and raises on the `at_call`-th call with `label`."""
    calls: list[tuple[str, int, int]] = []

    def progress(*call) -> None:
        calls.append(call)
        if sum(c[0] == label for c in calls) == at_call:
            raise Interrupt(label)

    progress.calls = calls  # type: ignore[attr-defined]
    return progress


def progress_marks(config) -> dict[str, str]:
    ctx = build_context(config, register_tasks=False)
    try:
        with ctx.db.read(0) as conn:
            return {r["step"]: r["mark"] for r in conn.all(f"SELECT step, mark FROM {PROGRESS_TABLE}")}
    finally:
        ctx.close()


def test_an_interrupted_copy_continues_where_it_stopped(rung0, target, monkeypatch):
    monkeypatch.setattr(migrate_up_module, "BATCH_BLOBS", 5)
    before = everything(rung0)
    # Stopped in the middle of a table: its first two pages of 7 rows are copied and marked.
    with pytest.raises(Interrupt):
        migrate_up(rung0, target, interrupting("copying post_media", 2), batch_rows=7)
    marks = progress_marks(target)
    assert marks["rows post_media 0"].endswith(", 14]") and "rows post_tags 0" not in marks
    # Again, now stopped among the photos: the copy went on from post_media's third page, not from the start.
    again = interrupting("copying photos", 2)
    with pytest.raises(Interrupt):
        migrate_up(rung0, target, again, batch_rows=7)
    first = again.calls[0]
    assert first[0] == "copying post_media" and first[1] == 21
    assert not any(label in ("copying users", "copying posts") for label, _, _ in again.calls)
    # A batch written but not marked (a crash between the two) is written again, harmlessly.
    ctx = build_context(target, register_tasks=False)
    with ctx.db.write(0) as conn:
        conn.run(f"UPDATE {PROGRESS_TABLE} SET mark = '[null, 0]', done = 0 WHERE step = 'rows likes 0'")
    ctx.close()
    last = interrupting("never", 1)
    report = migrate_up(rung0, target, last, batch_rows=7)
    assert report.ok, report.problems
    assert report.resumed
    copied = {label for label, _, _ in last.calls if label.startswith("copying")}
    assert copied == {"copying likes", "copying photos"}
    photos = [done for label, done, _ in last.calls if label == "copying photos"]
    assert photos[0] == 15  # after the 10 photos copied and marked before the second stop
    assert everything(target) == before


def test_an_interrupted_verification_is_run_again_without_copying_again(rung0, target):
    with pytest.raises(Interrupt):
        migrate_up(rung0, target, interrupting("verifying the target", 1))
    rerun = interrupting("never", 1)
    report = migrate_up(rung0, target, rerun)
    assert report.ok and report.resumed
    assert not [label for label, _, _ in rerun.calls if label.startswith("copying")]


def test_feeds_kept_outside_the_database_go_through_the_feed_store(rung0, target, monkeypatch):
    """The path a Redis feed store takes: FeedStore.page on the source, FeedStore.add on the target."""
    monkeypatch.setattr(migrate_up_module, "_feeds_as_rows", lambda source, target: False)
    progress = interrupting("never", 1)
    report = migrate_up(rung0, target, progress)
    assert report.ok, report.problems
    assert FEED_TABLE not in {c.table for c in report.tables}
    assert report.feeds == len(everything(rung0)["users"]) and report.feed_entries > report.feeds
    assert any(label == "copying feeds" for label, _, _ in progress.calls)
    old, new = build_context(rung0, register_tasks=False), build_context(target, register_tasks=False)
    try:
        users = [r["id"] for r in all_rows(old, "users")]
        feeds = {u: old.backends.feeds.page(u, None, 100) for u in users}
        assert sum(map(len, feeds.values())) > len(users)  # real feeds, not empty ones
        assert {u: new.backends.feeds.page(u, None, 100) for u in users} == feeds
    finally:
        old.close()
        new.close()


def test_the_command_copies_reports_and_then_refuses_to_copy_again(rung0, target):
    done = run_cli("migrate-up", "--to", target.source, config=rung0.source, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "verified" in done.stdout and "post_media" in done.stdout
    assert f"--config {target.source}" in done.stdout
    again = run_cli("migrate-up", "--to", target.source, config=rung0.source, timeout=300)
    assert again.returncode == 2
    assert "[database] is not empty" in one_line_error(again) and target.source in one_line_error(again)


# --- refused before anything changes -----------------------------------------------------------------------------


def untouched(config, clusters) -> None:
    """No data was written: no shard schema on any server, no photo in the media store."""
    by_port = {c.port: c for c in clusters}
    for server in config.database.servers:
        cluster = by_port[int(re.search(r"port=(\d+)", server.dsn).group(1))]
        assert postgres_schemas(cluster, dbname_of(server.dsn)) == set()
    media = config.data_dir / "media"
    assert not media.exists() or not [p for p in media.rglob("*") if p.is_file()]


def test_the_running_installs_own_config_is_refused(rung0):
    refused = run_cli("migrate-up", "--to", rung0.source, config=rung0.source)
    assert refused.returncode == 2
    assert one_line_error(refused) == f"error: {rung0.source} is the running install's own config; " + (
        "give the config of the new backends"
    )


def test_a_different_logical_shard_count_is_refused(rung0, tmp_path, postgres_two_servers, postgres_clusters):
    other = make_config(
        tmp_path / "new",
        database={
            "backend": "postgres",
            "logical_shards": 16,
            **postgres_two_servers(tmp_path, {"logical_shards": 16}),
        },
    )
    refused = run_cli("migrate-up", "--to", other.source, config=rung0.source)
    assert refused.returncode == 2
    message = one_line_error(refused)
    assert "[database] logical_shards = 16" in message and "set logical_shards = 8" in message
    untouched(other, postgres_clusters)


def test_an_unreachable_server_is_refused_by_name(rung0, tmp_path, postgres_two_servers):
    settings = postgres_two_servers(tmp_path, {"logical_shards": 8})
    dead = free_port()
    settings["servers"][1]["dsn"] = f"host=127.0.0.1 port={dead} dbname=pinhole user=postgres"
    other = make_config(tmp_path / "new", database={"backend": "postgres", "logical_shards": 8, **settings})
    refused = run_cli("migrate-up", "--to", other.source, config=rung0.source)
    assert refused.returncode == 2
    message = one_line_error(refused)
    assert f"127.0.0.1:{dead}/pinhole" in message and other.source in message
    assert not [p for p in (other.data_dir / "media").rglob("*") if p.is_file()]


def test_a_target_with_rows_is_refused_and_left_as_it_was(rung0, target):
    ctx = build_context(target, register_tasks=False)
    ctx.db.migrate()
    with ctx.db.write(3) as conn:
        conn.run("INSERT INTO site_flags (name, value) VALUES ('mine', 'keep')")
    ctx.close()
    refused = run_cli("migrate-up", "--to", target.source, config=rung0.source)
    assert refused.returncode == 2
    assert "logical shard 3 already has rows in site_flags" in one_line_error(refused)
    ctx = build_context(target, register_tasks=False)
    try:
        assert all_rows(ctx, "site_flags") == [{"name": "mine", "value": "keep"}]
        assert all_rows(ctx, "users") == [] and PROGRESS_TABLE not in ctx.db.tables(0)
    finally:
        ctx.close()


def test_a_media_store_with_photos_is_refused(rung0, target, postgres_clusters):
    stray = target.data_dir / "media" / "posts" / "1" / "old-640.webp"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"someone else's photo")
    refused = run_cli("migrate-up", "--to", target.source, config=rung0.source)
    assert refused.returncode == 2
    assert "[media] is not empty: it already holds posts/1/old-640.webp" in one_line_error(refused)
    stray.unlink()
    untouched(target, postgres_clusters)


def test_a_copy_begun_from_another_install_is_not_continued(rung0, tmp_path, target):
    with pytest.raises(Interrupt):
        migrate_up(rung0, target, interrupting("copying users", 1))
    other = make_config(tmp_path / "other", **SECTIONS)
    build_context(other).db.migrate()
    refused = run_cli("migrate-up", "--to", target.source, config=other.source)
    assert refused.returncode == 2
    assert "holds an unfinished migrate-up from another install" in one_line_error(refused)
    assert migrate_up(rung0, target).ok  # the right source still continues


def test_a_source_without_its_tables_is_refused(tmp_path, target, postgres_clusters):
    fresh = make_config(tmp_path / "fresh", **SECTIONS)
    refused = run_cli("migrate-up", "--to", target.source, config=fresh.source)
    assert refused.returncode == 1
    assert "run `main.py migrate --config" in one_line_error(refused)
    untouched(target, postgres_clusters)
