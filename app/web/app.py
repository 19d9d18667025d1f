"""The Litestar application: built once per server process from config."""

from __future__ import annotations

import hashlib
import logging
from functools import cache
from pathlib import Path

from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, OAuthFlow, OAuthFlows, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from app.api import ROUTERS as API_ROUTERS
from app.config import load_config
from app.context import Context, build_context
from app.logs import setup_logging
from app.media.images import harden_vips
from app.services import oauth
from app.services.tags import render_caption
from app.web import errors, icons
from app.web.deps import provide_ctx, provide_viewer
from app.web.home_pages import HomePages, serve_kept_pages
from app.web.observe import observe_requests
from app.web.routes import accounts, live, media, ops, pages, social
from app.web.routes import discover as discover_routes
from app.web.routes import feed as feed_routes
from app.web.routes import notifications as notification_routes
from app.web.routes import posts as post_routes
from app.web.routes import tags as tag_routes
from app.web.security import CSRF_COOKIE, CSRF_HEADER, security_headers

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("pinhole")


@cache
def static_url(name: str) -> str:
    """A cache-busting URL: the file's hash changes when it does."""
    digest = hashlib.sha256((ROOT / "static" / name).read_bytes()).hexdigest()[:10]
    return f"/static/{name}?v={digest}"


def avatar_url(user) -> str:
    return f"/media/{user.avatar_key}" if user and user.avatar_key else static_url("avatar.svg")


def _templates(engine: JinjaTemplateEngine, reload: bool = False) -> None:
    # Jinja checks every template's file for changes on each render unless told not to: only worth it while editing.
    engine.engine.auto_reload = reload
    engine.engine.globals.update(static_url=static_url, avatar_url=avatar_url)
    engine.engine.globals["unread_notifications"] = notification_routes.unread_badge
    icons.install(engine.engine)
    engine.engine.filters["caption"] = render_caption  # captions and comments: #tags and @mentions linked


def api_schema(config) -> OpenAPIConfig:
    """The client API's OpenAPI document at /schema (JSON; /schema/openapi.yaml too): no HTML viewer, whose
    scripts from a CDN the site's CSP would refuse anyway."""
    base = config.public_url
    oauth2 = SecurityScheme(
        type="oauth2",
        flows=OAuthFlows(
            authorization_code=OAuthFlow(
                authorization_url=f"{base}/oauth/authorize",
                token_url=f"{base}/oauth/token",
                refresh_url=f"{base}/oauth/token",
                scopes={scope: scope for scope in sorted(oauth.SCOPES)},
            )
        ),
    )
    return OpenAPIConfig(
        title="Pinhole client API (Mastodon-compatible)",
        version="1.0.0",
        path="/schema",
        render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"]), YamlRenderPlugin()],
        components=Components(security_schemes={"OAuth2": oauth2}),
    )


def create_app(ctx: Context | None = None) -> Litestar:
    """The app for `ctx`, or (as Granian's factory, no argument) for the config in PINHOLE_CONFIG."""
    if ctx is None:
        config = load_config()
        setup_logging(config.log.level, config.log.format)
        ctx = build_context(config)
    harden_vips()
    config = ctx.config

    def start_workers() -> None:
        if config.queue.embedded_workers > 0:
            ctx.consumer = ctx.backends.queue.start_consumer(config.queue.embedded_workers)
            log.info("embedded queue workers started", extra={"threads": config.queue.embedded_workers})

    def stop() -> None:
        consumer = getattr(ctx, "consumer", None)
        if consumer is not None:
            consumer.stop()
        ctx.close()

    app = Litestar(
        route_handlers=[
            accounts.router,
            ops.healthz,
            ops.hello,
            ops.readyz,
            ops.prometheus,
            ops.favicon,
            media.media,
            post_routes.router,
            tag_routes.router,
            feed_routes.router,
            social.router,
            notification_routes.router,
            live.router,
            discover_routes.router,
            *API_ROUTERS,
            pages.profile,
            create_static_files_router(path="/static", directories=[ROOT / "static"], cache_control=None),
        ],
        dependencies={
            "ctx": Provide(provide_ctx, sync_to_thread=False),
            "viewer": Provide(provide_viewer, sync_to_thread=True),
        },
        template_config=TemplateConfig(
            directory=ROOT / "templates",
            engine=JinjaTemplateEngine,
            engine_callback=lambda engine: _templates(engine, config.server.reload_templates),
        ),
        csrf_config=CSRFConfig(
            secret=ctx.secret_key,
            cookie_name=CSRF_COOKIE,
            cookie_httponly=True,
            cookie_secure=config.https,
            cookie_samesite="lax",
            header_name=CSRF_HEADER,
        ),
        before_send=[security_headers(config)],
        # The OpenAPI document at /schema describes the client API only (its router opts back in).
        include_in_schema=False,
        openapi_config=api_schema(config),
        exception_handlers=errors.HANDLERS,
        on_startup=[start_workers, live.open_streams],
        on_shutdown=[stop, live.close_streams],  # run in reverse: open streams end before the context closes
        request_max_body_size=config.server.max_body_mb * 1024 * 1024,
        state=State({"ctx": ctx, "home_pages": HomePages(ctx, feed_routes.first_page_digest)}),
        debug=False,
        logging_config=None,
    )
    app.asgi_handler = observe_requests(serve_kept_pages(app.asgi_handler, app.state["home_pages"]))
    return app
