"""Profile photos through the real app: upload, the queued task, serving, and what gets refused."""

from __future__ import annotations

import re

import pytest
import pyvips

from app.services import avatars
from tests.conftest import TESTDATA, all_users, post_form, sign_up

GOOD = TESTDATA / "good"


def upload(client, name: str, data: bytes, content_type: str = "image/jpeg"):
    return post_form(
        client, "/settings/avatar", {}, token_from="/settings/profile", files={"avatar": (name, data, content_type)}
    )


def upload_file(client, path):
    return upload(client, path.name, path.read_bytes())


def the_user(ctx) -> dict:
    (row,) = all_users(ctx)
    return row


def blob_keys(ctx, prefix: str = "") -> list[str]:
    return sorted(ctx.backends.blobs.keys(prefix))


def avatar_src(client) -> str:
    """The avatar URL ana's profile page shows (the same in the header, where she is the viewer)."""
    page = client.get("/@ana").text
    (src,) = set(re.findall(r'src="(/media/avatars/[^"]+|/static/avatar\.svg[^"]*)"', page))
    return src


def processed_avatar(client, ctx, path) -> pyvips.Image:
    assert upload_file(client, path).status_code == 303
    assert ctx.backends.queue.run_pending() == 1
    key = the_user(ctx)["avatar_key"]
    return pyvips.Image.new_from_buffer(ctx.backends.blobs.get(key), "")


@pytest.fixture
def ana(client):
    assert sign_up(client, "ana").status_code == 303
    return client


