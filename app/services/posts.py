"""Posts: the request checks and stores the uploads; a queue task makes the renditions. The contract the pages
build on is /tmp/contract/posts_api.md (create_post, get_post, post_status, delete_post and the read models).

Where rows live: `posts` and `post_media` on the author's shard, their ids made there (app/ids.py).

The row is the truth, never the queue (Huey delivers at most once):
- a post is "processing" until its task has stored every rendition of every photo, then flips to "ready" in one
  transaction with its media rows (never visible half-done), or to "failed" with the reason for the author;
- rendition keys are derived from the post id and the upload key (`posts/<post_id>/<upload token>-<size>.<ext>`),
  so a rerun of the task overwrites the same keys with the same bytes, and a deleted post's keys are known
  without reading any rendition list;
- `sweep_stuck_posts` re-enqueues posts still processing past [media] processing_timeout_seconds, counting
  attempts, and fails them after MAX_ATTEMPTS.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app import ids, metrics
from app.backends.blobs.base import BlobNotFound, new_key
from app.clock import now_ms
from app.context import Context
from app.errors import Forbidden, NotFound, UserError
from app.media import images
from app.media.filters import FILTERS
from app.media.images import ImageRejected
from app.media.pipeline import ENCODINGS, SIZES, process_photo
from app.services import page_versions, tags
from app.services.accounts import User, get_user, get_users
from app.services.visibility import can_view, visible_authors

if TYPE_CHECKING:
    from app.backends.database.base import Connection

log = logging.getLogger("pinhole.posts")

MAX_PHOTOS = 10
MAX_CAPTION = 2200
MAX_ALT = 1000
MAX_PLACE_NAME = 100
# Times a post's task is enqueued (the first time, then by the sweep) before the post is marked failed.
MAX_ATTEMPTS = 3
# Missing, deleted and not visible read the same, so a private post's existence does not leak.
NOT_FOUND = "That post doesn't exist, or it isn't shared with you."
EXTENSIONS = {"webp": "webp", "jpeg": "jpg", "avif": "avif"}

_harden_once = functools.cache(images.harden_vips)


@dataclass(frozen=True)
class PhotoUpload:
    data: bytes
    filter_name: str = "normal"
    alt_text: str = ""


@dataclass(frozen=True)
class Place:
    name: str
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class Media:
    id: int
    position: int  # 1 for the first photo: the number error messages use ("Photo 2: ...")
    alt_text: str
    filter_name: str
    width: int | None  # of the 1080 rendition; None while processing
    height: int | None
    blurhash: str | None
    dominant_color: str | None
    camera: dict  # whitelisted camera facts, {} if none
    urls: dict[str, dict[str, str]]  # urls["1080"]["webp"] == "/media/posts/..."; {} while processing
    focus: tuple[float, float] | None = None  # the focal point (x, y), each -1..1, when one was set


@dataclass(frozen=True)
class Post:
    id: int
    author: User
    caption: str
    place: Place | None
    sensitive: bool
    status: str  # "processing" | "ready" | "failed"
    error: str | None  # why it failed, in words for the author
    created_at: int  # unix ms
    media: list[Media]  # in position order
    like_count: int = 0
    comment_count: int = 0
    comments_off: bool = False


# --- Creating ------------------------------------------------------------------------------------------------------


def create_post(
    ctx: Context,
    author: User,
    photos: list[PhotoUpload],
    *,
    caption: str = "",
    place: Place | None = None,
    sensitive: bool = False,
) -> Post:
    """Check everything, store the uploads, record the post as "processing" and enqueue its task.

    Every check runs before anything is stored; a failure after that (the blob store or the database going away
    midway) writes no row and removes the uploads already stored, so a refused post leaves nothing behind."""
    photos, caption, place = _checked(ctx, photos, caption, place)
    blobs = ctx.backends.blobs
    upload_keys: list[str] = []
    try:
        for photo in photos:
            key = new_key("uploads", "bin")
            upload_keys.append(key)  # before the put: one that timed out may have been stored all the same
            blobs.put(key, photo.data, "application/octet-stream")
        now = now_ms()
        with ctx.db.write(author.shard) as conn:
            post_id = ids.next_id(conn, author.shard)
            conn.run(
                "INSERT INTO posts (id, author_id, caption, place_name, place_lat, place_lon, sensitive, status,"
                " attempts, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'processing', 1, ?, ?)",
                (
                    post_id,
                    author.id,
                    caption,
                    place.name if place else None,
                    place.lat if place else None,
                    place.lon if place else None,
                    int(bool(sensitive)),
                    now,
                    now,
                ),
            )
            conn.run_many(
                "INSERT INTO post_media (id, post_id, position, upload_key, alt_text, filter_name)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (ids.next_id(conn, author.shard), post_id, position, key, photo.alt_text, photo.filter_name)
                    for position, (photo, key) in enumerate(zip(photos, upload_keys, strict=True), start=1)
                ],
            )
    except BaseException:
        discard_uploads(ctx, upload_keys, f"a post of {len(photos)} photo(s) by user {author.id} was not saved")
        raise
    try:
        ctx.backends.queue.enqueue("process_post", post_id)
    except Exception:
        # The post is saved; the sweep enqueues it once the queue is back. Refusing now would only make
        # the author post it twice.
        log.exception("could not enqueue post %s; the sweep will retry it", post_id)
    return get_post(ctx, post_id, author)


def _checked(
    ctx: Context, photos: list[PhotoUpload], caption: str, place: Place | None
) -> tuple[list[PhotoUpload], str, Place | None]:
    """The post's fields, normalized, or the UserError for the first thing wrong. Decodes nothing."""
    photos = list(photos or [])
    if not photos:
        raise UserError("Choose at least one photo.", field="photos")
    if len(photos) > MAX_PHOTOS:
        raise UserError(f"A post holds up to {MAX_PHOTOS} photos; you chose {len(photos)}.", field="photos")
    caption = checked_caption(ctx, caption)
    cleaned = []
    for number, photo in enumerate(photos, start=1):
        alt_text = (photo.alt_text or "").strip()
        if len(alt_text) > MAX_ALT:
            raise UserError(
                f"Photo {number}: the description is {len(alt_text)} characters; the limit is {MAX_ALT}.",
                field="alt_text",
            )
        if photo.filter_name not in FILTERS:
            raise UserError(f"Photo {number}: unknown filter; choose one of {', '.join(FILTERS)}.", field="filter")
        cleaned.append(PhotoUpload(bytes(photo.data or b""), photo.filter_name, alt_text))
    place = _checked_place(place)
    for number, photo in enumerate(cleaned, start=1):
        try:
            check_upload(ctx, photo.data)
        except ImageRejected as exc:
            raise ImageRejected(f"Photo {number}: {exc.message}", field="photos", status=exc.status) from None
    return cleaned, caption, place


