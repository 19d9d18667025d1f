"""`main.py backup` while the site runs, `main.py restore` into an empty data dir, and what a
killed server leaves behind (quality.md, security check 20)."""

from __future__ import annotations

import hashlib
import json
import signal
import tarfile
import time
from contextlib import closing
from pathlib import Path

import apsw
import httpx
import pytest

from app.config import load_config
from app.context import build_context
from app.services import accounts, avatars
from tests.backends import make_config
from tests.conftest import PASSWORD, TESTDATA
from tests.procs import (
    SignupStream,
    http_log_in,
    http_sign_up,
    one_line_error,
    procs,  # noqa: F401 (fixture)
    run_cli,
    wait_for,
)
from tests.test_serve import GENEROUS_LIMITS, avatar_src, upload_avatar

PHOTO = TESTDATA / "good" / "flower.jpg"


def site(folder: Path, **sections) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    make_config(folder, limits=GENEROUS_LIMITS, **sections)
    return folder / "config.toml"


def data_dir(config: Path) -> Path:
    return config.parent / "data"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(folder: Path) -> dict[str, str]:
    """Every file of the site's data under `folder` with its hash: to prove a refused command
    changed nothing. The disposable cache is left out (opening it rewrites its settings)."""
    if not folder.exists():
        return {}
    files = (p for p in sorted(folder.rglob("*")) if p.is_file() and not p.relative_to(folder).parts[0] == "cache")
    return {str(p.relative_to(folder)): sha256(p) for p in files}


def query(db: Path, sql: str) -> list[tuple]:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def integrity(db: Path) -> str:
    return "; ".join(str(row[0]) for row in query(db, "PRAGMA integrity_check"))


def usernames(db: Path) -> set[str]:
    return {row[0] for row in query(db, "SELECT username FROM usernames")}


def read_archive(archive: Path, work: Path) -> tuple[dict, Path]:
    """The archive's manifest, and its database snapshot extracted into `work`."""
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
        snapshot = work / "snapshot.sqlite3"
        snapshot.write_bytes(tar.extractfile("database.snapshot").read())
    return manifest, snapshot


# --- online backup, then restore ---


def test_backup_while_signups_run_then_restore(tmp_path, procs):  # noqa: F811
    source = site(tmp_path / "source")
    server = procs.serve(source)
    with closing(http_sign_up(server.url, "pat", PASSWORD)) as client:
        upload_avatar(client)
    wait_for(lambda: avatar_src(server.url, "pat"), 20, "pat's avatar")

    archive = tmp_path / "pinhole.tar"
    with SignupStream(server.url, PASSWORD, prefix="live") as stream:
        stream.wait_acked(3)
        started = time.monotonic()
        backup = run_cli("backup", archive, config=source, timeout=60)
        finished = time.monotonic()
        stream.wait_acked(len(stream.acked) + 2)  # the site kept taking sign-ups throughout
    assert backup.returncode == 0, backup.stdout + backup.stderr
    assert "backup written to" in backup.stdout
    assert archive.stat().st_mode & 0o777 == 0o600, "the archive holds password hashes: owner-only"
    assert "Traceback" not in backup.stderr
    assert not stream.errors, stream.errors
    acked_before = stream.acked_before(started)
    assert len(acked_before) >= 3

    target = site(tmp_path / "target")
    restore = run_cli("restore", archive, config=target, timeout=60)
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert "integrity ok" in restore.stdout
    restored_db = data_dir(target) / "pinhole.sqlite3"

    manifest, snapshot = read_archive(archive, tmp_path)
    assert integrity(restored_db) == "ok"
    # Every row of the snapshot came back as it was.
    for table in ("users", "usernames", "schema_migrations", "meta"):
        rows = query(snapshot, f"SELECT * FROM {table} ORDER BY 1")
        assert rows, f"{table} is empty in the snapshot"
        assert query(restored_db, f"SELECT * FROM {table} ORDER BY 1") == rows, table
    # Every sign-up acknowledged before the backup began is in it.
    restored_names = usernames(restored_db)
    missing = {"pat", *acked_before} - restored_names
    assert not missing, f"acknowledged before the backup, missing after restore: {sorted(missing)}"
    print(
        f"backup took {finished - started:.2f}s; {len(stream.acked_before(finished)) - len(acked_before)} "
        "sign-ups acknowledged while it ran"
    )

    # Every media file, byte for byte: the source file, the manifest and the restored copy agree.
    assert any(key.startswith("avatars/") for key in manifest["media"]), manifest["media"]
    for key, meta in manifest["media"].items():
        source_file = data_dir(source) / "media" / key
        restored_file = data_dir(target) / "media" / key
        assert sha256(source_file) == meta["sha256"], key
        assert sha256(restored_file) == meta["sha256"], key

    # The restored site works: the accounts sign in, and the avatar is where the profile says.
    ctx = build_context(load_config(target, environ={}), register_tasks=False)
    try:
        pat = accounts.authenticate(ctx, "pat", PASSWORD)
        assert pat is not None and pat.avatar_key in manifest["media"]
        assert accounts.authenticate(ctx, acked_before[-1], PASSWORD) is not None
    finally:
        ctx.close()


