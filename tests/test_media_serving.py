"""/media/... through the real app: post renditions under the post's visibility, caching, conditional and range
requests, and the addresses that must never serve anything."""

from __future__ import annotations

import pytest
import pyvips

from app.services import accounts, posts
from app.services.posts import PhotoUpload
from tests.conftest import TESTDATA, another_browser, sign_up

GOOD = TESTDATA / "good"
IMMUTABLE = "public, max-age=31536000, immutable"


def make_post(ctx, username: str, *names: str, process: bool = True) -> posts.Post:
    author = accounts.find_user(ctx, username)
    post = posts.create_post(ctx, author, [PhotoUpload((GOOD / name).read_bytes()) for name in names])
    if process:
        ctx.backends.queue.run_pending()
    return posts.get_post(ctx, post.id, author)


def urls_of(post: posts.Post) -> list[str]:
    return [url for media in post.media for formats in media.urls.values() for url in formats.values()]


def blob(ctx, url: str) -> bytes:
    return ctx.backends.blobs.get(url.removeprefix("/media/"))


@pytest.fixture
def ana(client):
    """ana's browser, signed in."""
    assert sign_up(client, "ana").status_code == 303
    return client


@pytest.fixture
def bob(client):
    browser = another_browser(client)
    assert sign_up(browser, "bob").status_code == 303
    return browser


@pytest.fixture
def anonymous(client):
    return another_browser(client)


@pytest.fixture
def post(ana, ctx):
    return make_post(ctx, "ana", "flower.jpg")


def test_renditions_are_served_with_their_type_and_long_caching(ctx, anonymous, post):
    urls = urls_of(post)
    assert len(urls) == 8
    for url in urls:
        response = anonymous.get(url)
        assert response.status_code == 200, url
        expected_type = "image/webp" if url.endswith(".webp") else "image/jpeg"
        assert response.headers["content-type"] == expected_type
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == IMMUTABLE
        assert response.headers["accept-ranges"] == "bytes"
        assert response.headers["etag"] == f'"{url.rsplit("/", 1)[-1]}"'
        assert response.content == blob(ctx, url)
        assert int(response.headers["content-length"]) == len(response.content)
        image = pyvips.Image.new_from_buffer(response.content, "")
        assert image.get("vips-loader") == ("webpload_buffer" if expected_type == "image/webp" else "jpegload_buffer")
        head = anonymous.head(url)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == response.headers["content-length"]
        assert head.headers["content-type"] == expected_type


def test_etag_answers_304(anonymous, post):
    url = post.media[0].urls["640"]["jpeg"]
    etag = anonymous.get(url).headers["etag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = anonymous.get(url, headers={"if-none-match": header})
        assert again.status_code == 304, header
        assert again.content == b"" and again.headers["etag"] == etag
        assert again.headers["cache-control"] == IMMUTABLE
    assert anonymous.get(url, headers={"if-none-match": '"other"'}).status_code == 200


def test_byte_ranges(ctx, anonymous, post):
    url = post.media[0].urls["1080"]["webp"]
    data = blob(ctx, url)
    size = len(data)
    for header, start, end in [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, size - 1),
        ("bytes=-50", size - 50, size - 1),
        (f"bytes=10-{size * 10}", 10, size - 1),  # clipped to the end
        (f"bytes=-{size * 2}", 0, size - 1),
    ]:
        response = anonymous.get(url, headers={"range": header})
        assert response.status_code == 206, header
        assert response.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert response.content == data[start : end + 1]
        assert response.headers["content-type"] == "image/webp"
    for header in (f"bytes={size}-", f"bytes={size + 5}-{size + 10}", "bytes=-0"):
        response = anonymous.get(url, headers={"range": header})
        assert response.status_code == 416, header
        assert response.headers["content-range"] == f"bytes */{size}"
    for header in ("bytes=abc", "items=0-5", "bytes=5-1", "bytes=0-1,5-6", "bytes=-", "bytes=" + "9" * 40 + "-"):
        response = anonymous.get(url, headers={"range": header})  # malformed or several: the whole file
        assert response.status_code == 200, header
        assert response.content == data
    etag = f'"{url.rsplit("/", 1)[-1]}"'
    assert anonymous.get(url, headers={"range": "bytes=0-9", "if-range": etag}).status_code == 206
    stale = anonymous.get(url, headers={"range": "bytes=0-9", "if-range": '"older"'})
    assert stale.status_code == 200 and stale.content == data


