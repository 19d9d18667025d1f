"""Explore, search and places. Thin: app.services.discover and app.services.places do the work.

GET /explore                     the search box, then the viewer's page of popular recent public posts
GET /explore?after=<n>           the next page (an htmx request from the scroll sentinel gets only the tiles)
GET /search?q=                   accounts and tags by prefix (`@ana`: accounts only, `#sun`: tags only); an htmx
                                 request from the search box gets only the results, a JSON one {accounts, tags};
                                 an empty query is Explore
GET /places/near?lat=&lon=&km=   posts within km of a point, nearest first (`before=` continues farther out);
                                 without parameters, the form
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, get
from litestar.params import FromQuery
from litestar.response import Template

from app.errors import UserError
from app.services import discover, places
from app.web.deps import CtxDep, ViewerDep, page, wants_json
from app.web.routes.posts import grid_srcset

EXPLORE_PAGE = discover.EXPLORE_PAGE
PLACES_PAGE = 30
DEFAULT_KM = "5"


def _fragment(request: Request) -> bool:
    """An htmx request for part of a page (not htmx restoring a whole page from its history)."""
    return request.headers.get("hx-request") == "true" and "hx-history-restore-request" not in request.headers


def _varies(template: Template) -> Template:
    template.headers["Vary"] = "HX-Request, Accept"  # one address answers a page, a fragment or JSON
    return template


def _explore_context(ctx, viewer, after: str = "") -> dict[str, Any]:
    explored = discover.explore_page(ctx, viewer, after[:32], EXPLORE_PAGE)
    return {"posts": explored.posts, "next_after": explored.next_after, "grid_srcset": grid_srcset}


@get("/explore", sync_to_thread=True)
def explore(request: Request, ctx: CtxDep, viewer: ViewerDep, after: FromQuery[str] = "") -> Template:
    context = _explore_context(ctx, viewer, after)
    if after and _fragment(request):
        return _varies(page("discover/_explore_page.html", **context))
    return _varies(page("discover/explore.html", q="", results=None, show_grid=True, **context))


@get("/search", sync_to_thread=True)
def search(request: Request, ctx: CtxDep, viewer: ViewerDep, q: FromQuery[str] = "") -> Template | Response:
    q = q[:1000]  # the service says what is too long; nothing longer is worth reading
    try:
        results = discover.search(ctx, viewer, q)
    except UserError as exc:
        if wants_json(request):
            raise
        if _fragment(request):
            return _varies(page("discover/_results.html", exc.status, results=None, error=exc))
        return _varies(page("discover/explore.html", exc.status, q=q, results=None, show_grid=False, error=exc))
    if wants_json(request):
        return Response(_json(results), headers={"Vary": "HX-Request, Accept"})
    if _fragment(request):
        return _varies(page("discover/_results.html", results=results if results.query else None))
    if not results.query:
        return _varies(
            page("discover/explore.html", q="", results=None, show_grid=True, **_explore_context(ctx, viewer))
        )
    return _varies(page("discover/explore.html", q=results.query, results=results, show_grid=False))


def _json(results: discover.SearchResults) -> dict[str, Any]:
    return {
        "query": results.query,
        "accounts": [
            {"id": str(u.id), "username": u.username, "display_name": u.display_name, "url": f"/@{u.username}"}
            for u in results.accounts
        ],
        "tags": [{"tag": t.tag, "post_count": t.post_count, "url": f"/tags/{t.tag}"} for t in results.tags],
    }


@get("/places/near", sync_to_thread=True)
def places_near(
    request: Request,
    ctx: CtxDep,
    viewer: ViewerDep,
    lat: FromQuery[str] = "",
    lon: FromQuery[str] = "",
    km: FromQuery[str] = "",
    before: FromQuery[str] = "",
) -> Template:
    form = {"lat": lat[:40].strip(), "lon": lon[:40].strip(), "km": km[:40].strip()}
    if not any(form.values()) and not before:
        return page("discover/places.html", form={"km": DEFAULT_KM}, found=None)
    try:
        found = places.near(ctx, viewer, form["lat"], form["lon"], form["km"], PLACES_PAGE, before[:64] or None)
    except UserError as exc:
        if wants_json(request):
            raise
        return page("discover/places.html", exc.status, form=form, found=None, error=exc)
    return page(
        "discover/places.html",
        form=form,
        found=found,
        point=places.parse_point(form["lat"], form["lon"], form["km"]),
        distance=distance_label,
        grid_srcset=grid_srcset,
    )


def distance_label(km: float) -> str:
    """How far, as precisely as is useful at that distance: "350 m away", "3.2 km away", "14 km away"."""
    if km < 0.01:
        return "Right here"
    if km < 1:
        return f"{max(10, round(km * 1000, -1)):.0f} m away"
    return f"{km:.1f} km away" if km < 10 else f"{km:.0f} km away"


router = Router(path="/", route_handlers=[explore, search, places_near])
