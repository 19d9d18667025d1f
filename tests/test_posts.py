"""Posting photos through the service: checks before anything is stored, the queued processing, idempotent reruns,
the sweep for lost tasks, deletion, and who may see a post. Files from ../shared/testdata/images and crafted ones."""

from __future__ import annotations

import datetime
import io
import re
import struct
import zipfile
import zlib

import pytest
import pyvips
from prometheus_client import REGISTRY

from app import ids
from app.errors import Forbidden, NotFound, UserError
from app.media.images import ImageRejected
from app.services import accounts, posts
from app.services.posts import MAX_ATTEMPTS, NOT_FOUND, PhotoUpload, Place, create_post, delete_post, get_post
from tests.conftest import PASSWORD, TESTDATA, all_rows

GOOD = TESTDATA / "good"
ORIENTATION = TESTDATA / "orientation"
SIZES = ("1080", "640", "320", "150sq")
RENDITION_KEY = re.compile(r"posts/(\d+)/[0-9a-f]{32}-(1080|640|320|150sq)\.(webp|jpg)")


def photo(name: str, **options) -> PhotoUpload:
    return PhotoUpload((GOOD / name).read_bytes(), **options)


def blob_keys(ctx, prefix: str = "") -> list[str]:
    return sorted(ctx.backends.blobs.keys(prefix))


def blobs_of(ctx, prefix: str = "") -> dict[str, bytes]:
    return {key: ctx.backends.blobs.get(key) for key in blob_keys(ctx, prefix)}


def post_row(ctx, post_id: int) -> dict:
    with ctx.db.read(ids.shard_of(post_id)) as conn:
        return dict(conn.one("SELECT * FROM posts WHERE id = ?", (post_id,)))


def posts_counted() -> float:
    return REGISTRY.get_sample_value("pinhole_posts_total") or 0.0


def decode(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "").copy_memory()


def rendition(ctx, media: posts.Media, size: str = "1080", fmt: str = "webp") -> pyvips.Image:
    return decode(ctx.backends.blobs.get(media.urls[size][fmt].removeprefix("/media/")))


def assert_nothing_stored(ctx) -> None:
    assert all_rows(ctx, "posts", "ORDER BY id") == [] and all_rows(ctx, "post_media", "ORDER BY id") == []
    assert blob_keys(ctx) == []
    assert ctx.backends.queue.pending() == 0


def age(ctx, post_id: int, ms: int) -> None:
    """Make the post look as if its task was enqueued `ms` earlier."""
    with ctx.db.write(ids.shard_of(post_id)) as conn:
        conn.run("UPDATE posts SET updated_at = updated_at - ? WHERE id = ?", (ms, post_id))


@pytest.fixture
def ana(ctx):
    return accounts.create_user(ctx, "ana", PASSWORD)


@pytest.fixture
def bob(ctx):
    return accounts.create_user(ctx, "bob", PASSWORD)


def ready_post(ctx, author, photos, **fields) -> posts.Post:
    post = create_post(ctx, author, photos, **fields)
    ctx.backends.queue.run_pending()
    post = get_post(ctx, post.id, author)
    assert post.status == "ready", post.error
    return post


# --- a post from request to ready ----------------------------------------------------------------------------------


