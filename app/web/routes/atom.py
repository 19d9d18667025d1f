"""`/@username.atom`: a public account's Atom feed. The profile route receives the address (one path segment)
and hands it here; app.services.atom decides who has a feed and writes it."""

from __future__ import annotations

from litestar import Request, Response

from app.context import Context
from app.services import atom
from app.services.accounts import User


def is_feed_address(handle: str) -> bool:
    return handle.startswith("@") and handle.endswith(".atom")


def account_feed(ctx: Context, viewer: User | None, request: Request, handle: str) -> Response:
    """The feed for `@name.atom`; links are absolute under [server] public_url, or the address asked if unset."""
    base = ctx.config.server.public_url.rstrip("/") or str(request.base_url).rstrip("/")
    body = atom.account_feed(ctx, viewer, handle[1 : -len(".atom")], base)
    return Response(body, media_type=atom.CONTENT_TYPE)