def test_upload_is_prepared_in_the_background_then_served(ana, ctx):
    client = ana
    response = upload_file(client, GOOD / "flower.jpg")
    assert response.status_code == 303
    assert "being prepared" in client.get("/settings/profile").text
    assert the_user(ctx)["avatar_key"] is None
    assert "/static/avatar.svg" in avatar_src(client)
    assert ctx.backends.queue.pending() == 1

    assert ctx.backends.queue.run_pending() == 1
    row = the_user(ctx)
    assert row["avatar_upload_key"] is None and row["avatar_error"] is None
    assert re.fullmatch(r"avatars/[0-9a-f]{32}\.webp", row["avatar_key"])
    assert "being prepared" not in client.get("/settings/profile").text
    assert blob_keys(ctx) == [row["avatar_key"]]  # the raw upload is gone

    url = avatar_src(client)
    assert url == f"/media/{row['avatar_key']}"
    assert url in client.get("/").text  # the signed-in pages show it too
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/webp"
    assert response.headers["x-content-type-options"] == "nosniff"
    cache_control = response.headers["cache-control"]
    assert "immutable" in cache_control and "max-age=31536000" in cache_control
    image = pyvips.Image.new_from_buffer(response.content, "")
    assert (image.width, image.height) == (320, 320)
    assert image.get("vips-loader") == "webpload_buffer"

    etag = response.headers["etag"]
    again = client.get(url, headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert client.get(url, headers={"if-none-match": '"something-else"'}).status_code == 200


@pytest.mark.parametrize("name", ["exif_gps.jpg", "hopper.png", "exif.avif", "pil_sample_cmyk.jpg"])
def test_stored_avatar_carries_no_metadata(ana, ctx, name):
    source = pyvips.Image.new_from_file(str(GOOD / name))
    if name == "exif_gps.jpg":
        assert any("GPS" in field for field in source.get_fields())  # the test photo does carry GPS
    image = processed_avatar(ana, ctx, GOOD / name)
    fields = image.get_fields()
    for forbidden in ("exif-data", "xmp-data", "iptc-data", "icc-profile-data"):
        assert forbidden not in fields, forbidden
    assert not [f for f in fields if "gps" in f.lower() or f.startswith("exif-")]
    assert (image.width, image.height, image.interpretation) == (320, 320, "srgb")


def test_avatar_is_upright_whatever_the_exif_orientation(ana, ctx):
    upright = processed_avatar(ana, ctx, TESTDATA / "orientation" / "Portrait_1.jpg")
    rotated = processed_avatar(ana, ctx, TESTDATA / "orientation" / "Portrait_6.jpg")
    difference = (upright - rotated).abs().avg()
    sideways = (upright - upright.rot90()).abs().avg()
    assert difference < 10, difference  # measured about 2; left unrotated it is about 54
    assert sideways > 3 * difference  # the measure does tell a turned picture apart


def test_replacing_an_avatar_deletes_the_old_file(ana, ctx):
    processed_avatar(ana, ctx, GOOD / "flower.jpg")
    first = the_user(ctx)["avatar_key"]
    processed_avatar(ana, ctx, GOOD / "hopper.png")
    second = the_user(ctx)["avatar_key"]
    assert second != first
    assert blob_keys(ctx) == [second]
    assert ana.get(f"/media/{first}").status_code == 404


def test_a_second_upload_before_the_first_is_ready_keeps_only_the_second(ana, ctx):
    upload_file(ana, GOOD / "flower.jpg")
    upload_file(ana, GOOD / "hopper.png")
    assert len(blob_keys(ctx, "uploads/")) == 1  # the superseded upload was deleted at once
    ctx.backends.queue.run_pending()
    row = the_user(ctx)
    assert blob_keys(ctx) == [row["avatar_key"]]
    image = pyvips.Image.new_from_buffer(ctx.backends.blobs.get(row["avatar_key"]), "")
    hopper = pyvips.Image.thumbnail(str(GOOD / "hopper.png"), 320, height=320, crop="attention")
    assert (image - hopper.colourspace("srgb")).abs().avg() < 10  # the later photo won


def test_removing_an_avatar(ana, ctx):
    processed_avatar(ana, ctx, GOOD / "flower.jpg")
    key = the_user(ctx)["avatar_key"]
    assert "Remove photo" in ana.get("/settings/profile").text
    response = post_form(ana, "/settings/avatar/remove", {}, token_from="/settings/profile")
    assert response.status_code == 303
    assert the_user(ctx)["avatar_key"] is None
    assert blob_keys(ctx) == []
    assert "/static/avatar.svg" in avatar_src(ana)
    assert ana.get(f"/media/{key}").status_code == 404


def test_processing_again_changes_nothing(ana, ctx):
    upload_file(ana, GOOD / "flower.jpg")
    user_id = the_user(ctx)["id"]
    avatars.process_avatar(ctx, user_id)
    done = the_user(ctx)
    files = {key: ctx.backends.blobs.get(key) for key in blob_keys(ctx)}
    avatars.process_avatar(ctx, user_id)  # a duplicate delivery after success
    ctx.backends.queue.run_pending()  # and the task that was queued all along
    assert the_user(ctx) == done
    assert {key: ctx.backends.blobs.get(key) for key in blob_keys(ctx)} == files
    assert list(files) == [done["avatar_key"]]


def test_sweep_finds_an_avatar_whose_task_was_lost(ana, ctx):
    upload_file(ana, GOOD / "flower.jpg")
    assert avatars.sweep_stuck_avatars(ctx) == 0  # a fresh upload is left to its own task
    ctx.backends.queue.huey.flush()  # the worker died with the task
    assert ctx.backends.queue.run_pending() == 0
    assert the_user(ctx)["avatar_upload_key"] is not None
    user_id = the_user(ctx)["id"]
    with ctx.db.write(0) as conn:
        conn.run("UPDATE users SET updated_at = updated_at - ? WHERE id = ?", (avatars.STUCK_AFTER_MS + 1000, user_id))
    assert avatars.sweep_stuck_avatars(ctx) == 1
    assert ctx.backends.queue.run_pending() == 1
    row = the_user(ctx)
    assert row["avatar_upload_key"] is None and row["avatar_key"]
    assert blob_keys(ctx) == [row["avatar_key"]]
    assert avatars.sweep_stuck_avatars(ctx) == 0


def test_uploads_are_never_served(ana, ctx):
    upload_file(ana, GOOD / "flower.jpg")
    (upload_key,) = blob_keys(ctx, "uploads/")
    assert ana.get(f"/media/{upload_key}").status_code == 404
    for path in ("/media/uploads/", "/media/avatars/", "/media/avatars/x.svg", "/media/avatars/NOPE.webp"):
        assert ana.get(path).status_code == 404, path


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<script>alert(document.cookie)</script><rect width="10" height="10"/></svg>'
)
HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


