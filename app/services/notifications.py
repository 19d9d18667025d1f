"""Notifications: likes, comments, follows, follow requests and mentions, on the recipient's shard.

`notify` is called by the mutation that caused it (like, comment, follow, ...), `withdraw` by the one that undoes it
(unlike, unfollow, ...). A repeated action notifies once (dedup_key). Someone the recipient mutes or has a block with
never reaches them. Each change publishes a small event on the recipient's channel so open pages update the badge.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app import ids
from app.clock import now_ms
from app.context import Context
from app.errors import NotFound
from app.services import page_versions

if TYPE_CHECKING:
    from app.services.accounts import User
    from app.services.posts import Post

log = logging.getLogger("pinhole.notifications")

KINDS = ("like", "comment", "follow", "follow_request", "mention")
# The badge counts this far ("99+"): one bounded query whatever the backlog.
UNREAD_CAP = 100
# Actors named in a group ("ana, bo and 3 others"); the rest are counted.
SHOWN_ACTORS = 3
# Groups are read a few days at a time, newest first, so a page costs the same however old the account is.
WINDOW_DAYS = 7
DAY_MS = 86_400_000
_ID_TIME_SHIFT = ids.SHARD_BITS + ids.SEQ_BITS

# Rows whose actor the recipient mutes or has a block with (either way) are not shown or counted: muting or
# blocking after the fact hides what that person already did. All three tables are on the recipient's shard.
_SHOWN_ACTOR = (
    " AND NOT EXISTS (SELECT 1 FROM mutes m WHERE m.user_id = n.user_id AND m.target_id = n.actor_id)"
    " AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.user_id = n.user_id AND b.target_id = n.actor_id)"
    " AND NOT EXISTS (SELECT 1 FROM blocked_by x WHERE x.user_id = n.user_id AND x.blocker_id = n.actor_id)"
)


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
    """Notifications newer than the last the person saw, from actors they still see; at most UNREAD_CAP."""
    with ctx.db.read(ids.shard_of(user_id)) as conn:
        return conn.value(
            "SELECT count(*) FROM (SELECT 1 FROM notifications n WHERE n.user_id = ? AND n.id > ("
            f"SELECT notifications_seen_id FROM users WHERE id = ?){_SHOWN_ACTOR} LIMIT ?) AS unread",
            (user_id, user_id, UNREAD_CAP),
        )


def mark_seen(ctx: Context, user: User, through_id: int) -> None:
    """Everything up to `through_id` (the newest notification the page showed) is read. Never moves backwards, so
    an older page opened late cannot make newer notifications unread again."""
    with ctx.db.write(user.shard) as conn:
        moved = conn.run(
            "UPDATE users SET notifications_seen_id = ? WHERE id = ? AND notifications_seen_id < ?",
            (through_id, user.id, through_id),
        )
    if moved:
        _announce(ctx, user.id)


# --- Reading, grouped ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """One line of the notifications page: the same kind on the same post (or follows) on one day."""

    kind: str
    actors: list[User]  # the latest SHOWN_ACTORS, newest first
    actor_count: int  # everyone in the group
    post: Post | None
    comment_id: int | None
    newest_id: int
    unread: bool

    @property
    def created_at(self) -> int:
        return ids.unix_ms_of(self.newest_id)

    @property
    def others(self) -> int:
        """How many are counted rather than named."""
        return self.actor_count - len(self.actors)


@dataclass(frozen=True)
class Page:
    groups: list[Group]
    next_before: int | None  # the cursor of the next (older) page
    newest_id: int | None  # the newest notification there was when the page was read (to mark it seen)


def _day(id_: int) -> int:
    return (ids.unix_ms_of(id_)) // DAY_MS


def _first_id_of_day(day: int) -> int:
    """The smallest id made on that UTC day (0 before the id epoch)."""
    ms = day * DAY_MS - ids.EPOCH_MS
    if ms >= 1 << ids.TIME_BITS:
        return ids.MAX_ID  # past the last time an id can carry (a cursor made up to be huge)
    return ids.compose(ms, 0, 0) if ms > 0 else 0


# Grouping key: kind, post and UTC day of the id (a mention stands alone). Each actor counts once per group (two
# comments by ana on one photo are "ana commented"); the latest SHOWN_ACTORS rows of each group are returned with
# the group's size and newest id.
_BUCKET = (
    f"CASE WHEN n.kind = 'mention' THEN n.id ELSE ((n.id / {1 << _ID_TIME_SHIFT}) + {ids.EPOCH_MS}) / {DAY_MS} END"
)
_GROUPS_SQL = f"""
WITH per_actor AS (
    SELECT n.id, n.kind, n.actor_id, n.post_id, n.comment_id, coalesce(n.post_id, 0) AS post_key, {_BUCKET} AS bucket,
           row_number() OVER (PARTITION BY n.kind, coalesce(n.post_id, 0), {_BUCKET}, n.actor_id ORDER BY n.id DESC)
               AS latest
    FROM notifications n
    WHERE n.user_id = ? AND n.id >= ? AND n.id < ?{_SHOWN_ACTOR}
), ranked AS (
    SELECT id, kind, actor_id, post_id, comment_id, post_key, bucket,
           count(*) OVER (PARTITION BY kind, post_key, bucket) AS actor_count,
           max(id) OVER (PARTITION BY kind, post_key, bucket) AS newest,
           row_number() OVER (PARTITION BY kind, post_key, bucket ORDER BY id DESC) AS rank
    FROM per_actor WHERE latest = 1
)
SELECT * FROM ranked WHERE rank <= ? AND newest < ? ORDER BY newest DESC, rank
"""


def _group_rows(ctx: Context, user_id: int, before: int | None, wanted: int) -> tuple[list[list[dict]], int | None]:
    """Up to `wanted` groups (each its rows, newest first) whose newest id is below `before`, and the newest id
    there was. A group lies within one UTC day, so reading whole days, newest first, never splits one."""
    shard = ids.shard_of(user_id)
    before = before or ids.MAX_ID
    # The first window runs to the end of the cursor's day, so the group the cursor is in is seen whole.
    high = ids.MAX_ID if before == ids.MAX_ID else _first_id_of_day(_day(before) + 1)
    groups: dict[tuple, list[dict]] = {}
    newest = None
    while len(groups) < wanted:
        with ctx.db.read(shard) as conn:
            top = conn.value("SELECT max(id) FROM notifications WHERE user_id = ? AND id < ?", (user_id, high))
            if top is None:
                break
            if newest is None:
                newest = top
            low = _first_id_of_day(_day(top) - WINDOW_DAYS + 1)
            rows = conn.all(_GROUPS_SQL, (user_id, low, high, SHOWN_ACTORS, before))
        for row in rows:
            groups.setdefault((row["kind"], row["post_key"], row["bucket"]), []).append(row)
        high = low
        if low == 0:
            break
    return list(groups.values())[:wanted], newest


def page(ctx: Context, viewer: User, before: int | None, limit: int) -> Page:
    """The viewer's notifications, grouped, newest first, `limit` groups older than the cursor `before`. Groups
    whose post the viewer can no longer see (deleted, private, a block) or whose actors are gone are left out."""
    from app.services.accounts import get_users
    from app.services.posts import get_posts

    found, newest = _group_rows(ctx, viewer.id, before, limit + 1)
    next_before = found[limit - 1][0]["newest"] if len(found) > limit else None
    found = found[:limit]
    actors = get_users(ctx, {row["actor_id"] for rows in found for row in rows})
    post_ids = [rows[0]["post_id"] for rows in found if rows[0]["post_id"]]
    posts = {p.id: p for p in get_posts(ctx, post_ids, viewer)} if post_ids else {}
    groups = []
    for rows in found:
        first = rows[0]
        named = [actors[r["actor_id"]] for r in rows if r["actor_id"] in actors]
        post = posts.get(first["post_id"]) if first["post_id"] else None
        if not named or (first["post_id"] and post is None):
            continue
        groups.append(
            Group(
                kind=first["kind"],
                actors=named,
                actor_count=max(first["actor_count"], len(named)),
                post=post,
                comment_id=first["comment_id"],
                newest_id=first["newest"],
                unread=first["newest"] > viewer.notifications_seen_id,
            )
        )
    return Page(groups=groups, next_before=next_before, newest_id=newest)


# --- Reading one by one (the client API) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    """One notification, ungrouped, as apps list them."""

    id: int
    kind: str
    actor: User
    post: Post | None
    comment_id: int | None

    @property
    def created_at(self) -> int:
        return ids.unix_ms_of(self.id)


def listing(
    ctx: Context, viewer: User, before: int | None, limit: int, kinds: list[str] | None = None
) -> tuple[list[Notification], int | None]:
    """The viewer's notifications one by one, newest first, ids below `before`, of `kinds` only (None: all), and the
    cursor of the next page (None at the end). Rows whose actor the viewer mutes or has a block with, or whose post
    the viewer can no longer see, are left out, as on the page."""
    wanted = [k for k in (kinds if kinds is not None else KINDS) if k in KINDS]
    if not wanted:
        return [], None
    marks = ", ".join("?" * len(wanted))
    with ctx.db.read(viewer.shard) as conn:
        rows = conn.all(
            f"SELECT n.* FROM notifications n WHERE n.user_id = ? AND n.id < ? AND n.kind IN ({marks}){_SHOWN_ACTOR}"
            " ORDER BY n.id DESC LIMIT ?",
            (viewer.id, before if before is not None else ids.MAX_ID, *wanted, limit),
        )
    return _notifications(ctx, viewer, rows), (rows[-1]["id"] if len(rows) == limit else None)


def get_notification(ctx: Context, viewer: User, notification_id: int) -> Notification:
    with ctx.db.read(viewer.shard) as conn:
        rows = conn.all(
            f"SELECT n.* FROM notifications n WHERE n.user_id = ? AND n.id = ?{_SHOWN_ACTOR}",
            (viewer.id, notification_id),
        )
    found = _notifications(ctx, viewer, rows)
    if not found:
        raise NotFound("There is no such notification.")
    return found[0]


def _notifications(ctx: Context, viewer: User, rows: list[dict]) -> list[Notification]:
    from app.services.accounts import get_users
    from app.services.posts import get_posts

    actors = get_users(ctx, {r["actor_id"] for r in rows})
    post_ids = [r["post_id"] for r in rows if r["post_id"]]
    posts = {p.id: p for p in get_posts(ctx, post_ids, viewer)} if post_ids else {}
    return [
        Notification(r["id"], r["kind"], actors[r["actor_id"]], posts.get(r["post_id"]), r["comment_id"])
        for r in rows
        if r["actor_id"] in actors and (not r["post_id"] or r["post_id"] in posts)
    ]


def dismiss(ctx: Context, viewer: User, notification_id: int) -> None:
    """Delete one of the viewer's notifications; NotFound when the viewer has no such notification."""
    with ctx.db.write(viewer.shard) as conn:
        removed = conn.run("DELETE FROM notifications WHERE user_id = ? AND id = ?", (viewer.id, notification_id))
    if not removed:
        raise NotFound("There is no such notification.")
    _announce(ctx, viewer.id)


def clear(ctx: Context, viewer: User) -> None:
    """Delete every notification of the viewer's."""
    with ctx.db.write(viewer.shard) as conn:
        removed = conn.run("DELETE FROM notifications WHERE user_id = ?", (viewer.id,))
    if removed:
        _announce(ctx, viewer.id)


def _announce(ctx: Context, user_id: int) -> None:
    """Tell the person's open pages the count changed, and let their next page show it (the badge is in the nav).
    Best effort: a page that misses the event catches up on load."""
    page_versions.touch(ctx, user_id)
    try:
        ctx.backends.events.publish(channel(user_id), {"type": "notifications", "unread": unread_count(ctx, user_id)})
    except Exception:
        log.warning("could not publish a notification event for user %s", user_id, exc_info=True)
