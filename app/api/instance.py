"""What the server says about itself: Mastodon's Instance (v1 and v2), custom emojis (none), and NodeInfo 2.0 for
crawlers. Apps read these first to learn the limits: 10 photos a post, the caption length, the upload size."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from litestar import get

from app.api.base import endpoint
from app.api.entities import absolute, account
from app.context import Context
from app.services import accounts, posts, site
from app.services.tags import MAX_TAGS
from app.web.deps import CtxDep

SOFTWARE_VERSION = "0.1.0"
# Apps gate features on the Mastodon version a server claims; Pinhole speaks the 4.3 client API for what it has.
MASTODON_VERSION = f"4.3.0 (compatible; Pinhole {SOFTWARE_VERSION})"
DESCRIPTION = "A self-hosted photo-sharing server: your photos, your server."
MIME_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/heif", "image/avif"]


def _host(ctx: Context) -> str:
    return urlsplit(ctx.config.public_url).netloc


def _configuration(ctx: Context) -> dict[str, Any]:
    media = ctx.config.media
    return {
        "urls": {"streaming": None},
        "accounts": {"max_featured_tags": 0, "max_pinned_statuses": 0},
        "statuses": {
            "max_characters": posts.MAX_CAPTION,
            "max_media_attachments": posts.MAX_PHOTOS,
            "characters_reserved_per_url": 23,
            "max_hashtags": MAX_TAGS,
        },
        "media_attachments": {
            "supported_mime_types": MIME_TYPES,
            "image_size_limit": media.max_upload_mb * 1024 * 1024,
            "image_matrix_limit": media.max_pixels,
            "video_size_limit": 0,
            "video_frame_rate_limit": 0,
            "video_matrix_limit": 0,
            "description_limit": posts.MAX_ALT,
        },
        "polls": {"max_options": 0, "max_characters_per_option": 0, "min_expiration": 0, "max_expiration": 0},
        "translation": {"enabled": False},
    }


def _registrations(ctx: Context) -> tuple[bool, bool]:
    """(open to sign-ups at all, an invite needed)."""
    mode = ctx.config.accounts.registration
    return mode != "closed", mode == "invite"


def _contact(ctx: Context) -> dict[str, Any] | None:
    with ctx.db.read(0) as conn:
        first = conn.value("SELECT value FROM site_flags WHERE name = 'first_user'")
    admin = accounts.get_user(ctx, int(first)) if first else None
    return account(ctx, admin) if admin else None


@endpoint("GET", "/api/v1/instance", scope=None, auth="public")
def instance_v1(ctx: CtxDep) -> dict[str, Any]:
    stats = site.stats(ctx)
    allowed, invite = _registrations(ctx)
    return {
        "uri": _host(ctx),
        "title": "Pinhole",
        "short_description": DESCRIPTION,
        "description": DESCRIPTION,
        "email": "",
        "version": MASTODON_VERSION,
        "urls": {},
        "stats": {"user_count": stats.users, "status_count": stats.posts, "domain_count": 1},
        "thumbnail": absolute(ctx, "/static/apple-touch-icon.png"),
        "languages": ["en"],
        "registrations": allowed,
        "approval_required": invite,
        "invites_enabled": invite,
        "configuration": _configuration(ctx),
        "contact_account": _contact(ctx),
        "rules": [],
    }


@endpoint("GET", "/api/v2/instance", scope=None, auth="public")
def instance_v2(ctx: CtxDep) -> dict[str, Any]:
    stats = site.stats(ctx)
    allowed, invite = _registrations(ctx)
    return {
        "domain": _host(ctx),
        "title": "Pinhole",
        "version": MASTODON_VERSION,
        "source_url": "",
        "description": DESCRIPTION,
        "usage": {"users": {"active_month": stats.users}},
        "thumbnail": {"url": absolute(ctx, "/static/apple-touch-icon.png"), "blurhash": None, "versions": {}},
        "icon": [{"src": absolute(ctx, "/static/apple-touch-icon.png"), "size": "180x180"}],
        "languages": ["en"],
        "configuration": _configuration(ctx),
        "registrations": {"enabled": allowed, "approval_required": invite, "message": None, "url": None},
        "api_versions": {"mastodon": 2},
        "contact": {"email": "", "account": _contact(ctx)},
        "rules": [],
    }


@endpoint("GET", "/api/v1/custom_emojis", scope=None, auth="public")
def custom_emojis() -> list[Any]:
    """Pinhole has no custom emojis (apps ask anyway)."""
    return []


@get("/.well-known/nodeinfo", sync_to_thread=False, include_in_schema=False)
def nodeinfo_links(ctx: CtxDep) -> dict[str, Any]:
    return {
        "links": [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0", "href": absolute(ctx, "/nodeinfo/2.0")}]
    }


@get("/nodeinfo/2.0", sync_to_thread=True, include_in_schema=False)
def nodeinfo(ctx: CtxDep) -> dict[str, Any]:
    stats = site.stats(ctx)
    allowed, _invite = _registrations(ctx)
    return {
        "version": "2.0",
        "software": {"name": "pinhole", "version": SOFTWARE_VERSION},
        # Pinhole speaks no federation protocol (yet): an honest empty list.
        "protocols": [],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": allowed and ctx.config.accounts.registration == "open",
        "usage": {"users": {"total": stats.users}, "localPosts": stats.posts},
        "metadata": {"nodeName": "Pinhole"},
    }


ROUTES = [instance_v1, instance_v2, custom_emojis]
WELL_KNOWN = [nodeinfo_links, nodeinfo]
