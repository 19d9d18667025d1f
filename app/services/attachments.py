"""Photos uploaded before their post exists, as phone apps post: upload each photo (POST /api/v2/media), then post
the status naming them (media_ids). One function per mutation, used by the API and the queue.

Where rows live (migration 0007): `media_attachments` on the uploader's shard, ids made there. The upload is
checked and stored by the request like a post's photos (posts.check_upload), then a `process_attachment` task makes
the renditions with the same pipeline (posts.render_photo) under `attachments/<id>/`, and the row turns ready or
failed. `publish` makes the post in one transaction on the author's shard: the post row (ready at once: its photos
are), each attachment moved into `post_media` with the same id, and the count. The row is the truth, not the queue:
the sweep re-enqueues uploads whose task was lost and deletes uploads never posted after UNPOSTED_MS.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from dataclasses import dataclass

from app import ids
from app.backends.blobs.base import BlobNotFound, new_key
from app.clock import now_ms
from app.context import Context
from app.errors import NotFound, UserError
from app.media.images import ImageRejected
from app.media.pipeline import ENCODINGS, SIZES
from app.services import posts
from app.services.accounts import User
from app.services.visibility import can_view

log = logging.getLogger("pinhole.attachments")

NO_MEDIA = "That upload doesn't exist, or it is already part of a post."
FOLDER = "attachments"
UNPOSTED_MS = 24 * 3600 * 1000  # Mastodon keeps unattached uploads a day too
MAX_ATTEMPTS = posts.MAX_ATTEMPTS


@dataclass(frozen=True)
class Attachment:
    """An upload not posted yet. Carries what a post's photo carries (posts.Media), so both render alike."""

    id: int
    user_id: int
    alt_text: str
    focus: tuple[float, float] | None
    status: str  # "processing" | "ready" | "failed"
    error: str | None
    width: int | None
    height: int | None
    blurhash: str | None
    urls: dict[str, dict[str, str]]  # as posts.Media.urls; {} until ready
    created_at: int


def _attachment(row: dict) -> Attachment:
    renditions = json.loads(row["renditions"]) if row["renditions"] else {}
    return Attachment(
        id=row["id"],
        user_id=row["user_id"],
        alt_text=row["alt_text"],
        focus=posts.parse_focus(row["focus"]),
        status=row["status"],
        error=row["error"],
        width=row["width"],
        height=row["height"],
        blurhash=row["blurhash"],
        urls={size: {fmt: f"/media/{key}" for fmt, key in keys.items()} for size, keys in renditions.items()},
        created_at=row["created_at"],
    )


def _checked_alt(text: str | None) -> str:
    text = (text or "").strip()
    if len(text) > posts.MAX_ALT:
        raise UserError(
            f"The description is {len(text)} characters; the limit is {posts.MAX_ALT}.", field="description"
        )
    return text


def checked_focus(text: str | None) -> str | None:
    """A focal point "x,y" (each from -1 to 1, Mastodon's meta.focus) in its stored form, or a UserError."""
    if text is None or not str(text).strip():
        return None
    try:
        x, y = (float(part) for part in str(text).split(","))
    except ValueError:
        raise UserError("focus must be two numbers, x,y, each from -1.0 to 1.0.", field="focus") from None
    if not all(math.isfinite(v) and -1 <= v <= 1 for v in (x, y)):
        raise UserError("focus must be two numbers, x,y, each from -1.0 to 1.0.", field="focus")
    return f"{x:g},{y:g}"


# --- Uploading and processing --------------------------------------------------------------------------------------


def upload(ctx: Context, user: User, data: bytes, description: str | None = "", focus: str | None = None) -> Attachment:
    """Check and store an upload and enqueue its processing; the answer is the attachment, still processing."""
    alt_text, focus = _checked_alt(description), checked_focus(focus)
    if not data:
        raise UserError("Choose a photo to upload (the file field is empty).", field="file")
    posts.check_upload(ctx, data)
    upload_key = new_key("uploads", "bin")
    now = now_ms()
    try:
        # Inside the try: a put that timed out may have been stored all the same.
        ctx.backends.blobs.put(upload_key, data, "application/octet-stream")
        with ctx.db.write(user.shard) as conn:
            media_id = ids.next_id(conn, user.shard)
            conn.run(
                "INSERT INTO media_attachments (id, user_id, upload_key, alt_text, focus, status, attempts,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'processing', 1, ?, ?)",
                (media_id, user.id, upload_key, alt_text, focus, now, now),
            )
    except BaseException:
        posts.discard_uploads(ctx, [upload_key], f"an API upload by user {user.id} was not saved")
        raise
    try:
        ctx.backends.queue.enqueue("process_attachment", media_id)
    except Exception:
        log.exception("could not enqueue attachment %s; the sweep will retry it", media_id)
    return get_attachment(ctx, user, media_id)


def rendition_key(media_id: int, upload_key: str, size: str, fmt: str) -> str:
    return posts.rendition_key(media_id, upload_key, size, fmt, folder=FOLDER)


