"""The home page and public profiles."""

from __future__ import annotations

from litestar import Request, Response, get
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from app import ids
from app.errors import NotFound
from app.services import accounts, posts
from app.web.deps import CtxDep, ViewerDep, page
from app.web.routes import atom
from app.web.routes.posts import grid_srcset

GRID_PAGE = 30  # posts on one page of a profile's grid


@get("/", sync_to_thread=True)
def home(ctx: CtxDep, viewer: ViewerDep) -> Template:
    if viewer is None:
        return page("home/welcome.html", mode=ctx.config.accounts.registration)
    return page("home/home.html", user=viewer)


@get("/{handle:str}", sync_to_thread=True)
def profile(
    request: Request, ctx: CtxDep, viewer: ViewerDep, handle: FromPath[str], before: FromQuery[str] = ""
) -> Template | Response:
    """`/@username`: the account's public face, and a grid of the posts the viewer may see (newest first,
    GRID_PAGE at a time; `?before=<post id>` for older ones)."""
    if atom.is_feed_address(handle):  # `/@username.atom` is one path segment, so it arrives here
        return atom.account_feed(ctx, viewer, request, handle)
    if not handle.startswith("@"):
        raise NotFound("There is no page at this address.")
    user = accounts.find_user(ctx, handle[1:])
    if user is None:
        raise NotFound("There is no account with that name.")
    grid = posts.list_author_posts(ctx, user, viewer, ids.parse(before[:32]), GRID_PAGE + 1)
    more_before = grid[GRID_PAGE - 1].id if len(grid) > GRID_PAGE else None
    return page(
        "home/profile.html",
        profile=user,
        is_self=viewer is not None and viewer.id == user.id,
        posts=grid[:GRID_PAGE],
        more_before=more_before,
        grid_srcset=grid_srcset,
    )
