"""The home page and public profiles."""

from __future__ import annotations

from litestar import get
from litestar.response import Template

from app.context import Context
from app.errors import NotFound
from app.services import accounts
from app.services.accounts import User
from app.web.deps import page


@get("/", sync_to_thread=True)
def home(ctx: Context, viewer: User | None) -> Template:
    if viewer is None:
        return page("home/welcome.html", mode=ctx.config.accounts.registration)
    return page("home/home.html", user=viewer)


@get("/{handle:str}", sync_to_thread=True)
def profile(ctx: Context, viewer: User | None, handle: str) -> Template:
    """`/@username`: the account's public face."""
    if not handle.startswith("@"):
        raise NotFound("There is no page at this address.")
    user = accounts.find_user(ctx, handle[1:])
    if user is None:
        raise NotFound("There is no account with that name.")
    return page("home/profile.html", profile=user, is_self=viewer is not None and viewer.id == user.id)
