"""Photo uploads before posting (POST /api/v2/media, then GET to poll and PUT to describe): thin handlers over
app/services/attachments.py. Processing runs in the queue, so an upload answers 202 with `url` null until its
renditions exist."""

from __future__ import annotations

from litestar import Response
from litestar.di import NamedDependency
from litestar.params import FromPath

from app.api import entities
from app.api.base import FILE, TEXT, Caller, Fields, endpoint
from app.errors import UserError
from app.services import attachments
from app.services.attachments import Attachment
from app.web.deps import CtxDep

CallerDep = NamedDependency[Caller]
FieldsDep = NamedDependency[Fields]


def _answer(ctx, found: Attachment, processing_status: int) -> Response:
    """Ready: 200. Processing: `processing_status` (202 for an upload, 206 for a poll, as Mastodon). Failed: 422
    with the reason."""
    if found.status == "failed":
        raise UserError(found.error or "This photo could not be processed. Upload it again.", status=422)
    status = 200 if found.status == "ready" else processing_status
    return Response(entities.media_attachment(ctx, found, signed=True), status_code=status)


@endpoint(
    "POST",
    "/api/v2/media",
    scope="write:media",
    body={"file": FILE, "description": TEXT, "focus": TEXT},
)
def upload(ctx: CtxDep, caller: CallerDep, fields: FieldsDep) -> Response:
    """Upload one photo (multipart `file`), with its description (alt text) and focal point (`focus` "x,y")."""
    upload_file = fields.file("file")
    if upload_file is None:
        raise UserError("Send the photo as the multipart field `file`.", field="file")
    limit = ctx.config.media.max_upload_mb * 1024 * 1024
    found = attachments.upload(
        ctx,
        caller.me,
        upload_file.file.read(limit + 1),  # one byte past the limit: the check refuses it by its length
        description=fields.text("description", 20_000),
        focus=fields.text("focus", 100),
    )
    return _answer(ctx, found, 202)


@endpoint("GET", "/api/v1/media/{media_id:str}", scope="write:media")
def get_media(ctx: CtxDep, caller: CallerDep, media_id: FromPath[str]) -> Response:
    """One of the caller's uploads not yet posted: 206 while it is processing, 200 once `url` is set."""
    return _answer(ctx, attachments.get_attachment(ctx, caller.me, media_id), 206)


@endpoint("PUT", "/api/v1/media/{media_id:str}", scope="write:media", body={"description": TEXT, "focus": TEXT})
def update_media(ctx: CtxDep, caller: CallerDep, media_id: FromPath[str], fields: FieldsDep) -> Response:
    """Change an upload's description (alt text) or focal point before it is posted."""
    found = attachments.update_attachment(
        ctx, caller.me, media_id, description=fields.text("description", 20_000), focus=fields.text("focus", 100)
    )
    return _answer(ctx, found, 206)


ROUTES = [upload, get_media, update_media]
