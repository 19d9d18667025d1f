"""Fixed-window attempt counters: sign-in, sign-up and password changes, and follows, likes and comments."""

from __future__ import annotations

import hashlib

from app.context import Context
from app.errors import TooManyAttempts


def limit(ctx: Context, action: str, subject: str, allowed: int, too_many: str = "Too many attempts.") -> None:
    """Count one attempt at `action` by `subject` (an IP or account); refuse past `allowed`, saying `too_many`."""
    window = ctx.config.limits.window_seconds
    digest = hashlib.sha256(subject.encode("utf-8")).hexdigest()[:32]
    count = ctx.backends.kv.incr(f"rate:{action}:{digest}", window)
    if count > allowed:
        minutes = max(1, round(window / 60))
        raise TooManyAttempts(f"{too_many} Wait {minutes} minute{'s' if minutes > 1 else ''} and try again.")