# --- refusals, on an archive made from a small site ---


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """A backup of a site with two accounts and one avatar, made by `main.py backup`."""
    folder = tmp_path_factory.mktemp("archived")
    config = site(folder)
    ctx = build_context(load_config(config, environ={}))
    try:
        ctx.db.migrate()
        amy = accounts.create_user(ctx, "amy", PASSWORD)
        accounts.create_user(ctx, "bob", PASSWORD)
        avatars.upload_avatar(ctx, amy, PHOTO.read_bytes())
        ctx.backends.queue.run_pending()
        assert accounts.get_user(ctx, amy.id).avatar_key
    finally:
        ctx.close()
    path = folder / "site.tar"
    result = run_cli("backup", path, config=config)
    assert result.returncode == 0, result.stdout + result.stderr
    return path


def test_the_archive_holds_what_the_manifest_says(archive, tmp_path):
    manifest, snapshot = read_archive(archive, tmp_path)
    assert manifest["database_sha256"] == sha256(snapshot)
    assert usernames(snapshot) == {"amy", "bob"}
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        for key, meta in manifest["media"].items():
            data = tar.extractfile(f"media/{key}").read()
            assert hashlib.sha256(data).hexdigest() == meta["sha256"]
            assert len(data) == meta["size"]
    assert names == {"manifest.json", "database.snapshot", *(f"media/{key}" for key in manifest["media"])}


def refused_restore(archive: Path, target: Path, *words: str) -> None:
    before = tree(data_dir(target))
    result = run_cli("restore", archive, config=target)
    assert result.returncode == 1, result.stdout + result.stderr
    line = one_line_error(result)
    for word in words:
        assert word in line, f"{word!r} not in {line!r}"
    after = tree(data_dir(target))
    if before:
        assert after == before, "a refused restore changed the data dir"
    assert not (data_dir(target) / "pinhole.sqlite3").exists() or before, "a refused restore left a database"


def test_restore_refuses_a_data_dir_with_media(archive, tmp_path):
    target = site(tmp_path / "busy")
    restored = run_cli("restore", archive, config=target)
    assert restored.returncode == 0, restored.stderr
    refused_restore(archive, target, "empty data dir")