def check_upload(ctx: Context, data: bytes) -> None:
    """What a photo must pass before it is stored, read from its header alone: its size, its format told by its
    bytes, its pixel count. ImageRejected says what is wrong."""
    _harden_once()
    media = ctx.config.media
    images.open_upload(data, max_pixels=media.max_pixels, max_bytes=media.max_upload_mb * 1024 * 1024)


def checked_caption(ctx: Context, caption: str) -> str:
    """The caption trimmed, or the UserError: too long, a tag too long, a mention of an account that doesn't exist.
    Creating and editing a post both check with this."""
    caption = (caption or "").replace("\r\n", "\n").strip()
    if len(caption) > MAX_CAPTION:
        raise UserError(f"The caption is {len(caption)} characters; the limit is {MAX_CAPTION}.", field="caption")
    tags.check_text(ctx, caption, field="caption")
    return caption


def _checked_place(place: Place | None) -> Place | None:
    if place is None:
        return None
    name = (place.name or "").strip()
    if len(name) > MAX_PLACE_NAME:
        raise UserError(f"The place name is {len(name)} characters; the limit is {MAX_PLACE_NAME}.", field="place")
    if place.lat is None and place.lon is None:
        return Place(name) if name else None
    if place.lat is None or place.lon is None:
        raise UserError("Give the place's latitude and longitude both, or neither.", field="place")
    try:
        lat, lon = float(place.lat), float(place.lon)
    except (TypeError, ValueError):
        raise UserError("The place's latitude and longitude must be numbers.", field="place") from None
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        raise UserError("The latitude must be between -90 and 90.", field="place")
    if not (math.isfinite(lon) and -180 <= lon <= 180):
        raise UserError("The longitude must be between -180 and 180.", field="place")
    if not name:
        raise UserError("Give the place a name.", field="place")
    return Place(name, lat, lon)


