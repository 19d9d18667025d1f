"""Accounts, the follow graph and follow requests in the client API: thin handlers over app/services (accounts,
avatars, graph, posts, visibility), so every rule is the pages' rule."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from app import ids
from app.api import entities
from app.api.base import FILE, FLAG, RECORD_NOT_FOUND, TEXT, Caller, Fields, endpoint, parse_bool, path_id
from app.api.paging import paged
from app.context import Context
from app.errors import Conflict, NotFound, UserError
from app.services import accounts, avatars, graph, posts, visibility
from app.services.accounts import User
from app.web.deps import CtxDep

CallerDep = NamedDependency[Caller]
FieldsDep = NamedDependency[Fields]
LIST_LIMIT = 40
LIST_MAX = 80


def _relationship(ctx: Context, me: User, user_id: int) -> dict[str, Any]:
    return entities.relationship(user_id, graph.relation(ctx, me, user_id))


def _target(ctx: Context, caller: Caller, account_id: str) -> User:
    """The account the URL names: a missing one and one that blocks the caller read alike (404)."""
    return graph.target_user(ctx, caller.user, path_id(account_id))


def _credentials(ctx: Context, user: User) -> dict[str, Any]:
    waiting = len(graph.follow_requests(ctx, user, None, 100)) if user.is_private else 0
    return entities.credential_account(ctx, user, waiting)


@endpoint("GET", "/api/v1/accounts/verify_credentials", scope=("read:accounts", "profile"))
def verify_credentials(ctx: CtxDep, caller: CallerDep) -> dict[str, Any]:
    """The signed-in user's own account."""
    return _credentials(ctx, caller.me)


@endpoint(
    "PATCH",
    "/api/v1/accounts/update_credentials",
    scope="write:accounts",
    body={"display_name": TEXT, "note": TEXT, "locked": FLAG, "avatar": FILE},
)
def update_credentials(ctx: CtxDep, caller: CallerDep, fields: FieldsDep) -> dict[str, Any]:
    """Name, bio (`note`), `locked` (a private account) and profile photo (`avatar`), each checked as on the
    profile page; a field left out stays as it was."""
    me = caller.me
    display_name, note, locked = fields.text("display_name", 4096), fields.text("note", 4096), fields.bool("locked")
    avatar = fields.file("avatar")
    if fields.has("avatar") and avatar is None:
        raise UserError("avatar must be an image file.", field="avatar")
    if display_name is not None or note is not None or locked is not None:
        me = accounts.update_profile(
            ctx,
            me,
            me.display_name if display_name is None else display_name,
            me.bio if note is None else note,
            locked,
        )
    if avatar is not None:
        limit = ctx.config.media.max_upload_mb * 1024 * 1024
        avatars.upload_avatar(ctx, me, avatar.file.read(limit + 1))
        me = accounts.get_user(ctx, me.id) or me
    return _credentials(ctx, me)


@endpoint("GET", "/api/v1/accounts/lookup", scope="read:accounts", auth="optional")
def lookup(request: Request, ctx: CtxDep, caller: CallerDep, acct: FromQuery[str] = "") -> dict[str, Any]:
    """An account by its name (`ana`, `@ana` or `ana@this.host`)."""
    name, _, host = acct.strip().lstrip("@").partition("@")
    public, asked = urlsplit(ctx.config.public_url), request.url
    if host and host.lower() not in (public.netloc, public.hostname, asked.netloc, asked.hostname):
        raise NotFound(RECORD_NOT_FOUND)
    user = accounts.find_user(ctx, name[:64])
    if user is None:
        raise NotFound(RECORD_NOT_FOUND)
    return entities.account(ctx, _target(ctx, caller, str(user.id)))


@endpoint("GET", "/api/v1/accounts/relationships", scope="read:follows")
def relationships(request: Request, ctx: CtxDep, caller: CallerDep) -> list[dict[str, Any]]:
    """How the caller stands with each account of `id[]` (unknown ids are left out)."""
    me = caller.me
    texts = request.query_params.getall("id[]", []) + request.query_params.getall("id", [])
    wanted = [i for text in texts[:LIST_MAX] if (i := ids.parse(text)) is not None]
    found = accounts.get_users(ctx, wanted)
    rels = graph.relations(ctx, me, found)
    return [entities.relationship(i, rels.get(i, graph.Relation())) for i in dict.fromkeys(wanted) if i in found]


@endpoint("GET", "/api/v1/accounts/{account_id:str}", scope="read:accounts", auth="optional")
def get_account(ctx: CtxDep, caller: CallerDep, account_id: FromPath[str]) -> dict[str, Any]:
    return entities.account(ctx, _target(ctx, caller, account_id))


@endpoint("GET", "/api/v1/accounts/{account_id:str}/statuses", scope="read:statuses", auth="optional")
def account_statuses(
    request: Request,
    ctx: CtxDep,
    caller: CallerDep,
    account_id: FromPath[str],
    pinned: FromQuery[str] = "",
) -> Response:
    """The account's posts the caller may see, newest first. Every post has photos and none is a reply, so
    `only_media` and `exclude_replies` change nothing; Pinhole has no pinned posts."""
    author = _target(ctx, caller, account_id)

    def fetch(before: int | None, n: int):
        if parse_bool(pinned, "pinned"):
            return [], None
        found = posts.list_author_posts(ctx, author, caller.user, before, n)
        return found, (found[-1].id if len(found) == n else None)

    return paged(request, fetch, lambda page: entities.statuses(ctx, page, caller.user))


