"""The visibility matrix (tests/test_visibility_matrix.py) again, with photos in S3 (SeaweedFS): the same site, the
same viewers, the same assertions. A photo the viewer may see is now a redirect that the test client follows to the
real S3, where it must answer 200; one the viewer may not see must still be the same 404 as a missing one, with no
redirect to follow."""

from __future__ import annotations

import httpx
import pytest

import tests.test_visibility_matrix as matrix
from app.web.app import create_app
from tests.backends import make_config
from tests.test_visibility_matrix import (  # noqa: F401 (collected here too, on S3)
    test_each_surface_shows_the_post_only_to_those_allowed,
    test_refusals_read_like_a_missing_post,
    test_search_finds_accounts_but_never_for_the_blocked,
    test_those_not_allowed_cannot_like_or_comment,
)


class ForwardToS3:
    """The app, except that requests for the S3 endpoint go to the real S3 server, as a browser's would: the test
    client sends every request, redirects included, to the app it was given."""

    def __init__(self, app, endpoint: str):
        self.app = app
        self.host = endpoint.split("://", 1)[1].encode()
        self.endpoint = endpoint

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or dict(scope["headers"]).get(b"host") != self.host:
            await self.app(scope, receive, send)
            return
        query = scope["query_string"].decode()
        url = self.endpoint + scope["raw_path"].decode().split("?", 1)[0] + (f"?{query}" if query else "")
        forwarded = {k.decode(): v.decode() for k, v in scope["headers"] if k in (b"range", b"if-none-match")}
        async with httpx.AsyncClient() as http:
            answer = await http.request(scope["method"], url, headers=forwarded)
        kept = [(k, v) for k, v in answer.headers.items() if k not in ("content-length", "connection")]
        headers = [(k.encode(), v.encode()) for k, v in kept]
        headers.append((b"content-length", str(len(answer.content)).encode()))
        await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": answer.content})


@pytest.fixture(scope="module")
def site(tmp_path_factory, seaweedfs):
    bucket = seaweedfs.new_bucket()
    on_s3 = {"backend": "s3", **seaweedfs.settings(bucket)}
    with pytest.MonkeyPatch.context() as patch:  # the matrix's own site, built with these two changed
        patch.setattr(matrix, "make_config", lambda folder, **sections: make_config(folder, media=on_s3, **sections))
        patch.setattr(matrix, "create_app", lambda ctx: ForwardToS3(create_app(ctx), seaweedfs.endpoint))
        yield from matrix.site.__wrapped__(tmp_path_factory)
    seaweedfs.remove_bucket(bucket)


def test_photos_really_come_from_s3(site, seaweedfs):
    """The matrix's 200s for photos are S3's: the app answers with a redirect to a presigned URL."""
    _ctx, client, _owners, _users, found = site
    answer = client.get(found["public"].media[0].urls["320"]["jpeg"], follow_redirects=False)
    assert answer.status_code == 302 and answer.headers["location"].startswith(seaweedfs.endpoint + "/")
