"""Online backup into one archive, and restore into an empty data directory.

The archive (a .tar) holds `manifest.json`, `database.snapshot` (a consistent copy taken while the
server keeps running) and `media/<key>` for every stored blob, each with its SHA-256 in the manifest.
The database snapshot is taken first: it is the record of what was acknowledged. A blob deleted
while the backup runs (a replaced avatar) is skipped and counted, never fatal.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.backends.blobs.base import BlobNotFound, check_key
from app.context import Context
from app.errors import UserError

FORMAT = 1
SNAPSHOT = "database.snapshot"

Progress = Callable[[str, int, int], None]


class BackupError(UserError):
    """A backup or restore that cannot proceed; str() says why and what to do."""


@dataclass
class Summary:
    files: int
    skipped: int
    bytes: int
    schema_version: int


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


def backup(ctx: Context, dest: Path, progress: Progress | None = None) -> Summary:
    dest = Path(dest)
    if dest.exists():
        raise BackupError(f"{dest} already exists; choose a new file name")
    if not dest.parent.is_dir():
        raise BackupError(f"{dest.parent} is not a directory")
    blobs = ctx.backends.blobs
    files: dict[str, dict] = {}
    skipped = 0
    tmp = dest.with_name(f".{dest.name}.partial")
    try:
        with tempfile.TemporaryDirectory(dir=ctx.config.data_dir) as work:
            snapshot = Path(work) / SNAPSHOT
            ctx.db.snapshot(snapshot)
            # Owner-only from the start: the archive holds password hashes.
            tmp.unlink(missing_ok=True)  # left by a crashed backup, perhaps with looser permissions
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w") as tar:
                tar.add(snapshot, arcname=SNAPSHOT)
                keys = list(blobs.keys())
                for done, key in enumerate(keys, 1):
                    try:
                        data = blobs.get(key)
                    except BlobNotFound:
                        skipped += 1
                        continue
                    _add_bytes(tar, f"media/{key}", data)
                    files[key] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                    if progress:
                        progress("media", done, len(keys))
                manifest = {
                    "format": FORMAT,
                    "created_at": int(time.time()),
                    "schema_version": ctx.db.schema_version(),
                    "logical_shards": ctx.db.logical_shards,
                    "database_sha256": _sha256_file(snapshot),
                    "media": files,
                }
                _add_bytes(tar, "manifest.json", json.dumps(manifest, indent=1).encode())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return Summary(len(files), skipped, dest.stat().st_size, manifest["schema_version"])


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def restore(ctx: Context, source: Path, progress: Progress | None = None) -> Summary:
    """Check the whole archive first, then load it; an archive that fails a check changes nothing."""
    source = Path(source)
    if not source.is_file():
        raise BackupError(f"{source} is not a file")
    if any(True for _ in ctx.backends.blobs.keys()):
        raise BackupError(f"{ctx.config.data_dir} already holds media: restore only into an empty data directory")
    try:
        # Plain tar only, as `backup` writes it; a damaged file fails here or while being read below.
        tar = tarfile.open(source, "r:")
    except (tarfile.TarError, OSError) as exc:
        raise BackupError(f"{source} is not a Pinhole backup archive ({_one_line(exc)})") from None
    with tar, tempfile.TemporaryDirectory(dir=ctx.config.data_dir) as work:
        try:
            manifest, snapshot = _check_archive(ctx, tar, source, Path(work))
        except (tarfile.TarError, EOFError) as exc:
            raise BackupError(f"{source} is damaged or truncated ({_one_line(exc)}); nothing was restored") from None
        media = manifest["media"]
        try:
            ctx.db.restore(snapshot)
        except FileExistsError as exc:
            raise BackupError(str(exc)) from None
        for done, key in enumerate(media, 1):
            data = tar.extractfile(_member(tar, f"media/{key}", source)).read()  # type: ignore[union-attr]
            ctx.backends.blobs.put(key, data, "application/octet-stream")
            if progress:
                progress("media", done, len(media))
    verdict = ctx.db.integrity()
    if verdict != "ok":
        raise BackupError(f"the restored database failed its integrity check: {verdict}")
    return Summary(len(media), 0, source.stat().st_size, ctx.db.schema_version())


def _check_archive(ctx: Context, tar: tarfile.TarFile, source: Path, work: Path) -> tuple[dict, Path]:
    """Read every member and compare it with the manifest; the snapshot is left in `work`."""
    manifest = _read_manifest(tar, source)
    if manifest["logical_shards"] != ctx.db.logical_shards:
        raise BackupError(
            f"the backup has {manifest['logical_shards']} logical shards but [database] logical_shards = "
            f"{ctx.db.logical_shards}; set it to {manifest['logical_shards']} to restore"
        )
    snapshot = work / SNAPSHOT
    member = _member(tar, SNAPSHOT, source)
    with tar.extractfile(member) as src, snapshot.open("wb") as out:  # type: ignore[union-attr]
        for chunk in iter(lambda: src.read(1 << 20), b""):
            out.write(chunk)
    if _sha256_file(snapshot) != manifest["database_sha256"]:
        raise BackupError(f"{source}: the database snapshot is damaged (checksum mismatch)")
    for key, meta in manifest["media"].items():
        try:
            check_key(key)
        except ValueError:
            raise BackupError(f"{source}: the manifest names an invalid media key {key!r}") from None
        data = tar.extractfile(_member(tar, f"media/{key}", source)).read()  # type: ignore[union-attr]
        if not isinstance(meta, dict) or hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            raise BackupError(f"{source}: media/{key} is damaged (checksum mismatch)")
    return manifest, snapshot


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _read_manifest(tar: tarfile.TarFile, source: Path) -> dict:
    try:
        manifest = json.loads(tar.extractfile(_member(tar, "manifest.json", source)).read())  # type: ignore[union-attr]
    except (ValueError, AttributeError):
        raise BackupError(f"{source}: the manifest is unreadable") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{source}: not a Pinhole backup of format {FORMAT}")
    if not (
        isinstance(manifest.get("logical_shards"), int)
        and isinstance(manifest.get("database_sha256"), str)
        and isinstance(manifest.get("media"), dict)
    ):
        raise BackupError(f"{source}: the manifest is incomplete")
    return manifest


def _member(tar: tarfile.TarFile, name: str, source: Path) -> tarfile.TarInfo:
    try:
        member = tar.getmember(name)
    except KeyError:
        raise BackupError(f"{source}: {name} is missing from the archive") from None
    if not member.isfile():
        raise BackupError(f"{source}: {name} is not a regular file")
    return member