# --- Reading -------------------------------------------------------------------------------------------------------


def get_post(ctx: Context, post_id: int, viewer: User | None) -> Post:
    """The post, or NotFound (one message for missing, deleted and not visible).

    The author sees it in every state; anyone else only once it is ready, and only if `can_view` allows."""
    post = _load(ctx, post_id)
    if post is None or not can_view(ctx, viewer, post.author):
        raise NotFound(NOT_FOUND)
    if post.status != "ready" and (viewer is None or viewer.id != post.author.id):
        raise NotFound(NOT_FOUND)
    return post


def post_status(ctx: Context, post_id: int, viewer: User | None) -> Post:
    """For polling while a post is processing: the same rules as get_post (the author sees every state)."""
    return get_post(ctx, post_id, viewer)


def _load(ctx: Context, post_id: int) -> Post | None:
    post_id = ids.parse(post_id) if isinstance(post_id, (int, str)) and not isinstance(post_id, bool) else None
    if post_id is None or ids.shard_of(post_id) >= ctx.db.logical_shards:
        return None
    with ctx.db.read(ids.shard_of(post_id)) as conn:
        row = conn.one("SELECT * FROM posts WHERE id = ?", (post_id,))
        media = conn.all("SELECT * FROM post_media WHERE post_id = ? ORDER BY position", (post_id,)) if row else []
    author = get_user(ctx, row["author_id"]) if row else None
    if row is None or author is None:
        return None
    return _post(row, author, media)


def _post(row: dict, author: User, media: list[dict]) -> Post:
    return Post(
        id=row["id"],
        author=author,
        caption=row["caption"],
        place=Place(row["place_name"], row["place_lat"], row["place_lon"]) if row["place_name"] is not None else None,
        sensitive=bool(row["sensitive"]),
        status=row["status"],
        error=row["error"],
        created_at=row["created_at"],
        media=[_media(m) for m in media],
        like_count=row["like_count"],
        comment_count=row["comment_count"],
        comments_off=bool(row["comments_off"]),
    )


def list_author_posts(ctx: Context, author: User, viewer: User | None, before: int | None, limit: int) -> list[Post]:
    """The author's ready posts that `viewer` may see, newest first, older than `before`: two queries on the
    author's shard (posts, then their media), never one per post. [] when the viewer may not see them."""
    if not can_view(ctx, viewer, author):
        return []
    with ctx.db.read(author.shard) as conn:
        rows = conn.all(
            "SELECT * FROM posts WHERE author_id = ? AND status = 'ready' AND id < ? ORDER BY id DESC LIMIT ?",
            (author.id, before if before is not None else ids.MAX_ID, limit),
        )
        ids_ = [r["id"] for r in rows]
        media = (
            conn.all(
                f"SELECT * FROM post_media WHERE post_id IN ({', '.join('?' * len(ids_))}) ORDER BY post_id, position",
                ids_,
            )
            if ids_
            else []
        )
    by_post: dict[int, list[dict]] = {}
    for m in media:
        by_post.setdefault(m["post_id"], []).append(m)
    return [_post(r, author, by_post.get(r["id"], [])) for r in rows]


def get_posts(ctx: Context, post_ids: list[int], viewer: User | None) -> list[Post]:
    """The ready posts among `post_ids` that `viewer` may see, in the order given; missing ones are skipped (a
    feed or directory may still name a deleted post). Two queries per place the posts live on (one place on
    rung 0, whatever the shards), then the authors' rows by place and the viewer's relations in one batch: never a
    query per post."""
    found = ctx.db.read_in("SELECT * FROM posts WHERE id IN ({}) AND status = 'ready'", post_ids, ids.shard_of)
    rows = {row["id"]: row for row in found}
    media: dict[int, list[dict]] = {}
    for m in ctx.db.read_in("SELECT * FROM post_media WHERE post_id IN ({}) ORDER BY position", rows, ids.shard_of):
        media.setdefault(m["post_id"], []).append(m)
    authors = get_users(ctx, {row["author_id"] for row in rows.values()})
    visible = visible_authors(ctx, viewer, authors.values())
    return [
        _post(rows[i], authors[rows[i]["author_id"]], media.get(i, []))
        for i in dict.fromkeys(post_ids)
        if i in rows and rows[i]["author_id"] in visible
    ]


