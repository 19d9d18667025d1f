"""The upload page and the post page. Thin: app.services.posts validates, stores and processes.

GET  /upload            the form (sign-in needed)
POST /upload            multipart: photos (1-10 files), filter_<i>, alt_<i>, caption, place_name, place_lat,
                        place_lon, sensitive; 303 to /p/{id}, or the form again with the message. A request
                        that asks for JSON (static/upload.js) gets {"location": ...} or {"error", "field"}.
GET  /p/{id}            the post; while it is processing, its media block polls /p/{id}/status
GET  /p/{id}/status     that media block alone (the htmx fragment)
POST /p/{id}/delete     the author deletes the post; 303 to their profile
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, MultipartBody
from litestar.response import Redirect, Template

from app import ids
from app.errors import NotFound, UserError
from app.media.filters import FILTERS
from app.services import posts
from app.web.deps import CtxDep, ViewerDep, form_text, page, require, see_other, wants_json

# Missing, deleted, not visible and malformed addresses all get this one answer.
NO_POST = "There is no post at this address. It may have been deleted, or the link is mistyped."
BAD_PLACE = "Latitude and longitude must be numbers, like 48.8584 and 2.2945."
SIZES = ("320", "640", "1080")
PHOTO_TYPES = "image/jpeg,image/png,image/webp,image/gif,image/heic,image/heif,image/avif"


def _files(data: dict[str, Any]) -> list[UploadFile]:
    value = data.get("photos", [])
    values = value if isinstance(value, list) else [value]
    # A file input left empty arrives as a part without a filename, i.e. as text: not a photo.
    return [item for item in values if isinstance(item, UploadFile)]


def _coordinate(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise UserError(BAD_PLACE, field="place") from None
    if not math.isfinite(value):
        raise UserError(BAD_PLACE, field="place")
    return value


def _place(form: dict[str, Any]) -> posts.Place | None:
    lat, lon = _coordinate(form["place_lat"]), _coordinate(form["place_lon"])
    name = form["place_name"].strip()
    if not name and lat is None and lon is None:
        return None
    return posts.Place(name=name, lat=lat, lon=lon)


def _filters() -> list[dict[str, Any]]:
    return [
        {"name": name, "label": name.title(), "css": recipe.css, "layers": [list(layer) for layer in recipe.css_layers]}
        for name, recipe in FILTERS.items()
    ]


def _upload_page(ctx, status: int = 200, form: dict[str, Any] | None = None, error: UserError | None = None):
    return page(
        "posts/upload.html",
        status,
        form=form or {},
        error=error,
        filters=_filters(),
        max_photos=posts.MAX_PHOTOS,
        max_caption=posts.MAX_CAPTION,
        max_alt=posts.MAX_ALT,
        max_photo_mb=ctx.config.media.max_upload_mb,
        max_body_mb=ctx.config.server.max_body_mb,
        photo_types=PHOTO_TYPES,
    )


@get("/upload", sync_to_thread=True)
def upload_form(ctx: CtxDep, viewer: ViewerDep) -> Template:
    require(viewer)
    return _upload_page(ctx)


@post("/upload", sync_to_thread=True)
def upload(
    request: Request, ctx: CtxDep, viewer: ViewerDep, data: MultipartBody[dict[str, Any]]
) -> Template | Redirect | Response:
    user = require(viewer)
    form: dict[str, Any] = {name: form_text(data, name) for name in ("caption", "place_name", "place_lat", "place_lon")}
    form["sensitive"] = form_text(data, "sensitive") not in ("", "off", "0", "false")
    for i in range(posts.MAX_PHOTOS):
        form[f"filter_{i}"] = form_text(data, f"filter_{i}", 64) or "normal"
        form[f"alt_{i}"] = form_text(data, f"alt_{i}")
    files = _files(data)
    limit = ctx.config.media.max_upload_mb * 1024 * 1024
    try:
        place = _place(form)
        # Each photo read to one byte past the limit: the service refuses it by its length.
        photos = [
            posts.PhotoUpload(
                data=upload.file.read(limit + 1),
                filter_name=form.get(f"filter_{i}", "normal"),
                alt_text=form.get(f"alt_{i}", ""),
            )
            for i, upload in enumerate(files)
        ]
        created = posts.create_post(
            ctx, user, photos, caption=form["caption"], place=place, sensitive=form["sensitive"]
        )
    except UserError as exc:
        if wants_json(request):
            return Response({"error": exc.message, "field": exc.field}, status_code=exc.status)
        return _upload_page(ctx, exc.status, form, exc)
    finally:
        for item in files:
            item.file.close()
    location = f"/p/{created.id}"
    if wants_json(request):
        return Response({"location": location}, status_code=201, headers={"location": location})
    return see_other(location)


# --- The post page ---------------------------------------------------------------------------------------------


def _post_id(text: str) -> int:
    post_id = ids.parse(text)
    if post_id is None:
        raise NotFound(NO_POST)
    return post_id


def _srcset(media: posts.Media, fmt: str) -> str:
    """`url 640w, ...` with each rendition's real width: renditions shrink to a long edge and never grow."""
    width, height = media.width or 1080, media.height or 1080
    entries, seen = [], set()
    for size in SIZES:
        url = media.urls.get(size, {}).get(fmt)
        if not url:
            continue
        scale = min(1.0, int(size) / max(width, height, 1))
        drawn = max(1, round(width * scale))
        if drawn not in seen:
            seen.add(drawn)
            entries.append(f"{url} {drawn}w")
    return ", ".join(entries)


