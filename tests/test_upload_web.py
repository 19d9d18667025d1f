"""The upload page and the post page through HTTP (TestClient): the no-JavaScript form, the XHR answers,
every refusal as a clear message that leaves nothing stored, and who may see or delete a post."""

from __future__ import annotations

import html
import re
import struct
import time
import zlib

import pytest

from tests.conftest import TESTDATA, all_rows, csrf_token, fetch_media, log_in, post_form, sign_up

GOOD = TESTDATA / "good"
FLOWER = (GOOD / "flower.jpg").read_bytes()
HOPPER = (GOOD / "hopper.jpg").read_bytes()


# --- Helpers ---------------------------------------------------------------------------------------------------


def upload(client, photos, fields=None, *, token=True, headers=None):
    """POST /upload as the no-JS form does: `photos` is [(filename, bytes)], fields the rest of the form."""
    data = dict(fields or {})
    if token:
        data["_csrf_token"] = csrf_token(client, "/upload")
    files = [("photos", (name, body, "application/octet-stream")) for name, body in photos]
    return client.post("/upload", data=data, files=files or None, headers=headers or {}, follow_redirects=False)


def assert_nothing_stored(ctx) -> None:
    assert list(ctx.backends.blobs.keys()) == []
    assert all_rows(ctx, "posts") == []
    assert all_rows(ctx, "post_media") == []


def post_id_of(response) -> str:
    assert response.status_code == 303, response.text[:2000]
    match = re.fullmatch(r"/p/(\d+)", response.headers["location"])
    assert match, response.headers["location"]
    return match.group(1)


def main_of(page_html: str) -> str:
    """The page's <main>, without the per-page CSRF token, to compare two answers."""
    main = page_html.split('<main id="main"', 1)[1].split("</main>", 1)[0]
    return re.sub(r'value="[0-9a-f]{40,}"', "", main)


def png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares `width` x `height` (with a valid CRC) and whose image data is one tiny chunk."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.fixture
def ana(client):
    assert sign_up(client, "ana").status_code == 303
    return client


# --- The happy path --------------------------------------------------------------------------------------------


def test_two_photos_become_a_post(ctx, ana):
    form = {
        "filter_0": "clarendon",
        "alt_0": "A red flower in the sun",
        "filter_1": "normal",
        "alt_1": 'A man called "Hopper" <b>smiling</b>',
        "caption": "First post!\r\nWith <script>alert(1)</script> in it",
        "place_name": "Jardin des Plantes",
        "place_lat": "48.8437",
        "place_lon": "2.3596",
    }
    response = upload(ana, [("flower.jpg", FLOWER), ("hopper.jpg", HOPPER)], form)
    post_id = post_id_of(response)
    [row] = all_rows(ctx, "posts")
    assert str(row["id"]) == post_id and row["status"] == "processing"
    assert row["caption"] == "First post!\nWith <script>alert(1)</script> in it"  # the browser's CRLF as typed
    media = sorted(all_rows(ctx, "post_media"), key=lambda m: m["position"])
    assert [(m["filter_name"], m["alt_text"]) for m in media] == [
        ("clarendon", "A red flower in the sun"),
        ("normal", 'A man called "Hopper" <b>smiling</b>'),
    ]

    # While processing: a friendly state that polls its fragment, with a Refresh link for no-JS browsers.
    page = ana.get(f"/p/{post_id}")
    assert page.status_code == 200
    assert "Preparing your 2 photos" in page.text
    assert f'hx-get="/p/{post_id}/status"' in page.text and 'hx-trigger="every 2s"' in page.text
    assert f'<a href="/p/{post_id}">Refresh</a>' in page.text
    assert "<img" not in main_of(page.text).split('id="post-media"')[1].split("post-body")[0]
    fragment = ana.get(f"/p/{post_id}/status")
    assert fragment.status_code == 200 and "<html" not in fragment.text and "hx-trigger" in fragment.text

    assert ctx.backends.queue.run_pending() >= 1

    # Ready: the fragment stops polling and holds the photos; so does the page.
    fragment = ana.get(f"/p/{post_id}/status")
    assert "hx-trigger" not in fragment.text and "<picture>" in fragment.text
    page = ana.get(f"/p/{post_id}")
    text = page.text
    assert "Preparing" not in text and "hx-trigger" not in main_of(text)
    imgs = re.findall(r"<img [^>]*>", main_of(text).split('id="post-media"')[1])
    alts = [html.unescape(re.search(r'alt="([^"]*)"', img).group(1)) for img in imgs]
    assert alts == ["A red flower in the sun", 'A man called "Hopper" <b>smiling</b>']
    for img in imgs:
        assert re.search(r'width="\d+" height="\d+"', img), img
        assert re.search(r'src="/media/posts/\d+/[0-9a-f]+-1080\.jpg"', img), img
    assert text.count('<source type="image/webp"') == 2
    # Escaped, never markup: the caption, the alt text.
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<b>smiling</b>" not in text
    assert "Jardin des Plantes" in text and "openstreetmap.org/?mlat=48.84370&amp;mlon=2.35960" in text
    # Every image the page names is served.
    for url in set(re.findall(r"/media/posts/[^\s\"]+", text)):
        served = fetch_media(ana, url)
        assert served.status_code == 200 and served.headers["content-type"].startswith("image/"), url