def _people(request: Request, ctx: Context, caller: Caller, account_id: str, lister) -> Response:
    """Followers or following of an account: empty to someone who may not see a private account's posts, as its
    page refuses them."""
    user = _target(ctx, caller, account_id)
    allowed = visibility.can_view(ctx, caller.user, user)

    def fetch(before: int | None, n: int):
        found = lister(ctx, user, before, n) if allowed else []
        return found, (found[-1].id if len(found) == n else None)

    return paged(
        request, fetch, lambda page: [entities.account(ctx, u) for u in page], default=LIST_LIMIT, maximum=LIST_MAX
    )


@endpoint("GET", "/api/v1/accounts/{account_id:str}/followers", scope="read:accounts", auth="optional")
def followers(request: Request, ctx: CtxDep, caller: CallerDep, account_id: FromPath[str]) -> Response:
    return _people(request, ctx, caller, account_id, graph.followers)


@endpoint("GET", "/api/v1/accounts/{account_id:str}/following", scope="read:accounts", auth="optional")
def following(request: Request, ctx: CtxDep, caller: CallerDep, account_id: FromPath[str]) -> Response:
    return _people(request, ctx, caller, account_id, graph.following)


# --- Follow, block, mute -------------------------------------------------------------------------------------------


@endpoint("POST", "/api/v1/accounts/{account_id:str}/follow", scope="write:follows")
def follow(ctx: CtxDep, caller: CallerDep, account_id: FromPath[str]) -> dict[str, Any]:
    """Follow (a private account: ask to). Following again changes nothing."""
    target = _target(ctx, caller, account_id)
    try:
        graph.follow(ctx, caller.me, target)
    except Conflict:
        pass  # already following or asked: Mastodon answers with the relationship as it is
    return _relationship(ctx, caller.me, target.id)


@endpoint("POST", "/api/v1/accounts/{account_id:str}/unfollow", scope="write:follows")
def unfollow(ctx: CtxDep, caller: CallerDep, account_id: FromPath[str]) -> dict[str, Any]:
    target = _target(ctx, caller, account_id)
    graph.unfollow(ctx, caller.me, target)
    return _relationship(ctx, caller.me, target.id)


@endpoint("POST", "/api/v1/accounts/{account_id:str}/block", scope="write:blocks")
def block(ctx: CtxDep, caller: CallerDep, account_id: FromPath[str]) -> dict[str, Any]:
    target = _target(ctx, caller, account_id)
    graph.block(ctx, caller.me, target)
    return _relationship(ctx, caller.me, target.id)


@endpoint("POST", "/api/v1/accounts/{account_id:str}/unblock", scope="write:blocks")
def unblock(ctx: CtxDep, caller: CallerDep, account_id: FromPath[str]) -> dict[str, Any]:
    target = _target(ctx, caller, account_id)
    graph.unblock(ctx, caller.me, target.id)
    return _relationship(ctx, caller.me, target.id)


@endpoint("POST", "/api/v1/accounts/{account_id:str}/mute", scope="write:mutes")
def mute(ctx: CtxDep, caller: CallerDep, account_id: FromPath[str]) -> dict[str, Any]:
    target = _target(ctx, caller, account_id)
    try:
        graph.mute(ctx, caller.me, target)
    except Conflict:
        pass  # muted already
    return _relationship(ctx, caller.me, target.id)


@endpoint("POST", "/api/v1/accounts/{account_id:str}/unmute", scope="write:mutes")
def unmute(ctx: CtxDep, caller: CallerDep, account_id: FromPath[str]) -> dict[str, Any]:
    target = _target(ctx, caller, account_id)
    graph.unmute(ctx, caller.me, target.id)
    return _relationship(ctx, caller.me, target.id)


def _own_list(request: Request, ctx: Context, caller: Caller, lister) -> Response:
    me = caller.me

    def fetch(before: int | None, n: int):
        found = lister(ctx, me, before, n)
        return found, (found[-1].id if len(found) == n else None)

    return paged(
        request, fetch, lambda page: [entities.account(ctx, u) for u in page], default=LIST_LIMIT, maximum=LIST_MAX
    )


@endpoint("GET", "/api/v1/blocks", scope="read:blocks")
def blocks(request: Request, ctx: CtxDep, caller: CallerDep) -> Response:
    return _own_list(request, ctx, caller, graph.blocked_accounts)


@endpoint("GET", "/api/v1/mutes", scope="read:mutes")
def mutes(request: Request, ctx: CtxDep, caller: CallerDep) -> Response:
    return _own_list(request, ctx, caller, graph.muted_accounts)


# --- Follow requests -----------------------------------------------------------------------------------------------


@endpoint("GET", "/api/v1/follow_requests", scope="read:follows")
def follow_requests(request: Request, ctx: CtxDep, caller: CallerDep) -> Response:
    """Accounts waiting for the caller's answer."""
    return _own_list(request, ctx, caller, graph.follow_requests)


@endpoint("POST", "/api/v1/follow_requests/{account_id:str}/authorize", scope="write:follows")
def authorize_request(ctx: CtxDep, caller: CallerDep, account_id: FromPath[str]) -> dict[str, Any]:
    follower_id = path_id(account_id)
    graph.approve_request(ctx, caller.me, follower_id)
    return _relationship(ctx, caller.me, follower_id)


@endpoint("POST", "/api/v1/follow_requests/{account_id:str}/reject", scope="write:follows")
def reject_request(ctx: CtxDep, caller: CallerDep, account_id: FromPath[str]) -> dict[str, Any]:
    follower_id = path_id(account_id)
    graph.deny_request(ctx, caller.me, follower_id)
    return _relationship(ctx, caller.me, follower_id)


ROUTES = [
    verify_credentials,
    update_credentials,
    lookup,
    relationships,
    get_account,
    account_statuses,
    followers,
    following,
    follow,
    unfollow,
    block,
    unblock,
    mute,
    unmute,
    blocks,
    mutes,
    follow_requests,
    authorize_request,
    reject_request,
]