def grid_srcset(media: posts.Media, fmt: str) -> str:
    """For a square grid tile (object-fit: cover): the 150 square and the 640, each described by its shorter
    side, which is what must cover the tile."""
    width, height = media.width or 150, media.height or 150
    entries = []
    if url := media.urls.get("150sq", {}).get(fmt):
        entries.append(f"{url} {min(150, width, height)}w")
    if url := media.urls.get("640", {}).get(fmt):
        scale = min(1.0, 640 / max(width, height, 1))
        short = max(1, round(min(width, height) * scale))
        if short > 150:
            entries.append(f"{url} {short}w")
    return ", ".join(entries)


def camera_line(camera: dict) -> str:
    """`FUJIFILM X100V · 23 mm · ƒ/2 · 1/250 s · ISO 400` from the whitelisted facts; "" when there are none."""
    make, model = str(camera.get("make", "")), str(camera.get("model", ""))
    body = model if make and model.lower().startswith(make.lower()) else " ".join(p for p in (make, model) if p)
    parts = [body, str(camera.get("lens", ""))]
    if camera.get("focal_length_mm"):
        parts.append(f"{camera['focal_length_mm']:g} mm")
    if camera.get("aperture"):
        parts.append(f"ƒ/{camera['aperture']:g}")
    if camera.get("shutter"):
        parts.append(f"{camera['shutter']} s")
    if camera.get("iso"):
        parts.append(f"ISO {camera['iso']}")
    return " · ".join(part for part in parts if part)


def _when(created_ms: int) -> tuple[str, str]:
    moment = datetime.fromtimestamp(created_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="seconds"), f"{moment:%B} {moment.day}, {moment.year}"


def _post_context(post: posts.Post, viewer) -> dict[str, Any]:
    iso, human = _when(post.created_at)
    return {
        "post": post,
        "is_author": viewer is not None and viewer.id == post.author.id,
        "srcset": _srcset,
        "camera_line": camera_line,
        "posted_iso": iso,
        "posted_on": human,
    }


@get("/p/{post_id:str}", sync_to_thread=True)
def post_page(ctx: CtxDep, viewer: ViewerDep, post_id: FromPath[str]) -> Template:
    try:
        found = posts.get_post(ctx, _post_id(post_id), viewer)
    except NotFound:
        raise NotFound(NO_POST) from None
    return page("posts/post.html", **_post_context(found, viewer))


@get("/p/{post_id:str}/status", sync_to_thread=True)
def post_status(ctx: CtxDep, viewer: ViewerDep, post_id: FromPath[str]) -> Template:
    """The media block alone: htmx swaps it in every 2 s while the post is processing."""
    try:
        found = posts.post_status(ctx, _post_id(post_id), viewer)
    except NotFound:
        raise NotFound(NO_POST) from None
    return page("posts/_media.html", **_post_context(found, viewer))


@post("/p/{post_id:str}/delete", sync_to_thread=True)
def post_delete(ctx: CtxDep, viewer: ViewerDep, post_id: FromPath[str]) -> Redirect:
    user = require(viewer)
    try:
        posts.delete_post(ctx, user, _post_id(post_id))
    except NotFound:
        raise NotFound(NO_POST) from None
    return see_other(f"/@{user.username}")


# Through a Router, as accounts does: registered straight on the app (Litestar 2.25), GET /upload answered 500
# because its sync-to-thread wrapper had been applied twice.
router = Router(path="/", route_handlers=[upload_form, upload, post_page, post_status, post_delete])
