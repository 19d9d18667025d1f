"""Profile photos: the request checks and stores the upload; a queue task makes the square WebP.

The user row records the pending upload, so a task lost with its worker (Huey delivers at most
once) is found again by the sweep; rerunning the task writes the same key and changes nothing more.
"""

from __future__ import annotations

import logging

from app.backends.blobs.base import BlobNotFound, new_key
from app.clock import now_ms
from app.context import Context
from app.errors import UserError
from app.media import images
from app.services import page_versions
from app.services.accounts import User, get_user

log = logging.getLogger("pinhole.avatars")

AVATAR_SIZE = 320
STUCK_AFTER_MS = 5 * 60 * 1000


def upload_avatar(ctx: Context, user: User, data: bytes) -> None:
    limit_mb = ctx.config.media.max_upload_mb
    if len(data) > limit_mb * 1024 * 1024:
        raise UserError(f"That photo is larger than {limit_mb} MB.", field="avatar", status=413)
    images.open_checked(data, ctx.config.media.max_pixels)
    upload_key = new_key("uploads", "bin")
    ctx.backends.blobs.put(upload_key, data, "application/octet-stream")
    with ctx.db.write(user.shard) as conn:
        replaced = conn.value("SELECT avatar_upload_key FROM users WHERE id = ?", (user.id,))
        conn.run(
            "UPDATE users SET avatar_upload_key = ?, avatar_error = NULL, updated_at = ? WHERE id = ?",
            (upload_key, now_ms(), user.id),
        )
    if replaced:
        ctx.backends.blobs.delete(replaced)
    ctx.backends.queue.enqueue("process_avatar", user.id)


def _avatar_key_for(upload_key: str) -> str:
    """The same upload always makes the same avatar key, so a rerun overwrites, never duplicates."""
    token = upload_key.rsplit("/", 1)[-1].split(".", 1)[0]
    return f"avatars/{token}.webp"


def process_avatar(ctx: Context, user_id: int) -> None:
    user = get_user(ctx, user_id)
    if user is None or not user.avatar_upload_key:
        return  # already done, or the account is gone
    upload_key = user.avatar_upload_key
    blobs = ctx.backends.blobs
    try:
        webp = images.square_webp(blobs.get(upload_key), AVATAR_SIZE, ctx.config.media.max_pixels)
    except BlobNotFound:
        webp, error = None, "The upload was lost; please choose the photo again."
    except images.ImageRejected as exc:
        webp, error = None, exc.message
    avatar_key = _avatar_key_for(upload_key)
    if webp is not None:
        blobs.put(avatar_key, webp, "image/webp")
    with ctx.db.write(user.shard) as conn:
        current = conn.one("SELECT avatar_key, avatar_upload_key FROM users WHERE id = ?", (user.id,))
        if current is None or current["avatar_upload_key"] != upload_key:
            current = None  # a newer upload replaced this one while we worked
        elif webp is None:
            conn.run("UPDATE users SET avatar_upload_key = NULL, avatar_error = ? WHERE id = ?", (error, user.id))
        else:
            conn.run(
                "UPDATE users SET avatar_key = ?, avatar_upload_key = NULL, avatar_error = NULL WHERE id = ?",
                (avatar_key, user.id),
            )
    if current is None:
        if webp is not None:
            blobs.delete(avatar_key)
        return
    blobs.delete(upload_key)
    page_versions.touch(ctx, user.id)  # the avatar in the nav and on the user's own cards
    if webp is not None and current["avatar_key"] and current["avatar_key"] != avatar_key:
        blobs.delete(current["avatar_key"])


def remove_avatar(ctx: Context, user: User) -> None:
    with ctx.db.write(user.shard) as conn:
        conn.run("UPDATE users SET avatar_key = NULL, avatar_error = NULL WHERE id = ?", (user.id,))
    page_versions.touch(ctx, user.id)
    if user.avatar_key:
        ctx.backends.blobs.delete(user.avatar_key)


def sweep_stuck_avatars(ctx: Context) -> int:
    """Re-enqueue avatars waiting longer than STUCK_AFTER_MS (their task was lost)."""
    cutoff = now_ms() - STUCK_AFTER_MS
    rows = ctx.db.each_shard("SELECT id FROM users WHERE avatar_upload_key IS NOT NULL AND updated_at < ?", (cutoff,))
    stuck = [r["id"] for r in rows]
    for user_id in stuck:
        log.warning("re-enqueueing stuck avatar of user %s", user_id)
        ctx.backends.queue.enqueue("process_avatar", user_id)
    return len(stuck)
