"""Each signed-in viewer's first page of their home feed, kept rendered in this process for a few seconds.

The home page is the most requested page, and most requests for it find it as it was a moment ago. A kept page is
sent again, without reading or rendering a post, while all of these hold:
- it is younger than [feeds] page_cache_seconds: what others do to the posts on it (their likes and comments, an
  author's edit or new avatar) shows within that time, as in the photo apps people know;
- the viewer's page version is the one it was rendered at (app/services/page_versions.py): the viewer's own likes,
  comments, follows, mutes, blocks and profile, and their notification badge, show at once;
- the head of the viewer's feed is the one it was rendered from (feed.first_page_ids): a new post from someone they
  follow shows at once, and so does a post leaving their feed (unfollowed, blocked, removed as a follower, and once
  the post_deleted task ran, deleted);
- the request carries the CSRF cookie that the page's forms were rendered with.
A page is kept per viewer and sent only to that viewer's session: nothing rendered for one viewer reaches another.
Older pages and htmx fragments are rendered each time. Each process keeps at most MAX_PAGES pages.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.context import Context
from app.services import feed, page_versions
from app.services.accounts import User

log = logging.getLogger("pinhole.pages")

MAX_PAGES = 512  # about 40 KB each


@dataclass(frozen=True)
class PageCheck:
    version: str
    csrf_cookie: str
    head_ids: tuple[int, ...]

    def covers(self, post_ids: list[int], next_before: int | None) -> bool:
        """Whether a page of these posts was read from the head alone (not when most of it was skipped and the
        feed was read further down): only then does the head tell when the page is out of date."""
        return set(post_ids) <= set(self.head_ids) and (next_before is None or next_before in self.head_ids)


@dataclass(frozen=True)
class KeptPage:
    check: PageCheck
    expires: float
    body: bytes


class HomePages:
    def __init__(self, seconds: float, max_pages: int = MAX_PAGES, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self.max_pages = max_pages
        self.clock = clock
        self._pages: dict[int, KeptPage] = {}
        self._lock = threading.Lock()

    def check(self, ctx: Context, viewer: User, csrf_cookie: str | None, limit: int) -> PageCheck | None:
        """What a kept page must match to be sent: read before rendering, so that a write during a render leaves a
        check the rendered page does not carry. None when no page may be kept now (turned off, no CSRF cookie
        yet, or the cache seam is down)."""
        if not self.seconds or not csrf_cookie:
            return None
        try:
            version = page_versions.current(ctx, viewer.id)
        except Exception:
            log.warning("cache unavailable; the home page is rendered", exc_info=True)
            return None
        return PageCheck(version, csrf_cookie, tuple(feed.first_page_ids(ctx, viewer, limit)))

    def get(self, viewer_id: int, check: PageCheck) -> bytes | None:
        kept = self._pages.get(viewer_id)
        if kept is None or kept.check != check or kept.expires < self.clock():
            return None
        return kept.body

    def keep(self, viewer_id: int, check: PageCheck, body: bytes) -> None:
        with self._lock:
            self._pages.pop(viewer_id, None)
            self._pages[viewer_id] = KeptPage(check, self.clock() + self.seconds, body)
            while len(self._pages) > self.max_pages:  # the oldest kept first
                del self._pages[next(iter(self._pages))]
