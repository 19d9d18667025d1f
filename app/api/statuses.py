"""Statuses: posting (from uploads), reading, editing, deleting, context, likes and bookmarks, over app/services
(attachments, posts, interactions, bookmarks), so the rules are the pages' rules.

A status is a post or, replying to one, a comment: `in_reply_to_id` comments on the post (or on the post of the
comment it names; Pinhole's comments are flat). A post needs 1 to 10 photos; a comment has none.
"""

from __future__ import annotations

import hashlib
from typing import Any

from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.params import FromPath

from app import ids
from app.api import entities
from app.api.base import FLAG, ID_LIST, OBJECT_LIST, TEXT, Caller, Fields, endpoint, path_id
from app.api.paging import paged
from app.context import Context
from app.errors import Conflict, NotFound, UserError
from app.services import attachments, bookmarks, interactions, posts
from app.services.accounts import User
from app.services.interactions import Comment
from app.web.deps import CtxDep

CallerDep = NamedDependency[Caller]
FieldsDep = NamedDependency[Fields]
IDEMPOTENCY_SECONDS = 3600  # as Mastodon: a retry within the hour gets the status the first request made
UNSUPPORTED = ("poll", "scheduled_at", "quoted_status_id")
MAX_CONTEXT = 500  # comments listed as a post's descendants
POST_FIELDS = {
    "status": TEXT,
    "media_ids": ID_LIST,
    "in_reply_to_id": TEXT,
    "sensitive": FLAG,
    "spoiler_text": TEXT,
    "visibility": TEXT,
    "language": TEXT,
}


def _find(ctx: Context, viewer: User | None, status_id: str) -> posts.Post | tuple[Comment, posts.Post]:
    """The post with this id, or the comment (with its post); NotFound for anything the viewer may not see."""
    wanted = path_id(status_id)
    try:
        return posts.get_post(ctx, wanted, viewer)
    except NotFound:
        found = interactions.get_comments(ctx, viewer, [wanted]).get(wanted)
        if found is None:
            raise
        return found


def _render(ctx: Context, found, viewer: User | None) -> dict[str, Any]:
    if isinstance(found, tuple):
        comment, post = found
        return entities.comment_statuses(ctx, [comment], post, viewer)[0]
    return entities.status(ctx, found, viewer)


def _post_of(ctx: Context, viewer: User, status_id: str) -> posts.Post:
    """The post a like or bookmark names (a comment takes neither)."""
    found = _find(ctx, viewer, status_id)
    if isinstance(found, tuple):
        raise UserError("Comments can't be liked or bookmarked in Pinhole; the post they reply to can.", field="id")
    return found


# --- Posting -------------------------------------------------------------------------------------------------------


def _idempotency_key(ctx: Context, request: Request, me: User) -> str | None:
    key = request.headers.get("idempotency-key")
    if not key:
        return None
    return f"api:idempotency:{me.id}:{hashlib.sha256(key.encode('utf-8', 'replace')).hexdigest()}"


def _checked_visibility(me: User, visibility: str | None) -> None:
    """Pinhole's posts are as visible as their account; a post never goes out more widely than asked."""
    if visibility in (None, ""):
        return
    if visibility not in ("public", "unlisted", "private", "direct"):
        raise UserError("visibility must be public, unlisted, private or direct.", field="visibility")
    if visibility == "direct":
        raise UserError(
            "Pinhole has no direct messages: a post goes to your followers or to everyone.", field="visibility"
        )
    if not me.is_private and visibility != "public":
        raise UserError(
            "Your account is public, so your posts are seen by everyone; make it private (locked) to post to your"
            " followers only.",
            field="visibility",
        )


