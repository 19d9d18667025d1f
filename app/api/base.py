"""The client API's plumbing: how each route states who may call it, the guard that enforces that on every route,
request fields in any of the encodings apps send, and errors in Mastodon's shape.

Every route is declared with `endpoint(method, path, scope=..., auth=...)`; the guard of the API router reads those
two options and refuses a route that states neither (fail closed), so no route can forget its scope:

- `auth="user"`: a signed-in user, by a bearer token that carries `scope` or by the session cookie;
- `auth="optional"`: anyone, but a bearer token, when sent, must be valid and carry `scope` (an app's own token,
  from client_credentials, reads what anonymous visitors read);
- `auth="public"`: no token looked at (instance information, app registration).

`scope` is one scope or a tuple of alternatives. A bearer-token request skips CSRF (a browser never adds the header
by itself); a cookie-authenticated one must carry the CSRF token like every form, since the browser sends cookies
along with any site's request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response, route
from litestar.concurrency import sync_to_thread
from litestar.connection import ASGIConnection
from litestar.datastructures import UploadFile
from litestar.exceptions import ValidationException
from litestar.handlers import BaseRouteHandler
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from app import ids
from app.context import Context
from app.errors import Forbidden, NotFound, UserError
from app.services import oauth, sessions
from app.services.accounts import User
from app.web.security import csrf_token_valid

AUTH_MODES = ("user", "optional", "public")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
RECORD_NOT_FOUND = "Record not found"
OUT_OF_SCOPE = "This action is outside the authorized scopes"
NEEDS_USER = "This method requires an authenticated user"
BODY_TYPES = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")
# Field types for documenting request bodies.
TEXT = Schema(type=OpenAPIType.STRING)
FLAG = Schema(type=OpenAPIType.BOOLEAN)
ID_LIST = Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.STRING))
FILE = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
OBJECT_LIST = Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.OBJECT))


@dataclass(frozen=True)
class Caller:
    """Who is calling: the user (None: anonymous, or an app acting for itself) and the bearer token, if any (None
    when signed in by the session cookie, which may do everything the account may)."""

    user: User | None
    token: oauth.AccessToken | None = None

    @property
    def me(self) -> User:
        if self.user is None:  # the guard lets no such call reach a route that needs a user
            raise UserError(NEEDS_USER, status=422)
        return self.user


def endpoint(
    method: str,
    path: str,
    *,
    scope: str | tuple[str, ...] | None,
    auth: str = "user",
    body: dict[str, Schema] | None = None,
    **kwargs: Any,
):
    """A route of the client API (a sync handler, run in a thread): who may call it and, for the OpenAPI document,
    the fields its body takes (`body`, in any of Mastodon's three encodings)."""
    if auth not in AUTH_MODES:
        raise ValueError(f"auth must be one of {AUTH_MODES}")
    if auth != "public" and not scope:
        raise ValueError(f"{method} {path} needs a scope")
    scopes = (scope,) if isinstance(scope, str) else tuple(scope or ())
    if scopes:
        kwargs.setdefault("security", [{"OAuth2": list(scopes)}])
    if body is not None:
        kwargs["operation_class"] = _with_body(body)
    kwargs.setdefault("status_code", 200)  # Mastodon answers 200 to POST and DELETE too
    return route(path, http_method=[method], sync_to_thread=True, opt={"auth": auth, "scopes": scopes}, **kwargs)


def _with_body(properties: dict[str, Schema]) -> type[Operation]:
    """An Operation documenting a request body of these fields in JSON, form and multipart encodings alike (the
    handler reads them through `fields`, whatever the encoding)."""
    schema = Schema(type=OpenAPIType.OBJECT, properties=properties)
    content = {media_type: OpenAPIMediaType(schema=schema) for media_type in BODY_TYPES}

    class WithBody(Operation):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.request_body = RequestBody(content=content)

    return WithBody


# --- The guard -----------------------------------------------------------------------------------------------------


async def enforce_scopes(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Runs before every API route: identifies the caller and checks the route's auth and scope."""
    auth = handler.opt.get("auth")
    if auth not in AUTH_MODES:
        raise Forbidden("This route states no scope, so it answers nobody.")  # fail closed
    connection.state.caller = await sync_to_thread(_identify, connection, auth, handler.opt.get("scopes", ()))


def _identify(connection: ASGIConnection, auth: str, scopes: tuple[str, ...]) -> Caller:
    if auth == "public":
        return Caller(None)
    ctx: Context = connection.app.state.ctx
    header = connection.headers.get("authorization")
    if header:
        kind, _, value = header.strip().partition(" ")
        if kind.lower() != "bearer":
            raise oauth.InvalidToken("The access token is invalid")
        token = oauth.authenticate(ctx, value.strip())
        if scopes and not any(token.allows(s) for s in scopes):
            raise Forbidden(OUT_OF_SCOPE)
        if auth == "user" and token.user is None:
            raise UserError(NEEDS_USER, status=422)
        return Caller(token.user, token)
    user = sessions.user_for_session(ctx, connection.cookies.get(sessions.COOKIE))
    if user is not None:
        if connection.scope["method"] not in SAFE_METHODS and not csrf_token_valid(connection, ctx.secret_key):
            raise Forbidden("A signed-in browser must send the CSRF token (x-csrf-token) with this request.")
        return Caller(user)
    if auth == "user":
        raise oauth.InvalidToken("The access token is invalid")
    return Caller(None)


def provide_caller(request: Request) -> Caller:
    return request.state.caller


# --- Request fields ------------------------------------------------------------------------------------------------


class Fields:
    """A request body's fields, whatever the encoding (JSON, form, multipart), with Mastodon's `name[]` lists."""

    def __init__(self, values: dict[str, list[Any]]):
        self.values = values

    def has(self, name: str) -> bool:
        return name in self.values

    def get(self, name: str, default: Any = None) -> Any:
        found = self.values.get(name)
        return found[0] if found else default

    def text(self, name: str, limit: int = 10_000) -> str | None:
        """The field as text (None when absent); a number is taken as its digits, anything else is a UserError."""
        value = self.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise UserError(f"{name} must be text.", field=name)
        return str(value)[:limit].replace("\r\n", "\n")

    def list(self, name: str) -> list[Any]:
        found = self.values.get(name, [])
        return found[0] if len(found) == 1 and isinstance(found[0], list) else found

    def bool(self, name: str) -> bool | None:
        return parse_bool(self.get(name), name)

    def file(self, name: str) -> UploadFile | None:
        value = self.get(name)
        return value if isinstance(value, UploadFile) else None


def parse_bool(value: Any, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "on", "yes"):
        return True
    if text in ("0", "false", "off", "no", ""):
        return False
    raise UserError(f"{name} must be true or false.", field=name)


class BadRequest(UserError):
    """A body that cannot be read at all (400), as opposed to a value the API refuses (422)."""


async def provide_fields(request: Request) -> Fields:
    """The body's fields. Query parameters count too, as Mastodon lets apps put a POST's fields in either."""
    values: dict[str, list[Any]] = {}
    for name, value in request.query_params.multi_items():
        values.setdefault(name.removesuffix("[]"), []).append(value)
    content_type, _ = request.content_type
    if content_type == "application/json":
        body = await request.body()
        if body.strip():
            try:
                parsed = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise BadRequest("The request body is not valid JSON.") from None
            if not isinstance(parsed, dict):
                raise BadRequest("The JSON body must be an object.")
            for name, value in parsed.items():
                values[name.removesuffix("[]")] = [value]
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        for name, value in form.multi_items():
            values.setdefault(name.removesuffix("[]"), []).append(value)
    return Fields(values)


# --- Parameters ----------------------------------------------------------------------------------------------------


def path_id(text: str) -> int:
    """An id from the URL; anything that is not one reads like a missing record."""
    value = ids.parse(text)
    if value is None:
        raise NotFound(RECORD_NOT_FOUND)
    return value


# --- Errors --------------------------------------------------------------------------------------------------------


def api_error(request: Request, exc: UserError) -> Response:
    """`{"error": ...}` with Mastodon's status: a value the API refuses is 422 Unprocessable Entity."""
    status = 422 if exc.status == 400 and not isinstance(exc, BadRequest) else exc.status
    headers = {"www-authenticate": 'Bearer error="invalid_token"'} if isinstance(exc, oauth.InvalidToken) else {}
    return Response({"error": exc.message}, status_code=status, headers=headers)


def validation_error(request: Request, exc: ValidationException) -> Response:
    """A parameter of the wrong type (limit=abc): which one, in words."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    names = [p.get("key") for p in problems if isinstance(p, dict) and p.get("key")]
    message = f"Invalid value for {', '.join(names)}." if names else "The request is malformed."
    return Response({"error": message}, status_code=400)


EXCEPTION_HANDLERS = {UserError: api_error, ValidationException: validation_error}
