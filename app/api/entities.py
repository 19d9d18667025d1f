"""Mastodon's entities (https://docs.joinmastodon.org/entities/) made from Pinhole's read models: small functions
that return plain dicts. IDs are strings, times ISO 8601 in UTC, URLs absolute (apps open them as they are).

Pinhole's own words map onto Mastodon's: a post is a Status with photos, a comment is a Status replying to its
post, a like is a favourite, a private account is `locked` and its posts have `private` visibility.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from app.context import Context
from app.services import bookmarks, interactions, notifications, tags
from app.services.accounts import User
from app.services.graph import Relation
from app.services.interactions import Comment
from app.services.posts import Post
from app.web.routes.media import signed_path

# Pinhole's notification kinds as Mastodon's types (a comment reaches its post's author as a mention).
NOTIFICATION_TYPES = {
    "like": "favourite",
    "comment": "mention",
    "mention": "mention",
    "follow": "follow",
    "follow_request": "follow_request",
}


def iso(unix_ms: int) -> str:
    """2025-06-01T12:34:56.789Z"""
    return datetime.fromtimestamp(unix_ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def html(ctx: Context, text: str) -> str:
    """Plain text (a caption, comment or bio) as Mastodon's HTML: paragraphs, line breaks, #tags and @mentions
    linked with absolute URLs, everything else escaped."""
    rendered = str(tags.render_caption(text)).replace('href="/', f'href="{ctx.config.public_url}/')
    paragraphs = [p.strip("\n").replace("\n", "<br>") for p in re.split(r"\n{2,}", rendered.strip())]
    return "".join(f"<p>{p}</p>" for p in paragraphs if p)


def absolute(ctx: Context, path: str) -> str:
    return ctx.config.public_url + path


def avatar_url(ctx: Context, user: User) -> str:
    from app.web.app import static_url  # the web app imports the API; the cache-busting URL lives there

    return absolute(ctx, f"/media/{user.avatar_key}" if user.avatar_key else static_url("avatar.png"))


# --- Accounts ------------------------------------------------------------------------------------------------------


def account(ctx: Context, user: User) -> dict[str, Any]:
    avatar = avatar_url(ctx, user)
    header = absolute(ctx, "/static/header.png")
    url = absolute(ctx, f"/@{user.username}")
    return {
        "id": str(user.id),
        "username": user.username,
        "acct": user.username,
        "display_name": user.display_name,
        "locked": user.is_private,
        "bot": False,
        "discoverable": not user.is_private,
        "indexable": False,
        "group": False,
        "created_at": iso(user.created_at),
        "note": html(ctx, user.bio),
        "url": url,
        "uri": url,
        "avatar": avatar,
        "avatar_static": avatar,
        "header": header,
        "header_static": header,
        "followers_count": user.follower_count,
        "following_count": user.following_count,
        "statuses_count": user.post_count,
        "last_status_at": None,
        "hide_collections": user.is_private,
        "noindex": True,
        "emojis": [],
        "roles": [],
        "fields": [],
    }


def credential_account(ctx: Context, user: User, follow_requests: int) -> dict[str, Any]:
    """The signed-in user's own Account, with `source` (what the profile form edits) and `role`."""
    entity = account(ctx, user)
    entity["source"] = {
        "privacy": "private" if user.is_private else "public",
        "sensitive": False,
        "language": None,
        "note": user.bio,
        "fields": [],
        "follow_requests_count": follow_requests,
    }
    entity["role"] = {
        "id": "1" if user.is_admin else "0",
        "name": "Admin" if user.is_admin else "",
        "color": "",
        "permissions": "1" if user.is_admin else "0",
        "highlighted": user.is_admin,
    }
    return entity


def relationship(user_id: int, rel: Relation) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "following": rel.following == "active",
        "showing_reblogs": rel.following == "active",
        "notifying": False,
        "languages": None,
        "followed_by": rel.followed_by == "active",
        "blocking": rel.blocking,
        "blocked_by": rel.blocked_by,
        "muting": rel.muting,
        "muting_notifications": rel.muting,
        "requested": rel.following == "pending",
        "requested_by": rel.followed_by == "pending",
        "domain_blocking": False,
        "endorsed": False,
        "note": "",
    }


# --- Media ---------------------------------------------------------------------------------------------------------


def _size(width: int, height: int) -> dict[str, Any]:
    return {"width": width, "height": height, "size": f"{width}x{height}", "aspect": round(width / height, 4)}


