"""OAuth 2 for the Mastodon-compatible client API: apps, authorization codes (with PKCE), access and refresh tokens,
scopes, and the user's list of authorized apps. One function per mutation, used by the API, the consent page and
the settings page alike.

Where rows live (migration 0005): an app on the shard hashed from its client_id; a code, a token or a refresh token
on the shard hashed from its SHA-256 (the only way each is ever looked up), and the user's side of every token
(`oauth_grants`) on the user's shard. Only hashes are stored. Issuing writes the user's side first and revoking
deletes the token first, so a crash in between leaves at worst a listed grant whose token never works (revoking
it from settings tidies it), never a working token the user cannot see.

Scopes are Mastodon's: `read`, `write`, `follow`, `push`, `profile` and the sub-scopes `read:statuses`,
`write:media`, ... A granted `read` covers every `read:*`; the legacy `follow` covers reading and writing follows,
blocks and mutes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from app import ids
from app.clock import now_ms
from app.context import Context
from app.errors import UserError
from app.services.accounts import User, get_user

OOB = "urn:ietf:wg:oauth:2.0:oob"
CODE_TTL_MS = 10 * 60 * 1000
MAX_APP_NAME = 100
MAX_WEBSITE = 500
MAX_REDIRECT_URIS = 10
MAX_REDIRECT_URI = 2000
MAX_SCOPE_TEXT = 1000

_SUBSCOPES = {
    "read": (
        "accounts",
        "blocks",
        "bookmarks",
        "favourites",
        "filters",
        "follows",
        "lists",
        "mutes",
        "notifications",
        "search",
        "statuses",
    ),
    "write": (
        "accounts",
        "blocks",
        "bookmarks",
        "conversations",
        "favourites",
        "filters",
        "follows",
        "lists",
        "media",
        "mutes",
        "notifications",
        "reports",
        "statuses",
    ),
}
SCOPES = frozenset(
    {"read", "write", "follow", "push", "profile"}
    | {f"{top}:{sub}" for top, subs in _SUBSCOPES.items() for sub in subs}
)
# What the legacy `follow` scope still grants (Mastodon keeps it for old apps).
_FOLLOW_COVERS = frozenset(f"{rw}:{what}" for rw in ("read", "write") for what in ("follows", "blocks", "mutes"))
# Every scope a cookie-signed-in browser has: it is the account owner itself.
ALL_SCOPES = frozenset({"read", "write", "follow", "push", "profile"})
# Schemes that must never receive a code: they run in, or read from, the browser that shows the consent page.
_FORBIDDEN_SCHEMES = {"javascript", "data", "vbscript", "file", "blob", "about"}
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


class OAuthError(UserError):
    """An OAuth failure: `error` is the RFC 6749 code (invalid_grant, invalid_scope, ...), the message says what is
    wrong in words."""

    def __init__(self, error: str, message: str, status: int = 400):
        super().__init__(message, status=status)
        self.error = error


class InvalidToken(UserError):
    """The bearer token is unknown, revoked or expired (401, in Mastodon's words)."""

    status = 401


@dataclass(frozen=True)
class App:
    id: int
    client_id: str
    name: str
    website: str
    redirect_uris: list[str]
    scopes: list[str]
    created_at: int


@dataclass(frozen=True)
class AccessToken:
    """An authenticated request's token: whom it acts for (None: the app itself) and what it may do."""

    client_id: str
    user: User | None
    scopes: frozenset[str]

    def allows(self, needed: str) -> bool:
        return has_scope(self.scopes, needed)


@dataclass(frozen=True)
class IssuedToken:
    """What the token endpoint answers: the secrets exist only here, never in a row."""

    access_token: str
    scopes: list[str]
    created_at: int
    expires_in: int  # seconds
    refresh_token: str | None


@dataclass(frozen=True)
class AuthorizationRequest:
    """A checked request for a code: the app, where the code goes and what it may do."""

    app: App
    redirect_uri: str
    scopes: list[str]
    state: str
    code_challenge: str | None


@dataclass(frozen=True)
class AuthorizedApp:
    """One line of Settings -> Apps: an app holding tokens of the user's."""

    client_id: str
    name: str
    scopes: list[str]
    tokens: int
    first_authorized_at: int


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# --- Scopes --------------------------------------------------------------------------------------------------------


def parse_scopes(text: str | None, default: str = "read") -> list[str]:
    """Space-separated scopes (`+` too, as some apps send), each known, deduplicated in order; `default` when
    empty. OAuthError invalid_scope naming the unknown ones."""
    text = (text or "").strip()
    if len(text) > MAX_SCOPE_TEXT:
        raise OAuthError("invalid_scope", f"The scope list is {len(text)} characters; the limit is {MAX_SCOPE_TEXT}.")
    scopes = list(dict.fromkeys(text.replace("+", " ").split())) or default.split()
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise OAuthError(
            "invalid_scope",
            f"Unknown scope{'s' if len(unknown) > 1 else ''}: {', '.join(unknown[:5])}. Pinhole knows read, write,"
            " follow, push, profile and their sub-scopes such as read:statuses or write:media.",
        )
    return scopes


def has_scope(granted: Iterable[str], needed: str) -> bool:
    """Whether scopes `granted` allow `needed` (a scope or a sub-scope)."""
    granted = set(granted)
    if needed in granted:
        return True
    top = needed.split(":", 1)[0]
    return (":" in needed and top in granted) or (needed in _FOLLOW_COVERS and "follow" in granted)


def _within(requested: Iterable[str], allowed: Iterable[str]) -> bool:
    allowed = list(allowed)
    return all(has_scope(allowed, scope) for scope in requested)


# --- Apps ----------------------------------------------------------------------------------------------------------


def _checked_redirect_uris(text: str | list[str] | None) -> list[str]:
    items = text if isinstance(text, list) else (text or "").split()
    uris = list(dict.fromkeys(u.strip() for u in items if isinstance(u, str) and u.strip()))
    if not uris:
        raise UserError(
            f"Give redirect_uris: an address of your app, or {OOB} to show the code.", field="redirect_uris"
        )
    if len(uris) > MAX_REDIRECT_URIS:
        raise UserError(f"Register up to {MAX_REDIRECT_URIS} redirect URIs.", field="redirect_uris")
    for uri in uris:
        if uri != OOB:
            check_redirect_uri(uri)
    return uris


def check_redirect_uri(uri: str) -> None:
    """An absolute URI with no fragment, not in a scheme that would run in the browser, or a UserError."""
    if len(uri) > MAX_REDIRECT_URI:
        raise UserError(f"A redirect URI is limited to {MAX_REDIRECT_URI} characters.", field="redirect_uris")
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 (urlsplit checks the port only when asked)
    except ValueError:
        parts = None
    if (
        parts is None
        or not _SCHEME.match(parts.scheme)
        or parts.fragment
        or "#" in uri
        or not uri.isascii()
        or any(c.isspace() or ord(c) < 32 for c in uri)
    ):
        raise UserError(f"{uri[:80]!r} is not an absolute URI without a #fragment.", field="redirect_uris")
    if parts.scheme in _FORBIDDEN_SCHEMES:
        raise UserError(f"A redirect URI may not use the {parts.scheme}: scheme.", field="redirect_uris")
    if parts.scheme in ("http", "https") and not parts.hostname:
        raise UserError(f"{uri[:80]!r} names no host.", field="redirect_uris")


def register_app(
    ctx: Context, name: str, redirect_uris: str | list[str] | None, scopes: str | None, website: str = ""
) -> tuple[App, str]:
    """A new app and its client secret (shown to the app once; only its hash is kept)."""
    name = " ".join((name or "").split())
    if not name:
        raise UserError("Give client_name: the name people see when they authorize your app.", field="client_name")
    if len(name) > MAX_APP_NAME:
        raise UserError(f"client_name is limited to {MAX_APP_NAME} characters.", field="client_name")
    website = (website or "").strip()
    if len(website) > MAX_WEBSITE:
        raise UserError(f"website is limited to {MAX_WEBSITE} characters.", field="website")
    if website and urlsplit(website).scheme not in ("http", "https"):
        raise UserError("website must be an http:// or https:// address.", field="website")
    uris = _checked_redirect_uris(redirect_uris)
    granted = parse_scopes(scopes)
    client_id, client_secret = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    shard = ctx.db.shard_for_key(client_id)
    now = now_ms()
    with ctx.db.write(shard) as conn:
        app_id = ids.next_id(conn, shard)
        conn.run(
            "INSERT INTO oauth_apps (client_id, id, secret_hash, name, website, redirect_uris, scopes, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (client_id, app_id, _hash(client_secret), name, website, "\n".join(uris), " ".join(granted), now),
        )
    return App(app_id, client_id, name, website, uris, granted, now), client_secret


def _app(row: dict) -> App:
    return App(
        id=row["id"],
        client_id=row["client_id"],
        name=row["name"],
        website=row["website"],
        redirect_uris=row["redirect_uris"].split("\n"),
        scopes=row["scopes"].split(),
        created_at=row["created_at"],
    )


def get_app(ctx: Context, client_id: str | None) -> App | None:
    if not client_id or len(client_id) > 100:
        return None
    with ctx.db.read(ctx.db.shard_for_key(client_id)) as conn:
        row = conn.one("SELECT * FROM oauth_apps WHERE client_id = ?", (client_id,))
    return _app(row) if row else None


def authenticate_client(ctx: Context, client_id: str | None, client_secret: str | None) -> App:
    """The app whose id and secret these are, or OAuthError invalid_client (401)."""
    if client_id and client_secret and len(client_secret) <= 100:
        with ctx.db.read(ctx.db.shard_for_key(client_id)) as conn:
            row = conn.one("SELECT * FROM oauth_apps WHERE client_id = ?", (client_id[:100],))
        if row and hmac.compare_digest(row["secret_hash"], _hash(client_secret)):
            return _app(row)
    raise OAuthError("invalid_client", "Client authentication failed: unknown client_id or wrong client_secret.", 401)


# --- Authorization codes -------------------------------------------------------------------------------------------


def check_authorization(
    ctx: Context,
    *,
    client_id: str,
    redirect_uri: str,
    response_type: str,
    scope: str,
    state: str = "",
    code_challenge: str = "",
    code_challenge_method: str = "",
) -> AuthorizationRequest:
    """The consent page's request, checked. OAuthError with status 400 for an unknown app or a redirect URI it did
    not register (shown on the page: never sent anywhere); other mistakes are OAuthErrors the caller may send back
    to the (registered) redirect URI."""
    app = get_app(ctx, client_id)
    if app is None:
        raise OAuthError("invalid_client", "This link names an app that isn't registered here. Ask the app again.")
    redirect_uri = (redirect_uri or "").strip()
    if redirect_uri not in app.redirect_uris:
        raise OAuthError(
            "invalid_request", "The app asked to send you to an address it didn't register, so it can't be authorized."
        )
    return AuthorizationRequest(
        app=app,
        redirect_uri=redirect_uri,
        scopes=_checked_request_details(app, response_type, scope, code_challenge, code_challenge_method),
        state=(state or "")[:1000],
        code_challenge=code_challenge or None,
    )


def _checked_request_details(
    app: App, response_type: str, scope: str, code_challenge: str, code_challenge_method: str
) -> list[str]:
    if response_type != "code":
        raise OAuthError("unsupported_response_type", "Only response_type=code is supported.")
    scopes = parse_scopes(scope)
    if not _within(scopes, app.scopes):
        raise OAuthError("invalid_scope", f"The app asked for more than it registered ({' '.join(app.scopes)}).")
    if code_challenge or code_challenge_method:
        if code_challenge_method != "S256":
            raise OAuthError("invalid_request", "PKCE needs code_challenge_method=S256 (plain is not accepted).")
        if not _CHALLENGE.match(code_challenge or ""):
            raise OAuthError("invalid_request", "code_challenge must be 43 to 128 characters of base64url.")
    return scopes


def grant_code(ctx: Context, user: User, request: AuthorizationRequest) -> str:
    """The user approved: a single-use code for the app, valid for ten minutes."""
    code = secrets.token_urlsafe(32)
    code_hash = _hash(code)
    with ctx.db.write(ctx.db.shard_for_key(code_hash)) as conn:
        conn.run(
            "INSERT INTO oauth_codes (code_hash, client_id, user_id, redirect_uri, scopes, code_challenge, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                code_hash,
                request.app.client_id,
                user.id,
                request.redirect_uri,
                " ".join(request.scopes),
                request.code_challenge,
                now_ms() + CODE_TTL_MS,
            ),
        )
    return code


