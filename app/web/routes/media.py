"""Stored photos, served with long immutable caching: a key never changes its bytes."""

from __future__ import annotations

from litestar import Request, get
from litestar.params import FromPath
from litestar.response import Response

from app.backends.blobs.base import BlobNotFound, check_key
from app.errors import NotFound
from app.web.deps import CtxDep

CONTENT_TYPES = {"webp": "image/webp", "jpg": "image/jpeg", "avif": "image/avif", "png": "image/png"}
# Only finished renditions are public; raw uploads never are.
PUBLIC_PREFIXES = ("avatars/",)


@get("/media/{key:path}", sync_to_thread=True)
def media(ctx: CtxDep, request: Request, key: FromPath[str]) -> Response:
    key = key.lstrip("/")
    extension = key.rsplit(".", 1)[-1]
    try:
        check_key(key)
    except ValueError:
        raise NotFound("No such photo.") from None
    if not key.startswith(PUBLIC_PREFIXES) or extension not in CONTENT_TYPES:
        raise NotFound("No such photo.")
    etag = f'"{key.rsplit("/", 1)[-1]}"'
    headers = {
        "cache-control": "public, max-age=31536000, immutable",
        "etag": etag,
        "x-content-type-options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(b"", status_code=304, headers=headers)
    try:
        body = ctx.backends.blobs.get(key)
    except BlobNotFound:
        raise NotFound("No such photo.") from None
    return Response(body, media_type=CONTENT_TYPES[extension], headers=headers)
