"""Public profiles. (The home page is in app/web/routes/feed.py.)"""

from __future__ import annotations

from litestar import Request, Response, get
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from app import ids
from app.services import posts, visibility
from app.web.deps import CtxDep, ViewerDep, page
from app.web.routes import atom
from app.web.routes.posts import grid_srcset
from app.web.routes.social import account_for, done_message

GRID_PAGE = 30  # posts on one page of a profile's grid


@get("/{handle:str}", sync_to_thread=True)
def profile(
    request: Request,
    ctx: CtxDep,
    viewer: ViewerDep,
    handle: FromPath[str],
    before: FromQuery[str] = "",
    done: FromQuery[str] = "",
    who: FromQuery[str] = "",
) -> Template | Response:
    """`/@username`: the account's public face (to anyone without a block either way with it), its counts and
    follow button, and a grid of the posts the viewer may see (newest first, GRID_PAGE at a time;
    `?before=<post id>` for older ones). A private account's grid shows only to its approved followers."""
    if atom.is_feed_address(handle):  # `/@username.atom` is one path segment, so it arrives here
        return atom.account_feed(ctx, viewer, request, handle)
    user, rel = account_for(ctx, viewer, handle)
    can_view_posts = visibility.can_view(ctx, viewer, user)
    grid = posts.list_author_posts(ctx, user, viewer, ids.parse(before[:32]), GRID_PAGE + 1) if can_view_posts else []
    more_before = grid[GRID_PAGE - 1].id if len(grid) > GRID_PAGE else None
    return page(
        "home/profile.html",
        profile=user,
        account=user,
        rel=rel,
        is_self=viewer is not None and viewer.id == user.id,
        can_view_posts=can_view_posts,
        posts=grid[:GRID_PAGE],
        more_before=more_before,
        grid_srcset=grid_srcset,
        notice=done_message(done, who),
    )
