"""Search (accounts and hashtags by prefix, as Explore's search box) and trending hashtags, over app/services
(discover, tags). Pinhole does not search posts' text: `statuses` is always empty."""

from __future__ import annotations

from typing import Any

from litestar.di import NamedDependency
from litestar.params import FromQuery

from app.api import entities
from app.api.base import Caller, endpoint
from app.api.paging import parse_limit
from app.errors import UserError
from app.services import discover, tags
from app.web.deps import CtxDep

CallerDep = NamedDependency[Caller]
TYPES = ("accounts", "hashtags", "statuses")
MAX_OFFSET = 1000


@endpoint("GET", "/api/v2/search", scope="read:search", auth="optional")
def search(
    ctx: CtxDep,
    caller: CallerDep,
    q: FromQuery[str] = "",
    type: FromQuery[str] = "",
    limit: FromQuery[str] = "",
    offset: FromQuery[str] = "",
) -> dict[str, Any]:
    """Accounts whose name and hashtags that start with `q` (`@ana` accounts only, `#sun` tags only)."""
    if type and type not in TYPES:
        raise UserError(f"type must be one of {', '.join(TYPES)}.", field="type")
    count = parse_limit(limit, 20, 40)
    skip = parse_limit(offset, 0, MAX_OFFSET) if offset not in ("", "0") else 0
    results = discover.search(ctx, caller.user, q, limit=count + skip)
    return {
        "accounts": [entities.account(ctx, u) for u in results.accounts[skip:]] if type in ("", "accounts") else [],
        "statuses": [],
        "hashtags": [entities.tag(ctx, hit.tag) for hit in results.tags[skip:]] if type in ("", "hashtags") else [],
    }


@endpoint("GET", "/api/v1/trends/tags", scope=None, auth="public")
def trending_tags(ctx: CtxDep, limit: FromQuery[str] = "") -> list[dict[str, Any]]:
    """Hashtags most used in the last week."""
    return [entities.tag(ctx, name) for name, _count in tags.trending(ctx, parse_limit(limit, 10, 20))]


ROUTES = [search, trending_tags]