def pkce_challenge(verifier: str) -> str:
    """The S256 challenge of a PKCE verifier (RFC 7636 4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


def exchange_code(ctx: Context, app: App, code: str, redirect_uri: str, code_verifier: str = "") -> IssuedToken:
    """An authorization code for tokens. The code must be this app's, unexpired, sent with the same redirect URI
    and (when a PKCE challenge came with it) the matching verifier; anything wrong is invalid_grant and leaves the
    code as it was. A code works once."""
    if not code or len(code) > 100:
        raise OAuthError("invalid_grant", "The authorization code is missing or malformed.")
    code_hash = _hash(code)
    with ctx.db.write(ctx.db.shard_for_key(code_hash)) as conn:
        row = conn.one("SELECT * FROM oauth_codes WHERE code_hash = ?", (code_hash,))
        if row is None or row["expires_at"] <= now_ms():
            raise OAuthError("invalid_grant", "The authorization code is unknown, used or expired. Authorize again.")
        if row["client_id"] != app.client_id:
            raise OAuthError("invalid_grant", "The authorization code was issued to another app.")
        if row["redirect_uri"] != (redirect_uri or "").strip():
            raise OAuthError("invalid_grant", "redirect_uri must be the one the code was requested with.")
        if row["code_challenge"] is not None:
            verifier = code_verifier or ""
            if not _CHALLENGE.match(verifier) or not hmac.compare_digest(
                pkce_challenge(verifier), row["code_challenge"]
            ):
                raise OAuthError("invalid_grant", "The PKCE code_verifier does not match the code_challenge.")
        if not conn.run("DELETE FROM oauth_codes WHERE code_hash = ?", (code_hash,)):
            raise OAuthError("invalid_grant", "The authorization code is unknown, used or expired. Authorize again.")
    user = get_user(ctx, row["user_id"])
    if user is None:
        raise OAuthError("invalid_grant", "The account that authorized this code no longer exists.")
    return _issue(ctx, app, user, row["scopes"].split(), with_refresh=True)


# --- Tokens --------------------------------------------------------------------------------------------------------


def client_credentials(ctx: Context, app: App, scope: str | None) -> IssuedToken:
    """A token for the app itself (no user): it can read public things and check its own credentials."""
    scopes = parse_scopes(scope)
    if not _within(scopes, app.scopes):
        raise OAuthError("invalid_scope", f"The app asked for more than it registered ({' '.join(app.scopes)}).")
    return _issue(ctx, app, None, scopes, with_refresh=False)


def refresh(ctx: Context, app: App, refresh_token: str, scope: str | None = None) -> IssuedToken:
    """A new access and refresh token for a refresh token of this app; the old pair stops working. `scope` may
    narrow what the old token had, never widen it."""
    if not refresh_token or len(refresh_token) > 100:
        raise OAuthError("invalid_grant", "The refresh token is missing or malformed.")
    refresh_hash = _hash(refresh_token)
    shard = ctx.db.shard_for_key(refresh_hash)
    with ctx.db.read(shard) as conn:
        row = conn.one("SELECT * FROM oauth_refresh_tokens WHERE refresh_hash = ?", (refresh_hash,))
    if row is None:
        raise OAuthError("invalid_grant", "The refresh token is unknown or was revoked. Authorize again.")
    if row["client_id"] != app.client_id:
        raise OAuthError("invalid_grant", "The refresh token was issued to another app.")
    scopes = parse_scopes(scope, default=row["scopes"]) if scope else row["scopes"].split()
    if not _within(scopes, row["scopes"].split()):
        raise OAuthError("invalid_scope", f"A refreshed token may not ask for more than {row['scopes']}.")
    user = get_user(ctx, row["user_id"])
    if user is None:
        raise OAuthError("invalid_grant", "The account that authorized this app no longer exists.")
    with ctx.db.write(shard) as conn:
        if not conn.run("DELETE FROM oauth_refresh_tokens WHERE refresh_hash = ?", (refresh_hash,)):
            raise OAuthError("invalid_grant", "The refresh token is unknown or was revoked. Authorize again.")
    _delete_token(ctx, row["token_hash"])
    with ctx.db.write(user.shard) as conn:
        conn.run("DELETE FROM oauth_grants WHERE user_id = ? AND token_hash = ?", (user.id, row["token_hash"]))
    return _issue(ctx, app, user, scopes, with_refresh=True)


def _issue(ctx: Context, app: App, user: User | None, scopes: list[str], *, with_refresh: bool) -> IssuedToken:
    token = secrets.token_urlsafe(32)
    token_hash = _hash(token)
    refresh_token = secrets.token_urlsafe(32) if with_refresh else None
    refresh_hash = _hash(refresh_token) if refresh_token else None
    now = now_ms()
    lifetime_ms = ctx.config.api.access_token_days * 86_400_000
    scope_text = " ".join(scopes)
    if user is not None:
        with ctx.db.write(user.shard) as conn:
            conn.run(
                "INSERT INTO oauth_grants (user_id, token_hash, refresh_hash, client_id, app_name, scopes, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (user.id, token_hash, refresh_hash, app.client_id, app.name, scope_text, now),
            )
    with ctx.db.write(ctx.db.shard_for_key(token_hash)) as conn:
        conn.run(
            "INSERT INTO oauth_tokens (token_hash, client_id, user_id, scopes, session_epoch, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                token_hash,
                app.client_id,
                user.id if user else None,
                scope_text,
                user.session_epoch if user else 0,
                now,
                now + lifetime_ms,
            ),
        )
    if refresh_hash is not None and user is not None:
        with ctx.db.write(ctx.db.shard_for_key(refresh_hash)) as conn:
            conn.run(
                "INSERT INTO oauth_refresh_tokens (refresh_hash, token_hash, client_id, user_id, scopes, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (refresh_hash, token_hash, app.client_id, user.id, scope_text, now),
            )
    return IssuedToken(token, scopes, now, lifetime_ms // 1000, refresh_token)


def authenticate(ctx: Context, token: str) -> AccessToken:
    """The access token of a request, or InvalidToken (unknown, revoked, expired, or its user's password changed)."""
    if not token or len(token) > 100:
        raise InvalidToken("The access token is invalid")
    token_hash = _hash(token)
    with ctx.db.read(ctx.db.shard_for_key(token_hash)) as conn:
        row = conn.one("SELECT * FROM oauth_tokens WHERE token_hash = ?", (token_hash,))
    if row is None:
        raise InvalidToken("The access token is invalid")
    if row["expires_at"] <= now_ms():
        raise InvalidToken("The access token expired")
    user = None
    if row["user_id"] is not None:
        user = get_user(ctx, row["user_id"])
        if user is None or user.session_epoch != row["session_epoch"]:
            raise InvalidToken("The access token was revoked")
    return AccessToken(row["client_id"], user, frozenset(row["scopes"].split()))


def revoke(ctx: Context, app: App, token: str) -> None:
    """RFC 7009: the app revokes one of its access or refresh tokens (with its pair). An unknown token is fine
    (already gone); a token of another app is refused (unauthorized_client, 403) and stays valid."""
    if not token or len(token) > 100:
        return
    secret_hash = _hash(token)
    with ctx.db.read(ctx.db.shard_for_key(secret_hash)) as conn:
        access = conn.one("SELECT client_id, user_id FROM oauth_tokens WHERE token_hash = ?", (secret_hash,))
        renewal = conn.one(
            "SELECT client_id, user_id, token_hash FROM oauth_refresh_tokens WHERE refresh_hash = ?", (secret_hash,)
        )
    found = access or renewal
    if found is None:
        return
    if found["client_id"] != app.client_id:
        raise OAuthError("unauthorized_client", "You are not authorized to revoke this token.", 403)
    token_hash = secret_hash if access else renewal["token_hash"]  # type: ignore[index]
    _delete_token(ctx, token_hash, None if access else secret_hash)
    if found["user_id"] is not None:
        _revoke_grants(ctx, found["user_id"], "token_hash = ?", (token_hash,))


def _delete_token(ctx: Context, token_hash: str, refresh_hash: str | None = None) -> None:
    with ctx.db.write(ctx.db.shard_for_key(token_hash)) as conn:
        conn.run("DELETE FROM oauth_tokens WHERE token_hash = ?", (token_hash,))
    if refresh_hash:
        with ctx.db.write(ctx.db.shard_for_key(refresh_hash)) as conn:
            conn.run("DELETE FROM oauth_refresh_tokens WHERE refresh_hash = ?", (refresh_hash,))


def _revoke_grants(ctx: Context, user_id: int, where: str, params: tuple) -> int:
    """Delete the user's grants matching `where`: each token (and refresh token) first, then the listing."""
    shard = ids.shard_of(user_id)
    with ctx.db.read(shard) as conn:
        grants = conn.all(
            f"SELECT token_hash, refresh_hash FROM oauth_grants WHERE user_id = ? AND {where}", (user_id, *params)
        )
    for grant in grants:
        _delete_token(ctx, grant["token_hash"], grant["refresh_hash"])
        with ctx.db.write(shard) as conn:
            conn.run("DELETE FROM oauth_grants WHERE user_id = ? AND token_hash = ?", (user_id, grant["token_hash"]))
    return len(grants)


# --- The user's authorized apps ------------------------------------------------------------------------------------


def authorized_apps(ctx: Context, user: User) -> list[AuthorizedApp]:
    """The apps holding the user's tokens, most recently authorized first (one query on the user's shard)."""
    with ctx.db.read(user.shard) as conn:
        rows = conn.all(
            "SELECT client_id, app_name, scopes, created_at FROM oauth_grants WHERE user_id = ? ORDER BY created_at",
            (user.id,),
        )
    apps: dict[str, AuthorizedApp] = {}
    for row in rows:
        seen = apps.get(row["client_id"])
        scopes = list(dict.fromkeys([*(seen.scopes if seen else []), *row["scopes"].split()]))
        apps[row["client_id"]] = AuthorizedApp(
            client_id=row["client_id"],
            name=row["app_name"],
            scopes=scopes,
            tokens=(seen.tokens if seen else 0) + 1,
            first_authorized_at=seen.first_authorized_at if seen else row["created_at"],
        )
    return sorted(apps.values(), key=lambda a: a.first_authorized_at, reverse=True)


def revoke_app(ctx: Context, user: User, client_id: str) -> int:
    """The user takes back every token an app holds for them; returns how many. NotFound-free: an app with none
    left simply has nothing more to revoke."""
    return _revoke_grants(ctx, user.id, "client_id = ?", ((client_id or "")[:100],))