def _media(row: dict) -> Media:
    renditions = json.loads(row["renditions"]) if row["renditions"] else {}
    return Media(
        id=row["id"],
        position=row["position"],
        alt_text=row["alt_text"],
        filter_name=row["filter_name"],
        width=row["width"],
        height=row["height"],
        blurhash=row["blurhash"],
        dominant_color=row["dominant_color"],
        camera=json.loads(row["camera"]) if row["camera"] else {},
        # Always through the app's media route, which applies the post's visibility.
        urls={size: {fmt: f"/media/{key}" for fmt, key in keys.items()} for size, keys in renditions.items()},
        focus=parse_focus(row["focus"]),
    )


def parse_focus(text: str | None) -> tuple[float, float] | None:
    """A stored focal point "x,y" as numbers (None when unset)."""
    if not text:
        return None
    x, y = text.split(",")
    return float(x), float(y)


def media_keys(post: Post) -> set[str]:
    """The blob keys of the post's finished renditions (what the media route may serve for it)."""
    return {
        url.removeprefix("/media/") for media in post.media for keys in media.urls.values() for url in keys.values()
    }


# --- Deleting ------------------------------------------------------------------------------------------------------


def delete_post(ctx: Context, viewer: User, post_id: int) -> None:
    """Remove the post's rows, then have a task delete exactly its blobs. NotFound when the viewer cannot see
    it, Forbidden when the viewer is not its author."""
    post = get_post(ctx, post_id, viewer)
    if viewer is None or viewer.id != post.author.id:
        raise Forbidden("Only its author can delete a post.")
    with ctx.db.write(ids.shard_of(post.id)) as conn:
        upload_keys = _upload_keys(conn, post.id)
        likers = [r["user_id"] for r in conn.all("SELECT user_id FROM likes WHERE post_id = ?", (post.id,))]
        tag_names = [r["tag"] for r in conn.all("SELECT tag FROM post_tags WHERE post_id = ?", (post.id,))]
        comments = [r["body"] for r in conn.all("SELECT body FROM comments WHERE post_id = ?", (post.id,))]
        for table in ("post_media", "likes", "comments", "post_tags"):
            conn.run(f"DELETE FROM {table} WHERE post_id = ?", (post.id,))
        conn.run("DELETE FROM notifications WHERE user_id = ? AND post_id = ?", (post.author.id, post.id))
        deleted = conn.run("DELETE FROM posts WHERE id = ?", (post.id,))
        if deleted and post.status == "ready":
            conn.run("UPDATE users SET post_count = post_count - 1 WHERE id = ?", (post.author.id,))
    if not deleted:
        raise NotFound(NOT_FOUND)  # deleted meanwhile, by another request
    page_versions.touch(ctx, post.author.id)  # followers' feeds lose it in the post_deleted task
    # The keys its task derives from the post, and those its rows name (photos uploaded before the post).
    blob_keys = dict.fromkeys([*post_blob_keys(post.id, upload_keys), *sorted(media_keys(post))])
    ctx.backends.queue.enqueue("delete_blobs", list(blob_keys))
    place = [post.place.lat, post.place.lon] if post.place and post.place.lat is not None else None
    # The rows on other shards (likers' lists, the tag and place directories, followers' feeds) go in a task;
    # until it runs, readers skip the ids of posts that no longer exist.
    # Everyone the caption or a comment mentioned was notified of the post: those notifications go with it.
    mentioned = sorted({name for text in (post.caption, *comments) for name in tags.extract_mentions(text)})
    _enqueue_or_log(ctx, "post_deleted", post.id, post.author.id, likers, tag_names, place, mentioned)


def _enqueue_or_log(ctx: Context, task: str, *args) -> None:
    try:
        ctx.backends.queue.enqueue(task, *args)
    except Exception:
        log.exception("could not enqueue %s%r", task, args)


