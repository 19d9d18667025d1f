"""Notifications one by one, as apps list them, over app/services/notifications.py: the same rows the page groups,
with the same people left out (muted, blocked) and the same posts (only those the user may still see)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.params import FromPath

from app.api import entities
from app.api.base import Caller, endpoint, path_id
from app.api.paging import paged
from app.context import Context
from app.services import interactions, notifications
from app.services.accounts import User
from app.web.deps import CtxDep

CallerDep = NamedDependency[Caller]
# Mastodon's types as Pinhole's kinds (a comment on your post reaches you as a mention, as a reply does).
KINDS_OF_TYPE = {
    "favourite": ["like"],
    "mention": ["comment", "mention"],
    "follow": ["follow"],
    "follow_request": ["follow_request"],
}


def _kinds(request: Request) -> list[str] | None:
    """The kinds `types[]` asks for, minus those of `exclude_types[]`; None: every kind."""
    query = request.query_params
    types = query.getall("types[]", []) + query.getall("types", [])
    excluded = query.getall("exclude_types[]", []) + query.getall("exclude_types", [])
    if not types and not excluded:
        return None
    kinds = [k for t in types for k in KINDS_OF_TYPE.get(t, [])] if types else list(notifications.KINDS)
    dropped = {k for t in excluded for k in KINDS_OF_TYPE.get(t, [])}
    return [k for k in dict.fromkeys(kinds) if k not in dropped]


def _render(ctx: Context, items: list[notifications.Notification], me: User) -> list[dict[str, Any]]:
    """Each with its status: the comment for a comment or a mention in one, else the post."""
    comments = interactions.get_comments(ctx, me, [n.comment_id for n in items if n.comment_id])
    posts = [n.post for n in items if n.post is not None and not (n.comment_id and n.comment_id in comments)]
    post_statuses = {s["id"]: s for s in entities.statuses(ctx, list({p.id: p for p in posts}.values()), me)}
    rendered = []
    for item in items:
        status = None
        if item.comment_id and item.comment_id in comments:
            comment, post = comments[item.comment_id]
            status = entities.comment_statuses(ctx, [comment], post, me)[0]
        elif item.post is not None:
            status = post_statuses[str(item.post.id)]
        rendered.append(entities.notification(ctx, item, status))
    return rendered


@endpoint("GET", "/api/v1/notifications", scope="read:notifications")
def listing(request: Request, ctx: CtxDep, caller: CallerDep) -> Response:
    me = caller.me
    kinds = _kinds(request)
    return paged(
        request,
        lambda before, n: notifications.listing(ctx, me, before, n, kinds),
        lambda page: _render(ctx, page, me),
        default=40,
        maximum=80,
    )


@endpoint("POST", "/api/v1/notifications/clear", scope="write:notifications")
def clear(ctx: CtxDep, caller: CallerDep) -> dict[str, Any]:
    notifications.clear(ctx, caller.me)
    return {}


@endpoint("GET", "/api/v1/notifications/{notification_id:str}", scope="read:notifications")
def get_notification(ctx: CtxDep, caller: CallerDep, notification_id: FromPath[str]) -> dict[str, Any]:
    me = caller.me
    return _render(ctx, [notifications.get_notification(ctx, me, path_id(notification_id))], me)[0]


@endpoint("POST", "/api/v1/notifications/{notification_id:str}/dismiss", scope="write:notifications")
def dismiss(ctx: CtxDep, caller: CallerDep, notification_id: FromPath[str]) -> dict[str, Any]:
    notifications.dismiss(ctx, caller.me, path_id(notification_id))
    return {}


ROUTES = [listing, clear, get_notification, dismiss]