def test_a_three_photo_post_is_processed_in_the_background(ctx, ana):
    counted = posts_counted()
    post = create_post(
        ctx,
        ana,
        [
            photo("flower.jpg", filter_name="clarendon", alt_text="  A red flower in the sun "),
            photo("hopper.png", filter_name="inkwell", alt_text="A portrait"),
            photo("sugarshack.mpo"),
        ],
        caption="Spring in the garden\r\n#flowers",
        place=Place("Jardim da Estrela", 38.7139, -9.1598),
        sensitive=True,
    )
    assert post.status == "processing" and post.error is None
    assert ids.shard_of(post.id) == ana.shard and post.author.id == ana.id
    assert post.caption == "Spring in the garden\n#flowers"
    assert post.place == Place("Jardim da Estrela", 38.7139, -9.1598) and post.sensitive
    assert [(m.position, m.filter_name, m.alt_text) for m in post.media] == [
        (1, "clarendon", "A red flower in the sun"),
        (2, "inkwell", "A portrait"),
        (3, "normal", ""),
    ]
    assert all(m.urls == {} and m.width is None and m.blurhash is None for m in post.media)
    assert len(blob_keys(ctx, "uploads/")) == 3 and blob_keys(ctx, "posts/") == []
    assert ctx.backends.queue.pending() == 1  # nothing was decoded in the request
    with pytest.raises(NotFound):
        get_post(ctx, post.id, None)  # not visible half-done

    assert ctx.backends.queue.run_pending() >= 1  # process_post, then post_ready
    post = get_post(ctx, post.id, None)
    assert post.status == "ready" and post.error is None
    assert posts_counted() == counted + 1
    assert blob_keys(ctx, "uploads/") == []  # the originals go once processed (keep_original is off)
    served = {url.removeprefix("/media/") for m in post.media for f in m.urls.values() for url in f.values()}
    assert set(blob_keys(ctx)) == served and len(served) == 3 * 4 * 2
    for key in served:
        match = RENDITION_KEY.fullmatch(key)
        assert match and int(match[1]) == post.id, key

    expected_sizes = {"flower.jpg": (480, 360), "hopper.png": (128, 128), "sugarshack.mpo": (640, 480)}
    for media, (width, height) in zip(post.media, expected_sizes.values(), strict=True):
        assert (media.width, media.height) == (width, height)  # never enlarged past the upload
        assert sorted(media.urls) == sorted(SIZES) and all(sorted(f) == ["jpeg", "webp"] for f in media.urls.values())
        for size in SIZES:
            for fmt in ("webp", "jpeg"):
                image = rendition(ctx, media, size, fmt)
                if size == "150sq":
                    assert image.width == image.height == min(150, width, height)
                else:
                    assert max(image.width, image.height) == min(int(size), max(width, height))
        assert (rendition(ctx, media).width, rendition(ctx, media).height) == (media.width, media.height)
        assert media.blurhash and 6 <= len(media.blurhash) <= 40
        assert re.fullmatch(r"#[0-9a-f]{6}", media.dominant_color)
    flower, hopper, mpo = post.media
    assert flower.camera == {
        "make": "Canon",
        "model": "Canon PowerShot S40",
        "focal_length_mm": 21.3,
        "aperture": 4.9,
        "shutter": "1/500",
        "taken_at": "2003-12-14T12:01:44",
    }
    assert mpo.camera["model"] == "Nintendo 3DS" and hopper.camera == {}
    grey = rendition(ctx, hopper)  # inkwell is black and white; the original is not
    assert (grey[0] - grey[2]).abs().avg() < 2
    colour = decode(pyvips.Image.new_from_file(str(GOOD / "hopper.png")).pngsave_buffer())
    assert (colour[0] - colour[2]).abs().avg() > 10


def test_every_good_file_is_accepted_and_no_stored_file_keeps_metadata(ctx, ana):
    files = sorted(GOOD.iterdir())
    source = pyvips.Image.new_from_file(str(GOOD / "exif_gps.jpg"))
    assert any("GPS" in field for field in source.get_fields())  # the corpus does carry GPS
    made = [
        ready_post(ctx, ana, [PhotoUpload(path.read_bytes()) for path in chunk])
        for chunk in (files[: posts.MAX_PHOTOS], files[posts.MAX_PHOTOS :])
    ]
    assert sum(len(post.media) for post in made) == len(files)
    stored = blobs_of(ctx)
    assert len(stored) == len(files) * 8 and not blob_keys(ctx, "uploads/")
    for key, data in stored.items():
        fields = decode(data).get_fields()
        assert not [f for f in fields if f.startswith(("exif", "xmp", "iptc", "icc")) or "gps" in f.lower()], key
        for marker in (b"Exif", b"GPS", b"http://ns.adobe.com/xap", b"Photoshop 3.0", b"ICC_PROFILE"):
            assert marker not in data, (key, marker)


