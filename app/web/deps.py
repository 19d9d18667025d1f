"""What every handler may ask for: the context, the signed-in viewer, form helpers."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from app.context import Context
from app.services import sessions
from app.services.accounts import User
from app.web.security import client_ip

# Handler parameters filled by the app-level dependencies of the same name.
CtxDep = NamedDependency[Context]
ViewerDep = NamedDependency[User | None]


class LoginRequired(Exception):
    """Raised by handlers that need a signed-in viewer; answered with a redirect to /login."""


def provide_ctx(request: Request) -> Context:
    return request.app.state.ctx


def provide_viewer(request: Request, ctx: CtxDep) -> User | None:
    # Taking ctx as a dependency puts the two in sequence: Litestar resolves independent dependencies of a handler
    # concurrently, in a task group per request, which costs more than either of them.
    user = sessions.user_for_session(ctx, request.cookies.get(sessions.COOKIE))
    request.state.viewer = user
    return user


def require(viewer: User | None) -> User:
    if viewer is None:
        raise LoginRequired()
    return viewer


def ip_of(request: Request) -> str:
    return client_ip(request, request.app.state.ctx.config.server.trusted_proxies)


def form_text(data: dict[str, Any], name: str, limit: int = 10_000) -> str:
    """One form field as text, bounded: a repeated field gives its first value, a file part gives ""."""
    value = data.get(name, "")
    if isinstance(value, list):
        value = value[0] if value else ""
    return value[:limit].replace("\r\n", "\n") if isinstance(value, str) else ""


def wants_json(request: Request) -> bool:
    """The API and the pages' own scripts get JSON answers; browsers get pages."""
    return request.url.path.startswith("/api/") or request.headers.get("accept", "").startswith("application/json")


def page(template: str, status: int = 200, **context: Any) -> Template:
    context.setdefault("error", None)
    context.setdefault("form", {})
    # The type is given, not guessed from the name: Litestar's guess costs a path parse and a lookup a page.
    return Template(template_name=template, context=context, status_code=status, media_type=MediaType.HTML)


def safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect to another host after sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def session_cookie(ctx: Context, token: str | None) -> Cookie:
    """The session cookie, or (token None) the instruction to delete it."""
    return Cookie(
        key=sessions.COOKIE,
        value=token or "",
        path="/",
        httponly=True,
        samesite="lax",
        secure=ctx.config.https,
        max_age=ctx.config.sessions.lifetime_days * 86_400 if token else 0,
    )


def see_other(path: str, cookies: list[Cookie] | None = None) -> Redirect:
    return Redirect(path, status_code=303, cookies=cookies or [])
