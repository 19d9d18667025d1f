"""The Mastodon-compatible client API (app/api/base.py says how routes state their scopes) and OAuth 2.

`ROUTERS` go into the app: the API router, whose guard checks every route's auth and scope, and the OAuth router
(consent page, token endpoints, Settings -> Apps).
"""

from __future__ import annotations

from litestar import Router
from litestar.di import Provide

from app.api import accounts, instance, media, notifications, oauth, search, startup, statuses, timelines
from app.api.base import EXCEPTION_HANDLERS, enforce_scopes, provide_caller, provide_fields

api_router = Router(
    path="/",
    route_handlers=[
        oauth.create_app,
        *instance.ROUTES,
        *accounts.ROUTES,
        *media.ROUTES,
        *statuses.ROUTES,
        *timelines.ROUTES,
        *notifications.ROUTES,
        *search.ROUTES,
        *startup.ROUTES,
    ],
    guards=[enforce_scopes],
    dependencies={"caller": Provide(provide_caller, sync_to_thread=False), "fields": Provide(provide_fields)},
    exception_handlers=EXCEPTION_HANDLERS,
    include_in_schema=True,
    # Bearer-token requests need no CSRF token; the guard checks it on cookie-authenticated ones.
    opt={"exclude_from_csrf": True},
    tags=["Mastodon client API"],
)

ROUTERS = [api_router, oauth.router, *instance.WELL_KNOWN]
