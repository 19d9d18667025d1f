"""Home feeds: fan-out on write through the queue, and reads that merge in celebrities' posts.

Each user's feed is a capped list of post ids in the FeedStore seam. When a post becomes ready, `fanout_post` tasks
walk the author's followers in chunks of [feeds] fanout_chunk and add the post to each feed; the post row records
how far they got (`fanout_after`), so the sweep resumes a chain whose task was lost and a rerun adds nothing twice.
Accounts with at least [feeds] celebrity_threshold followers are listed in `celebrities` (shard 0) and not fanned
out: their recent posts are merged in when a feed is read.
"""

from __future__ import annotations

import logging

from app import ids
from app.clock import now_ms
from app.context import Context
from app.services import graph
from app.services.accounts import User, get_user
from app.services.notifications import channel

log = logging.getLogger("pinhole.feed")

# Posts a new follow brings into the follower's feed at once.
BACKFILL_POSTS = 20
CELEBRITIES_KEY = "feeds:celebrities"
# A fan-out chain that made no progress for this long lost a task with its worker; the sweep resumes it.
FANOUT_STALL_MS = 5 * 60 * 1000


# --- Fan-out on write ----------------------------------------------------------------------------------------------


def start_fanout(ctx: Context, post_id: int) -> None:
    """The post became ready: run the first chunk now (this is already a task); the rest chain from it."""
    fanout_post(ctx, post_id, 0)


def fanout_post(ctx: Context, post_id: int, after: int) -> None:
    """The fanout_post task: add the post to the feeds of the author's followers with ids above `after`, one chunk,
    then record the progress on the post and enqueue the next chunk. A rerun or a duplicate adds nothing twice."""
    shard = ids.shard_of(post_id)
    with ctx.db.read(shard) as conn:
        row = conn.one("SELECT author_id, fanout_after FROM posts WHERE id = ? AND status = 'ready'", (post_id,))
    if row is None or row["fanout_after"] is None:
        return  # deleted, or fanned out already
    start = max(after, row["fanout_after"])
    author = get_user(ctx, row["author_id"])
    if author is None:
        return
    feeds = ctx.backends.feeds
    if start == 0:
        feeds.add(post_id, [author.id])  # your own posts are in your own feed
        note_follower_count(ctx, author.id, author.follower_count)
    chunk: list[int] = []
    if not is_celebrity(ctx, author.id):  # a celebrity's posts are merged in when feeds are read
        chunk = graph.follower_ids(ctx, author.id, start, ctx.config.feeds.fanout_chunk)
    if chunk:
        feeds.add(post_id, chunk)
        _announce_new_post(ctx, post_id, author, chunk)
    more = len(chunk) == ctx.config.feeds.fanout_chunk
    with ctx.db.write(shard) as conn:
        conn.run(
            "UPDATE posts SET fanout_after = ?, updated_at = ? WHERE id = ? AND fanout_after IS NOT NULL",
            (chunk[-1] if more else None, now_ms(), post_id),
        )
    if more:
        ctx.backends.queue.enqueue("fanout_post", post_id, chunk[-1])


def _announce_new_post(ctx: Context, post_id: int, author: User, follower_ids: list[int]) -> None:
    """Open home pages of these followers show a "new posts" banner. Best effort, like every live event."""
    message = {"type": "new_post", "post_id": str(post_id), "author": author.username}
    try:
        for follower_id in follower_ids:
            ctx.backends.events.publish(channel(follower_id), message)
    except Exception:
        log.warning("could not announce post %s", post_id, exc_info=True)


def sweep_stalled_fanouts(ctx: Context) -> int:
    """Resume fan-out chains whose next task was lost (Huey delivers at most once). Returns how many."""
    cutoff = now_ms() - FANOUT_STALL_MS
    stalled: list[dict] = []
    for reader, _shards in ctx.db.shard_groups():
        with reader as conn:
            stalled.extend(
                conn.all(
                    "SELECT id, fanout_after FROM posts WHERE fanout_after IS NOT NULL AND updated_at < ?",
                    (cutoff,),
                )
            )
    for row in stalled:
        log.warning("resuming the fan-out of post %s after follower %s", row["id"], row["fanout_after"])
        ctx.backends.queue.enqueue("fanout_post", row["id"], row["fanout_after"])
    return len(stalled)


def forget_post(ctx: Context, post_id: int, author_id: int) -> None:
    """The post was deleted: take it out of its author's and every follower's feed."""
    feeds = ctx.backends.feeds
    feeds.remove_post(post_id, [author_id])
    after = 0
    while chunk := graph.follower_ids(ctx, author_id, after, ctx.config.feeds.fanout_chunk):
        feeds.remove_post(post_id, chunk)
        after = chunk[-1]


# --- Follow, unfollow, block ---------------------------------------------------------------------------------------


def _recent_post_ids(ctx: Context, author_id: int, limit: int) -> list[int]:
    with ctx.db.read(ids.shard_of(author_id)) as conn:
        rows = conn.all(
            "SELECT id FROM posts WHERE author_id = ? AND status = 'ready' ORDER BY id DESC LIMIT ?",
            (author_id, limit),
        )
    return [r["id"] for r in rows]


def backfill(ctx: Context, user_id: int, author: User) -> None:
    """A new follow: the author's recent posts join the follower's feed (celebrities' are merged at read time)."""
    if is_celebrity(ctx, author.id):
        return
    for post_id in _recent_post_ids(ctx, author.id, BACKFILL_POSTS):
        ctx.backends.feeds.add(post_id, [user_id])


def remove_author(ctx: Context, user_id: int, author_id: int) -> None:
    """Unfollow or block: the author's posts leave the user's feed."""
    ctx.backends.feeds.remove(user_id, _recent_post_ids(ctx, author_id, ctx.config.feeds.max_items))


def note_follower_count(ctx: Context, user_id: int, follower_count: int) -> None:
    """Keep the celebrity list true as an account's follower count crosses [feeds] celebrity_threshold."""
    celebrity = follower_count >= ctx.config.feeds.celebrity_threshold
    with ctx.db.write(0) as conn:
        listed = conn.value("SELECT 1 FROM celebrities WHERE user_id = ?", (user_id,)) is not None
        if celebrity:
            conn.run(
                "INSERT INTO celebrities (user_id, follower_count) VALUES (?, ?)"
                " ON CONFLICT (user_id) DO UPDATE SET follower_count = excluded.follower_count",
                (user_id, follower_count),
            )
        elif listed:
            conn.run("DELETE FROM celebrities WHERE user_id = ?", (user_id,))
    if celebrity != listed:
        ctx.backends.cache.invalidate(CELEBRITIES_KEY)


def celebrity_ids(ctx: Context) -> set[int]:
    def load() -> list[int]:
        with ctx.db.read(0) as conn:
            return [r["user_id"] for r in conn.all("SELECT user_id FROM celebrities")]

    return set(ctx.backends.cache.get_or_fill(CELEBRITIES_KEY, load, ttl=60))


def is_celebrity(ctx: Context, user_id: int) -> bool:
    return user_id in celebrity_ids(ctx)
