"""The notifications page and the unread badge in the nav.

GET /notifications   the viewer's notifications, grouped, newest first (?before=<notification id> for older ones).
                     Opening the first page marks everything it showed as seen.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from jinja2 import pass_context
from litestar import Request, Router, get
from litestar.params import FromQuery
from litestar.response import Template

from app.services import graph, notifications
from app.web.deps import CtxDep, ViewerDep, page, require
from app.web.routes.social import cursor, is_htmx

log = logging.getLogger("pinhole.notifications")

PAGE = 30  # groups a page


def ago(ms: int) -> str:
    """How long ago, as a photo app says it: "now", "5m", "3h", "2d", "6w"."""
    seconds = max(0, int(time.time() - ms / 1000))
    for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return "now"


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


@pass_context
def unread_badge(context) -> int:
    """The nav badge's number for the signed-in viewer of the page being rendered (0 for anyone else). One
    bounded count on the viewer's shard; a page never fails over its badge."""
    request = context.get("request")
    viewer = getattr(getattr(request, "state", None), "viewer", None)
    if viewer is None:
        return 0
    try:
        return notifications.unread_count(request.app.state.ctx, viewer.id)
    except Exception:
        log.warning("could not count unread notifications", exc_info=True)
        return 0


@get("/notifications", sync_to_thread=True)
def notifications_page(request: Request, ctx: CtxDep, viewer: ViewerDep, before: FromQuery[str] = "") -> Template:
    user = require(viewer)
    result = notifications.page(ctx, user, cursor(before), PAGE)
    if not before and result.newest_id:
        notifications.mark_seen(ctx, user, result.newest_id)
    # Follow groups of one person carry a follow-back button: the viewer's relations to them, in one batch.
    followers = [g.actors[0].id for g in result.groups if g.kind == "follow" and g.actor_count == 1]
    context = {
        "groups": result.groups,
        "next_before": result.next_before,
        "rels": graph.relations(ctx, user, followers),
        "ago": ago,
        "iso": iso,
    }
    if is_htmx(request) and before:
        return page("notifications/_page.html", **context)
    return page("notifications/index.html", **context)


router = Router(path="", route_handlers=[notifications_page])