def test_the_upload_page_offers_every_filter_and_field(ana):
    page = ana.get("/upload")
    assert page.status_code == 200
    text = page.text
    assert 'enctype="multipart/form-data"' in text and 'name="_csrf_token"' in text
    assert 'type="file" name="photos" multiple' in text
    for name in (
        "caption",
        "place_name",
        "place_lat",
        "place_lon",
        "sensitive",
        "filter_0",
        "alt_0",
        "filter_9",
        "alt_9",
    ):
        assert f'name="{name}"' in text, name
    assert 'name="filter_10"' not in text
    for look in ("normal", "clarendon", "moon", "valencia"):
        assert f'value="{look}"' in text
    # The filters' CSS previews travel as data for upload.js, not as inline styles.
    assert "data-filters=" in text and "contrast(1.2) saturate(1.35)" in html.unescape(text)
    assert "style=" not in text and "<script>" not in text
    assert "/static/upload.js" in text


def test_xhr_gets_json_answers(ctx, ana):
    accept = {"accept": "application/json"}
    refused = upload(ana, [("notes.pdf", b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n<<>>\nendobj\n")], headers=accept)
    assert refused.status_code == 422
    assert "Photo 1" in refused.json()["error"] and refused.json()["field"] == "photos"
    assert_nothing_stored(ctx)
    created = upload(ana, [("flower.jpg", FLOWER)], {"caption": "hi"}, headers=accept)
    assert created.status_code == 201
    assert re.fullmatch(r"/p/\d+", created.json()["location"])


def test_a_jpeg_with_a_zip_appended_is_accepted(ctx, ana):
    polyglot = FLOWER + b"PK\x03\x04" + zlib.compress(b"secret.txt" * 100) + b"PK\x05\x06" + b"\0" * 18
    post_id = post_id_of(upload(ana, [("holiday.jpg", polyglot)], {"alt_0": "Flower"}))
    ctx.backends.queue.run_pending()
    page = ana.get(f"/p/{post_id}")
    assert 'alt="Flower"' in page.text and "<picture>" in page.text
    # What is served was re-encoded from pixels: the appended archive is not in any rendition.
    for key in ctx.backends.blobs.keys("posts/"):
        assert b"PK\x03\x04" not in ctx.backends.blobs.get(key)


def test_sensitive_posts_hide_behind_a_details_cover(ctx, ana):
    post_id = post_id_of(upload(ana, [("flower.jpg", FLOWER)], {"sensitive": "on"}))
    ctx.backends.queue.run_pending()
    text = ana.get(f"/p/{post_id}").text
    cover = text.index('<details class="cw">')
    assert "Sensitive content" in text and cover < text.index("<picture>")
    assert 'alt="Photo by ana"' in text  # no description given: still never an image without alt text


def test_a_post_that_fails_processing_shows_why(ctx, ana):
    post_id = post_id_of(upload(ana, [("flower.jpg", FLOWER)]))
    for key in list(ctx.backends.blobs.keys("uploads/")):  # the raw upload lost before its task ran
        ctx.backends.blobs.delete(key)
    ctx.backends.queue.run_pending()
    text = ana.get(f"/p/{post_id}").text
    assert "This post couldn't be published" in text and "Photo 1: the upload was lost" in text
    assert "hx-trigger" not in main_of(text) and 'role="alert"' in text
    assert ana.get(f"/p/{post_id}/status").text.count("couldn't be published") == 1


# --- Refusals: a clear message on the page, what was typed kept, nothing stored ----------------------------------

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>'
BAD_FILES = {
    "svg with a script": ("evil.svg", SVG, 422, "not a photo Pinhole can read"),
    "html renamed .jpg": (
        "photo.jpg",
        b"<!doctype html><html><body><script>alert(1)</script></body></html>",
        422,
        "not a photo",
    ),
    "pdf": (
        "scan.pdf",
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n",
        422,
        "not a photo",
    ),
    "empty file": ("empty.jpg", b"", 422, "The file is empty"),
    "100000 x 100000 png": ("huge.png", png_header(100_000, 100_000), 422, "100000×100000 pixels"),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_bad_files_are_refused_with_a_message(ctx, ana, case):
    name, body, status, message = BAD_FILES[case]
    form = {"caption": "Kept after the error", "alt_0": "my words", "place_name": "Lyon"}
    response = upload(ana, [("flower.jpg", FLOWER), (name, body)], form)
    assert response.status_code == status, response.text[:500]
    assert message in html.unescape(response.text)
    assert "Photo 2:" in response.text  # names the photo
    assert "Kept after the error" in response.text and "my words" in response.text and 'value="Lyon"' in response.text
    assert 'role="alert"' in response.text and "choose your photos again" in response.text
    assert_nothing_stored(ctx)


FORM_ERRORS = {
    "eleven photos": ([("p.jpg", HOPPER)] * 11, {}, 400, "up to 10 photos"),
    "no photos": ([], {"caption": "nothing to show"}, 400, "Choose at least one photo"),
    "an empty file field": ([("", b"")], {}, 400, "Choose at least one photo"),
    "caption too long": ([("p.jpg", HOPPER)], {"caption": "x" * 2201}, 400, "the limit is 2200"),
    "coordinates not numbers": (
        [("p.jpg", HOPPER)],
        {"place_name": "Home", "place_lat": "north", "place_lon": "2"},
        400,
        "must be numbers",
    ),
    "latitude out of range": (
        [("p.jpg", HOPPER)],
        {"place_name": "Home", "place_lat": "95", "place_lon": "2"},
        400,
        "between -90 and 90",
    ),
    "longitude out of range": (
        [("p.jpg", HOPPER)],
        {"place_name": "Home", "place_lat": "45", "place_lon": "-181"},
        400,
        "between -180 and 180",
    ),
    "one coordinate": ([("p.jpg", HOPPER)], {"place_name": "Home", "place_lat": "45"}, 400, "both, or neither"),
    "not a finite number": (
        [("p.jpg", HOPPER)],
        {"place_name": "Home", "place_lat": "nan", "place_lon": "inf"},
        400,
        "must be numbers",
    ),
    "unknown filter": ([("p.jpg", HOPPER)], {"filter_0": "sparkles"}, 400, "unknown filter"),
    "alt text too long": ([("p.jpg", HOPPER)], {"alt_0": "a" * 1001}, 400, "the limit is 1000"),
}


@pytest.mark.parametrize("case", FORM_ERRORS, ids=list(FORM_ERRORS))
def test_bad_fields_are_refused_with_a_message(ctx, ana, case):
    photos, form, status, message = FORM_ERRORS[case]
    response = upload(ana, photos, form)
    assert response.status_code == status, response.text[:500]
    assert message in html.unescape(response.text)
    assert "New post" in response.text  # the form again, not an error page
    for name, value in form.items():
        if len(value) < 100 and not name.startswith("filter_"):  # a select can only keep a filter that exists
            assert html.escape(value) in response.text, value
    assert_nothing_stored(ctx)


def test_a_body_over_the_limit_gets_a_413_page(make_site):
    ctx, client = make_site(server={"max_body_mb": 1})
    sign_up(client, "ana")
    response = upload(client, [("big.jpg", FLOWER + b"\0" * (2 * 1024 * 1024))])
    assert response.status_code == 413
    assert "larger than this server accepts (1 MB in all)" in response.text
    assert_nothing_stored(ctx)
    as_xhr = upload(client, [("big.jpg", FLOWER + b"\0" * (2 * 1024 * 1024))], headers={"accept": "application/json"})
    assert as_xhr.status_code == 413 and "1 MB" in as_xhr.json()["error"]


def test_a_200_mb_body_gets_a_413_under_the_default_limits(ctx, ana):
    """Default limits (220 MB a request, 25 MB a photo): one 200 MB "photo" is streamed to a temporary file by
    the multipart parser and refused by its length; only 25 MB + 1 byte of it is ever read into memory."""
    assert ctx.config.server.max_body_mb == 220 and ctx.config.media.max_upload_mb == 25
    started = time.monotonic()
    response = upload(ana, [("huge.jpg", FLOWER + b"\0" * (200 * 1024 * 1024))])
    assert response.status_code == 413, response.text[:500]
    assert "larger than 25 MB" in response.text
    assert_nothing_stored(ctx)
    assert time.monotonic() - started < 30


def test_a_body_over_220_mb_is_refused_before_it_is_read(ctx, ana):
    """A Content-Length over the limit is answered 413 at once, without reading the body."""
    token = csrf_token(ana, "/upload")
    boundary = "pinhole-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="_csrf_token"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="photos"; filename="big.jpg"\r\n\r\n'
    ).encode()
    response = ana.post(
        "/upload",
        content=head + FLOWER,
        headers={"content-type": f"multipart/form-data; boundary={boundary}", "content-length": str(221 * 1024 * 1024)},
        follow_redirects=False,
    )
    assert response.status_code == 413
    assert_nothing_stored(ctx)


def test_without_the_csrf_token_nothing_is_posted(ctx, ana):
    response = upload(ana, [("flower.jpg", FLOWER)], {"caption": "forged"}, token=False)
    assert response.status_code == 403
    assert "This form expired or came from another site" in response.text
    assert_nothing_stored(ctx)


def test_uploading_needs_a_signed_in_person(ctx, client):
    response = client.get("/upload", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/upload"
    token = csrf_token(client, "/login")
    posted = client.post(
        "/upload",
        data={"_csrf_token": token},
        files=[("photos", ("f.jpg", FLOWER, "image/jpeg"))],
        follow_redirects=False,
    )
    assert posted.status_code == 401
    assert_nothing_stored(ctx)


def test_the_nav_links_to_the_upload_page(ana):
    assert 'href="/upload"' in ana.get("/").text


# --- Who sees and who deletes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/p/abc", "/p/99999999999", "/p/0", "/p/-5", "/p/1e9", "/p/" + "9" * 30])
def test_malformed_and_missing_ids_are_404(ana, path):
    for suffix in ("", "/status"):
        response = ana.get(path + suffix)
        assert response.status_code == 404, path + suffix
        assert "There is no post at this address" in response.text


def _ready_post(ctx, client, **fields) -> str:
    post_id = post_id_of(upload(client, [("flower.jpg", FLOWER)], {"alt_0": "Flower", **fields}))
    ctx.backends.queue.run_pending()
    return post_id


def test_a_private_post_is_the_same_404_as_a_missing_one(ctx, client, another):
    sign_up(client, "ana")
    post_form(client, "/settings/profile", {"display_name": "", "bio": "", "is_private": "on"})
    post_id = _ready_post(ctx, client)
    assert client.get(f"/p/{post_id}").status_code == 200  # the author sees it

    sign_up(another, "bob")
    hidden, missing = another.get(f"/p/{post_id}"), another.get("/p/99999999999")
    assert hidden.status_code == missing.status_code == 404
    assert main_of(hidden.text) == main_of(missing.text)
    assert another.get(f"/p/{post_id}/status").status_code == 404
    anonymous = another_anonymous(client).get(f"/p/{post_id}")
    assert anonymous.status_code == 404


def another_anonymous(client):
    from tests.conftest import another_browser

    return another_browser(client)


@pytest.fixture
def another(client):
    from tests.conftest import another_browser

    return another_browser(client)


def test_others_see_a_public_post_only_once_it_is_ready(ctx, client, another):
    sign_up(client, "ana")
    post_id = post_id_of(upload(client, [("flower.jpg", FLOWER)], {"caption": "soon"}))
    assert another.get(f"/p/{post_id}").status_code == 404
    ctx.backends.queue.run_pending()
    page = another.get(f"/p/{post_id}")
    assert page.status_code == 200 and "soon" in page.text
    assert "Delete post" not in page.text  # only the author gets the menu


def test_deleting_someone_elses_post_changes_nothing(ctx, client, another):
    sign_up(client, "ana")
    post_id = _ready_post(ctx, client, caption="mine")
    sign_up(another, "bob")
    before_rows, before_blobs = all_rows(ctx, "posts"), sorted(ctx.backends.blobs.keys())
    response = post_form(another, f"/p/{post_id}/delete", {}, token_from="/upload")
    assert response.status_code in (403, 404)
    ctx.backends.queue.run_pending()
    assert all_rows(ctx, "posts") == before_rows and sorted(ctx.backends.blobs.keys()) == before_blobs
    assert client.get(f"/p/{post_id}").status_code == 200


def test_the_author_deletes_a_post(ctx, ana):
    post_id = _ready_post(ctx, ana)
    assert list(ctx.backends.blobs.keys("posts/"))
    missing_token = ana.post(f"/p/{post_id}/delete", follow_redirects=False)
    assert missing_token.status_code == 403 and all_rows(ctx, "posts")
    response = post_form(ana, f"/p/{post_id}/delete", {}, token_from=f"/p/{post_id}")
    assert response.status_code == 303 and response.headers["location"] == "/@ana"
    assert ana.get(f"/p/{post_id}").status_code == 404
    ctx.backends.queue.run_pending()
    assert_nothing_stored(ctx)
    again = post_form(ana, f"/p/{post_id}/delete", {}, token_from="/upload")
    assert again.status_code == 404


def test_signed_out_delete_is_refused(ctx, client, another):
    sign_up(client, "ana")
    post_id = _ready_post(ctx, client)
    token = csrf_token(another, "/login")
    response = another.post(f"/p/{post_id}/delete", data={"_csrf_token": token}, follow_redirects=False)
    assert response.status_code == 401
    assert len(all_rows(ctx, "posts")) == 1


def test_log_in_again_and_see_your_processing_post(ctx, client):
    sign_up(client, "ana")
    post_id = post_id_of(upload(client, [("flower.jpg", FLOWER)]))
    post_form(client, "/logout", {}, token_from="/upload")
    assert client.get(f"/p/{post_id}").status_code == 404
    log_in(client, "ana")
    assert "Preparing your photo" in client.get(f"/p/{post_id}").text


# --- The profile grid ----------------------------------------------------------------------------------------------


def grid_of(page_html: str) -> list[str]:
    """The post links of a profile's grid, in order."""
    if '<ul class="grid"' not in page_html:
        return []
    grid = page_html.split('<ul class="grid"', 1)[1].split("</ul>", 1)[0]
    return re.findall(r'<a href="/p/(\d+)">', grid)


def test_the_profile_shows_ready_posts_as_a_grid(ctx, client, another):
    sign_up(client, "ana")
    empty = client.get("/@ana").text
    assert "No photos yet" in empty and 'href="/upload"' in empty and grid_of(empty) == []

    first = _ready_post(ctx, client, alt_0="First flower")
    second = post_id_of(upload(client, [("a.jpg", FLOWER), ("b.jpg", HOPPER)], {"alt_0": "Second"}))
    third = post_id_of(upload(client, [("c.jpg", HOPPER)]))
    page = client.get("/@ana").text
    assert grid_of(page) == [first]  # only ready posts: the other two are still processing
    ctx.backends.queue.run_pending()
    page = client.get("/@ana").text
    assert grid_of(page) == [third, second, first]
    assert "No photos yet" not in page
    grid = page.split('<ul class="grid"', 1)[1].split("</ul>", 1)[0]
    tiles = re.findall(r"<li.*?</li>", grid, re.S)
    assert 'alt="First flower"' in tiles[2] and 'alt="Second"' in tiles[1] and 'alt="Photo by ana"' in tiles[0]
    assert 'title="2 photos"' in tiles[1] and "photos" not in tiles[2].split("<picture>")[0]
    for tile in tiles:
        assert re.search(r'<source type="image/webp" srcset="/media/posts/\d+/[0-9a-f]+-150sq\.webp 1\d\dw', tile)
        assert 'width="150" height="150"' in tile and "-150sq.jpg" in tile
    assert "style=" not in grid

    # Others see the same grid of a public account, and nothing of a private one.
    assert grid_of(another.get("/@ana").text) == [third, second, first]
    post_form(client, "/settings/profile", {"display_name": "", "bio": "", "is_private": "on"})
    hidden = another.get("/@ana").text
    assert grid_of(hidden) == [] and "/media/posts/" not in hidden
    assert grid_of(client.get("/@ana").text) == [third, second, first]  # the author still sees them


def test_the_grid_pages_with_before(ctx, client, monkeypatch):
    from app.web.routes import pages

    monkeypatch.setattr(pages, "GRID_PAGE", 2)
    sign_up(client, "ana")
    made = [_ready_post(ctx, client) for _ in range(3)]
    page = client.get("/@ana").text
    assert grid_of(page) == [made[2], made[1]]
    link = re.search(r'href="(/@ana\?before=\d+)"', page).group(1)
    older = client.get(link).text
    assert grid_of(older) == [made[0]] and "?before=" not in older
    assert client.get("/@ana?before=nonsense").status_code == 200


def test_a_sensitive_post_is_blurred_in_the_grid(ctx, ana):
    _ready_post(ctx, ana, sensitive="on", alt_0="Something graphic")
    grid = ana.get("/@ana").text.split('<ul class="grid"', 1)[1]
    assert '<li class="sensitive-tile">' in grid and 'alt="Sensitive photo by ana"' in grid
    assert "Something graphic" not in grid