@endpoint("POST", "/api/v1/statuses", scope="write:statuses", body=POST_FIELDS)
def create_status(request: Request, ctx: CtxDep, caller: CallerDep, fields: FieldsDep) -> dict[str, Any]:
    """Post the caller's uploads (`media_ids`, 1 to 10) with a caption (`status`), or comment on a post
    (`in_reply_to_id`). An `Idempotency-Key` header makes a retry within the hour answer with the first status."""
    me = caller.me
    key = _idempotency_key(ctx, request, me)
    if key and (earlier := ctx.backends.kv.get(key)):
        return _render(ctx, _find(ctx, me, str(earlier["id"])), me)
    for name, values in fields.values.items():
        unsupported = name.split("[", 1)[0]
        if unsupported in UNSUPPORTED and any(v not in (None, "", {}, []) for v in values):
            raise UserError(f"Pinhole doesn't support {unsupported}.", field=unsupported)
    _checked_visibility(me, fields.text("visibility", 20))
    text = fields.text("status", 20_000) or ""
    media_ids = fields.list("media_ids")
    reply_to = fields.text("in_reply_to_id", 40)
    if reply_to:
        if media_ids:
            raise UserError("A comment can't have photos.", field="media_ids")
        found = _find(ctx, me, reply_to)
        post = found[1] if isinstance(found, tuple) else found
        comment = interactions.add_comment(ctx, me, post.id, text)
        made: Any = (comment, post)
        made_id = comment.id
    else:
        spoiler = (fields.text("spoiler_text", 1000) or "").strip()
        made = attachments.publish(
            ctx, me, media_ids, caption=text, sensitive=bool(fields.bool("sensitive") or spoiler)
        )
        made_id = made.id
    if key:
        ctx.backends.kv.set(key, {"id": made_id}, IDEMPOTENCY_SECONDS)
    return _render(ctx, made, me)


# --- Reading, editing, deleting ------------------------------------------------------------------------------------


@endpoint("GET", "/api/v1/statuses/{status_id:str}", scope="read:statuses", auth="optional")
def get_status(ctx: CtxDep, caller: CallerDep, status_id: FromPath[str]) -> dict[str, Any]:
    return _render(ctx, _find(ctx, caller.user, status_id), caller.user)


@endpoint(
    "PUT",
    "/api/v1/statuses/{status_id:str}",
    scope="write:statuses",
    body={**POST_FIELDS, "media_attributes": OBJECT_LIST},
)
def edit_status(ctx: CtxDep, caller: CallerDep, status_id: FromPath[str], fields: FieldsDep) -> dict[str, Any]:
    """The author changes the caption (`status`), the photos' descriptions (`media_attributes[]` with `id` and
    `description`) and the content warning; the photos themselves stay as posted."""
    me = caller.me
    found = _find(ctx, me, status_id)
    if isinstance(found, tuple):
        raise UserError("Comments can't be edited; delete it and comment again.", field="status")
    post = found
    if fields.has("media_ids") and {str(m) for m in fields.list("media_ids")} != {str(m.id) for m in post.media}:
        raise UserError("A post's photos can't be changed after posting; delete it and post again.", field="media_ids")
    alt_texts: dict[int, str] = {}
    for item in fields.list("media_attributes"):
        if not isinstance(item, dict) or ids.parse(str(item.get("id", ""))) is None:
            raise UserError("media_attributes must be objects with an id.", field="media_attributes")
        if "description" in item:
            alt_texts[ids.parse(str(item["id"]))] = str(item["description"] or "")  # type: ignore[index]
    caption = fields.text("status", 20_000)
    spoiler = (fields.text("spoiler_text", 1000) or "").strip()
    sensitive = fields.bool("sensitive")
    edited = interactions.edit_post(
        ctx,
        me,
        post.id,
        post.caption if caption is None else caption,
        alt_texts,
        post.place,
        sensitive=None if sensitive is None and not spoiler else bool(sensitive or spoiler),
    )
    return entities.status(ctx, edited, me)


@endpoint("DELETE", "/api/v1/statuses/{status_id:str}", scope="write:statuses")
def delete_status(ctx: CtxDep, caller: CallerDep, status_id: FromPath[str]) -> dict[str, Any]:
    """Delete the caller's post (or a comment of theirs, or one on their post); answers with what was deleted,
    its text included, for "delete and redraft"."""
    me = caller.me
    found = _find(ctx, me, status_id)
    entity = _render(ctx, found, me)
    if isinstance(found, tuple):
        comment, post = found
        interactions.delete_comment(ctx, me, comment.id, post.id)
        entity["text"] = comment.body
    else:
        posts.delete_post(ctx, me, found.id)
        entity["text"] = found.caption
    return entity


