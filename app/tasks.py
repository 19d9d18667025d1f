"""Every queue task, registered by name in each process that enqueues or runs them."""

from __future__ import annotations

import logging

from app import metrics
from app.context import Context
from app.services import attachments, avatars, discover, feed, interactions, places, posts
from app.services import tags as hashtags

log = logging.getLogger("pinhole.tasks")


def register_tasks(ctx: Context) -> None:
    queue = ctx.backends.queue
    retries = ctx.config.queue.task_retries

    def process_avatar(user_id: int) -> None:
        avatars.process_avatar(ctx, user_id)

    def process_post(post_id: int) -> None:
        posts.process_post(ctx, post_id)

    def process_attachment(media_id: int) -> None:
        attachments.process_attachment(ctx, media_id)

    def delete_blobs(keys: list[str]) -> None:
        posts.delete_blobs(ctx, keys)

    def post_ready(post_id: int) -> None:
        """A post became visible: fan it out and index it. Every step is idempotent, so a rerun is harmless."""
        feed.start_fanout(ctx, post_id)
        places.index_ready_post(ctx, post_id)
        hashtags.index_post(ctx, post_id)

    def post_deleted(
        post_id: int,
        author_id: int,
        liker_ids: list[int],
        tags: list[str],
        place: list | None,
        mentioned: list[str] = (),  # absent from tasks queued before mentions were withdrawn here
    ) -> None:
        """Remove a deleted post's rows on other shards; until this runs, readers skip its id."""
        feed.forget_post(ctx, post_id, author_id)
        interactions.forget_likes(ctx, post_id, liker_ids)
        hashtags.unindex_post(ctx, post_id, tags)
        hashtags.withdraw_post_mentions(ctx, post_id, mentioned)
        if place:
            places.unindex_post(ctx, post_id, place[0], place[1])

    def fanout_post(post_id: int, after: int) -> None:
        feed.fanout_post(ctx, post_id, after)

    def sweep_stuck_posts() -> None:
        posts.sweep_stuck_posts(ctx)
        attachments.sweep(ctx)
        feed.sweep_stalled_fanouts(ctx)

    def rank_explore() -> None:
        discover.refresh_explore(ctx)

    def sweep_stuck() -> None:
        avatars.sweep_stuck_avatars(ctx)
        metrics.QUEUE_DEPTH.set(queue.pending())

    def purge_expired_state() -> None:
        purged = ctx.backends.kv.purge_expired()
        if purged:
            log.info("purged %d expired sessions and counters", purged)

    queue.register("process_avatar", process_avatar, retries=retries)
    queue.register("process_post", process_post, retries=retries)
    queue.register("process_attachment", process_attachment, retries=retries)
    queue.register("delete_blobs", delete_blobs, retries=retries)
    queue.register("post_ready", post_ready, retries=retries)
    queue.register("post_deleted", post_deleted, retries=retries)
    queue.register("fanout_post", fanout_post, retries=retries)
    queue.register_periodic("sweep_stuck", sweep_stuck, every_minutes=1)
    queue.register_periodic("sweep_stuck_posts", sweep_stuck_posts, every_minutes=1)
    queue.register_periodic("purge_expired_state", purge_expired_state, every_minutes=15)
    queue.register_periodic("rank_explore", rank_explore, every_minutes=discover.RANK_EVERY_MINUTES)