def test_renditions_are_upright_whatever_the_exif_orientation(ctx, ana):
    names = ["Landscape_1", "Landscape_3", "Landscape_6", "Landscape_8", "Portrait_1", "Portrait_6"]
    post = ready_post(ctx, ana, [PhotoUpload((ORIENTATION / f"{name}.jpg").read_bytes()) for name in names])
    media = dict(zip(names, post.media, strict=True))
    for name in names:
        reference = media[name.split("_")[0] + "_1"]
        assert (media[name].width, media[name].height) == (reference.width, reference.height)
        for size in ("1080", "320"):
            difference = (rendition(ctx, media[name], size) - rendition(ctx, reference, size)).abs().avg()
            assert difference < 6, (name, size, difference)
    upright = rendition(ctx, media["Landscape_1"])
    assert (upright - upright.rot180()).abs().avg() > 20  # the comparison can tell a turned photo apart


def test_a_jpeg_with_a_zip_appended_is_accepted_without_the_zip(ctx, ana):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("payload.txt", "SMUGGLED-PAYLOAD " * 20)
    polyglot = (GOOD / "flower.jpg").read_bytes() + archive.getvalue()
    assert zipfile.is_zipfile(io.BytesIO(polyglot))
    ready_post(ctx, ana, [PhotoUpload(polyglot)])
    for key, data in blobs_of(ctx).items():
        assert b"PK\x03\x04" not in data and b"SMUGGLED-PAYLOAD" not in data, key


# --- refused before anything is stored --------------------------------------------------------------------------------


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose IHDR (with a valid CRC) declares width x height, followed by a tiny IDAT."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    tiny = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", tiny) + chunk(b"IEND", b"")


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<script>alert(document.cookie)</script><rect width="10" height="10"/></svg>'
)
HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
NOT_A_PHOTO = "Photo 2: That file is not a photo Pinhole can read. Use JPEG, PNG, WebP, GIF, HEIC/HEIF or AVIF."
HOPPER = (GOOD / "hopper.jpg").read_bytes()


def with_second(data: bytes) -> dict:
    """A good first photo, then `data`: the refusal must name photo 2 and store neither."""
    return {"photos": [PhotoUpload(HOPPER), PhotoUpload(data)]}


BAD_POSTS = {
    "no-photos": ({"photos": []}, "photos", "Choose at least one photo."),
    "eleven-photos": ({"photos": [PhotoUpload(HOPPER)] * 11}, "photos", "A post holds up to 10 photos; you chose 11."),
    "long-caption": (
        {"photos": [PhotoUpload(HOPPER)], "caption": "x" * 2201},
        "caption",
        "The caption is 2201 characters; the limit is 2200.",
    ),
    "long-alt": (
        {"photos": [PhotoUpload(HOPPER), PhotoUpload(HOPPER, alt_text="a" * 1001)]},
        "alt_text",
        "Photo 2: the description is 1001 characters; the limit is 1000.",
    ),
    "unknown-filter": (
        {"photos": [PhotoUpload(HOPPER, filter_name="../../etc/passwd")]},
        "filter",
        "Photo 1: unknown filter; choose one of normal, clarendon",
    ),
    "latitude-91": (
        {"photos": [PhotoUpload(HOPPER)], "place": Place("North", 91, 0)},
        "place",
        "The latitude must be between -90 and 90.",
    ),
    "longitude-181": (
        {"photos": [PhotoUpload(HOPPER)], "place": Place("East", 0, 181)},
        "place",
        "The longitude must be between -180 and 180.",
    ),
    "latitude-without-longitude": (
        {"photos": [PhotoUpload(HOPPER)], "place": Place("Half", 10, None)},
        "place",
        "Give the place's latitude and longitude both, or neither.",
    ),
    "not-a-number": (
        {"photos": [PhotoUpload(HOPPER)], "place": Place("Nowhere", float("nan"), 0)},
        "place",
        "The latitude must be between -90 and 90.",
    ),
    "long-place-name": (
        {"photos": [PhotoUpload(HOPPER)], "place": Place("p" * 101)},
        "place",
        "The place name is 101 characters; the limit is 100.",
    ),
    "svg-with-script": (with_second(SVG), "photos", NOT_A_PHOTO),
    "html-named-jpg": (with_second(HTML), "photos", NOT_A_PHOTO),
    "pdf": (with_second(PDF), "photos", NOT_A_PHOTO),
    "empty-file": (with_second(b""), "photos", "Photo 2: The file is empty."),
    "png-declaring-10-gigapixels": (
        with_second(png_declaring(100_000, 100_000)),
        "photos",
        "Photo 2: That photo is 100000×100000 pixels; the limit is 90 megapixels.",
    ),
    "gif-decompression-bomb": (
        with_second((TESTDATA / "bad" / "decompression_bomb.gif").read_bytes()),
        "photos",
        "Photo 2: That photo is 65535×66601 pixels; the limit is 90 megapixels.",
    ),
}


