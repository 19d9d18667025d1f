"""The home page and public profiles."""

from __future__ import annotations

from litestar import get
from litestar.params import FromPath
from litestar.response import Template

from app.errors import NotFound
from app.services import accounts
from app.web.deps import CtxDep, ViewerDep, page


@get("/", sync_to_thread=True)
def home(ctx: CtxDep, viewer: ViewerDep) -> Template:
    if viewer is None:
        return page("home/welcome.html", mode=ctx.config.accounts.registration)
    return page("home/home.html", user=viewer)


@get("/{handle:str}", sync_to_thread=True)
def profile(ctx: CtxDep, viewer: ViewerDep, handle: FromPath[str]) -> Template:
    """`/@username`: the account's public face."""
    if not handle.startswith("@"):
        raise NotFound("There is no page at this address.")
    user = accounts.find_user(ctx, handle[1:])
    if user is None:
        raise NotFound("There is no account with that name.")
    return page("home/profile.html", profile=user, is_self=viewer is not None and viewer.id == user.id)