def post_blob_keys(post_id: int, upload_keys: list[str]) -> list[str]:
    """Every key a post can own: its uploads and each rendition any run of its task may have written
    (AVIF too, whatever the config says now). Missing ones cost a no-op delete."""
    return [
        *upload_keys,
        *(
            rendition_key(post_id, upload_key, size.name, fmt)
            for upload_key in upload_keys
            for size in SIZES
            for fmt in ENCODINGS
        ),
    ]


def _upload_keys(conn: Connection, post_id: int) -> list[str]:
    return [r["upload_key"] for r in conn.all("SELECT upload_key FROM post_media WHERE post_id = ?", (post_id,))]


def delete_blobs(ctx: Context, keys: list[str]) -> None:
    """The delete_blobs task: remove these keys and nothing else; missing ones are fine (a rerun is a no-op)."""
    _delete_blobs(ctx, keys)


def _delete_blobs(ctx: Context, keys: list[str]) -> None:
    for key in keys:
        ctx.backends.blobs.delete(key)


def discard_uploads(ctx: Context, keys: list[str], why: str) -> None:
    """Best effort, while a request fails: delete the uploads it stored. Never raises, so the person sees the
    original failure; keys the store will not delete now (it is down) go to the delete_blobs task, which retries."""
    left = []
    for key in keys:
        try:
            ctx.backends.blobs.delete(key)
        except Exception:
            left.append(key)
    if not left:
        log.warning("%s; deleted the %d upload(s) it had stored", why, len(keys))
        return
    log.warning("%s; could not delete %d of its %d stored upload(s) now, queued: %s", why, len(left), len(keys), left)
    try:
        ctx.backends.queue.enqueue("delete_blobs", left)
    except Exception:
        log.exception("could not queue the deletion of %s: they stay in the blob store", left)


# --- Processing (the queue task) -----------------------------------------------------------------------------------


def rendition_key(post_id: int, upload_key: str, size: str, fmt: str, folder: str = "posts") -> str:
    """The same upload of the same post always gives the same key: a rerun overwrites, never duplicates. (Photos
    uploaded before their post, through the API, live under `attachments/<their id>/` instead.)"""
    token = upload_key.rsplit("/", 1)[-1].split(".", 1)[0]
    return f"{folder}/{post_id}/{token}-{size}.{EXTENSIONS[fmt]}"


def render_photo(ctx: Context, upload_key: str, filter_name: str, key_for: Callable[[str, str], str]) -> tuple:
    """Make one upload's renditions and store each under `key_for(size, format)`; return the values of the photo's
    columns (width, height, blurhash, dominant_color, camera, renditions). BlobNotFound when the upload is gone,
    ImageRejected when it is not a photo Pinhole accepts."""
    settings = ctx.config.media
    photo = process_photo(
        ctx.backends.blobs.get(upload_key),
        filter_name=filter_name,
        max_pixels=settings.max_pixels,
        max_bytes=settings.max_upload_mb * 1024 * 1024,
        avif=settings.avif,
    )
    keys: dict[str, dict[str, str]] = {}
    for rendition in photo.renditions:
        key = key_for(rendition.name, rendition.format)
        ctx.backends.blobs.put(key, rendition.data, rendition.content_type)
        keys.setdefault(rendition.name, {})[rendition.format] = key
    largest = next(r for r in photo.renditions if r.name == SIZES[0].name)
    return (
        largest.width,
        largest.height,
        photo.blurhash,
        photo.dominant_color,
        json.dumps(photo.camera, sort_keys=True),
        json.dumps(keys, sort_keys=True),
    )


