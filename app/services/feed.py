"""Home feeds: fan-out on write through the queue, and reads that merge in celebrities' posts.

Each user's feed is a capped list of post ids in the FeedStore seam. When a post becomes ready, `fanout_post` tasks
walk the author's followers in chunks of [feeds] fanout_chunk and add the post to each feed; the post row records
how far they got (`fanout_after`), so the sweep resumes a chain whose task was lost and a rerun adds nothing twice.
Accounts with at least [feeds] celebrity_threshold followers are listed in `celebrities` (shard 0) and not fanned
out: their recent posts are merged in when a feed is read.
"""

from __future__ import annotations

import logging
import time
import weakref
from typing import TYPE_CHECKING

from app import ids
from app.clock import now_ms
from app.context import Context
from app.services import graph
from app.services.accounts import User, get_user
from app.services.notifications import channel

if TYPE_CHECKING:
    from app.services.posts import Post

log = logging.getLogger("pinhole.feed")

# Posts a new follow brings into the follower's feed at once.
BACKFILL_POSTS = 20
CELEBRITIES_KEY = "feeds:celebrities"
# A feed page reads this many ids more than it shows, so the ones it skips (deleted, muted, no longer visible)
# rarely leave it short; a page still short reads again further down, at most FEED_ROUNDS times.
FEED_OVERFETCH = 5
FEED_ROUNDS = 4
# Celebrities asked about in one query (bounds the IN list and the UNION ALL of per-author subqueries).
CELEBRITY_BATCH = 100
# A fan-out chain that made no progress for this long lost a task with its worker; the sweep resumes it.
FANOUT_STALL_MS = 5 * 60 * 1000
# Every feed page reads the celebrity list: each process keeps it in memory this long on top of the cache seam.
# A follow or unfollow that moves an account across [feeds] celebrity_threshold updates the table and deletes the
# cached list at once, and drops this process's copy; other processes (Granian workers, app nodes, queue workers)
# see the change within CELEBRITIES_MEMO_SECONDS. Meanwhile a reader may miss the newest posts of an account that
# just became a celebrity (no longer fanned out, not yet merged), or merge in one that just stopped being one
# (harmless: ids are deduplicated).
CELEBRITIES_MEMO_SECONDS = 5.0
_celebrities_memo: weakref.WeakKeyDictionary[Context, tuple[float, frozenset[int]]] = weakref.WeakKeyDictionary()


# --- Reading a feed ------------------------------------------------------------------------------------------------


def home_feed(ctx: Context, viewer: User, before: int | None, limit: int) -> tuple[list[Post], int | None]:
    """The viewer's home feed older than `before`, newest first: their FeedStore page merged with the recent posts of
    the celebrities they follow, without muted authors or anything they may no longer see. Returns the posts and
    the cursor of the next page (None at the end).

    Queries: the viewer's shard (mutes, followed celebrities, the feed page), one per celebrity author shard, and
    posts.get_posts' batch per post shard; never one per post."""
    from app.services import posts  # here, not at the top: posts -> visibility -> graph -> feed is the import order

    muted = graph.muted_ids(ctx, viewer.id)
    celebrities = _followed_celebrities(ctx, viewer, muted)
    shown: list[Post] = []
    cursor, want = before, limit + FEED_OVERFETCH
    for _ in range(FEED_ROUNDS):
        candidates = _merged_ids(ctx, viewer.id, celebrities, cursor, want)
        shown.extend(p for p in posts.get_posts(ctx, candidates, viewer) if p.author.id not in muted)
        exhausted = len(candidates) < want
        if len(shown) > limit or (len(shown) == limit and not exhausted):
            return shown[:limit], shown[limit - 1].id
        if exhausted:
            return shown, None
        cursor, want = candidates[-1], want * 2
    # Mostly skipped ids so far: show what was found and go on from where the reading stopped.
    return shown, cursor


def first_page_ids(ctx: Context, viewer: User, limit: int) -> list[int]:
    """The ids the first page of `home_feed(ctx, viewer, None, limit)` is read from when its first read suffices (it
    does unless most of them are skipped): what a kept first page is checked against (app/web/home_pages.py)."""
    muted = graph.muted_ids(ctx, viewer.id) if celebrity_ids(ctx) else set()  # mutes only matter for celebrities
    return _merged_ids(ctx, viewer.id, _followed_celebrities(ctx, viewer, muted), None, limit + FEED_OVERFETCH)


def _merged_ids(ctx: Context, viewer_id: int, celebrities: list[int], before: int | None, n: int) -> list[int]:
    """The newest `n` ids older than `before` across the stored feed and the celebrities' posts. Each source gives
    its own newest `n`, so the first `n` of the merge are exactly right."""
    merged = set(ctx.backends.feeds.page(viewer_id, before, n))
    if celebrities:
        merged.update(_celebrity_post_ids(ctx, celebrities, before, n))
    return sorted(merged, reverse=True)[:n]