@endpoint("GET", "/api/v1/statuses/{status_id:str}/context", scope="read:statuses", auth="optional")
def context(ctx: CtxDep, caller: CallerDep, status_id: FromPath[str]) -> dict[str, Any]:
    """A post's comments as its descendants; a comment's post as its ancestor."""
    found = _find(ctx, caller.user, status_id)
    if isinstance(found, tuple):
        return {"ancestors": [entities.status(ctx, found[1], caller.user)], "descendants": []}
    if found.status != "ready":
        return {"ancestors": [], "descendants": []}
    comments, _more = interactions.list_comments(ctx, caller.user, found.id, None, MAX_CONTEXT)
    return {"ancestors": [], "descendants": entities.comment_statuses(ctx, comments, found, caller.user)}


# --- Likes and bookmarks -------------------------------------------------------------------------------------------


@endpoint("POST", "/api/v1/statuses/{status_id:str}/favourite", scope="write:favourites")
def favourite(ctx: CtxDep, caller: CallerDep, status_id: FromPath[str]) -> dict[str, Any]:
    """Like the post; liking it again changes nothing."""
    post = _post_of(ctx, caller.me, status_id)
    try:
        post = interactions.like(ctx, caller.me, post.id)
    except Conflict:
        pass
    return entities.status(ctx, post, caller.me)


@endpoint("POST", "/api/v1/statuses/{status_id:str}/unfavourite", scope="write:favourites")
def unfavourite(ctx: CtxDep, caller: CallerDep, status_id: FromPath[str]) -> dict[str, Any]:
    post = interactions.unlike(ctx, caller.me, _post_of(ctx, caller.me, status_id).id)
    return entities.status(ctx, post, caller.me)


@endpoint("GET", "/api/v1/statuses/{status_id:str}/favourited_by", scope="read:accounts", auth="optional")
def favourited_by(request: Request, ctx: CtxDep, caller: CallerDep, status_id: FromPath[str]) -> Response:
    post = _post_of(ctx, caller.user, status_id)

    def fetch(before: int | None, n: int):
        found = interactions.likers(ctx, caller.user, post.id, before, n)
        return found, (found[-1].id if len(found) == n else None)

    return paged(request, fetch, lambda page: [entities.account(ctx, u) for u in page], default=40, maximum=80)


@endpoint("POST", "/api/v1/statuses/{status_id:str}/bookmark", scope="write:bookmarks")
def bookmark(ctx: CtxDep, caller: CallerDep, status_id: FromPath[str]) -> dict[str, Any]:
    post = bookmarks.bookmark(ctx, caller.me, _post_of(ctx, caller.me, status_id).id)
    return entities.status(ctx, post, caller.me)


@endpoint("POST", "/api/v1/statuses/{status_id:str}/unbookmark", scope="write:bookmarks")
def unbookmark(ctx: CtxDep, caller: CallerDep, status_id: FromPath[str]) -> dict[str, Any]:
    post = bookmarks.unbookmark(ctx, caller.me, _post_of(ctx, caller.me, status_id).id)
    return entities.status(ctx, post, caller.me)


@endpoint("GET", "/api/v1/bookmarks", scope="read:bookmarks")
def bookmarked(request: Request, ctx: CtxDep, caller: CallerDep) -> Response:
    """The caller's bookmarks, newest bookmark first (paged by bookmark, as the Link header says)."""
    me = caller.me
    return paged(
        request,
        lambda before, n: bookmarks.list_bookmarks(ctx, me, before, n),
        lambda page: entities.statuses(ctx, [post for _mark, post in page], me),
        key=lambda item: item[0],
    )


@endpoint("GET", "/api/v1/favourites", scope="read:favourites")
def favourites(request: Request, ctx: CtxDep, caller: CallerDep) -> Response:
    """The posts the caller likes, newest post first."""
    me = caller.me
    return paged(
        request,
        lambda before, n: interactions.liked_posts(ctx, me, before, n),
        lambda page: entities.statuses(ctx, page, me),
    )


ROUTES = [
    create_status,
    get_status,
    edit_status,
    delete_status,
    context,
    favourite,
    unfavourite,
    favourited_by,
    bookmark,
    unbookmark,
    bookmarked,
    favourites,
]
