"""Server-side sessions in the configured key-value store.

The cookie holds a random token; the store keeps only its hash, the user id and the account's
session epoch. Logging out deletes the entry; changing the password bumps the epoch on the user row,
which ends every session of the account at once, on every device.
"""

from __future__ import annotations

import hashlib
import secrets

from app.context import Context
from app.services.accounts import User, get_user

COOKIE = "pinhole_session"


def _key(token: str) -> str:
    return "session:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(ctx: Context, user: User) -> str:
    """A fresh token (never reused from before login)."""
    token = secrets.token_urlsafe(32)
    ttl = ctx.config.sessions.lifetime_days * 86_400
    ctx.backends.kv.set(_key(token), {"user_id": user.id, "epoch": user.session_epoch}, ttl)
    return token


def user_for_session(ctx: Context, token: str | None) -> User | None:
    if not token or len(token) > 100:
        return None
    entry = ctx.backends.kv.get(_key(token))
    if not entry:
        return None
    user = get_user(ctx, entry["user_id"])
    if user is None or user.session_epoch != entry["epoch"]:
        return None
    return user


def end_session(ctx: Context, token: str | None) -> None:
    if token and len(token) <= 100:
        ctx.backends.kv.delete(_key(token))