@pytest.mark.parametrize("case", BAD_POSTS.values(), ids=BAD_POSTS.keys())
def test_bad_input_is_refused_clearly_and_leaves_nothing(ctx, ana, case):
    fields, field, message = case
    fields = dict(fields)
    photos = fields.pop("photos")
    with pytest.raises(UserError) as refused:
        create_post(ctx, ana, photos, **fields)
    assert refused.value.message.startswith(message), refused.value.message
    assert refused.value.field == field
    assert 400 <= refused.value.status < 500
    if field == "photos" and message.startswith("Photo 2"):  # refused from its bytes
        assert isinstance(refused.value, ImageRejected) and refused.value.status == 422
    assert_nothing_stored(ctx)


def test_a_photo_over_the_byte_limit_is_refused_with_413(make_site):
    ctx, _client = make_site(media={"max_upload_mb": 1})
    author = accounts.create_user(ctx, "ana", PASSWORD)
    with pytest.raises(ImageRejected) as refused:
        create_post(ctx, author, [PhotoUpload(HOPPER + b"\0" * (1024 * 1024))])
    assert refused.value.status == 413 and refused.value.message == "Photo 1: That photo is larger than 1 MB."
    assert_nothing_stored(ctx)


def test_a_failure_while_storing_leaves_nothing(ctx, ana, monkeypatch):
    """The database refuses the insert after the uploads were stored: they are removed again."""

    def broken_write(shard):
        raise RuntimeError("shard unavailable")

    monkeypatch.setattr(ctx.db, "write", broken_write)
    with pytest.raises(RuntimeError):
        create_post(ctx, ana, [PhotoUpload(HOPPER), PhotoUpload(HOPPER)])
    monkeypatch.undo()
    assert_nothing_stored(ctx)


# --- failing during processing ----------------------------------------------------------------------------------------