def assert_hidden(browser, url: str) -> None:
    """Every way of asking gives the same 404 as a photo that never existed."""
    for response in (
        browser.get(url),
        browser.head(url),
        browser.get(url, headers={"if-none-match": "*"}),
        browser.get(url, headers={"range": "bytes=0-10"}),
    ):
        assert response.status_code == 404, (url, response.status_code)
        assert "image/" not in response.headers.get("content-type", "")
        assert "etag" not in response.headers and "content-range" not in response.headers


def test_a_private_posts_files_reach_only_the_author(ctx, ana, bob, anonymous, post):
    author = accounts.find_user(ctx, "ana")
    accounts.update_profile(ctx, author, "", "", is_private=True)
    for url in urls_of(post):
        for browser in (anonymous, bob):
            assert_hidden(browser, url)
        response = ana.get(url)
        assert response.status_code == 200 and response.content == blob(ctx, url)
        cache_control = response.headers["cache-control"]
        assert cache_control.startswith("private, max-age=") and "public" not in cache_control
        assert ana.get(url, headers={"if-none-match": response.headers["etag"]}).status_code == 304
        assert ana.get(url, headers={"range": "bytes=0-9"}).status_code == 206
    missing = urls_of(post)[0].replace(str(post.id), str(post.id + 1))
    assert anonymous.get(missing).text == anonymous.get(urls_of(post)[0]).text  # private reads as missing


def test_a_processing_or_failed_post_serves_nothing(ctx, ana, bob, anonymous):
    processing = make_post(ctx, "ana", "hopper.jpg", process=False)
    assert processing.status == "processing"
    (upload_key,) = sorted(ctx.backends.blobs.keys("uploads/"))
    for browser in (ana, bob, anonymous):
        assert_hidden(browser, f"/media/{upload_key}")
    ctx.backends.queue.run_pending()
    done = posts.get_post(ctx, processing.id, None)
    for url in urls_of(done):
        assert anonymous.get(url).status_code == 200


def test_a_deleted_posts_files_are_gone_at_once(ctx, ana, anonymous, post):
    urls = urls_of(post)
    posts.delete_post(ctx, accounts.find_user(ctx, "ana"), post.id)
    assert all(ctx.backends.blobs.exists(url.removeprefix("/media/")) for url in urls)  # delete_blobs not run yet
    for url in urls:
        assert_hidden(ana, url)
        assert_hidden(anonymous, url)
    ctx.backends.queue.run_pending()
    assert list(ctx.backends.blobs.keys()) == []
    assert all(ana.get(url).status_code == 404 for url in urls)


def test_uploads_are_never_served_even_when_kept(make_site):
    ctx, client = make_site(media={"keep_original": True})
    sign_up(client, "ana")
    post = make_post(ctx, "ana", "flower.jpg")
    assert post.status == "ready"
    (upload_key,) = sorted(ctx.backends.blobs.keys("uploads/"))
    assert_hidden(client, f"/media/{upload_key}")
    assert_hidden(client, f"/media/posts/{post.id}/{upload_key.split('/')[1]}")


def test_path_tricks_find_nothing(ctx, ana, anonymous, post):
    other = make_post(ctx, "ana", "hopper.jpg")
    url = post.media[0].urls["320"]["webp"]
    name = url.rsplit("/", 1)[-1]
    token = name.split("-")[0]
    upload_key = f"uploads/{token}.bin"  # the name the upload had
    tricks = [
        f"/media/posts/{post.id}/../../{upload_key}",
        f"/media/posts/{post.id}/%2e%2e/%2e%2e/{upload_key}",
        f"/media/posts/{post.id}/..%2f..%2f{upload_key}",
        f"/media/posts/{post.id}/{name.upper()}",
        f"/media/posts/{post.id}/{name.replace('.webp', '.svg')}",
        f"/media/posts/{post.id}/{name.replace('.webp', '.html')}",
        f"/media/posts/{post.id}/{name}%00.webp",
        f"/media/posts/{post.id}/sub/{name}",
        f"/media/posts/{other.id}/{name}",  # this post's file under a post the viewer may see
        f"/media/posts/0{post.id}/{name}",
        f"/media/posts/{post.id + 2**64}/{name}",
        f"/media/posts/-{post.id}/{name}",
        f"/media/posts/{name}",
        f"/media/posts/{post.id}",
        "/media/posts/",
        "/media/%2e%2e/%2e%2e/config.toml",
        "/media/..%5c..%5cconfig.toml",
        f"/media/avatars/%2e%2e/posts/{post.id}/{name}",
        "/media/data/pinhole.sqlite3",
        "/media/secret_key",
    ]
    for path in tricks:
        response = anonymous.get(path)
        assert response.status_code == 404, (path, response.status_code)
        assert "image/" not in response.headers.get("content-type", ""), path
    assert anonymous.get(url).status_code == 200  # the real address still works
