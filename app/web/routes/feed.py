"""The home page: the welcome page for visitors, the home feed for a signed-in viewer.

GET /                 the newest FEED_PAGE posts of the viewer's feed, as cards
GET /?before=<id>     older ones: a whole page, or (an htmx request from the scroll sentinel) just the next cards
                      and the next sentinel
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime

from litestar import Request, Response, Router, get
from litestar.params import FromQuery
from litestar.response import Template
from markupsafe import Markup

from app import ids
from app.context import Context
from app.errors import UserError
from app.services import feed, interactions
from app.services.accounts import User
from app.services.posts import Media, Post
from app.services.tags import render_caption
from app.web.cards import CardRenderer
from app.web.deps import CtxDep, ViewerDep, page
from app.web.home_pages import CHECK_STATE, FIRST_PAGE, KEEP_STATE
from app.web.routes.posts import _srcset as photo_srcset

FEED_PAGE = FIRST_PAGE  # posts a page; app/web/home_pages.py checks kept first pages against as many
BAD_CURSOR = "That link to older posts is broken (?before= must be a post id). Start again from the top of your feed."
UNITS = (("day", 86_400), ("hour", 3_600), ("minute", 60))
CAPTION_PREVIEW = 140  # characters of a caption shown on a card; the post page has the rest
# Feed pages are the most rendered pages: what a card derives from a caption or a photo alone is kept, per process,
# up to this many entries each (a pure function of its key, so nothing ever needs invalidating).
MEMO_SIZE = 4096
_captions: dict[str, tuple[Markup, bool]] = {}
_srcsets: dict[tuple[int, str], str] = {}


def time_ago(created_ms: int, now_ms: int) -> str:
    """Like "5 minutes ago" within a week, then the date, as photo apps show it."""
    seconds = max(0, (now_ms - created_ms) // 1000)
    if seconds < 60:
        return "just now"
    if seconds < 7 * 86_400:
        count, unit = next((seconds // size, unit) for unit, size in UNITS if seconds >= size)
        return f"{count} {unit}{'' if count == 1 else 's'} ago"
    moment = datetime.fromtimestamp(created_ms / 1000, tz=UTC)
    same_year = moment.year == datetime.fromtimestamp(now_ms / 1000, tz=UTC).year
    return f"{moment:%B} {moment.day}" + ("" if same_year else f", {moment.year}")


def card_caption(text: str) -> tuple[Markup, bool]:
    """The caption as a card shows it: cut at a word past CAPTION_PREVIEW (before linking, so no link is cut in
    half), #tags and @mentions linked; and whether it was cut."""
    found = _captions.get(text)
    if found is None:
        cut = len(text) > CAPTION_PREVIEW
        short = text[: CAPTION_PREVIEW - 1].rsplit(" ", 1)[0].rstrip() + "…" if cut else text
        found = (render_caption(short), cut)
        if len(_captions) >= MEMO_SIZE:
            _captions.clear()
        _captions[text] = found
    return found


def card_srcset(media: Media, fmt: str) -> str:
    """A photo's srcset: its renditions never change once it is ready."""
    key = (media.id, fmt)
    found = _srcsets.get(key)
    if found is None:
        if len(_srcsets) >= MEMO_SIZE:
            _srcsets.clear()
        found = _srcsets[key] = photo_srcset(media, fmt)
    return found


def iso_time(created_ms: int) -> str:
    return datetime.fromtimestamp(created_ms / 1000, tz=UTC).isoformat(timespec="seconds")


def _cursor(before: str) -> int | None:
    if not before:
        return None
    cursor = ids.parse(before[:32])
    if cursor is None:
        raise UserError(BAD_CURSOR)
    return cursor


def _cards(request: Request, ctx) -> CardRenderer:
    """This app's card renderer (made on the first feed page: it reads the card templates' text once)."""
    renderer = request.app.state.get("card_renderer")
    if renderer is None:
        env = request.app.template_engine.engine
        helpers = {"srcset": card_srcset, "card_caption": card_caption, "iso_time": iso_time}
        renderer = request.app.state["card_renderer"] = CardRenderer(ctx, env, helpers)
    return renderer


def page_digest(viewer: User, cards: list[Post], liked_ids: set[int], next_before: int | None, now: int) -> str:
    """What a first page shows, but for what its check covers (app/web/home_pages.py): the viewer, the posts as
    read (counts, captions, authors' names and avatars...), the viewer's likes of them, the link to older posts,
    and each post's time ago as shown (to the minute)."""
    shown = (viewer, cards, sorted(liked_ids), next_before, [time_ago(p.created_at, now) for p in cards])
    return hashlib.blake2b(repr(shown).encode(), digest_size=16).hexdigest()


def first_page_digest(ctx: Context, viewer: User) -> str:
    """page_digest of the viewer's first page as it would be rendered now."""
    cards, next_before = feed.home_feed(ctx, viewer, None, FEED_PAGE)
    liked_ids = interactions.liked_post_ids(ctx, viewer, [p.id for p in cards])
    return page_digest(viewer, cards, liked_ids, next_before, int(time.time() * 1000))


@get("/", sync_to_thread=True)
def home(request: Request, ctx: CtxDep, viewer: ViewerDep, before: FromQuery[str] = "") -> Template | Response:
    fragment = bool(before) and "hx-request" in request.headers and "hx-history-restore-request" not in request.headers
    if viewer is None:
        if fragment:  # signed out in another tab while scrolling: take the whole window to the login page
            return Response("", headers={"HX-Redirect": "/login?next=/"})
        return page("home/welcome.html", mode=ctx.config.accounts.registration)
    cursor = _cursor(before)
    check = request.state.get(CHECK_STATE)  # app/web/home_pages.py read it before this page was asked for
    cards, next_before = feed.home_feed(ctx, viewer, cursor, FEED_PAGE)
    liked_ids = interactions.liked_post_ids(ctx, viewer, [p.id for p in cards])  # the cards' hearts
    now = int(time.time() * 1000)
    context = {
        "user": viewer,
        "posts": cards,
        "liked_ids": liked_ids,
        "card_parts": _cards(request, ctx).parts(cards, cards[0].id if cards and cursor is None else None),
        "before": cursor,
        "next_before": next_before,
        "now_ms": now,
        "time_ago": time_ago,
    }
    template = page("home/_feed_page.html" if fragment else "home/home.html", **context)
    template.headers["Vary"] = "HX-Request"  # the same address answers a page or a fragment
    if check is not None and check.viewer_id == viewer.id and check.covers([p.id for p in cards], next_before):
        request.state[KEEP_STATE] = page_digest(viewer, cards, liked_ids, next_before, now)
    return template


router = Router(path="/", route_handlers=[home])
