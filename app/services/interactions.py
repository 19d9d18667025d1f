"""What people do on a post: like, comment, and (its author) edit it or turn comments off. One function per
mutation, used by the pages, the API and tasks alike.

Where rows live (migration 0004): a like on both sides (`likes` on the post's shard, `liked` on the liker's, so a
page asks the viewer's shard "which of these did I like" once); comments with their post, ids made on its shard.
The post's like_count and comment_count change in the same transaction as the row they count, so they stay exact
however many people act at once. The post's side is written first: a crash before the liker's side leaves a like
the liker's list lacks, which liking again repairs.

Everything goes through posts.get_post first, so a post the viewer may not see (private, blocked either way,
deleted, missing) answers the same NotFound as one that never existed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from app import ids
from app.clock import now_ms
from app.context import Context
from app.errors import Conflict, Forbidden, NotFound, UserError
from app.services import graph, notifications, page_versions, places, posts, ratelimit, tags
from app.services.accounts import User, get_users
from app.services.visibility import can_view

MAX_COMMENT = 2200
COMMENTS_OFF = "Comments are turned off for this post."
NO_COMMENT = "That comment doesn't exist, or it was deleted."
NOT_READY = "This post is still being prepared; try again when its photos appear."


@dataclass(frozen=True)
class Comment:
    id: int
    post_id: int
    author: User
    body: str
    created_at: int  # unix ms


def ready_post(ctx: Context, viewer: User | None, post_id: int) -> posts.Post:
    """The post, if the viewer may see it and it is ready (a post still processing takes no likes, comments or
    bookmarks)."""
    post = posts.get_post(ctx, post_id, viewer)
    if post.status != "ready":  # only its author sees a post before it is ready
        raise UserError(NOT_READY)
    return post


# --- Likes ---------------------------------------------------------------------------------------------------------


def like(ctx: Context, viewer: User, post_id: int) -> posts.Post:
    """Like the post; returns it with its like count now. Conflict when the viewer likes it already (nothing
    changed)."""
    ratelimit.limit(
        ctx, "like", str(viewer.id), ctx.config.limits.likes_per_account, "You've liked many posts just now."
    )
    post = ready_post(ctx, viewer, post_id)
    now = now_ms()
    with ctx.db.write(ids.shard_of(post.id)) as conn:
        added = conn.run(
            "INSERT INTO likes (post_id, user_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (post.id, viewer.id, now),
        )
        if added and not conn.run("UPDATE posts SET like_count = like_count + 1 WHERE id = ?", (post.id,)):
            raise NotFound(posts.NOT_FOUND)  # deleted meanwhile: the transaction rolls back
        count = conn.value("SELECT like_count FROM posts WHERE id = ?", (post.id,))
    # The liker's side, also when the like was there already: that repairs a crash between the two writes.
    with ctx.db.write(viewer.shard) as conn:
        conn.run(
            "INSERT INTO liked (user_id, post_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (viewer.id, post.id, now),
        )
    page_versions.touch(ctx, viewer.id)
    if not added:
        raise Conflict("You already like this post.")
    notifications.notify(ctx, post.author.id, "like", viewer.id, post_id=post.id)
    return replace(post, like_count=count)


def unlike(ctx: Context, viewer: User, post_id: int) -> posts.Post:
    """Take a like back; returns the post with its like count now. Not liking it is fine (nothing to undo)."""
    post = ready_post(ctx, viewer, post_id)
    with ctx.db.write(ids.shard_of(post.id)) as conn:
        removed = conn.run("DELETE FROM likes WHERE post_id = ? AND user_id = ?", (post.id, viewer.id))
        if removed:
            conn.run("UPDATE posts SET like_count = like_count - 1 WHERE id = ?", (post.id,))
        count = conn.value("SELECT like_count FROM posts WHERE id = ?", (post.id,)) or 0
    with ctx.db.write(viewer.shard) as conn:
        conn.run("DELETE FROM liked WHERE user_id = ? AND post_id = ?", (viewer.id, post.id))
    page_versions.touch(ctx, viewer.id)
    notifications.withdraw(ctx, post.author.id, "like", viewer.id, post_id=post.id)
    return replace(post, like_count=count)


def liked_post_ids(ctx: Context, viewer: User | None, post_ids: list[int]) -> set[int]:
    """Which of these posts the viewer likes: one query on the viewer's shard (hearts on a page of posts)."""
    return viewers_post_ids(ctx, "liked", viewer, post_ids)


