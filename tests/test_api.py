"""The Mastodon-compatible client API through the real app (Litestar's TestClient) on a rung-0 site: entity shapes,
the same rules as the pages (visibility, blocks, upload checks), pagination with Link headers, and bad input that
gets Mastodon's status and `{"error": ...}` and changes nothing. The queue runs in the test's thread."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from app.services import accounts
from tests.apitools import Api
from tests.conftest import TESTDATA, all_rows, fetch_media

FLOWER, HOPPER = TESTDATA / "good" / "flower.jpg", TESTDATA / "good" / "hopper.jpg"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def ana(ctx, client) -> Api:
    return Api(ctx, client, "ana")


@pytest.fixture
def bo(ctx, client) -> Api:
    return Api(ctx, client, "bo")


def local(url: str) -> str:
    """An absolute URL of the test site as a path for the TestClient."""
    return url.removeprefix("http://127.0.0.1:8000")


def make_private(api: Api) -> None:
    api.ok("PATCH", "/api/v1/accounts/update_credentials", data={"locked": "true"})


def rows(ctx) -> list:
    return [all_rows(ctx, t) for t in ("posts", "post_media", "media_attachments", "comments", "likes", "bookmarks")]


# --- Instance ------------------------------------------------------------------------------------------------------


def test_instance_says_what_apps_need_to_know(client, ana):
    v1 = client.get("/api/v1/instance").json()
    assert v1["version"].startswith("4.3.0 (compatible; Pinhole")
    assert v1["configuration"]["statuses"]["max_media_attachments"] == 10
    assert "image/heic" in v1["configuration"]["media_attachments"]["supported_mime_types"]
    assert v1["stats"]["user_count"] == 1 and v1["registrations"] is True
    v2 = client.get("/api/v2/instance").json()
    assert v2["domain"] == "127.0.0.1:8000" and v2["api_versions"] == {"mastodon": 2}
    assert v2["contact"]["account"]["username"] == "ana"
    links = client.get("/.well-known/nodeinfo").json()["links"]
    info = client.get(local(links[0]["href"])).json()
    assert info["version"] == "2.0" and info["software"]["name"] == "pinhole" and info["usage"]["users"]["total"] == 1
    assert client.get("/api/v1/custom_emojis").json() == []


def test_the_schema_documents_the_api_only(client):
    schema = client.get("/schema/openapi.json").json()
    assert "/api/v1/statuses" in schema["paths"] and "/api/v2/media" in schema["paths"]
    assert all(path.startswith("/api/") for path in schema["paths"])
    upload = schema["paths"]["/api/v2/media"]["post"]
    assert upload["security"] == [{"OAuth2": ["write:media"]}]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert client.get("/schema/openapi.yaml").status_code == 200


# --- Accounts ------------------------------------------------------------------------------------------------------


def test_verify_credentials_is_a_mastodon_credential_account(ana):
    me = ana.ok("GET", "/api/v1/accounts/verify_credentials")
    assert me["id"] == ana.id and isinstance(me["id"], str)
    assert me["username"] == me["acct"] == "ana" and me["locked"] is False
    assert ISO.match(me["created_at"]) and me["url"] == "http://127.0.0.1:8000/@ana"
    assert "/static/avatar.png" in me["avatar"] and me["header"].endswith("/static/header.png")
    assert me["source"]["privacy"] == "public" and me["followers_count"] == 0


def test_update_credentials_changes_name_bio_lock_and_avatar_as_the_profile_page(ctx, ana):
    me = ana.ok(
        "PATCH",
        "/api/v1/accounts/update_credentials",
        data={"display_name": "Ana Lima", "note": "Photos of #sunsets\n\nand @ana", "locked": "1"},
    )
    assert me["display_name"] == "Ana Lima" and me["locked"] is True and me["source"]["privacy"] == "private"
    assert me["note"].startswith('<p>Photos of <a class="tag" href="http://127.0.0.1:8000/tags/sunsets">')
    assert me["source"]["note"] == "Photos of #sunsets\n\nand @ana"
    too_long = ana("PATCH", "/api/v1/accounts/update_credentials", data={"note": "x" * 301})
    assert too_long.status_code == 422 and "limit is 300" in too_long.json()["error"]
    response = ana(
        "PATCH", "/api/v1/accounts/update_credentials", files={"avatar": ("a.jpg", HOPPER.read_bytes(), "image/jpeg")}
    )
    assert response.status_code == 200, response.text
    ctx.backends.queue.run_pending()
    avatar = ana.ok("GET", "/api/v1/accounts/verify_credentials")["avatar"]
    assert "/media/avatars/" in avatar
    bad = ana("PATCH", "/api/v1/accounts/update_credentials", files={"avatar": ("a.jpg", b"<svg></svg>", "image/jpeg")})
    assert bad.status_code == 422 and ana.ok("GET", "/api/v1/accounts/verify_credentials")["avatar"] == avatar


def test_accounts_by_id_and_lookup_and_the_same_404_for_missing_blocked_and_malformed(ana, bo):
    assert ana.ok("GET", f"/api/v1/accounts/{bo.id}")["username"] == "bo"
    assert ana.ok("GET", "/api/v1/accounts/lookup?acct=@bo")["id"] == bo.id
    assert ana.ok("GET", "/api/v1/accounts/lookup?acct=bo@127.0.0.1:8000")["id"] == bo.id
    bo.ok("POST", f"/api/v1/accounts/{ana.id}/block")
    for path in (
        f"/api/v1/accounts/{bo.id}",
        "/api/v1/accounts/lookup?acct=bo",
        "/api/v1/accounts/lookup?acct=bo@elsewhere.example",
        "/api/v1/accounts/lookup?acct=nobody",
        "/api/v1/accounts/123",
        "/api/v1/accounts/abc",
        "/api/v1/accounts/99999999999999999999999",
        "/api/v1/accounts/-1",
    ):
        response = ana.get(path)
        assert response.status_code == 404, path
        assert set(response.json()) == {"error"}


def test_follow_a_locked_account_waits_for_approval(ana, bo):
    make_private(bo)
    rel = ana.ok("POST", f"/api/v1/accounts/{bo.id}/follow")
    assert rel["requested"] is True and rel["following"] is False
    assert ana.ok("POST", f"/api/v1/accounts/{bo.id}/follow") == rel  # again: nothing changes
    waiting = bo.ok("GET", "/api/v1/follow_requests")
    assert [a["username"] for a in waiting] == ["ana"]
    assert bo.ok("GET", "/api/v1/accounts/verify_credentials")["source"]["follow_requests_count"] == 1
    assert bo.ok("POST", f"/api/v1/follow_requests/{ana.id}/authorize")["followed_by"] is True
    rels = ana.ok("GET", f"/api/v1/accounts/relationships?id[]={bo.id}&id[]=42")
    assert rels == [{**rel, "requested": False, "following": True, "showing_reblogs": True}]
    assert bo("POST", f"/api/v1/follow_requests/{ana.id}/reject").status_code == 404


def test_reject_unfollow_block_mute_and_their_lists(ana, bo, ctx):
    make_private(bo)
    ana.ok("POST", f"/api/v1/accounts/{bo.id}/follow")
    assert bo.ok("POST", f"/api/v1/follow_requests/{ana.id}/reject")["requested_by"] is False
    assert ana.ok("GET", f"/api/v1/accounts/relationships?id={bo.id}")[0]["requested"] is False
    assert ana.ok("POST", f"/api/v1/accounts/{bo.id}/mute")["muting"] is True
    assert [a["id"] for a in ana.ok("GET", "/api/v1/mutes")] == [bo.id]
    assert ana.ok("POST", f"/api/v1/accounts/{bo.id}/unmute")["muting"] is False
    assert ana.ok("POST", f"/api/v1/accounts/{bo.id}/block")["blocking"] is True
    assert [a["id"] for a in ana.ok("GET", "/api/v1/blocks")] == [bo.id]
    assert ana.ok("GET", f"/api/v1/accounts/{bo.id}")["username"] == "bo"  # your own block: you can still unblock
    assert ana("POST", f"/api/v1/accounts/{bo.id}/follow").status_code == 422
    assert ana.ok("POST", f"/api/v1/accounts/{bo.id}/unblock")["blocking"] is False
    assert ana("POST", f"/api/v1/accounts/{ana.id}/follow").status_code == 422  # yourself


def test_a_private_accounts_followers_are_hidden_from_strangers(ctx, client, ana, bo):
    make_private(bo)
    ana.ok("POST", f"/api/v1/accounts/{bo.id}/follow")
    bo.ok("POST", f"/api/v1/follow_requests/{ana.id}/authorize")
    carl = Api(ctx, client, "carl")
    assert carl.ok("GET", f"/api/v1/accounts/{bo.id}/followers") == []
    assert [a["username"] for a in ana.ok("GET", f"/api/v1/accounts/{bo.id}/followers")] == ["ana"]
    assert [a["username"] for a in ana.ok("GET", f"/api/v1/accounts/{ana.id}/following")] == ["bo"]


# --- Media and statuses --------------------------------------------------------------------------------------------


def test_an_upload_is_202_while_processing_then_has_sizes_blurhash_and_focus(ctx, ana):
    response = ana.post(
        "/api/v2/media",
        files={"file": ("f.jpg", FLOWER.read_bytes(), "image/jpeg")},
        data={"description": "A red flower", "focus": "0.5,-0.25"},
    )
    assert response.status_code == 202
    pending = response.json()
    assert pending["url"] is None and pending["type"] == "image" and pending["description"] == "A red flower"
    assert ana.get(f"/api/v1/media/{pending['id']}").status_code == 206
    ctx.backends.queue.run_pending()
    media = ana.ok("GET", f"/api/v1/media/{pending['id']}")
    assert media["id"] == pending["id"] and urlsplit(media["url"]).path.endswith(".jpg") and media["preview_url"]
    original, small = media["meta"]["original"], media["meta"]["small"]
    assert max(original["width"], original["height"]) <= 1080 and max(small["width"], small["height"]) == 320
    assert original["size"] == f"{original['width']}x{original['height']}"
    assert media["meta"]["focus"] == {"x": 0.5, "y": -0.25}
    assert len(media["blurhash"]) == 28
    image = fetch_media(ana, local(media["url"]))
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    updated = ana.ok("PUT", f"/api/v1/media/{media['id']}", data={"description": "Red", "focus": "0,0"})
    assert updated["description"] == "Red" and updated["meta"]["focus"] == {"x": 0.0, "y": 0.0}


def test_an_unposted_upload_is_its_uploaders_alone(ctx, client, ana, bo):
    media = ana.upload(FLOWER)
    assert bo.get(f"/api/v1/media/{media['id']}").status_code == 404
    assert bo("PUT", f"/api/v1/media/{media['id']}", data={"description": "mine"}).status_code == 404
    # The link the uploader got is signed (apps load images without cookies); without its signature, or with a
    # forged or expired one, nobody else gets the file.
    signed = local(media["url"])
    assert fetch_media(client, signed).status_code == 200
    path = urlsplit(signed).path
    assert client.get(path).status_code == 404 and bo.get(path).status_code == 404
    expires = parse_qs(urlsplit(signed).query)["expires"][0]
    assert client.get(f"{path}?expires={expires}&signature={'0' * 32}").status_code == 404
    assert (
        client.get(f"{path}?expires=1000&signature={parse_qs(urlsplit(signed).query)['signature'][0]}").status_code
        == 404
    )


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"file": ("x.jpg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/jpeg")}, "photo"),
        ({"file": ("x.jpg", b"", "image/jpeg")}, "empty"),
        ({}, "file"),
    ],
)
def test_bad_uploads_are_422_and_store_nothing(ctx, ana, payload, message):
    before = rows(ctx)
    response = ana.post("/api/v2/media", files=payload or None, data={"description": "x"})
    assert response.status_code == 422, response.text
    assert message in response.json()["error"].lower()
    assert rows(ctx) == before


def test_a_status_with_two_photos_and_alt_text(ctx, ana, bo):
    first, second = ana.upload(FLOWER, "First, a flower"), ana.upload(HOPPER, "Then Grace Hopper")
    status = ana.ok(
        "POST",
        "/api/v1/statuses",
        data={"status": "Two #Photos for @bo", "media_ids[]": [first["id"], second["id"]], "visibility": "public"},
    )
    assert [m["id"] for m in status["media_attachments"]] == [first["id"], second["id"]]
    assert [m["description"] for m in status["media_attachments"]] == ["First, a flower", "Then Grace Hopper"]
    assert status["account"]["id"] == ana.id and status["visibility"] == "public"
    assert status["tags"] == [{"name": "photos", "url": "http://127.0.0.1:8000/tags/photos"}]
    assert status["mentions"][0]["username"] == "bo" and ISO.match(status["created_at"])
    assert status["favourited"] is False and status["bookmarked"] is False
    assert datetime.fromisoformat(status["created_at"].replace("Z", "+00:00"))
    # The uploads are now the post's photos: the same files, served as the post allows, and gone from the list of
    # uploads not yet posted.
    assert fetch_media(bo, local(status["media_attachments"][0]["url"])).status_code == 200
    assert ana.get(f"/api/v1/media/{first['id']}").status_code == 404
    assert all_rows(ctx, "media_attachments") == []
    ctx.backends.queue.run_pending()
    assert bo.ok("GET", f"/api/v1/statuses/{status['id']}")["content"].startswith("<p>Two <a")
    # The page shows the same post.
    assert "First, a flower" in bo.client.get(f"/p/{status['id']}").text


def test_posting_refuses_what_the_upload_page_refuses_and_changes_nothing(ctx, ana, bo):
    mine = ana.upload(FLOWER)
    theirs = bo.upload(FLOWER)
    processing = ana.post("/api/v2/media", files={"file": ("f.jpg", FLOWER.read_bytes(), "image/jpeg")}).json()
    before = rows(ctx)
    cases = [
        ({"status": "no photo"}, "at least one photo"),
        ({"media_ids[]": [theirs["id"]]}, "doesn't exist"),
        ({"media_ids[]": [processing["id"]]}, "still being processed"),
        ({"media_ids[]": [mine["id"]] * 11}, "up to 10 photos"),
        ({"media_ids[]": [mine["id"], mine["id"]]}, "distinct"),
        ({"media_ids[]": ["abc"]}, "distinct ids"),
        ({"media_ids[]": [mine["id"]], "status": "x" * 2201}, "limit is 2200"),
        ({"media_ids[]": [mine["id"]], "status": "hi @nobody_here"}, "no account called"),
        ({"media_ids[]": [mine["id"]], "visibility": "direct"}, "direct messages"),
        ({"media_ids[]": [mine["id"]], "visibility": "private"}, "Your account is public"),
        ({"media_ids[]": [mine["id"]], "poll[options][]": ["a", "b"]}, "poll"),
    ]
    for fields, message in cases:
        response = ana.post("/api/v1/statuses", data=fields)
        assert response.status_code == 422, (fields, response.text)
        assert message in response.json()["error"], (fields, response.json())
    assert rows(ctx) == before


def test_eleven_uploads_are_refused(ctx, ana):
    ids_ = [ana.upload(HOPPER)["id"] for _ in range(11)]
    response = ana.post("/api/v1/statuses", data={"media_ids[]": ids_})
    assert response.status_code == 422 and "up to 10 photos; you chose 11" in response.json()["error"]
    assert all_rows(ctx, "posts") == []


def test_a_retry_with_the_same_idempotency_key_gets_the_same_status(ctx, ana):
    media = ana.upload(FLOWER)
    headers = {"Idempotency-Key": "abc-123"}
    first = ana.ok("POST", "/api/v1/statuses", data={"media_ids[]": [media["id"]], "status": "once"}, headers=headers)
    again = ana.ok("POST", "/api/v1/statuses", data={"media_ids[]": [media["id"]], "status": "once"}, headers=headers)
    assert again["id"] == first["id"] and len(all_rows(ctx, "posts")) == 1
    other = ana.upload(HOPPER)
    fresh = ana.ok(
        "POST", "/api/v1/statuses", data={"media_ids[]": [other["id"]]}, headers={"Idempotency-Key": "other"}
    )
    assert fresh["id"] != first["id"]


def test_statuses_post_as_json_too(ana):
    media = ana.upload(FLOWER)
    status = ana.ok("POST", "/api/v1/statuses", json={"status": "json", "media_ids": [media["id"]], "sensitive": True})
    assert status["sensitive"] is True and status["content"] == "<p>json</p>"


def test_edit_and_delete_a_status(ctx, ana, bo):
    status = ana.post_status([FLOWER], "before")
    media_id = status["media_attachments"][0]["id"]
    edited = ana.ok(
        "PUT",
        f"/api/v1/statuses/{status['id']}",
        json={
            "status": "after #edit",
            "media_ids": [media_id],
            "media_attributes": [{"id": media_id, "description": "now described"}],
            "spoiler_text": "cw",
        },
    )
    assert edited["content"].startswith("<p>after") and edited["sensitive"] is True
    assert edited["media_attachments"][0]["description"] == "now described"
    assert bo("PUT", f"/api/v1/statuses/{status['id']}", data={"status": "mine now"}).status_code == 403
    changed_photos = ana("PUT", f"/api/v1/statuses/{status['id']}", json={"media_ids": ["1"]})
    assert changed_photos.status_code == 422
    assert bo("DELETE", f"/api/v1/statuses/{status['id']}").status_code == 403
    deleted = ana.ok("DELETE", f"/api/v1/statuses/{status['id']}")
    assert deleted["id"] == status["id"] and deleted["text"] == "after #edit"
    assert ana.get(f"/api/v1/statuses/{status['id']}").status_code == 404
    ctx.backends.queue.run_pending()
    # Its files went with it, the uploaded ones included.
    assert ana.get(local(status["media_attachments"][0]["url"])).status_code == 404
    stored = [p.name for p in (ctx.config.data_dir / "media").rglob("*") if p.is_file()]
    assert not any(name.endswith((".jpg", ".webp")) for name in stored), stored


def test_comments_are_replies_in_the_context(ctx, ana, bo):
    status = ana.post_status([FLOWER], "post")
    reply = bo.ok("POST", "/api/v1/statuses", data={"status": "Lovely, @ana", "in_reply_to_id": status["id"]})
    assert reply["in_reply_to_id"] == status["id"] and reply["in_reply_to_account_id"] == ana.id
    assert reply["media_attachments"] == [] and reply["mentions"][0]["username"] == "ana"
    nested = ana.ok("POST", "/api/v1/statuses", data={"status": "Thanks", "in_reply_to_id": reply["id"]})
    assert nested["in_reply_to_id"] == status["id"]  # flat: every comment replies to the post
    context = bo.ok("GET", f"/api/v1/statuses/{status['id']}/context")
    assert context["ancestors"] == [] and [s["id"] for s in context["descendants"]] == [reply["id"], nested["id"]]
    up = bo.ok("GET", f"/api/v1/statuses/{reply['id']}/context")
    assert [s["id"] for s in up["ancestors"]] == [status["id"]]
    assert bo.ok("GET", f"/api/v1/statuses/{status['id']}")["replies_count"] == 2
    assert bo.ok("DELETE", f"/api/v1/statuses/{reply['id']}")["text"] == "Lovely, @ana"
    with_photo = bo.post("/api/v1/statuses", data={"status": "x", "in_reply_to_id": status["id"], "media_ids[]": ["1"]})
    assert with_photo.status_code == 422


def test_favourite_bookmark_and_their_lists(ctx, client, ana, bo):
    status = ana.post_status([FLOWER])
    liked = bo.ok("POST", f"/api/v1/statuses/{status['id']}/favourite")
    assert liked["favourited"] is True and liked["favourites_count"] == 1
    assert bo.ok("POST", f"/api/v1/statuses/{status['id']}/favourite")["favourites_count"] == 1  # again: the same
    assert [a["username"] for a in client.get(f"/api/v1/statuses/{status['id']}/favourited_by").json()] == ["bo"]
    assert bo.ok("POST", f"/api/v1/statuses/{status['id']}/bookmark")["bookmarked"] is True
    assert [s["id"] for s in bo.ok("GET", "/api/v1/bookmarks")] == [status["id"]]
    assert [s["id"] for s in bo.ok("GET", "/api/v1/favourites")] == [status["id"]]
    assert ana.ok("GET", "/api/v1/bookmarks") == []  # bookmarks are private
    assert bo.ok("POST", f"/api/v1/statuses/{status['id']}/unfavourite")["favourites_count"] == 0
    assert bo.ok("POST", f"/api/v1/statuses/{status['id']}/unbookmark")["bookmarked"] is False
    assert bo.ok("GET", "/api/v1/bookmarks") == [] and bo.ok("GET", "/api/v1/favourites") == []


def test_a_private_accounts_status_reads_like_a_missing_one(ctx, client, ana, bo):
    make_private(ana)
    status = ana.post_status([FLOWER], "private")
    missing = client.get("/api/v1/statuses/1234567890123")
    for caller in (client, bo.client.__class__(bo.client.app, base_url=str(bo.client.base_url))):
        assert caller.get(f"/api/v1/statuses/{status['id']}").json() == missing.json()
    for path in (
        f"/api/v1/statuses/{status['id']}",
        f"/api/v1/statuses/{status['id']}/context",
        f"/api/v1/statuses/{status['id']}/favourited_by",
        urlsplit(status["media_attachments"][0]["url"]).path,
    ):
        assert bo.get(path).status_code == 404, path
    for action in ("favourite", "bookmark"):
        assert bo.post(f"/api/v1/statuses/{status['id']}/{action}").status_code == 404
    assert bo.post("/api/v1/statuses", data={"status": "hi", "in_reply_to_id": status["id"]}).status_code == 404
    assert bo.ok("GET", f"/api/v1/accounts/{ana.id}/statuses") == []
    assert all_rows(ctx, "likes") == [] and all_rows(ctx, "bookmarks") == [] and all_rows(ctx, "comments") == []
    bo.ok("POST", f"/api/v1/accounts/{ana.id}/follow")
    ana.ok("POST", f"/api/v1/follow_requests/{bo.id}/authorize")
    seen = bo.ok("GET", f"/api/v1/statuses/{status['id']}")
    assert seen["visibility"] == "private"
    assert fetch_media(client, local(seen["media_attachments"][0]["url"])).status_code == 200  # signed for follower


# --- Timelines, notifications, search ------------------------------------------------------------------------------


def test_the_home_timeline_of_a_follower_and_the_public_and_tag_timelines(ctx, client, ana, bo):
    bo.ok("POST", f"/api/v1/accounts/{ana.id}/follow")
    status = ana.post_status([FLOWER], "for #followers")
    assert [s["id"] for s in bo.ok("GET", "/api/v1/timelines/home")] == [status["id"]]
    assert [s["id"] for s in client.get("/api/v1/timelines/public?local=true").json()] == [status["id"]]
    assert client.get("/api/v1/timelines/public?remote=true").json() == []
    assert [s["id"] for s in client.get("/api/v1/timelines/tag/Followers").json()] == [status["id"]]
    bo.ok("POST", f"/api/v1/accounts/{ana.id}/mute")
    assert bo.ok("GET", "/api/v1/timelines/home") == [] and bo.ok("GET", "/api/v1/timelines/public") == []
    make_private(ana)
    assert client.get("/api/v1/timelines/public").json() == []
    assert client.get("/api/v1/timelines/tag/followers").json() == []
    assert client.get("/api/v1/timelines/home").status_code == 401


def test_notifications_one_by_one_with_types_dismiss_and_clear(ctx, ana, bo):
    status = ana.post_status([FLOWER])
    bo.ok("POST", f"/api/v1/accounts/{ana.id}/follow")
    bo.ok("POST", f"/api/v1/statuses/{status['id']}/favourite")
    reply = bo.ok("POST", "/api/v1/statuses", data={"status": "nice", "in_reply_to_id": status["id"]})
    found = ana.ok("GET", "/api/v1/notifications")
    assert [n["type"] for n in found] == ["mention", "favourite", "follow"]
    mention, favourite, follow = found
    assert mention["status"]["id"] == reply["id"] and favourite["status"]["id"] == status["id"]
    assert follow["account"]["id"] == bo.id and "status" not in follow and ISO.match(follow["created_at"])
    only = ana.ok("GET", "/api/v1/notifications?types[]=favourite&types[]=follow")
    assert [n["type"] for n in only] == ["favourite", "follow"]
    assert [n["type"] for n in ana.ok("GET", "/api/v1/notifications?exclude_types[]=mention")] == [
        "favourite",
        "follow",
    ]
    assert ana.ok("GET", f"/api/v1/notifications/{follow['id']}")["type"] == "follow"
    assert bo.get(f"/api/v1/notifications/{follow['id']}").status_code == 404
    assert bo.post(f"/api/v1/notifications/{follow['id']}/dismiss").status_code == 404  # not bo's
    assert ana.ok("POST", f"/api/v1/notifications/{follow['id']}/dismiss") == {}
    assert len(ana.ok("GET", "/api/v1/notifications")) == 2
    assert ana.ok("POST", "/api/v1/notifications/clear") == {}
    assert ana.ok("GET", "/api/v1/notifications") == []


def test_search_finds_accounts_and_hashtags_and_trends_list_tags(ctx, client, ana, bo):
    ana.post_status([FLOWER], "#sunset")
    found = client.get("/api/v2/search?q=b").json()
    assert [a["username"] for a in found["accounts"]] == ["bo"] and found["statuses"] == []
    assert [t["name"] for t in client.get("/api/v2/search?q=%23sun").json()["hashtags"]] == ["sunset"]
    assert client.get("/api/v2/search?q=sun&type=accounts").json()["hashtags"] == []
    assert client.get("/api/v2/search?q=x&type=bogus").status_code == 422
    assert client.get("/api/v2/search?q=" + "a" * 500).status_code == 422
    assert [t["name"] for t in client.get("/api/v1/trends/tags").json()] == ["sunset"]


# --- Pagination and bad parameters ---------------------------------------------------------------------------------


def test_pagination_follows_mastodon_with_link_headers(ctx, ana):
    statuses = [ana.post_status([HOPPER]) for _ in range(5)]
    newest_first = [s["id"] for s in reversed(statuses)]
    path = f"/api/v1/accounts/{ana.id}/statuses"
    page = ana.get(f"{path}?limit=2")
    assert [s["id"] for s in page.json()] == newest_first[:2]
    links = dict((rel, url) for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', page.headers["link"]))
    assert f"max_id={newest_first[1]}" in links["next"] and f"min_id={newest_first[0]}" in links["prev"]
    assert "limit=2" in links["next"]
    second = ana.get(local(links["next"]))
    assert [s["id"] for s in second.json()] == newest_first[2:4]
    last = ana.get(f"{path}?limit=2&max_id={newest_first[3]}")
    assert [s["id"] for s in last.json()] == newest_first[4:] and 'rel="next"' not in last.headers["link"]
    assert [s["id"] for s in ana.ok("GET", f"{path}?since_id={newest_first[2]}")] == newest_first[:2]
    assert [s["id"] for s in ana.ok("GET", f"{path}?min_id={newest_first[4]}&limit=2")] == newest_first[2:4]
    assert len(ana.ok("GET", f"{path}?limit=100000")) == 5
    assert ana.get(f"{path}?max_id={newest_first[-1]}").headers.get("link") is None  # empty page: no links


def test_limit_is_capped_at_mastodons_maximum(ctx, client, ana):
    for i in range(45):
        accounts.create_user(ctx, f"fan{i}", "correct horse battery")
    found = client.get("/api/v2/search?q=fan&limit=100000").json()["accounts"]
    assert len(found) == 40


@pytest.mark.parametrize(
    "path, status",
    [
        ("/api/v1/timelines/home?limit=abc", 400),
        ("/api/v1/timelines/home?max_id=abc", 400),
        ("/api/v1/timelines/home?since_id=-5", 400),
        ("/api/v1/statuses/abc", 404),
        ("/api/v1/statuses/0", 404),
        ("/api/v1/statuses/99999999999999999999", 404),
        ("/api/v1/media/abc", 404),
        ("/api/v1/notifications/abc", 404),
        ("/api/v1/nonexistent", 404),
        ("/api/v1/timelines/tag/%20", 422),
    ],
)
def test_malformed_parameters_get_mastodons_status_and_an_error(ana, path, status):
    response = ana.get(path)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"} and response.json()["error"]


def test_malformed_bodies_are_400_and_change_nothing(ctx, ana):
    before = rows(ctx)
    response = ana.post("/api/v1/statuses", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "JSON" in response.json()["error"]
    response = ana.post("/api/v1/statuses", content=b"[1, 2]", headers={"content-type": "application/json"})
    assert response.status_code == 400
    response = ana.post("/api/v1/statuses", json={"status": ["a", "b"], "media_ids": "x"})
    assert response.status_code == 422
    assert rows(ctx) == before


def test_what_apps_ask_for_at_start_answers_even_where_pinhole_has_nothing(ana):
    assert ana.ok("GET", "/api/v1/preferences")["posting:default:visibility"] == "public"
    make_private(ana)
    assert ana.ok("GET", "/api/v1/preferences")["posting:default:visibility"] == "private"
    for path in ("/api/v1/lists", "/api/v2/filters", "/api/v1/announcements", "/api/v1/followed_tags"):
        assert ana.ok("GET", path) == [], path
    assert ana.ok("GET", "/api/v1/markers") == {}
