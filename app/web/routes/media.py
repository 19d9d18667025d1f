"""Stored photos. A key never changes its bytes, so its file name is its ETag and caching is long.

- `avatars/...`: public, like the profiles that show them.
- `posts/<post_id>/...`: only a finished rendition of a post the viewer may see (`posts.get_post`); anything
  else is the same 404, decided before any 304 or range answer, so neither leaks that a private post exists.
- `attachments/<media_id>/...`: a photo uploaded through the API before its post: once posted, as its post allows;
  before, to its uploader only (`attachments.viewable_keys`).
- A signed link (`signed_path`: `?expires=...&signature=...`, made by the client API for a viewer allowed the photo)
  serves a post's or an upload's rendition to whoever holds it until it expires: phone apps load images without
  cookies or tokens. Like a downloaded copy, it outlives a later block or unfollow, for SIGNED_DAYS at most.
  Cached by anyone (immutable) when anonymous visitors may see the post, otherwise only by the viewer's browser.
- `uploads/...` and everything else: never served.

GET and HEAD, conditional requests (If-None-Match) and a single HTTP byte range (video-style seeking and resumed
downloads); several ranges or a malformed header get the whole file, as RFC 9110 allows.

With a blob store that gives direct URLs (S3), the bytes never pass through Pinhole: once the checks above have
passed, the answer is a redirect. What anonymous visitors may see (and avatars) goes to [media] public_base_url (a
CDN) when it is set; everything else, and all of it without a CDN, to a presigned URL that expires after
[media] presign_seconds, made for this viewer after the visibility check. The store answers Range requests itself.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

from litestar import Request, route
from litestar.params import FromPath
from litestar.response import Redirect, Response

from app.backends.blobs.base import BlobNotFound, check_key
from app.context import Context
from app.errors import NotFound
from app.services import attachments, posts
from app.services.visibility import can_view
from app.web.deps import CtxDep, provide_viewer

CONTENT_TYPES = {"webp": "image/webp", "jpg": "image/jpeg", "avif": "image/avif", "png": "image/png"}
PUBLIC_CACHE = "public, max-age=31536000, immutable"
# A private post's file may sit in its viewer's browser for a day, never in a shared cache.
PRIVATE_CACHE = "private, max-age=86400"
# A redirect to the CDN is the same for everyone; a day lets a change of public_base_url take effect.
CDN_REDIRECT_CACHE = "public, max-age=86400"
NO_SUCH_PHOTO = "No such photo."
# One range; 19 digits at most keeps int() cheap and covers any file size.
_RANGE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")
UNSATISFIABLE = (-1, -1)
SIGNED_DAYS = 7


def signed_path(ctx: Context, path: str) -> str:
    """`/media/<key>` as a link anyone holding it may open for SIGNED_DAYS to SIGNED_DAYS + 1 days (the expiry is
    rounded to a day, so the same photo keeps the same link for a day and caches well)."""
    expires = (int(time.time()) // 86_400 + SIGNED_DAYS + 1) * 86_400
    return f"{path}?expires={expires}&signature={_signature(ctx, path.removeprefix('/media/'), expires)}"


def _signature(ctx: Context, key: str, expires: int) -> str:
    return hmac.new(ctx.secret_key.encode(), f"media:{key}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def _signed(ctx: Context, request: Request, key: str) -> bool:
    expires, signature = request.query_params.get("expires", ""), request.query_params.get("signature", "")
    if not (expires.isascii() and expires.isdigit() and len(expires) <= 12) or int(expires) < time.time():
        return False
    return hmac.compare_digest(signature.encode(), _signature(ctx, key, int(expires)).encode())


@route("/media/{key:path}", http_method=["GET", "HEAD"], sync_to_thread=True)
def media(ctx: CtxDep, request: Request, key: FromPath[str]) -> Response:
    key = key.lstrip("/")
    extension = key.rsplit(".", 1)[-1]
    try:
        check_key(key)
    except ValueError:
        raise NotFound(NO_SUCH_PHOTO) from None
    if extension not in CONTENT_TYPES:
        raise NotFound(NO_SUCH_PHOTO)
    cache_control = _cache_control(ctx, request, key)
    direct = _direct(ctx, key, public=cache_control == PUBLIC_CACHE)
    if direct is not None:
        location, redirect_cache = direct
        return Redirect(location, status_code=302, headers={"cache-control": redirect_cache})
    etag = f'"{key.rsplit("/", 1)[-1]}"'
    headers = {
        "cache-control": cache_control,
        "etag": etag,
        "accept-ranges": "bytes",
        "x-content-type-options": "nosniff",
    }
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(b"", status_code=304, headers=headers)
    blobs = ctx.backends.blobs
    try:
        size = blobs.size(key)
        byte_range = _byte_range(request, size, etag)
        if byte_range is None:
            body, status = blobs.get(key), 200
        elif byte_range == UNSATISFIABLE:
            return Response(b"", status_code=416, headers={**headers, "content-range": f"bytes */{size}"})
        else:
            start, end = byte_range
            body, status = blobs.read_range(key, start, end), 206
            headers["content-range"] = f"bytes {start}-{end}/{size}"
    except BlobNotFound:
        raise NotFound(NO_SUCH_PHOTO) from None
    return Response(body, status_code=status, media_type=CONTENT_TYPES[extension], headers=headers)


def _cache_control(ctx: Context, request: Request, key: str) -> str:
    """How the file may be cached, once the viewer is allowed it; NotFound when not."""
    if key.startswith("avatars/"):
        return PUBLIC_CACHE
    parts = key.split("/")
    if len(parts) != 3 or parts[0] not in ("posts", "attachments"):
        raise NotFound(NO_SUCH_PHOTO)  # raw uploads, and anything not made as a rendition
    if _signed(ctx, request, key):
        return PRIVATE_CACHE
    try:
        if parts[0] == "posts":
            post = posts.get_post(ctx, parts[1], provide_viewer(request, ctx))
            allowed, public = posts.media_keys(post), can_view(ctx, None, post.author)
        else:
            allowed, public = attachments.viewable_keys(ctx, parts[1], provide_viewer(request, ctx))
    except NotFound:
        raise NotFound(NO_SUCH_PHOTO) from None
    if key not in allowed:
        raise NotFound(NO_SUCH_PHOTO)
    return PUBLIC_CACHE if public else PRIVATE_CACHE


def _direct(ctx: Context, key: str, public: bool) -> tuple[str, str] | None:
    """(where the browser fetches the file itself, how long it may keep that answer), or None: the app serves it."""
    base = ctx.config.media.public_base_url
    if public and base:
        return f"{base.rstrip('/')}/{key}", CDN_REDIRECT_CACHE
    url = ctx.backends.blobs.url(key)
    if url is None:
        return None
    # Reused by this browser only, and well before the URL expires.
    return url, f"private, max-age={ctx.config.media.presign_seconds // 2}"


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag in tags


def _byte_range(request: Request, size: int, etag: str) -> tuple[int, int] | None:
    """(first, last) byte of a satisfiable single range; UNSATISFIABLE (answered 416); None for the whole file
    (no Range, several ranges, a malformed one, or an If-Range that no longer matches)."""
    header = request.headers.get("range")
    if not header:
        return None
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != etag:
        return None
    match = _RANGE.fullmatch(header.strip())
    if not match or not (match[1] or match[2]):
        return None
    if match[1]:
        start = int(match[1])
        end = int(match[2]) if match[2] else size - 1
        if match[2] and end < start:
            return None  # invalid, so ignored (RFC 9110 14.1.1)
        if start >= size:
            return UNSATISFIABLE
        return start, min(end, size - 1)
    suffix = int(match[2])
    if suffix == 0:
        return UNSATISFIABLE
    return max(0, size - suffix), size - 1
