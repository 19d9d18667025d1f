"""OAuth 2 over HTTP: app registration, the consent page, the token and revocation endpoints, the server metadata
(RFC 8414) and Settings -> Apps. Thin: app/services/oauth.py does the work.

The token and revocation endpoints answer in RFC 6749's shape, `{"error": "invalid_grant", "error_description":
"..."}`; the consent page is an HTML form like the others (CSRF-protected) and sends a code only to a redirect URI
the app registered, or shows it (`urn:ietf:wg:oauth:2.0:oob`).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from app.api.base import TEXT, Fields, endpoint, provide_fields
from app.api.entities import iso
from app.context import Context
from app.errors import UserError
from app.services import oauth, ratelimit
from app.services.oauth import OOB, OAuthError
from app.web.deps import CtxDep, ViewerDep, ip_of, require, see_other
from app.web.security import CSP

FieldsDep = NamedDependency[Fields]
AUTHORIZE_FIELDS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)
GRANT_TYPES = ["authorization_code", "client_credentials", "refresh_token"]
_HOST = re.compile(r"^[a-z0-9.-]+$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
# What each scope lets an app do, in words for the consent page.
SCOPE_WORDS = {
    "read": "See everything your account can see: posts, profiles, followers, likes and notifications",
    "write": "Post, edit and delete photos, like, comment and change your profile for you",
    "follow": "Follow, unfollow, block and mute accounts for you",
    "push": "Receive push notifications",
    "profile": "See your name, username and profile photo",
}
SUBJECTS = {
    "accounts": "profiles",
    "blocks": "blocks",
    "bookmarks": "bookmarks",
    "favourites": "likes",
    "filters": "filters",
    "follows": "follows",
    "lists": "lists",
    "mutes": "mutes",
    "notifications": "notifications",
    "search": "search",
    "statuses": "posts",
    "conversations": "conversations",
    "media": "photo uploads",
    "reports": "reports",
}


def describe_scope(scope: str) -> str:
    if scope in SCOPE_WORDS:
        return SCOPE_WORDS[scope]
    top, _, subject = scope.partition(":")
    verb = "See" if top == "read" else "Change"
    return f"{verb} your {SUBJECTS.get(subject, subject)}"


def _rate_limit(ctx: Context, request: Request) -> None:
    ratelimit.limit(ctx, "oauth-ip", ip_of(request), ctx.config.limits.oauth_per_ip)


# --- App registration (part of the API router) ---------------------------------------------------------------------


def application(app: oauth.App, client_secret: str | None = None) -> dict[str, Any]:
    """Mastodon's Application entity (with its credentials when just created)."""
    entity: dict[str, Any] = {
        "id": str(app.id),
        "name": app.name,
        "website": app.website or None,
        "scopes": app.scopes,
        "redirect_uri": "\n".join(app.redirect_uris),
        "redirect_uris": app.redirect_uris,
        "vapid_key": "",
    }
    if client_secret is not None:
        entity.update(client_id=app.client_id, client_secret=client_secret, client_secret_expires_at=0)
    return entity


@endpoint(
    "POST",
    "/api/v1/apps",
    scope=None,
    auth="public",
    body={"client_name": TEXT, "redirect_uris": TEXT, "scopes": TEXT, "website": TEXT},
)
def create_app(request: Request, ctx: CtxDep, fields: FieldsDep) -> dict[str, Any]:
    """Register an app: its client_id and client_secret (keep the secret: it is shown this once)."""
    _rate_limit(ctx, request)
    uris = fields.list("redirect_uris")
    registered, secret = oauth.register_app(
        ctx,
        fields.text("client_name", 1000) or "",
        uris if len(uris) > 1 else fields.text("redirect_uris", 25_000),
        fields.text("scopes", 2000),
        fields.text("website", 1000) or "",
    )
    return application(registered, secret)


# --- The consent page ----------------------------------------------------------------------------------------------


