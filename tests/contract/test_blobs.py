"""The BlobStore seam: photos by server-made key, stored atomically, never at a user-chosen path."""

from __future__ import annotations

import re
import threading
import time

import pytest

from app.backends.blobs.base import BlobNotFound, new_key

PHOTO = bytes(range(256)) * 40  # 10 KiB, every byte value


def test_put_then_get_size_and_exists(blobs):
    key = new_key("photos", "jpg")
    assert not blobs.exists(key)
    blobs.put(key, PHOTO, "image/jpeg")
    assert blobs.get(key) == PHOTO
    assert blobs.size(key) == len(PHOTO)
    assert blobs.exists(key)


def test_put_replaces_and_empty_blobs_are_kept(blobs):
    key = new_key("photos", "jpg")
    blobs.put(key, b"first version", "image/jpeg")
    blobs.put(key, b"2nd", "image/jpeg")
    assert blobs.get(key) == b"2nd" and blobs.size(key) == 3
    empty = new_key("photos", "txt")
    blobs.put(empty, b"", "text/plain")
    assert blobs.get(empty) == b"" and blobs.size(empty) == 0 and blobs.exists(empty)


@pytest.mark.parametrize(("start", "end"), [(0, 0), (0, 99), (100, 199), (10_000, 10_239), (10_230, 10_239), (5, 5)])
def test_read_range_is_inclusive(blobs, start, end):
    key = new_key("photos", "jpg")
    blobs.put(key, PHOTO, "image/jpeg")
    assert blobs.read_range(key, start, end) == PHOTO[start : end + 1]


def test_missing_blob_raises_blob_not_found(blobs):
    key = new_key("photos", "jpg")
    for call in (blobs.get, blobs.size, lambda k: blobs.read_range(k, 0, 10)):
        with pytest.raises(BlobNotFound):
            call(key)
    assert issubclass(BlobNotFound, KeyError)


def test_a_key_prefix_is_not_a_blob(blobs):
    blobs.put("photos/ab/cd.jpg", b"x", "image/jpeg")
    for call in (blobs.get, blobs.size, lambda k: blobs.read_range(k, 0, 1)):
        with pytest.raises(BlobNotFound):
            call("photos/ab")
    assert not blobs.exists("photos/ab")


def test_delete_is_idempotent(blobs):
    key = new_key("photos", "jpg")
    blobs.put(key, PHOTO, "image/jpeg")
    blobs.delete(key)
    assert not blobs.exists(key)
    with pytest.raises(BlobNotFound):
        blobs.get(key)
    blobs.delete(key)
    blobs.delete(new_key("photos", "jpg"))


def test_keys_lists_what_is_stored_under_a_prefix(blobs):
    photos = sorted(new_key("photos", "jpg") for _ in range(3))
    avatars = sorted(new_key("avatars", "webp") for _ in range(2))
    nested = "photos/1080/abc.jpg"
    for key in photos + avatars + [nested]:
        blobs.put(key, b"x", "image/jpeg")
    assert sorted(blobs.keys("photos/")) == sorted(photos + [nested])
    assert sorted(blobs.keys("avatars/")) == avatars
    assert sorted(blobs.keys()) == sorted(photos + avatars + [nested])
    assert list(blobs.keys("nothing/")) == []
    blobs.delete(photos[0])
    assert photos[0] not in set(blobs.keys())


def test_a_failed_put_leaves_nothing_behind(blobs, tmp_path):
    key = new_key("photos", "jpg")
    with pytest.raises(TypeError):
        blobs.put(key, "not bytes", "image/jpeg")  # fails after the store has begun writing
    assert not blobs.exists(key)
    assert list(blobs.keys()) == []
    assert [p for p in (tmp_path / "data" / "media").rglob("*") if p.is_file()] == [], "a temp file was left"


def test_a_failed_put_keeps_the_previous_version(blobs):
    key = new_key("photos", "jpg")
    blobs.put(key, PHOTO, "image/jpeg")
    with pytest.raises(TypeError):
        blobs.put(key, "not bytes", "image/jpeg")
    assert blobs.get(key) == PHOTO
    assert list(blobs.keys()) == [key]


READS_WANTED = 20


def test_readers_see_a_whole_blob_or_none_of_it(blobs):
    key = new_key("photos", "jpg")
    versions = [bytes([i]) * (200_000 + i * 1000) for i in range(1, 6)]
    stop = threading.Event()
    torn: list[int] = []
    reads = 0

    def reader():
        nonlocal reads
        while not stop.is_set():
            try:
                data = blobs.get(key)
            except BlobNotFound:
                continue
            reads += 1
            if data not in versions:
                torn.append(len(data))

    thread = threading.Thread(target=reader)
    thread.start()
    rounds, deadline = 0, time.monotonic() + 10
    try:
        # Writes on tmpfs can all finish before the reader first runs: keep writing until it has read a while.
        while rounds < 6 or (reads < READS_WANTED and time.monotonic() < deadline):
            for version in versions:
                blobs.put(key, version, "image/jpeg")
            rounds += 1
    finally:
        stop.set()
        thread.join(10)
    assert reads > 0
    assert torn == [], f"a reader saw a partly written blob ({torn[:3]} bytes)"


@pytest.mark.parametrize(
    "key",
    [
        "../etc/passwd",
        "photos/../../etc/passwd",
        "photos/..",
        "..",
        "/etc/passwd",
        "/photos/a.jpg",
        "Photos/a.jpg",
        "photos/A.JPG",
        "photos/my photo.jpg",
        "photos\\a.jpg",
        "photos\\..\\..\\a.jpg",
        "photos//a.jpg",
        "photos/a.jpg/",
        "photos/.hidden",
        "photos/a\x00.jpg",
        "photos/a.jpg\n",
        "",
        "photos/" + "a" * 300 + ".jpg",
        "C:/photos/a.jpg",
        "photos/ä.jpg",
    ],
)
def test_unsafe_keys_are_refused(blobs, key):
    for call in (
        lambda: blobs.put(key, b"x", "image/jpeg"),
        lambda: blobs.get(key),
        lambda: blobs.size(key),
        lambda: blobs.read_range(key, 0, 0),
        lambda: blobs.delete(key),
    ):
        with pytest.raises(ValueError):
            call()


def test_new_keys_are_random_and_never_carry_user_input(blobs):
    keys = {new_key("photos", "jpg") for _ in range(1000)}
    assert len(keys) == 1000
    for key in keys:
        match = re.fullmatch(r"photos/([0-9a-f]+)\.jpg", key)
        assert match, key
        assert len(match.group(1)) * 4 >= 128, "fewer than 128 random bits"
    # A user's file name has no way in: the only inputs are the server's prefix and extension.
    with pytest.raises(ValueError):
        new_key("photos", "../../x")
    with pytest.raises(ValueError):
        new_key("../photos", "jpg")
    key = new_key("avatars", "webp")
    blobs.put(key, b"x", "image/webp")
    assert blobs.get(key) == b"x"


def test_url_says_whether_the_app_serves_the_blob(blobs, blobs_name):
    key = new_key("photos", "jpg")
    blobs.put(key, b"x", "image/jpeg")
    url = blobs.url(key)
    if blobs_name == "local":
        assert url is None
    else:
        assert url.startswith(("http://", "https://")), url


def test_check_reports_the_store(blobs):
    assert isinstance(blobs.check(), str) and blobs.check()
    assert list(blobs.keys()) == [], "check() left a probe that keys() lists"