def _all_keys(media_id: int, upload_key: str) -> list[str]:
    """Every key an upload can own: the upload and each rendition any run of its task may have written."""
    return [upload_key, *(rendition_key(media_id, upload_key, s.name, fmt) for s in SIZES for fmt in ENCODINGS)]


def process_attachment(ctx: Context, media_id: int) -> None:
    """The process_attachment task: the upload's renditions, then the row turns ready (or failed, with the reason).
    Safe to run twice; an upload deleted or posted meanwhile is left alone."""
    shard = ids.shard_of(media_id)
    with ctx.db.read(shard) as conn:
        row = conn.one("SELECT upload_key, status FROM media_attachments WHERE id = ?", (media_id,))
    if row is None or row["status"] != "processing":
        return
    upload_key = row["upload_key"]
    try:
        columns = posts.render_photo(ctx, upload_key, "normal", functools.partial(rendition_key, media_id, upload_key))
        error = None
    except BlobNotFound:
        columns, error = None, "The upload was lost. Please upload the photo again."
    except ImageRejected as exc:
        columns, error = None, exc.message
    with ctx.db.write(shard) as conn:
        if columns is None:
            changed = conn.run(
                "UPDATE media_attachments SET status = 'failed', error = ?, updated_at = ?"
                " WHERE id = ? AND status = 'processing'",
                (error, now_ms(), media_id),
            )
        else:
            changed = conn.run(
                "UPDATE media_attachments SET width = ?, height = ?, blurhash = ?, dominant_color = ?, camera = ?,"
                " renditions = ?, status = 'ready', updated_at = ? WHERE id = ? AND status = 'processing'",
                (*columns, now_ms(), media_id),
            )
        gone = not changed and conn.value("SELECT 1 FROM media_attachments WHERE id = ?", (media_id,)) is None
        posted = gone and conn.value("SELECT 1 FROM post_media WHERE id = ?", (media_id,)) is not None
    if (columns is None and changed) or (gone and not posted):
        # Failed (nothing to keep), or deleted while we worked: remove whatever this run wrote.
        _delete_blobs(ctx, _all_keys(media_id, upload_key))
    elif changed and not ctx.config.media.keep_original:
        ctx.backends.blobs.delete(upload_key)


def _delete_blobs(ctx: Context, keys: list[str]) -> None:
    for key in keys:
        ctx.backends.blobs.delete(key)


# --- Reading and editing -------------------------------------------------------------------------------------------


def get_attachment(ctx: Context, user: User, media_id: int | str) -> Attachment:
    """The user's own upload not yet posted, or NotFound (someone else's, posted, or missing read alike)."""
    media_id = ids.parse(media_id)
    if media_id is None or ids.shard_of(media_id) >= ctx.db.logical_shards:
        raise NotFound(NO_MEDIA)
    with ctx.db.read(ids.shard_of(media_id)) as conn:
        row = conn.one("SELECT * FROM media_attachments WHERE id = ? AND user_id = ?", (media_id, user.id))
    if row is None:
        raise NotFound(NO_MEDIA)
    return _attachment(row)


def update_attachment(
    ctx: Context, user: User, media_id: int | str, description: str | None = None, focus: str | None = None
) -> Attachment:
    """Change an upload's description (alt text) or focal point before it is posted; None leaves a field as is."""
    found = get_attachment(ctx, user, media_id)
    alt_text = found.alt_text if description is None else _checked_alt(description)
    stored_focus = (
        checked_focus(focus)
        if focus is not None
        else (f"{found.focus[0]:g},{found.focus[1]:g}" if found.focus else None)
    )
    with ctx.db.write(ids.shard_of(found.id)) as conn:
        changed = conn.run(
            "UPDATE media_attachments SET alt_text = ?, focus = ?, updated_at = ? WHERE id = ? AND user_id = ?",
            (alt_text, stored_focus, now_ms(), found.id, user.id),
        )
    if not changed:
        raise NotFound(NO_MEDIA)  # posted meanwhile
    return get_attachment(ctx, user, found.id)


# --- Posting -------------------------------------------------------------------------------------------------------


