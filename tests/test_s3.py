"""S3 as the blob store (rung 2), through the real app on a real S3 (SeaweedFS): start-up refuses what cannot work
and names the key; photos come from S3 or the CDN only after the visibility check, private ones only through
short-lived presigned URLs; an S3 outage during an upload is a clear message that leaves nothing behind. The seam's
own contract is in tests/contract/test_blobs.py; the visibility matrix on S3 in tests/test_s3_visibility.py."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from app.backends.blobs.base import new_key
from app.backends.blobs.s3 import PRESIGNED_CACHE
from app.cli import main
from app.config import ConfigError
from app.services import accounts, avatars, graph
from tests.backends import build, make_config
from tests.conftest import TESTDATA, FailingBlobs, all_rows, another_browser, sign_up
from tests.server_s3 import SeaweedFS
from tests.servers import free_port
from tests.test_media_serving import make_post, urls_of
from tests.test_upload_web import FLOWER, assert_nothing_stored, upload

CDN = "https://cdn.example.test/pinhole"


def key_of(url: str) -> str:
    return url.removeprefix("/media/")


def redirect(browser, url: str) -> httpx.Response:
    response = browser.get(url, follow_redirects=False)
    assert response.status_code == 302, (url, response.status_code, response.text[:300])
    return response


def fetch(url: str, **headers: str) -> httpx.Response:
    """What the browser does with the redirect: a request straight to S3 (or the CDN), not through Pinhole."""
    return httpx.get(url, headers=headers, timeout=10)


@pytest.fixture
def site(make_site, s3_server):
    ctx, client = make_site(media={"backend": "s3", **s3_server})
    assert sign_up(client, "ana").status_code == 303
    return ctx, client


def test_a_photo_redirects_to_a_presigned_url_that_serves_it(site, s3_server):
    ctx, ana = site
    anonymous = another_browser(ana)
    post = make_post(ctx, "ana", "flower.jpg")
    assert len(urls_of(post)) == 8
    for url in urls_of(post):
        key = key_of(url)
        answer = redirect(anonymous, url)
        location = answer.headers["location"]
        assert location.startswith(f"{s3_server['s3_endpoint']}/{s3_server['s3_bucket']}/{key}?")
        assert parse_qs(urlsplit(location).query)["X-Amz-Expires"] == ["300"]
        assert answer.headers["cache-control"] == "private, max-age=150"
        photo = fetch(location)
        assert photo.status_code == 200, photo.text[:300]
        assert photo.content == ctx.backends.blobs.get(key)
        assert photo.headers["content-type"] == ("image/webp" if key.endswith(".webp") else "image/jpeg")
        assert photo.headers["cache-control"] == PRESIGNED_CACHE
        part = fetch(location, range="bytes=10-99")
        assert part.status_code == 206 and part.content == photo.content[10:100]
        assert anonymous.head(url, follow_redirects=False).status_code == 302
    # The bucket itself is private, and a presigned URL opens its own key only.
    first, second = (key_of(u) for u in urls_of(post)[:2])
    assert fetch(f"{s3_server['s3_endpoint']}/{s3_server['s3_bucket']}/{first}").status_code == 403
    location = redirect(anonymous, f"/media/{first}").headers["location"]
    assert fetch(location.replace(first, second)).status_code == 403


def test_a_private_accounts_photos_only_by_presigned_url_after_the_check(make_site, s3_server):
    ctx, ana = make_site(media={"backend": "s3", **s3_server, "public_base_url": CDN, "presign_seconds": 120})
    sign_up(ana, "ana")
    bob, stranger, anonymous = another_browser(ana), another_browser(ana), another_browser(ana)
    sign_up(bob, "bob")
    sign_up(stranger, "cy")
    author = accounts.update_profile(ctx, accounts.find_user(ctx, "ana"), "", "", is_private=True)
    graph.follow(ctx, accounts.find_user(ctx, "bob"), author)
    graph.approve_request(ctx, author, accounts.find_user(ctx, "bob").id)
    post = make_post(ctx, "ana", "hopper.jpg")
    for url in urls_of(post):
        for browser in (bob, ana):  # a follower and the author: a presigned URL, never the CDN
            answer = redirect(browser, url)
            location = answer.headers["location"]
            assert not location.startswith(CDN) and "X-Amz-Signature=" in location
            assert parse_qs(urlsplit(location).query)["X-Amz-Expires"] == ["120"]
            assert answer.headers["cache-control"] == "private, max-age=60"
        for browser in (stranger, anonymous):
            refused = browser.get(url, follow_redirects=False)
            assert refused.status_code == 404 and "location" not in refused.headers
    assert fetch(redirect(bob, urls_of(post)[0]).headers["location"]).status_code == 200


def test_what_anyone_may_see_goes_to_the_cdn(make_site, s3_server):
    ctx, ana = make_site(media={"backend": "s3", **s3_server, "public_base_url": CDN + "/"})
    sign_up(ana, "ana")
    anonymous = another_browser(ana)
    post = make_post(ctx, "ana", "flower.jpg")
    for url in urls_of(post):
        answer = redirect(anonymous, url)
        assert answer.headers["location"] == f"{CDN}/{key_of(url)}"
        assert answer.headers["cache-control"] == "public, max-age=86400"
    avatars.upload_avatar(ctx, accounts.find_user(ctx, "ana"), (TESTDATA / "good" / "flower.jpg").read_bytes())
    ctx.backends.queue.run_pending()
    avatar_key = accounts.find_user(ctx, "ana").avatar_key
    assert redirect(anonymous, f"/media/{avatar_key}").headers["location"] == f"{CDN}/{avatar_key}"
    # Browsers may load photos from S3 and the CDN, and nowhere else.
    csp = anonymous.get("/").headers["content-security-policy"]
    assert f"img-src 'self' data: blob: {s3_server['s3_endpoint']} https://cdn.example.test;" in csp


def test_presigned_urls_expire(make_site, s3_server):
    ctx, ana = make_site(media={"backend": "s3", **s3_server, "presign_seconds": 2})
    sign_up(ana, "ana")
    post = make_post(ctx, "ana", "flower.jpg")
    location = redirect(ana, urls_of(post)[0]).headers["location"]
    assert fetch(location).status_code == 200
    time.sleep(3)
    assert fetch(location).status_code == 403


def test_an_upload_while_s3_is_unreachable_fails_clearly_and_stores_nothing(make_site, tmp_path):
    s3 = SeaweedFS(tmp_path / "s3")
    try:
        bucket = s3.new_bucket()
        ctx, ana = make_site(media={"backend": "s3", **s3.settings(bucket)})
        assert sign_up(ana, "ana").status_code == 303
        s3.stop()
        start = time.monotonic()
        response = upload(ana, [("flower.jpg", FLOWER)], {"caption": "lost at sea?"})
        assert time.monotonic() - start < 20
        assert response.status_code == 503
        assert "Photo storage can&#39;t be reached right now, so nothing was saved." in response.text
        assert "lost at sea?" in response.text  # the form keeps what was typed
        assert all_rows(ctx, "posts") == [] and all_rows(ctx, "post_media") == []
        assert ana.get("/").status_code == 200  # the rest of the site stays up
        ready = ana.get("/readyz").json()
        assert ready["backends"]["blobs"]["ok"] is False
    finally:
        s3.stop()


FOUR_PHOTOS = [(f"flower{n}.jpg", FLOWER) for n in range(1, 5)]
NOTHING_SAVED = "Photo storage can&#39;t be reached right now, so nothing was saved."


def test_s3_failing_midway_through_a_post_leaves_no_rows_and_no_blobs(site, monkeypatch, caplog):
    ctx, ana = site
    failing = FailingBlobs(ctx.backends.blobs, fail_from=3)
    monkeypatch.setattr(ctx.backends, "blobs", failing)
    response = upload(ana, FOUR_PHOTOS, {"caption": "four flowers"})
    assert response.status_code == 503 and NOTHING_SAVED in response.text
    assert failing.puts == 3, "two photos stored, the third refused, the fourth never sent"
    assert_nothing_stored(ctx)  # rows, and the keys in the real bucket
    assert "was not saved; deleted the 3 upload(s) it had stored" in caplog.text
    assert ctx.backends.queue.pending() == 0


def test_uploads_s3_cannot_delete_at_once_are_queued_for_deletion(site, monkeypatch, caplog):
    # S3 goes away for good midway: the photos it stored cannot be deleted either until it is back.
    ctx, ana = site
    failing = FailingBlobs(ctx.backends.blobs, fail_from=3, deletes_fail=True)
    monkeypatch.setattr(ctx.backends, "blobs", failing)
    response = upload(ana, FOUR_PHOTOS, {"caption": "four flowers"})
    assert response.status_code == 503 and NOTHING_SAVED in response.text
    assert all_rows(ctx, "posts") == [] and all_rows(ctx, "post_media") == []
    stored = list(ctx.backends.blobs.keys())
    assert len(stored) == 2
    assert all(key in caplog.text for key in stored), "the log names the uploads left behind"
    failing.deletes_fail = False  # S3 is back: the delete_blobs task removes them
    assert ctx.backends.queue.run_pending() == 1
    assert_nothing_stored(ctx)


# --- Start-up and configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"s3_bucket": "no-such-bucket"}, "s3_bucket = 'no-such-bucket' at s3_endpoint = 'http://127.0.0.1:"),
        ({"s3_access_key": "nobody"}, "the server does not know s3_access_key"),
        ({"s3_secret_key": "not-the-secret"}, "s3_secret_key is wrong for s3_access_key"),
        ({"s3_endpoint": "dead"}, "does not answer"),
    ],
)
def test_start_up_refuses_what_cannot_work_before_changing_anything(
    tmp_path, s3_server, capsys, monkeypatch, change, says
):
    if change.get("s3_endpoint") == "dead":
        change = {"s3_endpoint": f"http://127.0.0.1:{free_port()}"}
        says = f"[media] s3_endpoint = '{change['s3_endpoint']}' does not answer"
    config = make_config(tmp_path, media={"backend": "s3", **s3_server, **change})
    for name in ("PINHOLE_CONFIG", "PINHOLE_SERVER__PORT"):  # `serve` sets them for its workers: undone after
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    for command in (["migrate"], ["serve", "--port", str(free_port())], ["doctor"]):
        assert main([*command, "--config", config.source]) == 2, command
        err = capsys.readouterr().err
        assert err.startswith(f"error: {config.source}: [media] ") and err.count("\n") == 1, err
        assert says in err, err
        assert s3_server["s3_secret_key"] not in err
    assert not (config.data_dir / "pinhole.sqlite3").exists(), "the database was touched before the check"


def test_without_credentials_anywhere_start_up_says_which_keys_to_set(tmp_path, s3_server, capsys, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    config = make_config(tmp_path, media={**s3_server, "backend": "s3", "s3_access_key": "", "s3_secret_key": ""})
    assert main(["migrate", "--config", config.source]) == 2
    assert "no credentials; set s3_access_key and s3_secret_key" in capsys.readouterr().err


def test_config_show_masks_the_s3_credentials_and_the_doctor_names_the_bucket(make_site, s3_server, capsys):
    ctx, _client = make_site(media={"backend": "s3", **s3_server})
    assert main(["config", "show", "--config", ctx.config.source]) == 0
    shown = capsys.readouterr().out
    assert 's3_secret_key = "***"' in shown and 's3_access_key = "***"' in shown
    assert s3_server["s3_secret_key"] not in shown and s3_server["s3_access_key"] not in shown
    assert f's3_bucket = "{s3_server["s3_bucket"]}"' in shown
    main(["doctor", "--config", ctx.config.source])
    assert f"ok  [media] s3 bucket {s3_server['s3_bucket']} at {s3_server['s3_endpoint']}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("media", "says"),
    [
        ({"backend": "s3", "s3_endpoint": "http://s3.test"}, "[media] backend = 's3' needs s3_bucket"),
        ({"backend": "s3", "s3_bucket": "photos"}, "[media] backend = 's3' needs s3_endpoint"),
        ({"s3_endpoint": "s3.example.com"}, "[media] s3_endpoint must be empty or a URL"),
        ({"s3_bucket": "My_Photos"}, "[media] s3_bucket must be an S3 bucket name"),
        ({"presign_seconds": 0}, "[media] presign_seconds must be from 1 to 604800"),
        ({"presign_seconds": 8 * 24 * 3600}, "[media] presign_seconds must be from 1 to 604800"),
        ({"public_base_url": "https://cdn.test"}, "[media] public_base_url needs backend = 's3'"),
        ({"public_base_url": "cdn.test/media"}, "[media] public_base_url must be empty or a URL"),
        (
            {"backend": "s3", "s3_endpoint": "http://s3.test", "s3_bucket": "photos", "s3_access_key": "k"},
            "give s3_access_key and s3_secret_key both, or neither",
        ),
    ],
)
def test_media_mistakes_name_the_key(tmp_path, media, says):
    with pytest.raises(ConfigError) as caught:
        make_config(tmp_path, media=media)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_keys_pages_through_a_long_listing(tmp_path, s3_server):
    backends = build("blobs", "s3", tmp_path, s3_server)
    try:
        blobs = backends.blobs
        blobs.page_size = 2
        stored = sorted(new_key("photos", "jpg") for _ in range(5))
        for key in stored:
            blobs.put(key, b"x", "image/jpeg")
        blobs.put("avatars/a.webp", b"x", "image/webp")
        pages = []
        blobs._s3.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: pages.append(1))
        assert sorted(blobs.keys("photos/")) == stored
        assert len(pages) == 3
        assert sorted(blobs.keys()) == sorted([*stored, "avatars/a.webp"])
    finally:
        backends.close()
