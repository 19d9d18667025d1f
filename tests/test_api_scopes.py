"""Scopes are enforced on every client API route (Pixelfed's CVE-2024-25108 let a read-only token write).

The test enumerates the app's routes, so a route added later is covered without being listed here: each one must
state its auth and scope (the guard refuses a route that does not), a token lacking the scope gets 403 and changes
nothing, and a token holding just that scope gets past the check.
"""

from __future__ import annotations

import pytest
from litestar.routes import HTTPRoute

from app.api.base import AUTH_MODES, OUT_OF_SCOPE
from app.services import oauth
from app.web.app import create_app
from tests.apitools import bearer, issue_token
from tests.conftest import all_rows

# Routes anyone may call without a token: registering an app, and what a server says about itself.
PUBLIC = {
    ("POST", "/api/v1/apps"),
    ("GET", "/api/v1/instance"),
    ("GET", "/api/v2/instance"),
    ("GET", "/api/v1/custom_emojis"),
    ("GET", "/api/v1/trends/tags"),
}
# At least this many: the enumeration found the API (not, say, an empty list after a refactor).
MIN_ROUTES = 45
TABLES = ("users", "posts", "following", "followers", "likes", "bookmarks", "notifications", "media_attachments")


def api_routes(ctx) -> list[tuple[str, str, dict]]:
    found = []
    for route in create_app(ctx).routes:
        if isinstance(route, HTTPRoute) and route.path.startswith("/api/"):
            for handler in route.route_handlers:
                for method in sorted(handler.http_methods - {"HEAD", "OPTIONS"}):
                    found.append((method, route.path, handler.opt))
    return found


def concrete(path: str, some_id: int) -> str:
    """The route's path with every parameter filled in (the guard runs before anything reads them)."""
    for name in ("account_id", "status_id", "media_id", "notification_id"):
        path = path.replace("{" + name + ":str}", str(some_id)).replace("{" + name + "}", str(some_id))
    return path.replace("{hashtag:str}", "sunset").replace("{hashtag}", "sunset")


def lacking(scopes: tuple[str, ...]) -> str:
    """Every scope except those that would satisfy any of `scopes`."""
    granted = sorted(s for s in oauth.SCOPES if not any(oauth.has_scope({s}, needed) for needed in scopes))
    assert not any(oauth.has_scope(granted, needed) for needed in scopes)
    return " ".join(granted)


def snapshot(ctx) -> list:
    return [all_rows(ctx, table) for table in TABLES]


def test_every_api_route_states_its_auth_and_scope(ctx):
    routes = api_routes(ctx)
    assert len(routes) >= MIN_ROUTES
    public = set()
    for method, path, opt in routes:
        assert opt.get("auth") in AUTH_MODES, f"{method} {path} states no auth"
        if opt["auth"] == "public":
            public.add((method, path))
        else:
            assert opt.get("scopes"), f"{method} {path} states no scope"
            assert all(s in oauth.SCOPES for s in opt["scopes"]), f"{method} {path}: unknown scope"
    assert public <= PUBLIC


def test_a_token_lacking_a_routes_scope_is_refused_everywhere_and_changes_nothing(ctx, client):
    target = issue_token(ctx, "target")  # someone to name in the URLs
    some_id = oauth.authenticate(ctx, target).user.id
    tokens: dict[str, str] = {"read": issue_token(ctx, "caller", "read")}  # the caller exists before the snapshot
    before = snapshot(ctx)
    checked = 0
    for method, path, opt in api_routes(ctx):
        if opt["auth"] == "public":
            continue
        key = lacking(opt["scopes"])
        if key not in tokens:
            tokens[key] = issue_token(ctx, "caller", key)
        response = client.request(method, concrete(path, some_id), headers=bearer(tokens[key]))
        assert response.status_code == 403, f"{method} {path}: {response.status_code} {response.text[:200]}"
        assert response.json() == {"error": OUT_OF_SCOPE}, f"{method} {path}"
        checked += 1
    assert checked >= MIN_ROUTES - len(PUBLIC)
    assert snapshot(ctx) == before


@pytest.mark.parametrize("granted", ["exact", "parent"])
def test_a_token_holding_the_scope_gets_past_the_check(ctx, client, granted):
    target = issue_token(ctx, "target")
    some_id = oauth.authenticate(ctx, target).user.id
    tokens: dict[str, str] = {}
    for method, path, opt in api_routes(ctx):
        if opt["auth"] == "public":
            continue
        needed = opt["scopes"][0]
        scope = needed if granted == "exact" else needed.split(":")[0]
        if scope not in tokens:
            tokens[scope] = issue_token(ctx, "caller", scope)
        response = client.request(method, concrete(path, some_id), headers=bearer(tokens[scope]))
        assert response.status_code < 500, f"{method} {path}: {response.text[:300]}"
        assert response.json() != {"error": OUT_OF_SCOPE}, f"{method} {path}"


def test_the_legacy_follow_scope_covers_follows_blocks_and_mutes_only():
    assert oauth.has_scope({"follow"}, "write:follows") and oauth.has_scope({"follow"}, "read:blocks")
    assert not oauth.has_scope({"follow"}, "write:statuses") and not oauth.has_scope({"follow"}, "read:accounts")
    assert not oauth.has_scope({"read"}, "write:media") and oauth.has_scope({"write"}, "write:media")
    assert not oauth.has_scope({"read:statuses"}, "read:accounts")
