"""Bookmarks: a private list of posts to come back to. One function per mutation, used by the API (and any page that
adds a bookmark button later).

Where rows live (migration 0006): `bookmarks` on the bookmarking user's shard only; the author is never told. A
deleted post's bookmarks stay until read: the list skips posts that no longer exist or that the user may no longer
see (posts.get_posts decides), exactly as feeds do.
"""

from __future__ import annotations

from app import ids
from app.clock import now_ms
from app.context import Context
from app.services import posts
from app.services.accounts import User
from app.services.interactions import ready_post, viewers_post_ids


def bookmark(ctx: Context, viewer: User, post_id: int) -> posts.Post:
    """Bookmark a post the viewer may see; bookmarking it again changes nothing."""
    post = ready_post(ctx, viewer, post_id)
    with ctx.db.write(viewer.shard) as conn:
        conn.run(
            "INSERT INTO bookmarks (user_id, post_id, id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (viewer.id, post.id, ids.next_id(conn, viewer.shard), now_ms()),
        )
    return post


def unbookmark(ctx: Context, viewer: User, post_id: int) -> posts.Post:
    """Remove a bookmark; a post not bookmarked is fine (nothing to undo)."""
    post = posts.get_post(ctx, post_id, viewer)
    with ctx.db.write(viewer.shard) as conn:
        conn.run("DELETE FROM bookmarks WHERE user_id = ? AND post_id = ?", (viewer.id, post.id))
    return post


def bookmarked_ids(ctx: Context, viewer: User | None, post_ids: list[int]) -> set[int]:
    """Which of these posts the viewer bookmarked: one query on the viewer's shard."""
    return viewers_post_ids(ctx, "bookmarks", viewer, post_ids)


def list_bookmarks(
    ctx: Context, viewer: User, before: int | None, limit: int
) -> tuple[list[tuple[int, posts.Post]], int | None]:
    """(bookmark id, post) pairs, newest bookmark first, with bookmark ids below `before`, and the cursor of the next
    page (None at the end). Bookmarks of posts gone or no longer visible are skipped."""
    with ctx.db.read(viewer.shard) as conn:
        rows = conn.all(
            "SELECT id, post_id FROM bookmarks WHERE user_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (viewer.id, before if before is not None else ids.MAX_ID, limit),
        )
    found = {p.id: p for p in posts.get_posts(ctx, [r["post_id"] for r in rows], viewer)}
    page = [(r["id"], found[r["post_id"]]) for r in rows if r["post_id"] in found]
    return page, (rows[-1]["id"] if len(rows) == limit else None)
