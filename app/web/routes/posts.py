"""The upload page and the post page. Thin: app.services.posts validates, stores and processes.

GET  /upload            the form (sign-in needed)
POST /upload            multipart: photos (1-10 files), filter_<i>, alt_<i>, caption, place_name, place_lat,
                        place_lon, sensitive; 303 to /p/{id}, or the form again with the message. A request
                        that asks for JSON (static/upload.js) gets {"location": ...} or {"error", "field"}.
GET  /p/{id}            the post; while it is processing, its media block polls /p/{id}/status
GET  /p/{id}/status     that media block alone (the htmx fragment)
POST /p/{id}/delete     the author deletes the post; 303 to their profile
GET  /p/{id}?comments_after=<comment id>    the post with its comments after that one
POST /p/{id}/like, /p/{id}/unlike           htmx: the like button fragment with the exact count; else 303 back
POST /p/{id}/comments   body; htmx: the new comment (appended) and the count; else 303 to it
GET  /p/{id}/comments?after=<comment id>    htmx: the next comments and the next "more" link
POST /p/{id}/comments/{comment id}/delete   htmx: the comment goes; else 303 to the comments
POST /p/{id}/comments/off, /p/{id}/comments/on       the author turns comments off or on
GET, POST /p/{id}/edit  the author's form for caption, each photo's description and place

Errors on htmx requests answer as plain text with their status (static/post.js shows it by the form); forms
without JavaScript get the post page again with the message, or the error page.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery, MultipartBody, URLEncodedBody
from litestar.response import Redirect, Template

from app import ids
from app.errors import Forbidden, NotFound, UserError
from app.media.filters import FILTERS
from app.services import interactions, posts
from app.web.deps import CtxDep, ViewerDep, form_text, page, require, safe_next, see_other, wants_json

COMMENTS_PAGE = 50
BAD_COMMENT_CURSOR = "That link to more comments is broken (it must name a comment id). Open the post again."
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
        "when": _when,
    }


@get("/p/{post_id:str}", sync_to_thread=True)
def post_page(ctx: CtxDep, viewer: ViewerDep, post_id: FromPath[str], comments_after: FromQuery[str] = "") -> Template:
    found = _visible_post(ctx, viewer, post_id)
    return _full_page(ctx, viewer, found, after=_comment_cursor(comments_after))


def _visible_post(ctx, viewer, post_id: str) -> posts.Post:
    try:
        return posts.get_post(ctx, _post_id(post_id), viewer)
    except NotFound:
        raise NotFound(NO_POST) from None


def _full_page(ctx, viewer, post: posts.Post, *, after: int | None = None, status: int = 200, **extra) -> Template:
    """The post page with the viewer's like, a page of comments and the comment form."""
    context = _post_context(post, viewer)
    if post.status == "ready":
        comments, more = interactions.list_comments(ctx, viewer, post.id, after, COMMENTS_PAGE)
        context.update(
            liked=post.id in interactions.liked_post_ids(ctx, viewer, [post.id]),
            comments=comments,
            comments_more=more,
            comments_after=after,
        )
    return page("posts/post.html", status, **context, **extra)


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


# --- Likes, comments, editing ---------------------------------------------------------------------------------------


def _htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _comment_cursor(text: str) -> int | None:
    if not text:
        return None
    cursor = ids.parse(text[:32])
    if cursor is None:
        raise UserError(BAD_COMMENT_CURSOR)
    return cursor


def _fragment_error(exc: UserError) -> Response:
    """For htmx: the message alone, shown by static/post.js next to the form that sent the request."""
    return Response(exc.message, status_code=exc.status, media_type="text/plain")


def _toggle_like(request: Request, ctx, viewer, post_id: str, data: dict[str, Any], liking: bool):
    user = require(viewer)
    try:
        changed = (interactions.like if liking else interactions.unlike)(ctx, user, _post_id(post_id))
    except NotFound:
        error: UserError = NotFound(NO_POST)
    except UserError as exc:
        error = exc
    else:
        if wants_json(request):
            return Response({"liked": liking, "like_count": changed.like_count})
        if _htmx(request):
            return page("posts/_like_button.html", post=changed, liked=liking)
        return see_other(safe_next(form_text(data, "next", 2000) or f"/p/{changed.id}"))
    if _htmx(request) and not wants_json(request):
        return _fragment_error(error)
    raise error


@post("/p/{post_id:str}/like", sync_to_thread=True)
def post_like(
    request: Request, ctx: CtxDep, viewer: ViewerDep, post_id: FromPath[str], data: URLEncodedBody[dict[str, Any]]
) -> Template | Redirect | Response:
    return _toggle_like(request, ctx, viewer, post_id, data, liking=True)


@post("/p/{post_id:str}/unlike", sync_to_thread=True)
def post_unlike(
    request: Request, ctx: CtxDep, viewer: ViewerDep, post_id: FromPath[str], data: URLEncodedBody[dict[str, Any]]
) -> Template | Redirect | Response:
    return _toggle_like(request, ctx, viewer, post_id, data, liking=False)


@post("/p/{post_id:str}/comments", sync_to_thread=True)
def comment_add(
    request: Request, ctx: CtxDep, viewer: ViewerDep, post_id: FromPath[str], data: URLEncodedBody[dict[str, Any]]
) -> Template | Redirect | Response:
    user = require(viewer)
    body = form_text(data, "body", interactions.MAX_COMMENT * 4)
    try:
        comment = interactions.add_comment(ctx, user, _post_id(post_id), body)
    except UserError as exc:
        error = NotFound(NO_POST) if isinstance(exc, NotFound) else exc
        if wants_json(request):
            return Response({"error": error.message, "field": error.field}, status_code=error.status)
        if _htmx(request):
            return _fragment_error(error)
        if isinstance(error, NotFound):
            raise error from None
        # The page again, the message by the form and what was typed kept.
        found = _visible_post(ctx, user, post_id)
        return _full_page(ctx, user, found, status=error.status, error=error, form={"body": body})
    if wants_json(request):
        return Response({"id": str(comment.id), "body": comment.body}, status_code=201)
    if _htmx(request):
        found = posts.get_post(ctx, comment.post_id, user)
        return page(
            "posts/_comment.html", comment=comment, post=found, comment_count=found.comment_count, oob=True, when=_when
        )
    return see_other(f"/p/{comment.post_id}#c{comment.id}")


