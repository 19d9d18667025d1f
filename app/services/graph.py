"""The follow graph: follow, unfollow, follow requests, blocks and mutes. One function per mutation, used by the
pages, the API and tasks alike.

Where rows live (migration 0004): each edge on both people's shards (`following` on the follower's, `followers` on
the followed account's; `blocks` on the blocker's, `blocked_by` on the blocked one's), and the counters on each
user row, changed in the same transaction as that side's edge. A write touches one shard at a time: the followed
account's side first, so a crash in between leaves at worst a request or follower the follower's side lacks, which
following again (idempotent) repairs.

Duplicates that ask for something already so (following twice) raise Conflict; removing what is absent (unfollow
when not following) changes nothing and succeeds, since deletes are idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app import ids
from app.clock import now_ms
from app.context import Context
from app.errors import Conflict, NotFound, UserError
from app.services import feed, notifications, page_versions, ratelimit
from app.services.accounts import User, get_user, get_users

NO_ACCOUNT = "There is no account with that name."


@dataclass(frozen=True)
class Relation:
    """How the viewer stands with one other account (what the viewer's own shard knows)."""

    following: str | None = None  # "active" | "pending" | None
    followed_by: str | None = None  # whether they follow the viewer, same values
    blocking: bool = False  # the viewer blocks them
    blocked_by: bool = False  # they block the viewer
    muting: bool = False

    @property
    def blocked(self) -> bool:
        """A block either way: neither sees the other."""
        return self.blocking or self.blocked_by


def relations(ctx: Context, viewer: User, other_ids: Iterable[int]) -> dict[int, Relation]:
    """The viewer's relation to each account: five indexed queries on the viewer's shard, however many accounts."""
    others = sorted({i for i in other_ids if i != viewer.id})
    if not others:
        return {}
    marks = ", ".join("?" * len(others))
    with ctx.db.read(viewer.shard) as conn:
        following = conn.all(
            f"SELECT target_id AS id, state FROM following WHERE user_id = ? AND target_id IN ({marks})",
            [viewer.id, *others],
        )
        followed_by = conn.all(
            f"SELECT follower_id AS id, state FROM followers WHERE user_id = ? AND follower_id IN ({marks})",
            [viewer.id, *others],
        )
        blocking = conn.all(
            f"SELECT target_id AS id FROM blocks WHERE user_id = ? AND target_id IN ({marks})", [viewer.id, *others]
        )
        blocked_by = conn.all(
            f"SELECT blocker_id AS id FROM blocked_by WHERE user_id = ? AND blocker_id IN ({marks})",
            [viewer.id, *others],
        )
        muting = conn.all(
            f"SELECT target_id AS id FROM mutes WHERE user_id = ? AND target_id IN ({marks})", [viewer.id, *others]
        )
    fields: dict[int, dict] = {i: {} for i in others}
    for row in following:
        fields[row["id"]]["following"] = row["state"]
    for row in followed_by:
        fields[row["id"]]["followed_by"] = row["state"]
    for rows, name in ((blocking, "blocking"), (blocked_by, "blocked_by"), (muting, "muting")):
        for row in rows:
            fields[row["id"]][name] = True
    return {i: Relation(**f) for i, f in fields.items()}


def relation(ctx: Context, viewer: User | None, other_id: int) -> Relation:
    if viewer is None or viewer.id == other_id:
        return Relation()
    return relations(ctx, viewer, [other_id])[other_id]


# --- Following -----------------------------------------------------------------------------------------------------


def follow(ctx: Context, viewer: User, target: User) -> str:
    """Follow `target`: "active" at once for a public account, "pending" (a request) for a private one."""
    if viewer.id == target.id:
        raise UserError("You can't follow yourself.")
    ratelimit.limit(
        ctx, "follow", str(viewer.id), ctx.config.limits.follows_per_account, "You've followed many accounts just now."
    )
    rel = relation(ctx, viewer, target.id)
    if rel.blocked_by:
        raise NotFound(NO_ACCOUNT)  # the blocked see nothing of the blocker, not even that a block exists
    if rel.blocking:
        raise UserError(f"You block @{target.username}. Unblock them first to follow them.")
    if rel.following == "active":
        raise Conflict(f"You already follow @{target.username}.")
    if rel.following == "pending":
        raise Conflict(f"You already asked to follow @{target.username}; they haven't answered yet.")
    state = "pending" if target.is_private else "active"
    now = now_ms()
    with ctx.db.write(target.shard) as conn:
        added = conn.run(
            "INSERT INTO followers (user_id, follower_id, state, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (target.id, viewer.id, state, now),
        )
        if added and state == "active":
            conn.run("UPDATE users SET follower_count = follower_count + 1 WHERE id = ?", (target.id,))
        # A row already there (a crash after this side, before the other) keeps its state: it is the truth.
        state = conn.value("SELECT state FROM followers WHERE user_id = ? AND follower_id = ?", (target.id, viewer.id))
        follower_count = conn.value("SELECT follower_count FROM users WHERE id = ?", (target.id,))
    _write_following(ctx, viewer.id, target.id, state, now)
    feed.note_follower_count(ctx, target.id, follower_count)
    if state == "active":
        feed.backfill(ctx, viewer.id, target)
    page_versions.touch(ctx, viewer.id)
    notifications.notify(ctx, target.id, "follow" if state == "active" else "follow_request", viewer.id)
    return state


def _write_following(ctx: Context, user_id: int, target_id: int, state: str, now: int) -> None:
    """The follower's side of an edge, made to say `state` (insert, or upgrade pending to active)."""
    with ctx.db.write(ids.shard_of(user_id)) as conn:
        old = conn.value("SELECT state FROM following WHERE user_id = ? AND target_id = ?", (user_id, target_id))
        if old is None:
            conn.run(
                "INSERT INTO following (user_id, target_id, state, created_at) VALUES (?, ?, ?, ?)",
                (user_id, target_id, state, now),
            )
        elif old != state:
            conn.run("UPDATE following SET state = ? WHERE user_id = ? AND target_id = ?", (state, user_id, target_id))
        if state == "active" and old != "active":
            conn.run("UPDATE users SET following_count = following_count + 1 WHERE id = ?", (user_id,))


def unfollow(ctx: Context, viewer: User, target: User) -> None:
    """Stop following `target`, or withdraw a request; their posts leave the viewer's feed."""
    _remove_edge(ctx, viewer.id, target.id)


def _remove_edge(ctx: Context, follower_id: int, target_id: int) -> None:
    """Delete "follower follows target" on both sides (either state) and undo what it brought. Idempotent."""
    with ctx.db.write(ids.shard_of(target_id)) as conn:
        state = conn.value(
            "SELECT state FROM followers WHERE user_id = ? AND follower_id = ?", (target_id, follower_id)
        )
        conn.run("DELETE FROM followers WHERE user_id = ? AND follower_id = ?", (target_id, follower_id))
        if state == "active":
            conn.run("UPDATE users SET follower_count = follower_count - 1 WHERE id = ?", (target_id,))
        follower_count = conn.value("SELECT follower_count FROM users WHERE id = ?", (target_id,))
    with ctx.db.write(ids.shard_of(follower_id)) as conn:
        mine = conn.value("SELECT state FROM following WHERE user_id = ? AND target_id = ?", (follower_id, target_id))
        conn.run("DELETE FROM following WHERE user_id = ? AND target_id = ?", (follower_id, target_id))
        if mine == "active":
            conn.run("UPDATE users SET following_count = following_count - 1 WHERE id = ?", (follower_id,))
    if follower_count is not None:
        feed.note_follower_count(ctx, target_id, follower_count)
    feed.remove_author(ctx, follower_id, target_id)
    page_versions.touch(ctx, follower_id)
    notifications.withdraw(ctx, target_id, "follow", follower_id)
    notifications.withdraw(ctx, target_id, "follow_request", follower_id)


def approve_request(ctx: Context, owner: User, follower_id: int) -> None:
    """The owner of a private account lets `follower_id` follow them."""
    now = now_ms()
    with ctx.db.write(owner.shard) as conn:
        approved = conn.run(
            "UPDATE followers SET state = 'active', created_at = ? WHERE user_id = ? AND follower_id = ?"
            " AND state = 'pending'",
            (now, owner.id, follower_id),
        )
        if approved:
            conn.run("UPDATE users SET follower_count = follower_count + 1 WHERE id = ?", (owner.id,))
        follower_count = conn.value("SELECT follower_count FROM users WHERE id = ?", (owner.id,))
    if not approved:
        raise NotFound("There is no follow request from that account.")
    _write_following(ctx, follower_id, owner.id, "active", now)
    feed.note_follower_count(ctx, owner.id, follower_count)
    feed.backfill(ctx, follower_id, owner)
    page_versions.touch(ctx, follower_id)
    notifications.withdraw(ctx, owner.id, "follow_request", follower_id)
    notifications.notify(ctx, owner.id, "follow", follower_id)


def deny_request(ctx: Context, owner: User, follower_id: int) -> None:
    with ctx.db.read(owner.shard) as conn:
        pending = conn.value(
            "SELECT 1 FROM followers WHERE user_id = ? AND follower_id = ? AND state = 'pending'",
            (owner.id, follower_id),
        )
    if not pending:
        raise NotFound("There is no follow request from that account.")
    _remove_edge(ctx, follower_id, owner.id)


def approve_all_requests(ctx: Context, owner: User) -> int:
    """When a private account goes public, everyone waiting becomes a follower."""
    approved = 0
    while batch := [r.id for r in follow_requests(ctx, owner, None, 500)]:
        for follower_id in batch:
            try:
                approve_request(ctx, owner, follower_id)
                approved += 1
            except NotFound:
                pass  # withdrawn meanwhile
    return approved


def remove_follower(ctx: Context, owner: User, follower_id: int) -> None:
    """The owner removes someone from their followers (they may ask again)."""
    _remove_edge(ctx, follower_id, owner.id)


# --- Lists ---------------------------------------------------------------------------------------------------------


def follower_ids(ctx: Context, user_id: int, after: int, limit: int) -> list[int]:
    """Active followers with ids above `after`, ascending: how fan-out walks an account's followers in chunks."""
    with ctx.db.read(ids.shard_of(user_id)) as conn:
        rows = conn.all(
            "SELECT follower_id FROM followers WHERE user_id = ? AND state = 'active' AND follower_id > ?"
            " ORDER BY follower_id LIMIT ?",
            (user_id, after, limit),
        )
    return [r["follower_id"] for r in rows]


def following_ids(ctx: Context, user_id: int) -> list[int]:
    """Everyone `user_id` actively follows (one query on their shard)."""
    with ctx.db.read(ids.shard_of(user_id)) as conn:
        rows = conn.all("SELECT target_id FROM following WHERE user_id = ? AND state = 'active'", (user_id,))
    return [r["target_id"] for r in rows]


def _page_of_users(ctx: Context, sql: str, params: tuple, shard: int) -> list[User]:
    with ctx.db.read(shard) as conn:
        page_ids = [r["id"] for r in conn.all(sql, params)]
    users = get_users(ctx, page_ids)
    return [users[i] for i in page_ids if i in users]


def followers(ctx: Context, user: User, before: int | None, limit: int) -> list[User]:
    """Active followers, newest account first, paged by `before` (an account id)."""
    return _page_of_users(
        ctx,
        "SELECT follower_id AS id FROM followers WHERE user_id = ? AND state = 'active' AND follower_id < ?"
        " ORDER BY follower_id DESC LIMIT ?",
        (user.id, before if before is not None else ids.MAX_ID, limit),
        user.shard,
    )


def following(ctx: Context, user: User, before: int | None, limit: int) -> list[User]:
    return _page_of_users(
        ctx,
        "SELECT target_id AS id FROM following WHERE user_id = ? AND state = 'active' AND target_id < ?"
        " ORDER BY target_id DESC LIMIT ?",
        (user.id, before if before is not None else ids.MAX_ID, limit),
        user.shard,
    )


def follow_requests(ctx: Context, owner: User, before: int | None, limit: int) -> list[User]:
    """Accounts waiting for the owner's answer, newest account first."""
    return _page_of_users(
        ctx,
        "SELECT follower_id AS id FROM followers WHERE user_id = ? AND state = 'pending' AND follower_id < ?"
        " ORDER BY follower_id DESC LIMIT ?",
        (owner.id, before if before is not None else ids.MAX_ID, limit),
        owner.shard,
    )


def blocked_accounts(ctx: Context, user: User, before: int | None, limit: int) -> list[User]:
    """The accounts `user` blocks (their own list, to unblock from), newest account first."""
    return _page_of_users(
        ctx,
        "SELECT target_id AS id FROM blocks WHERE user_id = ? AND target_id < ? ORDER BY target_id DESC LIMIT ?",
        (user.id, before if before is not None else ids.MAX_ID, limit),
        user.shard,
    )


def muted_accounts(ctx: Context, user: User, before: int | None, limit: int) -> list[User]:
    return _page_of_users(
        ctx,
        "SELECT target_id AS id FROM mutes WHERE user_id = ? AND target_id < ? ORDER BY target_id DESC LIMIT ?",
        (user.id, before if before is not None else ids.MAX_ID, limit),
        user.shard,
    )


def muted_ids(ctx: Context, user_id: int) -> set[int]:
    with ctx.db.read(ids.shard_of(user_id)) as conn:
        return {r["target_id"] for r in conn.all("SELECT target_id FROM mutes WHERE user_id = ?", (user_id,))}


def blocked_ids(ctx: Context, user_id: int) -> set[int]:
    """Accounts with a block either way with `user_id` (one shard: both directions are stored there)."""
    with ctx.db.read(ids.shard_of(user_id)) as conn:
        rows = conn.all(
            "SELECT target_id AS id FROM blocks WHERE user_id = ?"
            " UNION SELECT blocker_id AS id FROM blocked_by WHERE user_id = ?",
            (user_id, user_id),
        )
    return {r["id"] for r in rows}


# --- Blocks and mutes ----------------------------------------------------------------------------------------------


def block(ctx: Context, viewer: User, target: User) -> None:
    """Block `target`: follows both ways end, each one's posts leave the other's feed, and neither sees the other."""
    if viewer.id == target.id:
        raise UserError("You can't block yourself.")
    now = now_ms()
    with ctx.db.write(viewer.shard) as conn:
        added = conn.run(
            "INSERT INTO blocks (user_id, target_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (viewer.id, target.id, now),
        )
    with ctx.db.write(target.shard) as conn:
        conn.run(
            "INSERT INTO blocked_by (user_id, blocker_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (target.id, viewer.id, now),
        )
    _remove_edge(ctx, viewer.id, target.id)
    _remove_edge(ctx, target.id, viewer.id)
    if not added:
        raise Conflict(f"You already block @{target.username}.")


def unblock(ctx: Context, viewer: User, target_id: int) -> None:
    with ctx.db.write(viewer.shard) as conn:
        conn.run("DELETE FROM blocks WHERE user_id = ? AND target_id = ?", (viewer.id, target_id))
    with ctx.db.write(ids.shard_of(target_id)) as conn:
        conn.run("DELETE FROM blocked_by WHERE user_id = ? AND blocker_id = ?", (target_id, viewer.id))


def mute(ctx: Context, viewer: User, target: User) -> None:
    """Hide `target` from the viewer's feed and notifications; they are not told and still follow."""
    if viewer.id == target.id:
        raise UserError("You can't mute yourself.")
    with ctx.db.write(viewer.shard) as conn:
        added = conn.run(
            "INSERT INTO mutes (user_id, target_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (viewer.id, target.id, now_ms()),
        )
    page_versions.touch(ctx, viewer.id)
    if not added:
        raise Conflict(f"You already mute @{target.username}.")


def unmute(ctx: Context, viewer: User, target_id: int) -> None:
    with ctx.db.write(viewer.shard) as conn:
        conn.run("DELETE FROM mutes WHERE user_id = ? AND target_id = ?", (viewer.id, target_id))
    page_versions.touch(ctx, viewer.id)


def target_user(ctx: Context, viewer: User | None, user_id: int) -> User:
    """The account an action names, or NotFound (missing, or it blocks the viewer)."""
    user = get_user(ctx, user_id) if ids.parse(user_id) is not None else None
    if user is None or (viewer is not None and relation(ctx, viewer, user.id).blocked_by):
        raise NotFound(NO_ACCOUNT)
    return user