def test_restore_refuses_a_data_dir_with_a_database(archive, tmp_path):
    target = site(tmp_path / "busy")
    assert run_cli("migrate", config=target).returncode == 0
    created = run_cli("user", "create", "zed", "--password-stdin", config=target, stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    refused_restore(archive, target, "pinhole.sqlite3", "empty data dir")
    ctx = build_context(load_config(target, environ={}), register_tasks=False)
    try:
        assert accounts.authenticate(ctx, "zed", PASSWORD) is not None
        assert accounts.find_user(ctx, "amy") is None
    finally:
        ctx.close()


def flip_byte_in(archive: Path, member: str, dest: Path) -> Path:
    data = bytearray(archive.read_bytes())
    with tarfile.open(archive) as tar:
        info = tar.getmember(member)
    data[info.offset_data + info.size // 2] ^= 0xFF
    dest.write_bytes(bytes(data))
    return dest


def test_restore_refuses_a_damaged_media_file(archive, tmp_path):
    with tarfile.open(archive) as tar:
        member = next(name for name in tar.getnames() if name.startswith("media/avatars/"))
    damaged = flip_byte_in(archive, member, tmp_path / "damaged.tar")
    target = site(tmp_path / "target")
    refused_restore(damaged, target, "damaged", member)
    assert not any((data_dir(target) / "media").rglob("*.*"))


def test_restore_refuses_a_damaged_database_snapshot(archive, tmp_path):
    damaged = flip_byte_in(archive, "database.snapshot", tmp_path / "damaged.tar")
    target = site(tmp_path / "target")
    refused_restore(damaged, target, "damaged")


@pytest.mark.parametrize("cut_in", ["database.snapshot", "media/avatars/", "manifest.json", "first header"])
def test_restore_refuses_a_truncated_archive(archive, tmp_path, cut_in):
    with tarfile.open(archive) as tar:
        if cut_in == "first header":
            size = 100
        else:
            member = next(m for m in tar.getmembers() if m.name.startswith(cut_in))
            size = member.offset_data + member.size // 2
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(archive.read_bytes()[:size])
    target = site(tmp_path / "target")
    refused_restore(truncated, target, str(truncated))
    assert not any((data_dir(target) / "media").rglob("*.*"))


def test_restore_refuses_what_is_not_an_archive(tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(PHOTO.read_bytes())
    refused_restore(junk, site(tmp_path / "target"), "not a Pinhole backup")
    refused_restore(tmp_path / "missing.tar", site(tmp_path / "target2"), "missing.tar")


def test_restore_refuses_an_archive_with_other_logical_shards(archive, tmp_path):
    target = site(tmp_path / "target", database={"logical_shards": 16})
    refused_restore(archive, target, "logical_shards")


def test_backup_refuses_an_existing_file(archive, tmp_path):
    config = site(tmp_path / "site")
    assert run_cli("migrate", config=config).returncode == 0
    existing = tmp_path / "existing.tar"
    existing.write_bytes(b"precious")
    result = run_cli("backup", existing, config=config)
    assert result.returncode == 1
    assert "already exists" in one_line_error(result)
    assert existing.read_bytes() == b"precious"
    result = run_cli("backup", tmp_path / "no-such-dir" / "b.tar", config=config)
    assert result.returncode == 1
    assert "no-such-dir" in one_line_error(result)
    assert not list(tmp_path.glob("**/.*.partial"))


# --- crash safety: kill -9 the server mid-write ---


def test_kill_9_mid_signups_loses_nothing_acknowledged(tmp_path, procs):  # noqa: F811
    config = site(tmp_path / "site")
    server = procs.serve(config)
    streams = [SignupStream(server.url, PASSWORD, prefix=p) for p in ("ka", "kb")]
    idle = httpx.Client(timeout=5)
    for stream in streams:
        stream.__enter__()
    try:
        for stream in streams:
            stream.wait_acked(4)
        # A browser's idle keep-alive connection outlives the server, as after a real crash.
        idle.get(f"{server.url}/healthz")
        server.kill_group(signal.SIGKILL)
        assert server.wait_group_gone(10)
    finally:
        for stream in streams:
            stream.stop()
        idle.close()
    acked = [name for stream in streams for name, _ in stream.acked]
    db = data_dir(config) / "pinhole.sqlite3"
    # As found after the crash (the WAL not yet checkpointed), and after a restart on the same port.
    assert integrity(db) == "ok"
    restarted = procs.serve(config, port=server.port)
    assert "Traceback" not in restarted.stderr()
    present = usernames(db)
    assert not set(acked) - present, f"acknowledged but lost: {sorted(set(acked) - present)}"
    for name in acked:
        assert http_log_in(restarted.url, name, PASSWORD) == 303, name
    restarted.send(signal.SIGTERM)
    assert restarted.wait(20) in (0, -signal.SIGTERM)
    assert integrity(db) == "ok"
