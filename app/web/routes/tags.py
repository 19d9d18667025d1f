"""Hashtag pages.

GET /tags/{tag}               the posts under the tag that the viewer may see, newest first, TAG_PAGE at a time
GET /tags/{tag}?before=<id>   older ones
A tag that is not one (`/tags/a-b`, 101 characters) is a 400 with what tags are made of; a tag nobody used (or
whose posts the viewer may not see) is the empty page, never an error.
"""

from __future__ import annotations

from litestar import Router, get
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from app import ids
from app.errors import UserError
from app.services import tags
from app.web.deps import CtxDep, ViewerDep, page
from app.web.routes.posts import grid_srcset

TAG_PAGE = 30
BAD_CURSOR = "That link to older posts is broken (?before= must be a post id). Open the tag's first page again."


@get("/tags/{tag:str}", sync_to_thread=True)
def tag_page(ctx: CtxDep, viewer: ViewerDep, tag: FromPath[str], before: FromQuery[str] = "") -> Template:
    cursor = None
    if before:
        cursor = ids.parse(before[:32])
        if cursor is None:
            raise UserError(BAD_CURSOR)
    found = tags.tag_page(ctx, viewer, tag[:1000], cursor, TAG_PAGE)
    return page("tags/tag.html", result=found, paged=cursor is not None, grid_srcset=grid_srcset)


router = Router(path="/", route_handlers=[tag_page])