def process_post(ctx: Context, post_id: int) -> None:
    """The process_post task: every photo's renditions, then the post flips to ready (or failed) in one
    transaction. Safe to run twice, or alongside a duplicate of itself."""
    shard = ids.shard_of(post_id)
    with ctx.db.read(shard) as conn:
        status = conn.value("SELECT status FROM posts WHERE id = ?", (post_id,))
        media = conn.all(
            "SELECT id, position, upload_key, filter_name FROM post_media WHERE post_id = ? ORDER BY position",
            (post_id,),
        )
    if status != "processing":
        return  # done already, failed, or deleted
    upload_keys = [m["upload_key"] for m in media]
    updates = []
    for row in media:
        upload_key = row["upload_key"]
        try:
            columns = render_photo(
                ctx, upload_key, row["filter_name"], functools.partial(rendition_key, post_id, upload_key)
            )
        except BlobNotFound:
            _fail(ctx, post_id, f"Photo {row['position']}: the upload was lost. Please post it again.", upload_keys)
            return
        except ImageRejected as exc:
            _fail(ctx, post_id, f"Photo {row['position']}: {exc.message}", upload_keys)
            return
        updates.append((*columns, row["id"]))
    with ctx.db.write(shard) as conn:
        current = conn.value("SELECT status FROM posts WHERE id = ?", (post_id,))
        if current == "processing":
            conn.run_many(
                "UPDATE post_media SET width = ?, height = ?, blurhash = ?, dominant_color = ?, camera = ?,"
                " renditions = ? WHERE id = ?",
                updates,
            )
            conn.run(
                "UPDATE posts SET status = 'ready', error = NULL, fanout_after = 0, updated_at = ? WHERE id = ?",
                (now_ms(), post_id),
            )
            conn.run(
                "UPDATE users SET post_count = post_count + 1 WHERE id = (SELECT author_id FROM posts WHERE id = ?)",
                (post_id,),
            )
    if current is None:
        # Deleted while we worked: its delete task may have run before our writes, so remove them too.
        _delete_blobs(ctx, post_blob_keys(post_id, upload_keys))
    elif current == "processing":
        announce_ready(ctx, post_id)
        if not ctx.config.media.keep_original:
            _delete_blobs(ctx, upload_keys)
    elif current == "failed":
        _delete_blobs(ctx, post_blob_keys(post_id, upload_keys))
    # "ready": a duplicate run finished first; it wrote the same keys with the same bytes.


def announce_ready(ctx: Context, post_id: int) -> None:
    """A post just became ready (its row says so): count it, and have a task fan it out and index it."""
    metrics.POSTS.inc()
    _enqueue_or_log(ctx, "post_ready", post_id)


def _fail(ctx: Context, post_id: int, error: str, upload_keys: list[str]) -> None:
    """Mark a processing post failed and delete everything it stored; a post that is ready stays ready."""
    with ctx.db.write(ids.shard_of(post_id)) as conn:
        failed = conn.run(
            "UPDATE posts SET status = 'failed', error = ?, updated_at = ? WHERE id = ? AND status = 'processing'",
            (error, now_ms(), post_id),
        )
        gone = not failed and conn.value("SELECT 1 FROM posts WHERE id = ?", (post_id,)) is None
    if failed or gone:
        if failed:
            log.warning("post %s failed: %s", post_id, error)
        _delete_blobs(ctx, post_blob_keys(post_id, upload_keys))


# --- The sweep -----------------------------------------------------------------------------------------------------


def sweep_stuck_posts(ctx: Context) -> int:
    """Re-enqueue posts processing for longer than [media] processing_timeout_seconds since their task was last
    enqueued (the task was lost with its worker); after MAX_ATTEMPTS, mark them failed. Returns how many it
    handled."""
    now = now_ms()
    cutoff = now - ctx.config.media.processing_timeout_seconds * 1000
    stuck = ctx.db.each_shard(
        "SELECT id, attempts FROM posts WHERE status = 'processing' AND updated_at < ?", (cutoff,)
    )
    for row in stuck:
        post_id = row["id"]
        if row["attempts"] >= MAX_ATTEMPTS:
            with ctx.db.read(ids.shard_of(post_id)) as conn:
                upload_keys = _upload_keys(conn, post_id)
            _fail(
                ctx,
                post_id,
                f"This post could not be prepared after {MAX_ATTEMPTS} tries. Please post the photos again.",
                upload_keys,
            )
            continue
        with ctx.db.write(ids.shard_of(post_id)) as conn:
            claimed = conn.run(
                "UPDATE posts SET attempts = attempts + 1, updated_at = ?"
                " WHERE id = ? AND status = 'processing' AND updated_at < ?",
                (now, post_id, cutoff),
            )
        if claimed:  # another sweep (another node) did not get there first
            log.warning("re-enqueueing stuck post %s (attempt %d)", post_id, row["attempts"] + 1)
            ctx.backends.queue.enqueue("process_post", post_id)
    return len(stuck)
