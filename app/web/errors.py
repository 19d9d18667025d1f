"""Every error becomes a page (or JSON for the API) that says what happened: never a traceback."""

from __future__ import annotations

import logging
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
)
from litestar.response import Redirect, Template

from app.backends.database.base import DatabaseUnavailable
from app.backends.redis_server import RedisUnavailable
from app.errors import UserError
from app.web.deps import LoginRequired, provide_viewer, wants_json

log = logging.getLogger("pinhole.http")

MESSAGES = {
    400: "The request was incomplete or malformed. Go back, check the form and try again.",
    401: "Please sign in first.",
    403: "You can't do that here.",
    404: "There is nothing at this address. It may have been deleted, or the link is mistyped.",
    405: "That address doesn't accept this kind of request.",
    413: "That upload is too large.",
    429: "Too many attempts. Wait a few minutes and try again.",
    503: "Pinhole can't reach part of its storage right now. Nothing was changed; try again shortly.",
}
CSRF_MESSAGE = "This form expired or came from another site, so nothing was changed. Reload the page and try again."


def _answer(request: Request, status: int, message: str) -> Response:
    if wants_json(request):
        return Response({"error": message}, status_code=status)
    if not hasattr(request.state, "viewer"):
        # No handler ran (an unknown address): look the viewer up so the page header is right.
        try:
            provide_viewer(request, request.app.state.ctx)
        except Exception:
            request.state.viewer = None
    return Template(template_name="error.html", context={"status": status, "message": message}, status_code=status)


def user_error(request: Request, exc: UserError) -> Response:
    return _answer(request, exc.status, exc.message)


def http_error(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    if isinstance(exc, PermissionDeniedException) and "CSRF" in str(exc.detail):
        return _answer(request, 403, CSRF_MESSAGE)
    if status == 413:
        limit = request.app.state.ctx.config.server.max_body_mb
        return _answer(request, 413, f"That upload is larger than this server accepts ({limit} MB in all).")
    if isinstance(exc, NotAuthorizedException):
        status = 401
    message = MESSAGES.get(status) or (exc.detail if status < 500 else "Something went wrong on our side.")
    return _answer(request, status, message)


def login_required(request: Request, exc: LoginRequired) -> Response:
    if request.method == "GET" and not wants_json(request):
        return Redirect(f"/login?next={quote(request.url.path)}", status_code=303)
    return _answer(request, 401, MESSAGES[401])


def database_unavailable(request: Request, exc: DatabaseUnavailable) -> Response:
    """A database server is down: only what lives on its shards fails, with a message, never a 500."""
    log.warning("database unavailable: %s", exc, extra={"path": request.url.path})
    return _answer(request, 503, MESSAGES[503])


def redis_unavailable(request: Request, exc: RedisUnavailable) -> Response:
    """A Redis server (sessions, rate limits, feeds, queue) is down: the same 503 as a database server."""
    log.warning("redis unavailable: %s", exc, extra={"path": request.url.path})
    return _answer(request, 503, MESSAGES[503])


def server_error(request: Request, exc: Exception) -> Response:
    request_id = request.scope.get("state", {}).get("request_id", "-")
    log.error("unhandled error", exc_info=exc, extra={"request_id": request_id, "path": request.url.path})
    return _answer(request, 500, f"Something went wrong on our side. It has been logged as {request_id}.")


HANDLERS = {
    UserError: user_error,
    LoginRequired: login_required,
    DatabaseUnavailable: database_unavailable,
    RedisUnavailable: redis_unavailable,
    HTTPException: http_error,
    Exception: server_error,
}