def viewers_post_ids(ctx: Context, table: str, viewer: User | None, post_ids: list[int]) -> set[int]:
    """Which of these posts have a row (user_id, post_id) of the viewer's in `table` (likes, bookmarks, kept on the
    viewer's shard): one query there."""
    wanted = list(dict.fromkeys(post_ids))
    if viewer is None or not wanted:
        return set()
    with ctx.db.read(viewer.shard) as conn:
        rows = conn.all(
            f"SELECT post_id FROM {table} WHERE user_id = ? AND post_id IN ({', '.join('?' * len(wanted))})",
            [viewer.id, *wanted],
        )
    return {r["post_id"] for r in rows}


def liked_posts(ctx: Context, viewer: User, before: int | None, limit: int) -> tuple[list[posts.Post], int | None]:
    """The posts the viewer likes, by post id (newest post first) below `before`, and the cursor of the next page
    (None at the end): one query on the viewer's shard. Posts gone or no longer visible are skipped."""
    with ctx.db.read(viewer.shard) as conn:
        rows = conn.all(
            "SELECT post_id FROM liked WHERE user_id = ? AND post_id < ? ORDER BY post_id DESC LIMIT ?",
            (viewer.id, before if before is not None else ids.MAX_ID, limit),
        )
    found = posts.get_posts(ctx, [r["post_id"] for r in rows], viewer)
    return found, (rows[-1]["post_id"] if len(rows) == limit else None)


def likers(ctx: Context, viewer: User | None, post_id: int, before: int | None, limit: int) -> list[User]:
    """Who likes the post (if the viewer may see it), newest account first below `before` (an account id), without
    those who have a block either way with the viewer."""
    post = posts.get_post(ctx, post_id, viewer)
    with ctx.db.read(ids.shard_of(post.id)) as conn:
        rows = conn.all(
            "SELECT user_id FROM likes WHERE post_id = ? AND user_id < ? ORDER BY user_id DESC LIMIT ?",
            (post.id, before if before is not None else ids.MAX_ID, limit),
        )
    users = get_users(ctx, [r["user_id"] for r in rows])
    hidden = {i for i, rel in graph.relations(ctx, viewer, users).items() if rel.blocked} if viewer else set()
    return [users[r["user_id"]] for r in rows if r["user_id"] in users and r["user_id"] not in hidden]


def forget_likes(ctx: Context, post_id: int, liker_ids: list[int]) -> None:
    """The post_deleted task: remove the deleted post from its likers' lists, one statement per shard. Idempotent."""
    by_shard: dict[int, list[int]] = {}
    for user_id in dict.fromkeys(liker_ids):
        by_shard.setdefault(ids.shard_of(user_id), []).append(user_id)
    for shard, users in by_shard.items():
        if shard >= ctx.db.logical_shards:
            continue
        with ctx.db.write(shard) as conn:
            conn.run(
                f"DELETE FROM liked WHERE post_id = ? AND user_id IN ({', '.join('?' * len(users))})",
                [post_id, *users],
            )


# --- Comments ------------------------------------------------------------------------------------------------------


def _checked_body(body: str) -> str:
    body = (body or "").replace("\r\n", "\n").strip()
    if not body:
        raise UserError("Write something to comment.", field="body")
    if len(body) > MAX_COMMENT:
        raise UserError(f"The comment is {len(body)} characters; the limit is {MAX_COMMENT}.", field="body")
    return body


