"""Mastodon's pagination: `max_id`, `since_id`, `min_id` and `limit` in, a `Link` header out.

Pinhole's lists are read newest first, older than a cursor (`WHERE id < cursor ORDER BY id DESC`), by a function
`fetch(before, n) -> (items, next cursor or None)`. On top of that:

- `max_id` (or nothing): the page older than it, as read;
- `since_id`: the newest page, cut where it reaches since_id (anything newer than it, newest first);
- `min_id`: the page just newer than min_id, found by reading down from the top to it, at most MIN_ID_READS items
  (a min_id further down than that gets the oldest page read so far, all still newer than it).

Link: `rel="next"` (max_id = the last item) when there is more, `rel="prev"` (min_id = the first item) when the page
has items, both with the request's other parameters kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import urlencode

from litestar import Request, Response

from app import ids
from app.api.base import BadRequest

T = TypeVar("T")
MIN_ID_READS = 2000
Fetch = Callable[[int | None, int], tuple[list[T], int | None]]


@dataclass(frozen=True)
class PageRequest:
    max_id: int | None
    since_id: int | None
    min_id: int | None
    limit: int


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    more: bool  # whether an older page may follow


def page_request(request: Request, default: int = 20, maximum: int = 40) -> PageRequest:
    """The paging parameters of a request. `limit` is clamped to 1..maximum as Mastodon does (limit=100000 reads 40);
    an id or a limit that is not a number is a 400."""
    query = request.query_params
    return PageRequest(
        max_id=_cursor(query.get("max_id"), "max_id"),
        since_id=_cursor(query.get("since_id"), "since_id"),
        min_id=_cursor(query.get("min_id"), "min_id"),
        limit=parse_limit(query.get("limit"), default, maximum),
    )


def _cursor(text: str | None, name: str) -> int | None:
    if text is None or text == "":
        return None
    if text.isascii() and text.isdigit() and len(text) <= 20:
        return min(int(text), ids.MAX_ID + 1)  # a huge cursor reads like the top
    raise BadRequest(f"{name} must be an id (digits).")


def parse_limit(text: str | None, default: int, maximum: int) -> int:
    if text is None or text == "":
        return default
    try:
        value = abs(int(text))
    except ValueError:
        raise BadRequest("limit must be a number.") from None
    return max(1, min(value, maximum))


def paginate(fetch: Fetch[T], wanted: PageRequest, key: Callable[[T], int]) -> Page[T]:
    """The page `wanted` asks for, read through `fetch`; `key` gives an item's cursor id."""
    if wanted.min_id is None:
        items, cursor = fetch(wanted.max_id, wanted.limit)
        if wanted.since_id is not None:
            newer = [item for item in items if key(item) > wanted.since_id]
            return Page(newer, len(newer) == len(items) and cursor is not None)
        return Page(items, cursor is not None)
    newer: list[T] = []
    cursor = wanted.max_id
    while len(newer) < MIN_ID_READS:
        items, cursor = fetch(cursor, max(wanted.limit, 40))
        above = [item for item in items if key(item) > wanted.min_id]
        newer.extend(above)
        if len(above) < len(items) or cursor is None:
            break
    return Page(newer[-wanted.limit :], True)


def paged(
    request: Request,
    fetch: Fetch[T],
    render: Callable[[list[T]], list],
    *,
    key: Callable[[T], int] = lambda item: item.id,  # type: ignore[attr-defined]
    default: int = 20,
    maximum: int = 40,
) -> Response:
    """The JSON list of one page of a list, rendered by `render`, with its Link header."""
    page = paginate(fetch, page_request(request, default, maximum), key)
    return Response(render(page.items), headers=link_header(request, page, key))


def link_header(request: Request, page: Page, key: Callable) -> dict[str, str]:
    """The `Link` header of a page (none for an empty one)."""
    if not page.items:
        return {}
    public_url = request.app.state.ctx.config.server.public_url
    base = (public_url or str(request.base_url)).rstrip("/") + request.url.path
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("max_id", "since_id", "min_id")]
    links = []
    if page.more:
        links.append(f'<{base}?{urlencode([*kept, ("max_id", key(page.items[-1]))])}>; rel="next"')
    links.append(f'<{base}?{urlencode([*kept, ("min_id", key(page.items[0]))])}>; rel="prev"')
    return {"link": ", ".join(links)}
