"""The follow graph's pages and buttons. Thin: app.services.graph does the work.

POST /@{username}/follow | /unfollow          follow (or ask to), unfollow (or withdraw the request). A form POST
                                              answers 303 back to `next`; htmx gets the button (and the profile's
                                              counts) re-rendered; JSON clients get {"following", "follower_count"}.
GET|POST /@{username}/remove-follower         the confirmation page, then the removal
GET|POST /@{username}/block, POST /unblock    the confirmation page, then the block; unblock
POST /@{username}/mute | /unmute
GET  /@{username}/followers | /following      cursor-paged lists (?before=<account id>), to those who may see posts
GET  /follow-requests                         the signed-in viewer's pending requests
POST /follow-requests/{user_id}/approve|deny
GET  /settings/blocked                        the accounts the viewer blocks and mutes, to undo either

An account that blocks the viewer, or that the viewer blocks, answers every one of these with the same 404 as a
missing account (unblocking excepted, for the blocker).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template

from app import ids
from app.context import Context
from app.errors import Forbidden, NotFound, UserError
from app.services import accounts, graph, visibility
from app.services.accounts import User
from app.services.graph import Relation
from app.web.deps import CtxDep, ViewerDep, form_text, page, require, safe_next, see_other, wants_json

LIST_PAGE = 50
BAD_CURSOR = (
    "That page link is broken (the part after ?before= is not a position in the list). Start again from the top."
)
NO_REQUEST = "There is no follow request from that account."
# What the page says after a form POST redirected to it (?done=...).
DONE = {
    "muted": "You muted @{}. Their posts and notifications won't reach you; they aren't told.",
    "unmuted": "You unmuted @{}.",
    "removed": "@{} no longer follows you. They aren't told, and may ask again.",
    "blocked": "You blocked @{}. Neither of you sees the other any more, and your follows both ways have ended.",
    "unblocked": "You unblocked @{}. They can find and follow you again.",
    "approved": "@{} now follows you.",
    "denied": "You declined @{}'s request. They aren't told.",
}


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def account_for(ctx: Context, viewer: User | None, handle: str, *, blocked_ok: bool = False) -> tuple[User, Relation]:
    """The account `/@name` names and how the viewer stands with it; the missing-account 404 when there is none or
    a block either way (`blocked_ok`: the viewer's own block of it is allowed, for unblocking)."""
    if not handle.startswith("@"):
        raise NotFound("There is no page at this address.")
    user = accounts.find_user(ctx, handle[1:])
    if user is None:
        raise NotFound(graph.NO_ACCOUNT)
    rel = graph.relation(ctx, viewer, user.id)
    if rel.blocked_by or (rel.blocking and not blocked_ok):
        raise NotFound(graph.NO_ACCOUNT)
    return user, rel


def cursor(before: str) -> int | None:
    """`?before=` as an id, None when absent; a clear 400 when it is something else."""
    if not before:
        return None
    value = ids.parse(before[:32])
    if value is None:
        raise UserError(BAD_CURSOR)
    return value


def done_message(done: str, who: str) -> str | None:
    template = DONE.get(done[:16])
    name = accounts.canonical_username(who[:64])
    return template.format(name) if template and name else None


# --- Follow and unfollow -------------------------------------------------------------------------------------------


def _changed(
    request: Request,
    ctx: Context,
    viewer: User,
    target: User,
    before: Relation,
    data: dict[str, Any],
    error: UserError | None = None,
) -> Response | Template | Redirect:
    """The answer after a follow button was pressed: JSON, the htmx fragment, or a redirect back."""
    fresh = accounts.get_user(ctx, target.id) or target
    rel = graph.relation(ctx, viewer, target.id)
    if wants_json(request):
        return Response({"following": rel.following, "follower_count": fresh.follower_count}, status_code=200)
    if is_htmx(request):
        ui = "profile" if form_text(data, "ui", 16) == "profile" else "row"
        response = page(
            "social/_follow_response.html",
            account=fresh,
            rel=rel,
            ui=ui,
            next=safe_next(form_text(data, "next", 2048)),
            message=error.message if error else None,
            can_view_posts=visibility.can_view(ctx, viewer, fresh),
            is_self=False,
        )
        # On a private account's profile, access to the photos just changed: show the page as it now is.
        if ui == "profile" and fresh.is_private and (before.following == "active") != (rel.following == "active"):
            response.headers["hx-refresh"] = "true"
        return response
    return see_other(safe_next(form_text(data, "next", 2048) or f"/@{target.username}"))


@post("/{handle:str}/follow", sync_to_thread=True)
def follow(
    request: Request, ctx: CtxDep, viewer: ViewerDep, handle: FromPath[str], data: URLEncodedBody[dict[str, Any]]
) -> Response | Template | Redirect:
    user = require(viewer)
    target, rel = account_for(ctx, user, handle)
    try:
        graph.follow(ctx, user, target)
    except UserError as exc:
        if not is_htmx(request):
            raise
        return _changed(request, ctx, user, target, rel, data, exc)
    return _changed(request, ctx, user, target, rel, data)


@post("/{handle:str}/unfollow", sync_to_thread=True)
def unfollow(
    request: Request, ctx: CtxDep, viewer: ViewerDep, handle: FromPath[str], data: URLEncodedBody[dict[str, Any]]
) -> Response | Template | Redirect:
    """Unfollow, or withdraw a request: either way the edge goes."""
    user = require(viewer)
    target, rel = account_for(ctx, user, handle)
    graph.unfollow(ctx, user, target)
    return _changed(request, ctx, user, target, rel, data)


# --- Remove a follower, block, mute --------------------------------------------------------------------------------


def _confirm(target: User, action: str, next_: str) -> Template:
    return page("social/confirm.html", account=target, action=action, next=safe_next(next_ or f"/@{target.username}"))


@get("/{handle:str}/remove-follower", sync_to_thread=True)
def remove_follower_form(ctx: CtxDep, viewer: ViewerDep, handle: FromPath[str], next: FromQuery[str] = "") -> Template:
    user = require(viewer)
    target, rel = account_for(ctx, user, handle)
    if rel.followed_by != "active":
        raise NotFound(f"@{target.username} doesn't follow you.")
    return _confirm(target, "remove-follower", next)


@post("/{handle:str}/remove-follower", sync_to_thread=True)
def remove_follower(
    request: Request, ctx: CtxDep, viewer: ViewerDep, handle: FromPath[str], data: URLEncodedBody[dict[str, Any]]
) -> Response | Redirect:
    user = require(viewer)
    target, rel = account_for(ctx, user, handle)
    if rel.followed_by != "active":
        raise NotFound(f"@{target.username} doesn't follow you.")
    graph.remove_follower(ctx, user, target.id)
    if wants_json(request):
        return Response({"followed_by": None}, status_code=200)
    return see_other(_with_done(form_text(data, "next", 2048) or f"/@{target.username}", "removed", target))


@get("/{handle:str}/block", sync_to_thread=True)
def block_form(ctx: CtxDep, viewer: ViewerDep, handle: FromPath[str]) -> Template:
    user = require(viewer)
    target, _ = account_for(ctx, user, handle)
    if target.id == user.id:
        raise UserError("You can't block yourself.")
    return _confirm(target, "block", "")


@post("/{handle:str}/block", sync_to_thread=True)
def block(request: Request, ctx: CtxDep, viewer: ViewerDep, handle: FromPath[str]) -> Response | Redirect:
    user = require(viewer)
    target, _ = account_for(ctx, user, handle)
    graph.block(ctx, user, target)
    if wants_json(request):
        return Response({"blocking": True}, status_code=200)
    return see_other(_with_done("/settings/blocked", "blocked", target))


@post("/{handle:str}/unblock", sync_to_thread=True)
def unblock(
    request: Request, ctx: CtxDep, viewer: ViewerDep, handle: FromPath[str], data: URLEncodedBody[dict[str, Any]]
) -> Response | Redirect:
    user = require(viewer)
    target, _ = account_for(ctx, user, handle, blocked_ok=True)
    graph.unblock(ctx, user, target.id)
    if wants_json(request):
        return Response({"blocking": False}, status_code=200)
    return see_other(_with_done(form_text(data, "next", 2048) or "/settings/blocked", "unblocked", target))


@post("/{handle:str}/mute", sync_to_thread=True)
def mute(request: Request, ctx: CtxDep, viewer: ViewerDep, handle: FromPath[str]) -> Response | Redirect:
    user = require(viewer)
    target, _ = account_for(ctx, user, handle)
    graph.mute(ctx, user, target)
    if wants_json(request):
        return Response({"muting": True}, status_code=200)
    return see_other(_with_done(f"/@{target.username}", "muted", target))


@post("/{handle:str}/unmute", sync_to_thread=True)
def unmute(
    request: Request, ctx: CtxDep, viewer: ViewerDep, handle: FromPath[str], data: URLEncodedBody[dict[str, Any]]
) -> Response | Redirect:
    user = require(viewer)
    target, _ = account_for(ctx, user, handle)
    graph.unmute(ctx, user, target.id)
    if wants_json(request):
        return Response({"muting": False}, status_code=200)
    return see_other(_with_done(form_text(data, "next", 2048) or f"/@{target.username}", "unmuted", target))


def _with_done(path: str, done: str, target: User) -> str:
    """`path` (a same-site address) saying what was just done; a notice already in it makes way for this one."""
    path, _, query = safe_next(path).split("#", 1)[0].partition("?")
    kept = [(k, v) for k, v in parse_qsl(query) if k not in ("done", "who")]
    return f"{path}?{urlencode([*kept, ('done', done), ('who', target.username)])}"


# --- Followers and following ---------------------------------------------------------------------------------------


def _people(
    ctx: Context, viewer: User | None, handle: str, before: str, which: str, notice: str | None
) -> Template:  # which: "followers" | "following"
    target, _ = account_for(ctx, viewer, handle)
    if not visibility.can_view(ctx, viewer, target):
        raise Forbidden(
            f"@{target.username}'s account is private: only the people they approved see who follows them "
            "and whom they follow."
        )
    lister = graph.followers if which == "followers" else graph.following
    people = lister(ctx, target, cursor(before), LIST_PAGE + 1)
    more_before = people[LIST_PAGE - 1].id if len(people) > LIST_PAGE else None
    people = people[:LIST_PAGE]
    return page(
        "social/people.html",
        account=target,
        which=which,
        people=people,
        rels=graph.relations(ctx, viewer, [p.id for p in people]) if viewer else {},
        more_before=more_before,
        is_own=viewer is not None and viewer.id == target.id,
        notice=notice,
    )


@get("/{handle:str}/followers", sync_to_thread=True)
def followers(
    ctx: CtxDep,
    viewer: ViewerDep,
    handle: FromPath[str],
    before: FromQuery[str] = "",
    done: FromQuery[str] = "",
    who: FromQuery[str] = "",
) -> Template:
    return _people(ctx, viewer, handle, before, "followers", done_message(done, who))


@get("/{handle:str}/following", sync_to_thread=True)
def following(ctx: CtxDep, viewer: ViewerDep, handle: FromPath[str], before: FromQuery[str] = "") -> Template:
    return _people(ctx, viewer, handle, before, "following", None)


# --- Follow requests -----------------------------------------------------------------------------------------------


@get("/follow-requests", sync_to_thread=True)
def follow_requests(
    ctx: CtxDep, viewer: ViewerDep, before: FromQuery[str] = "", done: FromQuery[str] = "", who: FromQuery[str] = ""
) -> Template:
    user = require(viewer)
    people = graph.follow_requests(ctx, user, cursor(before), LIST_PAGE + 1)
    more_before = people[LIST_PAGE - 1].id if len(people) > LIST_PAGE else None
    return page(
        "social/requests.html",
        user=user,
        people=people[:LIST_PAGE],
        more_before=more_before,
        notice=done_message(done, who),
    )


def _answer_request(
    request: Request, ctx: Context, viewer: User | None, user_id: str, approve: bool
) -> Response | Template | Redirect:
    user = require(viewer)
    follower_id = ids.parse(user_id)
    requester = accounts.get_user(ctx, follower_id) if follower_id else None
    try:
        if requester is None:
            raise NotFound(NO_REQUEST)
        if approve:
            graph.approve_request(ctx, user, requester.id)
        else:
            graph.deny_request(ctx, user, requester.id)
    except UserError as exc:
        if not is_htmx(request):
            raise
        return page("social/_request_done.html", requester=requester, approved=None, message=exc.message)
    if wants_json(request):
        return Response({"approved": approve}, status_code=200)
    if is_htmx(request):
        return page("social/_request_done.html", requester=requester, approved=approve, message=None)
    return see_other(_with_done("/follow-requests", "approved" if approve else "denied", requester))


@post("/follow-requests/{user_id:str}/approve", sync_to_thread=True)
def approve(request: Request, ctx: CtxDep, viewer: ViewerDep, user_id: FromPath[str]) -> Response | Template | Redirect:
    return _answer_request(request, ctx, viewer, user_id, True)


@post("/follow-requests/{user_id:str}/deny", sync_to_thread=True)
def deny(request: Request, ctx: CtxDep, viewer: ViewerDep, user_id: FromPath[str]) -> Response | Template | Redirect:
    return _answer_request(request, ctx, viewer, user_id, False)


# --- Blocked and muted accounts ------------------------------------------------------------------------------------


@get("/settings/blocked", sync_to_thread=True)
def blocked(
    ctx: CtxDep,
    viewer: ViewerDep,
    blocked_before: FromQuery[str] = "",
    muted_before: FromQuery[str] = "",
    done: FromQuery[str] = "",
    who: FromQuery[str] = "",
) -> Template:
    user = require(viewer)
    blocked_people = graph.blocked_accounts(ctx, user, cursor(blocked_before), LIST_PAGE + 1)
    muted_people = graph.muted_accounts(ctx, user, cursor(muted_before), LIST_PAGE + 1)
    return page(
        "social/blocked.html",
        user=user,
        active="blocked",
        blocked=blocked_people[:LIST_PAGE],
        blocked_more=blocked_people[LIST_PAGE - 1].id if len(blocked_people) > LIST_PAGE else None,
        muted=muted_people[:LIST_PAGE],
        muted_more=muted_people[LIST_PAGE - 1].id if len(muted_people) > LIST_PAGE else None,
        notice=done_message(done, who),
    )


router = Router(
    path="",
    route_handlers=[
        follow,
        unfollow,
        remove_follower_form,
        remove_follower,
        block_form,
        block,
        unblock,
        mute,
        unmute,
        followers,
        following,
        follow_requests,
        approve,
        deny,
        blocked,
    ],
)