def add_comment(ctx: Context, viewer: User, post_id: int, body: str) -> Comment:
    """Comment on the post; notifies its author and everyone the comment @mentions (who may see the post)."""
    body = _checked_body(body)
    ratelimit.limit(
        ctx, "comment", str(viewer.id), ctx.config.limits.comments_per_account, "You've commented a lot just now."
    )
    post = ready_post(ctx, viewer, post_id)
    if post.comments_off:
        raise Forbidden(COMMENTS_OFF)
    _tags, mentioned = tags.check_text(ctx, body, field="body")
    now = now_ms()
    shard = ids.shard_of(post.id)
    with ctx.db.write(shard) as conn:
        # Checked again here: comments turned off (or the post deleted) since the read above add nothing.
        state = conn.value("SELECT comments_off FROM posts WHERE id = ? AND status = 'ready'", (post.id,))
        if state is None:
            raise NotFound(posts.NOT_FOUND)
        if state:
            raise Forbidden(COMMENTS_OFF)
        comment_id = ids.next_id(conn, shard)
        conn.run(
            "INSERT INTO comments (id, post_id, author_id, body, created_at) VALUES (?, ?, ?, ?, ?)",
            (comment_id, post.id, viewer.id, body, now),
        )
        conn.run("UPDATE posts SET comment_count = comment_count + 1 WHERE id = ?", (post.id,))
    page_versions.touch(ctx, viewer.id)
    notifications.notify(ctx, post.author.id, "comment", viewer.id, post_id=post.id, comment_id=comment_id)
    for user in mentioned.values():
        # The author hears of it as a comment already; someone who may not see the post hears nothing.
        if user.id != post.author.id and can_view(ctx, user, post.author):
            notifications.notify(ctx, user.id, "mention", viewer.id, post_id=post.id, comment_id=comment_id)
    return Comment(comment_id, post.id, viewer, body, now)


def delete_comment(ctx: Context, viewer: User, comment_id: int, post_id: int | None = None) -> Comment:
    """Delete a comment: your own, or any on your own post (Forbidden otherwise). Withdraws what it notified.
    `post_id`, when given, must be the comment's post (an address naming another post finds nothing)."""
    comment_id = ids.parse(comment_id) if isinstance(comment_id, (int, str)) else None
    if comment_id is None or ids.shard_of(comment_id) >= ctx.db.logical_shards:
        raise NotFound(NO_COMMENT)
    shard = ids.shard_of(comment_id)
    with ctx.db.read(shard) as conn:
        row = conn.one("SELECT * FROM comments WHERE id = ?", (comment_id,))
    if row is None or (post_id is not None and row["post_id"] != post_id):
        raise NotFound(NO_COMMENT)
    post = posts.get_post(ctx, row["post_id"], viewer)
    if viewer.id not in (row["author_id"], post.author.id):
        raise Forbidden("You can delete your own comments, and any comment on your own posts.")
    with ctx.db.write(shard) as conn:
        deleted = conn.run("DELETE FROM comments WHERE id = ?", (comment_id,))
        if deleted:
            conn.run("UPDATE posts SET comment_count = comment_count - 1 WHERE id = ?", (post.id,))
    if not deleted:
        raise NotFound(NO_COMMENT)  # deleted meanwhile, by another request
    page_versions.touch(ctx, viewer.id)
    notifications.withdraw(ctx, post.author.id, "comment", row["author_id"], post_id=post.id, comment_id=comment_id)
    for user in tags.users_named(ctx, tags.extract_mentions(row["body"])).values():
        notifications.withdraw(ctx, user.id, "mention", row["author_id"], post_id=post.id, comment_id=comment_id)
    author = get_users(ctx, [row["author_id"]]).get(row["author_id"], viewer)
    return Comment(comment_id, post.id, author, row["body"], row["created_at"])


def list_comments(
    ctx: Context, viewer: User | None, post_id: int, after: int | None = None, limit: int = 50
) -> tuple[list[Comment], int | None]:
    """The post's comments, oldest first, with ids above `after`, and the cursor for the next page (None on the
    last). Comments by someone with a block either way with the viewer are left out."""
    post = posts.get_post(ctx, post_id, viewer)
    shard = ids.shard_of(post.id)
    with ctx.db.read(shard) as conn:
        rows = conn.all(
            "SELECT * FROM comments WHERE post_id = ? AND id > ? ORDER BY id LIMIT ?",
            (post.id, after or 0, limit + 1),
        )
    more = len(rows) > limit
    rows = rows[:limit]
    authors = get_users(ctx, {r["author_id"] for r in rows})
    hidden: set[int] = set()
    if viewer is not None:
        hidden = {i for i, rel in graph.relations(ctx, viewer, authors).items() if rel.blocked}
    comments = [
        Comment(r["id"], r["post_id"], authors[r["author_id"]], r["body"], r["created_at"])
        for r in rows
        if r["author_id"] in authors and r["author_id"] not in hidden
    ]
    return comments, (rows[-1]["id"] if more else None)


