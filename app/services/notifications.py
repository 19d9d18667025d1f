"""Notifications: likes, comments, follows, follow requests and mentions, on the recipient's shard.

`notify` is called by the mutation that caused it (like, comment, follow, ...), `withdraw` by the one that undoes it
(unlike, unfollow, ...). A repeated action notifies once (dedup_key). Someone the recipient mutes or has a block with
never reaches them. Each change publishes a small event on the recipient's channel so open pages update the badge.
"""

from __future__ import annotations

import logging

from app import ids
from app.clock import now_ms
from app.context import Context

log = logging.getLogger("pinhole.notifications")

KINDS = ("like", "comment", "follow", "follow_request", "mention")


def channel(user_id: int) -> str:
    """The live-events channel of one person's open pages."""
    return f"user:{user_id}"


def _dedup_key(kind: str, actor_id: int, post_id: int | None, comment_id: int | None) -> str:
    return f"{kind}:{actor_id}:{post_id or ''}:{comment_id or ''}"


def notify(
    ctx: Context,
    recipient_id: int,
    kind: str,
    actor_id: int,
    post_id: int | None = None,
    comment_id: int | None = None,
) -> bool:
    """Record one notification; False when it was not wanted (own action, muted, blocked) or already there."""
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    if recipient_id == actor_id:
        return False
    shard = ids.shard_of(recipient_id)
    with ctx.db.write(shard) as conn:
        unwanted = conn.value(
            "SELECT 1 FROM mutes WHERE user_id = ? AND target_id = ?"
            " UNION ALL SELECT 1 FROM blocks WHERE user_id = ? AND target_id = ?"
            " UNION ALL SELECT 1 FROM blocked_by WHERE user_id = ? AND blocker_id = ?",
            (recipient_id, actor_id) * 3,
        )
        if unwanted:
            return False
        added = conn.run(
            "INSERT INTO notifications (id, user_id, kind, actor_id, post_id, comment_id, dedup_key, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                ids.next_id(conn, shard),
                recipient_id,
                kind,
                actor_id,
                post_id,
                comment_id,
                _dedup_key(kind, actor_id, post_id, comment_id),
                now_ms(),
            ),
        )
    if added:
        _announce(ctx, recipient_id)
    return bool(added)


def withdraw(
    ctx: Context,
    recipient_id: int,
    kind: str,
    actor_id: int,
    post_id: int | None = None,
    comment_id: int | None = None,
) -> None:
    """Remove the notification an undone action made (unlike, unfollow, a deleted comment). Idempotent."""
    with ctx.db.write(ids.shard_of(recipient_id)) as conn:
        removed = conn.run(
            "DELETE FROM notifications WHERE user_id = ? AND dedup_key = ?",
            (recipient_id, _dedup_key(kind, actor_id, post_id, comment_id)),
        )
    if removed:
        _announce(ctx, recipient_id)


def withdraw_post(ctx: Context, recipient_id: int, post_id: int) -> None:
    """The post is gone: so is everything it notified its author of."""
    with ctx.db.write(ids.shard_of(recipient_id)) as conn:
        removed = conn.run("DELETE FROM notifications WHERE user_id = ? AND post_id = ?", (recipient_id, post_id))
    if removed:
        _announce(ctx, recipient_id)


def unread_count(ctx: Context, user_id: int) -> int:
    with ctx.db.read(ids.shard_of(user_id)) as conn:
        return conn.value(
            "SELECT count(*) FROM notifications WHERE user_id = ? AND id > ("
            "SELECT notifications_seen_id FROM users WHERE id = ?)",
            (user_id, user_id),
        )


def _announce(ctx: Context, user_id: int) -> None:
    """Tell the person's open pages the count changed. Best effort: a page that misses it catches up on load."""
    try:
        ctx.backends.events.publish(
            channel(user_id), {"type": "notifications", "unread": unread_count(ctx, user_id)}
        )
    except Exception:
        log.warning("could not publish a notification event for user %s", user_id, exc_info=True)