def publish(ctx: Context, author: User, media_ids: list, *, caption: str = "", sensitive: bool = False) -> posts.Post:
    """A post of the author's uploads (in the order given), checked as a post made from the upload page: 1 to
    posts.MAX_PHOTOS photos, each the author's own, not posted before and done processing. Anything wrong changes
    nothing."""
    wanted = [ids.parse(str(m)) for m in media_ids]
    if not wanted:
        raise UserError("Choose at least one photo: a post needs media_ids.", field="media_ids")
    if len(wanted) > posts.MAX_PHOTOS:
        raise UserError(f"A post holds up to {posts.MAX_PHOTOS} photos; you chose {len(wanted)}.", field="media_ids")
    if None in wanted or len(set(wanted)) != len(wanted):
        raise UserError("media_ids must be distinct ids of your uploads.", field="media_ids")
    caption = posts.checked_caption(ctx, caption)
    shard = author.shard
    marks = ", ".join("?" * len(wanted))
    now = now_ms()
    with ctx.db.write(shard) as conn:
        rows = {
            r["id"]: r
            for r in conn.all(
                f"SELECT * FROM media_attachments WHERE user_id = ? AND id IN ({marks})", [author.id, *wanted]
            )
        }
        for number, media_id in enumerate(wanted, start=1):
            row = rows.get(media_id)
            if row is None:
                raise UserError(f"Photo {number}: {NO_MEDIA}", field="media_ids")
            if row["status"] == "processing":
                raise UserError(f"Photo {number} is still being processed. Try again in a moment.", field="media_ids")
            if row["status"] == "failed":
                raise UserError(f"Photo {number}: {row['error']}", field="media_ids")
        post_id = ids.next_id(conn, shard)
        conn.run(
            "INSERT INTO posts (id, author_id, caption, sensitive, status, attempts, fanout_after, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, 'ready', 1, 0, ?, ?)",
            (post_id, author.id, caption, int(bool(sensitive)), now, now),
        )
        conn.run_many(
            "INSERT INTO post_media (id, post_id, position, upload_key, alt_text, filter_name, width, height, blurhash,"
            " dominant_color, camera, renditions, focus) VALUES (?, ?, ?, ?, ?, 'normal', ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    media_id,
                    post_id,
                    position,
                    rows[media_id]["upload_key"],
                    rows[media_id]["alt_text"],
                    *(rows[media_id][c] for c in ("width", "height", "blurhash", "dominant_color", "camera")),
                    rows[media_id]["renditions"],
                    rows[media_id]["focus"],
                )
                for position, media_id in enumerate(wanted, start=1)
            ],
        )
        if conn.run(f"DELETE FROM media_attachments WHERE id IN ({marks})", wanted) != len(wanted):
            raise UserError(NO_MEDIA, field="media_ids")  # posted by a concurrent request: all of this rolls back
        conn.run("UPDATE users SET post_count = post_count + 1 WHERE id = ?", (author.id,))
    posts.announce_ready(ctx, post_id)
    return posts.get_post(ctx, post_id, author)


# --- Serving and sweeping ------------------------------------------------------------------------------------------


def viewable_keys(ctx: Context, media_id: str, viewer: User | None) -> tuple[set[str], bool]:
    """The rendition keys under `attachments/<media_id>/` that `viewer` may fetch, and whether anyone may (so shared
    caches may keep them): a posted photo's as its post allows, an unposted one's to its uploader only. NotFound
    otherwise."""
    found = ids.parse(media_id)
    if found is None or ids.shard_of(found) >= ctx.db.logical_shards:
        raise NotFound(NO_MEDIA)
    with ctx.db.read(ids.shard_of(found)) as conn:
        post_id = conn.value("SELECT post_id FROM post_media WHERE id = ?", (found,))
        row = None if post_id else conn.one("SELECT * FROM media_attachments WHERE id = ?", (found,))
    if post_id:
        post = posts.get_post(ctx, post_id, viewer)
        return posts.media_keys(post), can_view(ctx, None, post.author)
    if row is None or viewer is None or row["user_id"] != viewer.id:
        raise NotFound(NO_MEDIA)
    return {url.removeprefix("/media/") for keys in _attachment(row).urls.values() for url in keys.values()}, False


def sweep(ctx: Context) -> int:
    """Re-enqueue uploads processing past [media] processing_timeout_seconds (their task was lost), failing them
    after MAX_ATTEMPTS; delete uploads never posted within UNPOSTED_MS, with their files. Returns how many rows it
    handled."""
    now = now_ms()
    stuck_before = now - ctx.config.media.processing_timeout_seconds * 1000
    rows = ctx.db.each_shard(
        "SELECT id, upload_key, status, attempts, created_at FROM media_attachments"
        " WHERE updated_at < ? AND (status = 'processing' OR created_at < ?)",
        (stuck_before, now - UNPOSTED_MS),
    )
    for row in rows:
        shard = ids.shard_of(row["id"])
        if row["created_at"] < now - UNPOSTED_MS:
            with ctx.db.write(shard) as conn:
                deleted = conn.run("DELETE FROM media_attachments WHERE id = ?", (row["id"],))
            if deleted:
                _delete_blobs(ctx, _all_keys(row["id"], row["upload_key"]))
        elif row["attempts"] >= MAX_ATTEMPTS:
            with ctx.db.write(shard) as conn:
                conn.run(
                    "UPDATE media_attachments SET status = 'failed', error = ?, updated_at = ?"
                    " WHERE id = ? AND status = 'processing'",
                    (f"This photo could not be prepared after {MAX_ATTEMPTS} tries. Upload it again.", now, row["id"]),
                )
        else:
            with ctx.db.write(shard) as conn:
                claimed = conn.run(
                    "UPDATE media_attachments SET attempts = attempts + 1, updated_at = ?"
                    " WHERE id = ? AND status = 'processing' AND updated_at < ?",
                    (now, row["id"], stuck_before),
                )
            if claimed:
                log.warning("re-enqueueing stuck attachment %s (attempt %d)", row["id"], row["attempts"] + 1)
                ctx.backends.queue.enqueue("process_attachment", row["id"])
    return len(rows)