# The bomb's frame claims 65535x65535 pixels in 44 bytes; libvips refuses it from the header.
@pytest.mark.parametrize(
    "name, data, content_type, message",
    [
        ("evil.svg", SVG, "image/svg+xml", "not a photo Pinhole can read"),
        ("evil.svg.jpg", SVG, "image/jpeg", "not a photo Pinhole can read"),
        ("page.jpg", HTML, "image/jpeg", "not a photo Pinhole can read"),
        ("doc.jpg", PDF, "image/jpeg", "not a photo Pinhole can read"),
        ("empty.jpg", b"", "image/jpeg", "The file is empty."),
        ("bomb.gif", (TESTDATA / "bad" / "decompression_bomb.gif").read_bytes(), "image/gif", "damaged or incomplete"),
        ("polyglot.jpg", b"\xff\xd8\xff" + b"PK\x03\x04" + b"\0" * 64, "image/jpeg", "damaged or incomplete"),
    ],
    ids=["svg", "svg-named-jpg", "html-named-jpg", "pdf-named-jpg", "empty", "decompression-bomb", "zip-polyglot"],
)
def test_non_photos_are_refused_at_upload_and_leave_nothing(ana, ctx, name, data, content_type, message):
    before = the_user(ctx)
    response = upload(ana, name, data, content_type)
    assert 400 <= response.status_code < 500
    assert message in response.text
    assert "text/html" in response.headers["content-type"]
    assert the_user(ctx) == before
    assert blob_keys(ctx) == []
    assert ctx.backends.queue.pending() == 0


@pytest.mark.parametrize("path", sorted((TESTDATA / "bad").iterdir()), ids=lambda p: p.name)
def test_the_malformed_corpus_never_breaks_anything(ana, ctx, path):
    response = upload_file(ana, path)
    assert response.status_code in (303, 413, 422), response.text[:300]
    ctx.backends.queue.run_pending()
    row = the_user(ctx)
    assert row["avatar_upload_key"] is None
    if row["avatar_key"]:  # a truncated photo that still decodes becomes a valid avatar
        image = pyvips.Image.new_from_buffer(ctx.backends.blobs.get(row["avatar_key"]), "")
        assert (image.width, image.height) == (320, 320)
        assert blob_keys(ctx) == [row["avatar_key"]]
    else:
        assert blob_keys(ctx) == []
    page = ana.get("/settings/profile")
    assert page.status_code == 200
    if response.status_code == 303 and not row["avatar_key"]:
        assert row["avatar_error"] and row["avatar_error"] in page.text  # the failure is explained


def test_a_photo_over_the_pixel_limit_is_refused_from_its_header(make_site):
    ctx, client = make_site(media={"max_pixels": 1_000_000})
    sign_up(client, "ana")
    wide = pyvips.Image.black(1001, 1000).pngsave_buffer()
    response = upload(client, "wide.png", wide, "image/png")
    assert response.status_code == 422
    assert "That photo is 1001×1000 pixels; the limit is 1 megapixels." in response.text
    assert blob_keys(ctx) == []
    assert upload(client, "ok.png", pyvips.Image.black(1000, 1000).pngsave_buffer(), "image/png").status_code == 303


def test_upload_needs_a_login(client, ctx):
    response = post_form(client, "/settings/avatar", {}, token_from="/login", files={"avatar": ("a.jpg", b"x", "")})
    assert response.status_code == 401
    assert blob_keys(ctx) == []