def get_comments(ctx: Context, viewer: User | None, comment_ids: list[int]) -> dict[int, tuple[Comment, posts.Post]]:
    """Comments by id with their posts, those the viewer may see only (the post visible, no block either way with
    the comment's author): one query per place the comments live on, then their posts and authors in batches."""
    rows = ctx.db.read_in("SELECT * FROM comments WHERE id IN ({})", comment_ids, ids.shard_of)
    found_posts = {p.id: p for p in posts.get_posts(ctx, [r["post_id"] for r in rows], viewer)}
    authors = get_users(ctx, {r["author_id"] for r in rows})
    hidden = {i for i, rel in graph.relations(ctx, viewer, authors).items() if rel.blocked} if viewer else set()
    return {
        r["id"]: (
            Comment(r["id"], r["post_id"], authors[r["author_id"]], r["body"], r["created_at"]),
            found_posts[r["post_id"]],
        )
        for r in rows
        if r["post_id"] in found_posts and r["author_id"] in authors and r["author_id"] not in hidden
    }


def set_comments_off(ctx: Context, viewer: User, post_id: int, off: bool) -> None:
    """The author turns comments off (no one may add one; those there stay) or on again."""
    post = _own_post(ctx, viewer, post_id, "Only its author can turn comments off or on.")
    with ctx.db.write(ids.shard_of(post.id)) as conn:
        conn.run("UPDATE posts SET comments_off = ? WHERE id = ?", (int(bool(off)), post.id))
    page_versions.touch(ctx, viewer.id)


# --- Editing -------------------------------------------------------------------------------------------------------


def _own_post(ctx: Context, viewer: User, post_id: int, refusal: str) -> posts.Post:
    post = posts.get_post(ctx, post_id, viewer)
    if viewer.id != post.author.id:
        raise Forbidden(refusal)
    return post


def edit_post(
    ctx: Context,
    viewer: User,
    post_id: int,
    caption: str,
    alt_texts: dict[int, str],
    place: posts.Place | None,
    sensitive: bool | None = None,
) -> posts.Post:
    """The author changes the caption, photos' descriptions, place and (not None) the content warning, checked as
    when posting. Tags and the place directory follow; people newly mentioned are notified, people no longer
    mentioned lose that notification."""
    post = _own_post(ctx, viewer, post_id, "Only its author can edit a post.")
    caption = posts.checked_caption(ctx, caption)
    positions = {m.id: m.position for m in post.media}
    alts: dict[int, str] = {}
    for media_id, text in (alt_texts or {}).items():
        if media_id not in positions:
            raise UserError("That photo isn't part of this post. Reload the page and try again.", field="alt_text")
        text = (text or "").strip()
        if len(text) > posts.MAX_ALT:
            raise UserError(
                f"Photo {positions[media_id]}: the description is {len(text)} characters; the limit is"
                f" {posts.MAX_ALT}.",
                field="alt_text",
            )
        alts[media_id] = text
    place = posts._checked_place(place)
    with ctx.db.write(ids.shard_of(post.id)) as conn:
        changed = conn.run(
            "UPDATE posts SET caption = ?, place_name = ?, place_lat = ?, place_lon = ?, sensitive = ? WHERE id = ?",
            (
                caption,
                place.name if place else None,
                place.lat if place else None,
                place.lon if place else None,
                int(post.sensitive if sensitive is None else sensitive),
                post.id,
            ),
        )
        if not changed:
            raise NotFound(posts.NOT_FOUND)  # deleted meanwhile
        conn.run_many(
            "UPDATE post_media SET alt_text = ? WHERE id = ? AND post_id = ?",
            [(text, media_id, post.id) for media_id, text in alts.items()],
        )
    page_versions.touch(ctx, viewer.id)
    if post.status == "ready":  # before then, the post_ready task indexes what the post says by that time
        dropped = set(tags.extract_mentions(post.caption)) - set(tags.extract_mentions(caption))
        tags.withdraw_mentions(ctx, post.id, post.author.id, dropped)
        tags.index_post(ctx, post.id)
        old = (post.place.lat, post.place.lon) if post.place else (None, None)
        new = (place.lat, place.lon) if place else (None, None)
        if old != new:
            places.unindex_post(ctx, post.id, *old)
            places.index_post(ctx, post.id, post.author.id, *new)
    return posts.get_post(ctx, post.id, viewer)