def _followed_celebrities(ctx: Context, viewer: User, muted: set[int]) -> list[int]:
    """The celebrities the viewer actively follows (and has not muted): one query on the viewer's shard, none at
    all on a site without celebrities."""
    candidates = sorted(celebrity_ids(ctx) - muted - {viewer.id})
    followed: list[int] = []
    for start in range(0, len(candidates), CELEBRITY_BATCH):
        batch = candidates[start : start + CELEBRITY_BATCH]
        with ctx.db.read(viewer.shard) as conn:
            rows = conn.all(
                "SELECT target_id FROM following WHERE user_id = ? AND state = 'active'"
                f" AND target_id IN ({', '.join('?' * len(batch))})",
                [viewer.id, *batch],
            )
        followed.extend(r["target_id"] for r in rows)
    return followed


def _celebrity_post_ids(ctx: Context, author_ids: list[int], before: int | None, n: int) -> list[int]:
    """The newest `n` ready posts older than `before` by these authors: one query per place their shards live on.
    Each author's part is its own indexed LIMIT subquery, so a celebrity's long history is never scanned or
    sorted."""
    cursor = before if before is not None else ids.MAX_ID
    reads = []
    for shard, authors in ctx.db.by_place(author_ids, ids.shard_of):
        for start in range(0, len(authors), CELEBRITY_BATCH):
            batch = authors[start : start + CELEBRITY_BATCH]
            sql = " UNION ALL ".join(
                f"SELECT id FROM (SELECT id FROM posts WHERE author_id = ? AND status = 'ready' AND id < ?"
                f" ORDER BY id DESC LIMIT ?) AS a{i}"
                for i in range(len(batch))
            )
            reads.append((shard, f"{sql} ORDER BY id DESC LIMIT ?", [v for a in batch for v in (a, cursor, n)] + [n]))
    return [r["id"] for r in ctx.db.read_all(reads)]


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
    # A celebrity's posts are merged in when feeds are read. Asked of shard 0, not this process's memo of the list:
    # a worker holding an old memo would skip the fan-out of an account that just stopped being one.
    if not _listed_celebrity(ctx, author.id):
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
        ctx.backends.events.publish_many([channel(f) for f in follower_ids], message)
    except Exception:
        log.warning("could not announce post %s", post_id, exc_info=True)


def sweep_stalled_fanouts(ctx: Context) -> int:
    """Resume fan-out chains whose next task was lost (Huey delivers at most once). Returns how many."""
    cutoff = now_ms() - FANOUT_STALL_MS
    stalled = ctx.db.each_shard(
        "SELECT id, fanout_after FROM posts WHERE fanout_after IS NOT NULL AND updated_at < ?", (cutoff,)
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
    if not celebrity and user_id not in celebrity_ids(ctx):
        return  # the common case: no write on shard 0 for every follow of an ordinary account
    with ctx.db.write(0) as conn:
        listed = _listed(conn, user_id)
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
        _celebrities_memo.pop(ctx, None)
    if listed and not celebrity:
        _fan_out_again(ctx, user_id)


def _listed(conn, user_id: int) -> bool:
    return conn.value("SELECT 1 FROM celebrities WHERE user_id = ?", (user_id,)) is not None


def _listed_celebrity(ctx: Context, user_id: int) -> bool:
    with ctx.db.read(0) as conn:
        return _listed(conn, user_id)


def _fan_out_again(ctx: Context, author_id: int) -> None:
    """The account fell below the threshold, so its posts are no longer merged into feeds when read: its recent
    posts are fanned out now (those made while it was a celebrity never were; for the others it adds nothing)."""
    post_ids = _recent_post_ids(ctx, author_id, BACKFILL_POSTS)
    with ctx.db.write(ids.shard_of(author_id)) as conn:
        conn.run_many(
            "UPDATE posts SET fanout_after = 0, updated_at = ? WHERE id = ? AND fanout_after IS NULL",
            [(now_ms(), post_id) for post_id in post_ids],
        )
    for post_id in post_ids:
        ctx.backends.queue.enqueue("fanout_post", post_id, 0)


def celebrity_ids(ctx: Context) -> frozenset[int]:
    """The accounts at or above [feeds] celebrity_threshold: from this process's memory (at most
    CELEBRITIES_MEMO_SECONDS old), else the cache seam, else shard 0."""
    now = time.monotonic()
    memo = _celebrities_memo.get(ctx)
    if memo is not None and memo[0] > now:
        return memo[1]

    def load() -> list[int]:
        with ctx.db.read(0) as conn:
            return [r["user_id"] for r in conn.all("SELECT user_id FROM celebrities")]

    found = frozenset(ctx.backends.cache.get_or_fill(CELEBRITIES_KEY, load, ttl=60))
    _celebrities_memo[ctx] = (now + CELEBRITIES_MEMO_SECONDS, found)
    return found


def is_celebrity(ctx: Context, user_id: int) -> bool:
    return user_id in celebrity_ids(ctx)