def test_a_photo_that_cannot_be_decoded_fails_the_post_and_cleans_up(ctx, ana, bob):
    avif = (GOOD / "hopper.avif").read_bytes()
    truncated = avif[: len(avif) // 2]  # its header is whole, so the request accepts it; decoding fails
    counted = posts_counted()
    post = create_post(ctx, ana, [photo("flower.jpg"), PhotoUpload(truncated)])
    assert post.status == "processing"
    assert ctx.backends.queue.run_pending() >= 1
    failed = get_post(ctx, post.id, ana)
    assert failed.status == "failed"
    assert failed.error == "Photo 2: That photo is damaged or incomplete and cannot be read."
    assert all(m.urls == {} for m in failed.media)
    assert blob_keys(ctx) == []  # photo 1's renditions and both uploads are gone
    assert posts_counted() == counted
    for viewer in (None, bob):
        with pytest.raises(NotFound):
            get_post(ctx, post.id, viewer)
    posts.process_post(ctx, post.id)  # a late duplicate changes nothing
    assert get_post(ctx, post.id, ana) == failed and blob_keys(ctx) == []


# --- reruns and lost tasks ----------------------------------------------------------------------------------------


def test_processing_twice_changes_nothing(ctx, ana):
    counted = posts_counted()
    post = create_post(ctx, ana, [photo("flower.jpg"), photo("hopper.png", filter_name="lark")])
    posts.process_post(ctx, post.id)
    done = get_post(ctx, post.id, ana)
    stored = blobs_of(ctx)
    posts.process_post(ctx, post.id)  # a duplicate delivery after success
    assert ctx.backends.queue.run_pending() >= 1  # and the task queued all along
    assert get_post(ctx, post.id, ana) == done
    assert blobs_of(ctx) == stored
    assert posts_counted() == counted + 1


def test_a_rerun_after_a_crash_overwrites_the_same_keys(ctx, ana, monkeypatch):
    """The worker dies after storing every rendition but before marking the post ready; the rerun writes the
    same keys with the same bytes and leaves no extra file."""
    counted = posts_counted()
    post = create_post(ctx, ana, [photo("flower.jpg", filter_name="ludwig"), photo("hopper.webp")])

    def killed(shard):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(ctx.db, "write", killed)
    with pytest.raises(RuntimeError, match="worker killed"):
        posts.process_post(ctx, post.id)
    monkeypatch.undo()
    first = blobs_of(ctx, "posts/")
    assert len(first) == 16 and get_post(ctx, post.id, ana).status == "processing"
    ctx.backends.queue.run_pending()
    assert get_post(ctx, post.id, ana).status == "ready"
    assert blobs_of(ctx) == first  # same keys, same bytes, uploads gone, nothing added
    assert posts_counted() == counted + 1


def test_the_sweep_reenqueues_a_lost_task(ctx, ana):
    post = create_post(ctx, ana, [photo("flower.jpg")])
    timeout_ms = ctx.config.media.processing_timeout_seconds * 1000
    assert posts.sweep_stuck_posts(ctx) == 0  # a fresh post is left to its own task
    ctx.backends.queue.huey.flush()  # the worker died with the task
    assert ctx.backends.queue.run_pending() == 0
    age(ctx, post.id, timeout_ms - 5000)
    assert posts.sweep_stuck_posts(ctx) == 0  # not yet past the timeout
    age(ctx, post.id, 10_000)
    assert posts.sweep_stuck_posts(ctx) == 1
    assert post_row(ctx, post.id)["attempts"] == 2
    assert posts.sweep_stuck_posts(ctx) == 0  # the re-enqueue restarted the clock
    assert ctx.backends.queue.run_pending() >= 1
    assert get_post(ctx, post.id, None).status == "ready"
    assert posts.sweep_stuck_posts(ctx) == 0


def test_a_post_saved_while_the_queue_is_down_is_processed_by_the_sweep(ctx, ana, monkeypatch):
    def queue_down(name, *args, **kwargs):
        raise RuntimeError("queue unavailable")

    monkeypatch.setattr(ctx.backends.queue, "enqueue", queue_down)
    post = create_post(ctx, ana, [photo("hopper.jpg")])  # saved: the author is not asked to post it twice
    monkeypatch.undo()
    assert post.status == "processing" and ctx.backends.queue.pending() == 0
    age(ctx, post.id, ctx.config.media.processing_timeout_seconds * 1000 + 1000)
    assert posts.sweep_stuck_posts(ctx) == 1
    assert ctx.backends.queue.run_pending() >= 1
    assert get_post(ctx, post.id, None).status == "ready"


def test_the_sweep_gives_up_after_bounded_attempts(ctx, ana):
    post = create_post(ctx, ana, [photo("flower.jpg"), photo("hopper.jpg")])
    timeout_ms = ctx.config.media.processing_timeout_seconds * 1000
    for attempt in range(1, MAX_ATTEMPTS):
        ctx.backends.queue.huey.flush()  # lost again
        age(ctx, post.id, timeout_ms + 1000)
        assert posts.sweep_stuck_posts(ctx) == 1
        assert post_row(ctx, post.id)["attempts"] == attempt + 1
        assert post_row(ctx, post.id)["status"] == "processing"
    ctx.backends.queue.huey.flush()
    age(ctx, post.id, timeout_ms + 1000)
    assert posts.sweep_stuck_posts(ctx) == 1
    failed = get_post(ctx, post.id, ana)
    assert failed.status == "failed"
    assert failed.error == f"This post could not be prepared after {MAX_ATTEMPTS} tries. Please post the photos again."
    assert blob_keys(ctx) == [] and ctx.backends.queue.pending() == 0
    assert posts.sweep_stuck_posts(ctx) == 0


def test_the_sweep_runs_every_minute_in_the_queue(ctx):
    huey = ctx.backends.queue.huey
    for minute in (datetime.datetime(2026, 1, 1, 12, 0), datetime.datetime(2026, 1, 1, 12, 1)):
        assert "sweep_stuck_posts" in {task.name for task in huey.read_periodic(minute)}


# --- deleting -----------------------------------------------------------------------------------------------------


def test_delete_removes_the_rows_then_exactly_that_posts_blobs(make_site):
    ctx, _client = make_site(media={"keep_original": True})
    author = accounts.create_user(ctx, "ana", PASSWORD)
    doomed = ready_post(ctx, author, [photo("flower.jpg"), photo("hopper.jpg")])
    kept = ready_post(ctx, author, [photo("hopper.png")])
    assert len(blob_keys(ctx, "uploads/")) == 3  # keep_original keeps them
    others = {k: v for k, v in blobs_of(ctx).items() if not k.startswith(f"posts/{doomed.id}/")}
    doomed_uploads = [r["upload_key"] for r in all_rows(ctx, "post_media", "ORDER BY id") if r["post_id"] == doomed.id]
    del others[doomed_uploads[0]], others[doomed_uploads[1]]

    delete_post(ctx, author, doomed.id)
    assert [r["id"] for r in all_rows(ctx, "posts", "ORDER BY id")] == [kept.id]
    assert {r["post_id"] for r in all_rows(ctx, "post_media", "ORDER BY id")} == {kept.id}
    with pytest.raises(NotFound):
        get_post(ctx, doomed.id, author)
    assert ctx.backends.queue.pending() == 2
    assert ctx.backends.queue.run_pending() == 2  # delete_blobs, post_deleted
    assert blobs_of(ctx) == others  # the other post's renditions and upload untouched
    assert get_post(ctx, kept.id, None).status == "ready"

    keys = posts.post_blob_keys(doomed.id, doomed_uploads)
    posts.delete_blobs(ctx, keys)  # a rerun of the task is harmless
    assert blobs_of(ctx) == others
    with pytest.raises(NotFound):
        delete_post(ctx, author, doomed.id)


def test_deleting_a_post_still_processing_leaves_nothing(ctx, ana):
    post = create_post(ctx, ana, [photo("flower.jpg")])
    delete_post(ctx, ana, post.id)
    ctx.backends.queue.run_pending()  # process_post finds no post; delete_blobs removes the upload
    assert_nothing_stored(ctx)


def test_a_post_deleted_while_its_task_runs_leaves_nothing(ctx, ana, monkeypatch):
    """The delete and its delete_blobs task finish while the photos are being processed: the task removes
    what it writes afterwards."""
    post = create_post(ctx, ana, [photo("flower.jpg"), photo("hopper.jpg")])
    real = posts.process_photo
    calls = []

    def process_then_lose_the_post(data, **options):
        if len(calls) == 1:  # while the last photo is processed, after the first one's renditions were stored
            assert len(blob_keys(ctx, f"posts/{post.id}/")) == 8
            delete_post(ctx, ana, post.id)
            assert ctx.backends.queue.run_pending() == 2  # delete_blobs, post_deleted
        calls.append(options)
        return real(data, **options)

    monkeypatch.setattr(posts, "process_photo", process_then_lose_the_post)
    ctx.backends.queue.huey.flush()  # a worker took the process_post task...
    posts.process_post(ctx, post.id)  # ...and runs it
    assert len(calls) == 2  # it went on and stored the renditions of both photos, then removed them
    assert_nothing_stored(ctx)


def test_another_user_cannot_delete(ctx, ana, bob):
    public = ready_post(ctx, ana, [photo("flower.jpg")])
    processing = create_post(ctx, ana, [photo("hopper.jpg")])
    before = (
        all_rows(ctx, "posts", "ORDER BY id"),
        all_rows(ctx, "post_media", "ORDER BY id"),
        blobs_of(ctx),
        ctx.backends.queue.pending(),
    )
    with pytest.raises(Forbidden):
        delete_post(ctx, bob, public.id)
    with pytest.raises(NotFound) as hidden:
        delete_post(ctx, bob, processing.id)  # not visible to bob: he can't learn it exists
    assert hidden.value.message == NOT_FOUND
    ana = accounts.update_profile(ctx, ana, "", "", is_private=True)
    with pytest.raises(NotFound):
        delete_post(ctx, bob, public.id)
    assert (
        all_rows(ctx, "posts", "ORDER BY id"),
        all_rows(ctx, "post_media", "ORDER BY id"),
        blobs_of(ctx),
        ctx.backends.queue.pending(),
    ) == before


# --- who sees what ----------------------------------------------------------------------------------------------------


def test_a_private_authors_post_is_seen_by_the_author_only(ctx, ana, bob):
    post = ready_post(ctx, ana, [photo("flower.jpg")], caption="just for me")
    assert get_post(ctx, post.id, bob).caption == "just for me"
    ana = accounts.update_profile(ctx, ana, "", "", is_private=True)
    for viewer in (None, bob):
        with pytest.raises(NotFound) as hidden:
            get_post(ctx, post.id, viewer)
        assert hidden.value.message == NOT_FOUND  # the same as a missing post
        with pytest.raises(NotFound):
            posts.post_status(ctx, post.id, viewer)
    assert get_post(ctx, post.id, ana).caption == "just for me"


def test_processing_and_failed_posts_are_the_authors_only(ctx, ana, bob):
    processing = create_post(ctx, ana, [photo("flower.jpg")])
    assert posts.post_status(ctx, processing.id, ana).status == "processing"
    for viewer in (None, bob):
        with pytest.raises(NotFound):
            posts.post_status(ctx, processing.id, viewer)
    assert ctx.backends.queue.run_pending() >= 1
    assert posts.post_status(ctx, processing.id, bob).status == "ready"


@pytest.mark.parametrize("post_id", [0, -1, 2**63, "abc", "", None, True, ids.compose(1, 4095, 0)])
def test_nonsense_post_ids_are_not_found(ctx, ana, post_id):
    with pytest.raises(NotFound) as missing:
        get_post(ctx, post_id, ana)
    assert missing.value.message == NOT_FOUND


def test_a_missing_post_reads_like_a_hidden_one(ctx, ana):
    post = ready_post(ctx, ana, [photo("hopper.jpg")])
    with pytest.raises(NotFound) as missing:
        get_post(ctx, post.id + 1, ana)
    assert missing.value.message == NOT_FOUND


def test_an_authors_posts_list_newest_first_by_cursor_and_only_when_visible(ctx, ana, bob):
    made = [ready_post(ctx, ana, [photo("hopper.png")], caption=f"n{i}") for i in range(3)]
    processing = create_post(ctx, ana, [photo("hopper.png")])  # not ready: never listed
    listed = posts.list_author_posts(ctx, ana, bob, None, 2)
    assert [p.id for p in listed] == [made[2].id, made[1].id]
    assert listed[0].media[0].urls["150sq"]["webp"].startswith(f"/media/posts/{made[2].id}/")
    older = posts.list_author_posts(ctx, ana, bob, listed[-1].id, 2)
    assert [p.id for p in older] == [made[0].id]
    assert processing.id not in {p.id for p in posts.list_author_posts(ctx, ana, ana, None, 10)}
    accounts.update_profile(ctx, ana, "", "", is_private=True)
    private_ana = accounts.get_user(ctx, ana.id)
    assert posts.list_author_posts(ctx, private_ana, bob, None, 10) == []
    assert posts.list_author_posts(ctx, private_ana, None, None, 10) == []
    assert len(posts.list_author_posts(ctx, private_ana, private_ana, None, 10)) == 3
