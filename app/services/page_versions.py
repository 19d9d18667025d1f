"""A version per user of what their own home page shows, so the page can be kept rendered (app/web/home_pages.py).

The version changes on every write that changes what the user sees on their home page in a way they would notice at
once: their own likes, comments, edits, deletions, follows, mutes and blocks, their name or avatar in the nav, and
the unread count on their notification badge. The services that make those writes call `touch`. New posts in the
feed and posts leaving it need no touch: a kept page is also checked against the head of the user's feed. What
others do to posts on the page (their likes and comments, an author's edit) shows when the kept page expires, within
[feeds] page_cache_seconds.

Versions live in the key-value seam beside the sessions (a request for a kept page reads both), so a write on one app
node or worker is seen at once by every node. A version that expired or was lost reads as a new one, which only means
a page rendered again: a reader that finds none sets one before rendering, so no kept page is ever checked against
"no version".
"""

from __future__ import annotations

import logging
import secrets

from app.context import Context

log = logging.getLogger("pinhole.pages")

KEY = "pagever:{}"
TTL = 24 * 3600


def touch(ctx: Context, *user_ids: int) -> None:
    """What these users' home pages show has changed. Never raises: an outage of the store also stops pages being
    kept (reading a version fails)."""
    for user_id in user_ids:
        try:
            ctx.backends.kv.set(KEY.format(user_id), secrets.token_hex(8), TTL)
        except Exception:
            log.warning("could not mark user %s's pages changed", user_id, exc_info=True)


def current(ctx: Context, user_id: int) -> str:
    """The user's version now: read before rendering, so a write during the render leaves a version the rendered
    page does not carry. Raises when the store is down (then nothing is kept)."""
    kv = ctx.backends.kv
    version = kv.get(KEY.format(user_id))
    if version is None:
        version = secrets.token_hex(8)
        kv.set(KEY.format(user_id), version, TTL)
    return version
