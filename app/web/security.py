"""Response headers every page gets, and the client address we believe."""

from __future__ import annotations

import ipaddress
from hmac import compare_digest

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.middleware.csrf import CSRF_SECRET_LENGTH, generate_csrf_hash
from litestar.types import Message, Scope

from app.config import Config, media_origins

CSRF_COOKIE = "pinhole_csrf"
CSRF_HEADER = "x-csrf-token"

# No inline scripts anywhere; htmx runs from /static with its inline styles turned off.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def security_headers(config: Config):
    # Photos may come straight from the blob store or its CDN (the media route redirects there).
    csp = CSP.replace("img-src 'self' data: blob:", " ".join(["img-src 'self' data: blob:", *media_origins(config)]))
    static = [
        ("content-security-policy", csp),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
        ("permissions-policy", "camera=(), microphone=(), geolocation=(self)"),
        ("cross-origin-opener-policy", "same-origin"),
    ]
    if config.https:
        static.append(("strict-transport-security", "max-age=31536000; includeSubDomains"))

    async def before_send(message: Message, scope: Scope) -> None:
        if message["type"] == "http.response.start":
            headers = MutableScopeHeaders.from_message(message)
            for name, value in static:
                if name not in headers:
                    headers[name] = value

    return before_send


def client_ip(request: Request, trusted_proxies: list[str]) -> str:
    """The peer address, or the nearest untrusted X-Forwarded-For hop when the peer is our proxy."""
    peer = request.client.host if request.client else "unknown"
    if peer not in trusted_proxies:
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted_proxies:
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return peer


def csrf_token_valid(connection: ASGIConnection, secret: str) -> bool:
    """The check Litestar's CSRF middleware makes (the x-csrf-token header signed by us and equal to the cookie's
    token), for the API routes that skip the middleware because a bearer token needs none."""
    sent, cookie = connection.headers.get(CSRF_HEADER), connection.cookies.get(CSRF_COOKIE)
    if not sent or not cookie:
        return False
    tokens = [_signed_secret(value, secret) for value in (sent, cookie)]
    return tokens[0] is not None and tokens[1] is not None and compare_digest(tokens[0], tokens[1])


def _signed_secret(token: str, secret: str) -> str | None:
    value, signature = token[:CSRF_SECRET_LENGTH], token[CSRF_SECRET_LENGTH:]
    if len(value) < CSRF_SECRET_LENGTH or not signature:
        return None
    return value if compare_digest(signature, generate_csrf_hash(value, secret)) else None
