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
A page is kept per viewer and sent only to a request signed in as that viewer: nothing rendered for one viewer
reaches another. Older pages and htmx fragments are rendered each time. Each process keeps at most MAX_PAGES pages.

`serve_kept_pages` wraps the app: it answers GET / with a current kept page before Litestar routes the request (whose
routing, dependencies and response building cost more than the check itself), and keeps the page the home route
marks keepable, with the headers the app sent it with. Both go through the rest of the stack as any answer does
(security headers, request id, metrics). A kept page asked for late in its time is also looked at again in the
background (REFRESH_AHEAD), so an active viewer's requests are answered from kept pages while what others did still
shows within page_cache_seconds: the page is kept for another page_cache_seconds if a digest of what it shows
(routes/feed.py page_digest: the posts as read, the viewer's likes, each post's time ago) is the one it was
rendered from, and rendered again if not. Reading the posts costs a fraction of rendering them, and most pages
have not changed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.context import Context
from app.services import feed, page_versions, sessions
from app.services.accounts import User
from app.web.security import CSRF_COOKIE

log = logging.getLogger("pinhole.pages")

MAX_PAGES = 512  # about 40 KB each
# A kept page asked for when this share of its time has passed is sent, and rendered again in the background: a
# viewer who keeps coming back never waits for a render that only the clock asked for.
REFRESH_AHEAD = 0.8
FIRST_PAGE = 10  # posts on the first page of the home feed (app/web/routes/feed.py FEED_PAGE)
CHECK_STATE = "home_page_check"  # in the request's state: the check the home route renders under
KEEP_STATE = "keep_home_page"  # set by the home route to the page's digest: the page it answers may be kept


@dataclass(frozen=True)
class PageCheck:
    viewer_id: int
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
    digest: str  # of what the page shows beyond its check (routes/feed.py page_digest)
    refresh_after: float
    expires: float
    headers: list[tuple[bytes, bytes]]
    body: bytes