def _csp_with_redirect(redirect_uri: str) -> str:
    """The site's CSP, letting this page's form lead to the app's redirect URI (browsers apply form-action to the
    redirect after a form is sent). Only a plain scheme and host go in: nothing from the URI can add a directive."""
    parts = urlsplit(redirect_uri)
    source = None
    if parts.scheme in ("http", "https"):
        host = parts.hostname or ""
        if _HOST.match(host):
            source = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
    elif redirect_uri != OOB and _SCHEME.match(parts.scheme):
        source = f"{parts.scheme}:"
    return CSP.replace("form-action 'self'", f"form-action 'self' {source}") if source else CSP


def _back_to_app(request: oauth.AuthorizationRequest, **params: str) -> Redirect:
    """Send the browser to the app's registered redirect URI with `params` (and the app's state)."""
    if request.state:
        params["state"] = request.state
    separator = "&" if urlsplit(request.redirect_uri).query else "?"
    return Redirect(request.redirect_uri + separator + urlencode(params), status_code=303)


def _check(ctx: Context, values: dict[str, str]) -> oauth.AuthorizationRequest | Redirect:
    """The request checked, or the redirect that tells the app what was wrong with it. Mistakes go back to the app
    only through a redirect URI it registered; otherwise (an unknown app, an unregistered URI) the OAuthError
    is shown on the page."""
    try:
        return oauth.check_authorization(ctx, **values)
    except OAuthError as exc:
        app, redirect = oauth.get_app(ctx, values["client_id"]), values["redirect_uri"]
        if app is None or redirect not in app.redirect_uris or redirect == OOB or exc.error == "invalid_client":
            raise
        back = oauth.AuthorizationRequest(app, redirect, [], values["state"][:1000], None)
        return _back_to_app(back, error=exc.error, error_description=exc.message)


def _consent_page(ctx: Context, values: dict[str, str], viewer) -> Response:
    checked = _check(ctx, values)
    if isinstance(checked, Redirect):
        return checked
    return Template(
        template_name="oauth/authorize.html",
        context={
            "app": checked.app,
            "values": values,
            "scopes": [(scope, describe_scope(scope)) for scope in checked.scopes],
            "user": viewer,
        },
        headers={"content-security-policy": _csp_with_redirect(checked.redirect_uri)},
    )


@get("/oauth/authorize", sync_to_thread=True)
def authorize_form(request: Request, ctx: CtxDep, viewer: ViewerDep) -> Response:
    values = {name: str(request.query_params.get(name, ""))[:2000] for name in AUTHORIZE_FIELDS}
    if viewer is None:
        # Sign in first, then back here with the whole request (the login redirect keeps only the path).
        return see_other("/login?next=" + quote(f"/oauth/authorize?{request.url.query}", safe=""))
    return _consent_page(ctx, values, viewer)


@post("/oauth/authorize", sync_to_thread=True)
def authorize(request: Request, ctx: CtxDep, viewer: ViewerDep, fields: FieldsDep) -> Response:
    user = require(viewer)
    values = {name: fields.text(name, 2000) or "" for name in AUTHORIZE_FIELDS}
    checked = _check(ctx, values)
    if isinstance(checked, Redirect):
        return checked
    if fields.text("decision") != "approve":
        if checked.redirect_uri == OOB:
            return see_other("/settings/apps")
        return _back_to_app(checked, error="access_denied", error_description="The user declined.")
    code = oauth.grant_code(ctx, user, checked)
    if checked.redirect_uri == OOB:
        return Template(template_name="oauth/code.html", context={"app": checked.app, "code": code})
    return _back_to_app(checked, code=code)


# --- Tokens --------------------------------------------------------------------------------------------------------


def _oauth_error(exc: UserError) -> Response:
    error = exc.error if isinstance(exc, OAuthError) else "invalid_request"
    status = exc.status if exc.status in (400, 401, 403, 429, 503) else 400
    headers = {"cache-control": "no-store"}
    if status == 401:
        headers["www-authenticate"] = 'Basic realm="Pinhole"'
    return Response({"error": error, "error_description": exc.message}, status_code=status, headers=headers)