@get("/p/{post_id:str}/comments", sync_to_thread=True)
def comment_more(
    request: Request, ctx: CtxDep, viewer: ViewerDep, post_id: FromPath[str], after: FromQuery[str] = ""
) -> Template | Redirect:
    """The next comments: for htmx, the items (and the next "more" link) that replace the "more" link."""
    found = _visible_post(ctx, viewer, post_id)
    cursor = _comment_cursor(after)
    if not _htmx(request):
        return see_other(f"/p/{found.id}?comments_after={cursor or ''}#comments")
    comments, more = interactions.list_comments(ctx, viewer, found.id, cursor, COMMENTS_PAGE)
    return page("posts/_comment_items.html", post=found, comments=comments, comments_more=more, when=_when)


@post("/p/{post_id:str}/comments/{comment_id:str}/delete", sync_to_thread=True)
def comment_delete(
    request: Request, ctx: CtxDep, viewer: ViewerDep, post_id: FromPath[str], comment_id: FromPath[str]
) -> Template | Redirect | Response:
    user = require(viewer)
    try:
        comment = interactions.delete_comment(ctx, user, ids.parse(comment_id[:32]) or 0, _post_id(post_id))
    except UserError as exc:
        if _htmx(request) and not wants_json(request):
            return _fragment_error(exc)
        raise
    if wants_json(request):
        return Response({"deleted": str(comment.id)})
    if _htmx(request):
        count = posts.get_post(ctx, comment.post_id, user).comment_count
        return page("posts/_comment_count.html", comment_count=count, oob=True)
    return see_other(f"/p/{comment.post_id}#comments")


def _set_comments(ctx, viewer, post_id: str, off: bool) -> Redirect:
    user = require(viewer)
    try:
        interactions.set_comments_off(ctx, user, _post_id(post_id), off)
    except NotFound:
        raise NotFound(NO_POST) from None
    return see_other(f"/p/{post_id}#comments")


@post("/p/{post_id:str}/comments/off", sync_to_thread=True)
def comments_off(ctx: CtxDep, viewer: ViewerDep, post_id: FromPath[str]) -> Redirect:
    return _set_comments(ctx, viewer, post_id, True)


@post("/p/{post_id:str}/comments/on", sync_to_thread=True)
def comments_on(ctx: CtxDep, viewer: ViewerDep, post_id: FromPath[str]) -> Redirect:
    return _set_comments(ctx, viewer, post_id, False)


def _own_post(ctx, viewer, post_id: str) -> posts.Post:
    found = _visible_post(ctx, viewer, post_id)
    if found.author.id != viewer.id:
        raise Forbidden("Only its author can edit a post.")
    return found


def _edit_form(found: posts.Post) -> dict[str, Any]:
    place = found.place
    form: dict[str, Any] = {
        "caption": found.caption,
        "place_name": place.name if place else "",
        "place_lat": "" if place is None or place.lat is None else f"{place.lat:g}",
        "place_lon": "" if place is None or place.lon is None else f"{place.lon:g}",
    }
    form.update({f"alt_{m.id}": m.alt_text for m in found.media})
    return form


def _edit_page(found: posts.Post, form: dict[str, Any], status: int = 200, error: UserError | None = None):
    return page(
        "posts/edit.html",
        status,
        post=found,
        form=form,
        error=error,
        max_caption=posts.MAX_CAPTION,
        max_alt=posts.MAX_ALT,
    )


@get("/p/{post_id:str}/edit", sync_to_thread=True)
def edit_form(ctx: CtxDep, viewer: ViewerDep, post_id: FromPath[str]) -> Template:
    found = _own_post(ctx, require(viewer), post_id)
    return _edit_page(found, _edit_form(found))


@post("/p/{post_id:str}/edit", sync_to_thread=True)
def edit_save(
    ctx: CtxDep, viewer: ViewerDep, post_id: FromPath[str], data: URLEncodedBody[dict[str, Any]]
) -> Template | Redirect:
    user = require(viewer)
    found = _own_post(ctx, user, post_id)
    form = {name: form_text(data, name) for name in ("caption", "place_name", "place_lat", "place_lon")}
    alts = {m.id: form_text(data, f"alt_{m.id}") for m in found.media if f"alt_{m.id}" in data}
    form.update({f"alt_{media_id}": text for media_id, text in alts.items()})
    try:
        interactions.edit_post(ctx, user, found.id, form["caption"], alts, _place(form))
    except NotFound:
        raise NotFound(NO_POST) from None
    except UserError as exc:
        return _edit_page(found, form, exc.status, exc)
    return see_other(f"/p/{found.id}")


# Through a Router, as accounts does: registered straight on the app (Litestar 2.25), GET /upload answered 500
# because its sync-to-thread wrapper had been applied twice.
router = Router(
    path="/",
    route_handlers=[
        upload_form,
        upload,
        post_page,
        post_status,
        post_delete,
        post_like,
        post_unlike,
        comment_add,
        comment_more,
        comment_delete,
        comments_off,
        comments_on,
        edit_form,
        edit_save,
    ],
)