class HomePages:
    def __init__(
        self,
        ctx: Context,
        digest: Callable[[Context, User], str],
        max_pages: int = MAX_PAGES,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ctx = ctx
        self.digest = digest  # the page_digest of a viewer's first page as it would be rendered now
        config = ctx.config
        self.seconds = config.feeds.page_cache_seconds
        # The check reads the session and the page version (the key-value seam) and the feed's head. Where those
        # are SQLite files (rungs 0 and 1) the reads cost less than handing the request to a thread and back, which
        # under load waits for the GIL; over the network (PostgreSQL, Redis) the event loop must not wait on them,
        # so they run in a thread as handlers do.
        local = (config.database.backend, config.sessions.backend, config.feeds.backend)
        self.check_in_loop = local == ("sqlite", "sqlite", "sql")
        self.max_pages = max_pages
        self.clock = clock
        self._pages: dict[int, KeptPage] = {}
        self._refreshing: set[int] = set()  # viewers whose page is being rendered again in the background
        self._lock = threading.Lock()

    def check(self, viewer: User, csrf_cookie: str | None) -> PageCheck | None:
        """What a kept page must match to be sent: read before rendering, so that a write during a render leaves a
        check the rendered page does not carry. None when no page may be kept now (turned off, no CSRF cookie
        yet, or the key-value seam is down)."""
        if not self.seconds or not csrf_cookie:
            return None
        try:
            version = page_versions.current(self.ctx, viewer.id)
        except Exception:
            log.warning("page versions unavailable; the home page is rendered", exc_info=True)
            return None
        return PageCheck(viewer.id, version, csrf_cookie, tuple(feed.first_page_ids(self.ctx, viewer, FIRST_PAGE)))

    def __len__(self) -> int:
        return len(self._pages)

    def get(self, check: PageCheck) -> KeptPage | None:
        kept = self._pages.get(check.viewer_id)
        if kept is None or kept.check != check or kept.expires < self.clock():
            return None
        return kept

    def keep(self, check: PageCheck, digest: str, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        with self._lock:
            self._pages.pop(check.viewer_id, None)
            now = self.clock()
            kept = KeptPage(check, digest, now + self.seconds * REFRESH_AHEAD, now + self.seconds, headers, body)
            self._pages[check.viewer_id] = kept
            while len(self._pages) > self.max_pages:  # the oldest kept first
                del self._pages[next(iter(self._pages))]

    def start_refresh(self, kept: KeptPage) -> bool:
        """Whether the page is due to be rendered again ahead of its expiry and nobody is at it already."""
        with self._lock:
            if self.clock() < kept.refresh_after or kept.check.viewer_id in self._refreshing:
                return False
            self._refreshing.add(kept.check.viewer_id)
            return True

    def refresh_done(self, viewer_id: int) -> None:
        with self._lock:
            self._refreshing.discard(viewer_id)

    def revalidate(self, kept: KeptPage, session_token: str, csrf_cookie: str) -> PageCheck | None:
        """A kept page late in its time: kept for another page_cache_seconds if it is still current and shows what
        it was rendered from (None), else the check to render it again under (None too if nothing may be kept)."""
        viewer = sessions.user_for_session(self.ctx, session_token)
        check = self.check(viewer, csrf_cookie) if viewer is not None else None
        if check is None or check != kept.check or self.digest(self.ctx, viewer) != kept.digest:
            return check
        self.keep(check, kept.digest, kept.headers, kept.body)
        return None

    def lookup(self, session_token: str, csrf_cookie: str) -> tuple[PageCheck | None, KeptPage | None]:
        """The check for the signed-in viewer of this session, and their kept page if it is current."""
        viewer = sessions.user_for_session(self.ctx, session_token)
        check = self.check(viewer, csrf_cookie) if viewer is not None else None
        return check, (self.get(check) if check is not None else None)


def serve_kept_pages(app: ASGIApp, pages: HomePages) -> ASGIApp:
    refreshes: set[asyncio.Task] = set()  # held until done: the event loop keeps only weak references to tasks

    async def lookup(cookies: tuple[str, str]) -> tuple[PageCheck | None, KeptPage | None]:
        if pages.check_in_loop:
            return pages.lookup(*cookies)
        return await asyncio.get_running_loop().run_in_executor(None, pages.lookup, *cookies)

    async def render_and_keep(scope: Scope, receive: Receive, send: Send, check: PageCheck) -> None:
        """The app answers as usual; the page is kept on its way out if the home route marked it keepable."""
        scope["state"][CHECK_STATE] = check
        start: Message | None = None
        body: list[bytes] = []

        async def send_and_keep(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                # The headers as the app gave them: what is sent next adds its own (request id, security headers)
                # to this list, for this answer only.
                start = {**message, "headers": list(message["headers"])}
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body") and _keepable(scope, start):
                    pages.keep(check, scope["state"][KEEP_STATE], list(start["headers"]), b"".join(body))
            await send(message)

        await app(scope, receive, send_and_keep)

    async def refresh(scope: Scope, cookies: tuple[str, str], kept: KeptPage) -> None:
        """Keep the viewer's page longer if it shows what it did, else render it again as their own request would,
        answering no one, and keep that. The posts are read in a thread: nobody waits for this."""
        viewer_id = kept.check.viewer_id
        try:
            check = await asyncio.get_running_loop().run_in_executor(None, pages.revalidate, kept, *cookies)
            if check is not None:
                await render_and_keep({**scope, "state": {}}, _empty_body, _nowhere, check)
        except Exception:
            log.exception("could not render the home page of user %s again", viewer_id)
        finally:
            pages.refresh_done(viewer_id)

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        cookies = _home_page_cookies(scope) if pages.seconds else None
        if cookies is None:
            await app(scope, receive, send)
            return
        try:
            check, kept = await lookup(cookies)
        except Exception:  # a store is down: the app answers as it does then
            log.warning("could not look for a kept home page", exc_info=True)
            check, kept = None, None
        if kept is not None:
            if pages.start_refresh(kept):
                task = asyncio.create_task(refresh(dict(scope), cookies, kept))
                refreshes.add(task)
                task.add_done_callback(refreshes.discard)
            scope["path_template"] = "/"  # for the metrics, as the route would be counted
            await send({"type": "http.response.start", "status": 200, "headers": list(kept.headers)})
            await send({"type": "http.response.body", "body": kept.body})
        elif check is not None:
            await render_and_keep(scope, receive, send, check)
        else:
            await app(scope, receive, send)

    return middleware


async def _empty_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _nowhere(message: Message) -> None:
    """Where a page rendered in the background is sent: it is only kept."""


def _home_page_cookies(scope: Scope) -> tuple[str, str] | None:
    """(session token, CSRF cookie) of a whole-page GET / from a browser that has both, else None."""
    if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] != "/" or scope["query_string"]:
        return None
    cookie_header = b""
    for name, value in scope["headers"]:
        if name == b"hx-request":
            return None  # the same address answers htmx with a fragment
        if name == b"cookie":
            cookie_header = value
    # Both cookies are URL-safe tokens: "name=value" pairs split at "; " is all it takes (a value in quotes, or
    # anything else unusual, finds no page and goes to the app, which reads cookies its own way).
    found = {}
    for pair in cookie_header.decode("latin-1").split(";"):
        name, _, value = pair.strip().partition("=")
        if name in (sessions.COOKIE, CSRF_COOKIE):
            found[name] = value
    session, csrf = found.get(sessions.COOKIE), found.get(CSRF_COOKIE)
    return (session, csrf) if session and csrf else None


def _keepable(scope: Scope, start: Message | None) -> bool:
    """The home route said so, and the answer is a whole 200 page that sets no cookie."""
    if start is None or start["status"] != 200 or not scope["state"].get(KEEP_STATE):
        return False
    return not any(name.lower() == b"set-cookie" for name, _ in start["headers"])