def _client(ctx: Context, request: Request, fields: Fields) -> oauth.App:
    """The calling app, by HTTP Basic (RFC 6749 2.3.1) or client_id/client_secret in the body."""
    header = request.headers.get("authorization", "")
    if header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        client_id, _, secret = decoded.partition(":")
        return oauth.authenticate_client(ctx, unquote(client_id), unquote(secret))
    return oauth.authenticate_client(ctx, fields.text("client_id", 200), fields.text("client_secret", 200))


@post("/oauth/token", sync_to_thread=True, status_code=200, exclude_from_csrf=True)
def token(request: Request, ctx: CtxDep, fields: FieldsDep) -> Response:
    try:
        _rate_limit(ctx, request)
        app = _client(ctx, request, fields)
        grant_type = fields.text("grant_type", 100)
        if grant_type == "authorization_code":
            issued = oauth.exchange_code(
                ctx,
                app,
                fields.text("code", 200) or "",
                fields.text("redirect_uri", 2000) or "",
                fields.text("code_verifier", 200) or "",
            )
        elif grant_type == "client_credentials":
            issued = oauth.client_credentials(ctx, app, fields.text("scope", 2000))
        elif grant_type == "refresh_token":
            issued = oauth.refresh(ctx, app, fields.text("refresh_token", 200) or "", fields.text("scope", 2000))
        else:
            raise OAuthError("unsupported_grant_type", f"grant_type must be one of {', '.join(GRANT_TYPES)}.")
    except UserError as exc:
        return _oauth_error(exc)
    body: dict[str, Any] = {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "scope": " ".join(issued.scopes),
        "created_at": issued.created_at // 1000,
        "expires_in": issued.expires_in,
    }
    if issued.refresh_token:
        body["refresh_token"] = issued.refresh_token
    return Response(body, headers={"cache-control": "no-store"})


@post("/oauth/revoke", sync_to_thread=True, status_code=200, exclude_from_csrf=True)
def revoke(request: Request, ctx: CtxDep, fields: FieldsDep) -> Response:
    try:
        app = _client(ctx, request, fields)
        oauth.revoke(ctx, app, fields.text("token", 200) or "")
    except UserError as exc:
        return _oauth_error(exc)
    return Response({}, headers={"cache-control": "no-store"})


@get("/.well-known/oauth-authorization-server", sync_to_thread=False)
def server_metadata(ctx: CtxDep) -> dict[str, Any]:
    base = ctx.config.public_url
    return {
        "issuer": f"{base}/",
        "service_documentation": f"{base}/schema",
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "app_registration_endpoint": f"{base}/api/v1/apps",
        "scopes_supported": sorted(oauth.SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GRANT_TYPES,
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }


# --- Settings -> Apps ----------------------------------------------------------------------------------------------


@get("/settings/apps", sync_to_thread=True)
def apps_page(ctx: CtxDep, viewer: ViewerDep, revoked: FromQuery[str] = "") -> Template:
    user = require(viewer)
    apps = [
        (app, [describe_scope(s) for s in app.scopes], iso(app.first_authorized_at))
        for app in oauth.authorized_apps(ctx, user)
    ]
    return Template(template_name="oauth/apps.html", context={"user": user, "apps": apps, "revoked": revoked[:100]})


@post("/settings/apps/{client_id:str}/revoke", sync_to_thread=True)
def app_revoke(ctx: CtxDep, viewer: ViewerDep, client_id: FromPath[str]) -> Redirect:
    user = require(viewer)
    names = {app.client_id: app.name for app in oauth.authorized_apps(ctx, user)}
    oauth.revoke_app(ctx, user, client_id)
    return see_other("/settings/apps?revoked=" + quote(names.get(client_id, "")[:100], safe=""))


router = Router(
    path="/",
    route_handlers=[authorize_form, authorize, token, revoke, server_metadata, apps_page, app_revoke],
    dependencies={"fields": Provide(provide_fields)},
)