def _shrunk(width: int, height: int, edge: int) -> tuple[int, int]:
    """The size of a rendition shrunk to `edge` on its long side (never enlarged), as the pipeline makes them."""
    scale = min(1.0, edge / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def media_attachment(ctx: Context, media, signed: bool) -> dict[str, Any]:
    """A MediaAttachment from a post's photo or an upload not yet posted (both carry id, alt_text, width, height,
    blurhash, urls and focus). While processing, `url` and `preview_url` are null and there is no `meta` size.
    `signed`: the caller may see a photo others may not (a private account's, an upload), so its links are signed
    for them (apps load images without cookies or tokens)."""
    ready = bool(media.urls)

    def link(path: str) -> str:
        return absolute(ctx, signed_path(ctx, path) if signed else path)

    meta: dict[str, Any] = {}
    if ready and media.width and media.height:
        meta["original"] = _size(media.width, media.height)
        meta["small"] = _size(*_shrunk(media.width, media.height, 320))
    if media.focus is not None:
        meta["focus"] = {"x": media.focus[0], "y": media.focus[1]}
    return {
        "id": str(media.id),
        "type": "image",
        "url": link(media.urls["1080"]["jpeg"]) if ready else None,
        "preview_url": link(media.urls["320"]["jpeg"]) if ready else None,
        "remote_url": None,
        "preview_remote_url": None,
        "text_url": None,
        "meta": meta,
        "description": media.alt_text or None,
        "blurhash": media.blurhash,
    }


# --- Statuses ------------------------------------------------------------------------------------------------------


def _status_base(ctx: Context, author: dict[str, Any], id_: int, created_at: int, text: str, url: str) -> dict:
    return {
        "id": str(id_),
        "uri": url,
        "url": url,
        "created_at": iso(created_at),
        "account": author,
        "content": html(ctx, text),
        "visibility": "private" if author["locked"] else "public",
        "sensitive": False,
        "spoiler_text": "",
        "media_attachments": [],
        "application": None,
        "mentions": [],
        "tags": [],
        "emojis": [],
        "reblogs_count": 0,
        "favourites_count": 0,
        "replies_count": 0,
        "in_reply_to_id": None,
        "in_reply_to_account_id": None,
        "reblog": None,
        "poll": None,
        "card": None,
        "language": None,
        "edited_at": None,
    }


def statuses(ctx: Context, posts: list[Post], viewer: User | None) -> list[dict[str, Any]]:
    """Statuses for a page of posts: the viewer's likes and bookmarks and everyone mentioned in one batch each."""
    post_ids = [p.id for p in posts]
    liked = interactions.liked_post_ids(ctx, viewer, post_ids)
    marked = bookmarks.bookmarked_ids(ctx, viewer, post_ids)
    mentioned = tags.users_named(ctx, {name for p in posts for name in tags.extract_mentions(p.caption)})
    authors: dict[int, dict[str, Any]] = {}
    found = []
    for post in posts:
        author = authors.get(post.author.id) or authors.setdefault(post.author.id, account(ctx, post.author))
        entity = _status_base(ctx, author, post.id, post.created_at, post.caption, absolute(ctx, f"/p/{post.id}"))
        entity.update(
            sensitive=post.sensitive,
            media_attachments=[media_attachment(ctx, m, post.author.is_private) for m in post.media],
            mentions=_mentions(ctx, post.caption, mentioned),
            tags=[{"name": t, "url": absolute(ctx, tags.tag_url(t))} for t in tags.extract_tags(post.caption)],
            favourites_count=post.like_count,
            replies_count=post.comment_count,
        )
        if viewer is not None:
            entity.update(
                favourited=post.id in liked,
                reblogged=False,
                muted=False,
                bookmarked=post.id in marked,
                pinned=False,
            )
        found.append(entity)
    return found


def status(ctx: Context, post: Post, viewer: User | None) -> dict[str, Any]:
    return statuses(ctx, [post], viewer)[0]


def _mentions(ctx: Context, text: str, users: dict[str, User]) -> list[dict[str, Any]]:
    return [
        {"id": str(u.id), "username": u.username, "acct": u.username, "url": absolute(ctx, f"/@{u.username}")}
        for name in tags.extract_mentions(text)
        if (u := users.get(name))
    ]


def comment_statuses(ctx: Context, comments: list[Comment], post: Post, viewer: User | None) -> list[dict[str, Any]]:
    """Comments as Statuses replying to their post (Pinhole's comments are flat: every one replies to the post)."""
    mentioned = tags.users_named(ctx, {name for c in comments for name in tags.extract_mentions(c.body)})
    found = []
    for comment in comments:
        entity = _status_base(
            ctx,
            account(ctx, comment.author),
            comment.id,
            comment.created_at,
            comment.body,
            absolute(ctx, f"/p/{post.id}#comment-{comment.id}"),
        )
        entity.update(
            visibility="private" if post.author.is_private else "public",
            in_reply_to_id=str(post.id),
            in_reply_to_account_id=str(post.author.id),
            mentions=_mentions(ctx, comment.body, mentioned),
        )
        if viewer is not None:
            entity.update(favourited=False, reblogged=False, muted=False, bookmarked=False, pinned=False)
        found.append(entity)
    return found


# --- Notifications and tags ----------------------------------------------------------------------------------------


def notification(ctx: Context, item: notifications.Notification, status: dict[str, Any] | None) -> dict[str, Any]:
    entity = {
        "id": str(item.id),
        "type": NOTIFICATION_TYPES[item.kind],
        "created_at": iso(item.created_at),
        "account": account(ctx, item.actor),
    }
    if status is not None:
        entity["status"] = status
    return entity


def tag(ctx: Context, name: str) -> dict[str, Any]:
    """A Tag. Pinhole keeps no per-day counts, so `history` is empty."""
    return {"name": name, "url": absolute(ctx, tags.tag_url(name)), "history": [], "following": False}
