"""Timelines: home (the feed the home page shows), public (the site's public posts) and a hashtag's, over
app/services (feed, discover, tags). Every post passes posts.get_posts, which applies visibility and blocks."""

from __future__ import annotations

from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from app.api import entities
from app.api.base import Caller, endpoint, parse_bool
from app.api.paging import paged
from app.services import discover, feed, tags
from app.web.deps import CtxDep

CallerDep = NamedDependency[Caller]


@endpoint("GET", "/api/v1/timelines/home", scope="read:statuses")
def home(request: Request, ctx: CtxDep, caller: CallerDep) -> Response:
    """Posts of the people the caller follows and the caller's own, newest first."""
    me = caller.me
    return paged(
        request, lambda before, n: feed.home_feed(ctx, me, before, n), lambda page: entities.statuses(ctx, page, me)
    )


@endpoint("GET", "/api/v1/timelines/public", scope="read:statuses", auth="optional")
def public(request: Request, ctx: CtxDep, caller: CallerDep, remote: FromQuery[str] = "") -> Response:
    """The newest posts of the site's public accounts. Every account is local (`local` changes nothing); there are
    no remote posts."""
    only_remote = parse_bool(remote, "remote")

    def fetch(before: int | None, n: int):
        return ([], None) if only_remote else discover.recent_public_posts(ctx, caller.user, before, n)

    return paged(request, fetch, lambda page: entities.statuses(ctx, page, caller.user))


@endpoint("GET", "/api/v1/timelines/tag/{hashtag:str}", scope="read:statuses", auth="optional")
def hashtag(request: Request, ctx: CtxDep, caller: CallerDep, hashtag: FromPath[str]) -> Response:
    """The posts under a hashtag that the caller may see, newest first."""
    tag = tags.parse_tag(hashtag)

    def fetch(before: int | None, n: int):
        found = tags.tag_page(ctx, caller.user, tag, before, n)
        return found.posts, found.before

    return paged(request, fetch, lambda page: entities.statuses(ctx, page, caller.user))


ROUTES = [home, public, hashtag]
