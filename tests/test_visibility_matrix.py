"""Who sees a post, on every surface: viewer {anonymous, stranger, pending, follower, blocked, owner} × {post page,
media file, profile grid, home feed, explore, tag page, search, places, Atom, notifications}, for a public and a
private account.

The rule (app/services/visibility.py): the owner sees everything; a block either way hides everything; a public
account's posts reach everyone else; a private account's only approved followers. Explore, places and Atom are
public surfaces; a private post never appears there for anyone but, on places, those allowed to see it. "Not
allowed" and "missing" answer the same 404.
"""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from app.services import accounts, graph, sessions
from app.services.posts import PhotoUpload, Place, create_post, get_post
from app.web.app import create_app
from tests.backends import make_config
from tests.conftest import PASSWORD, TESTDATA, csrf_token

VIEWERS = ("anonymous", "stranger", "pending", "follower", "blocked", "owner")
TAG = "matrixtag"
PLACE = Place("Pont Neuf", 48.8571, 2.3412)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Two accounts (public "sunny", private "shy") each with one post tagged, placed and mentioning the viewers;
    the viewers stand in every relation to both."""
    from app.context import build_context

    ctx = build_context(make_config(tmp_path_factory.mktemp("matrix"), queue={"embedded_workers": 0}))
    ctx.db.migrate()
    users = {name: accounts.create_user(ctx, name, PASSWORD) for name in ("stranger", "pending", "follower", "blocked")}
    owners = {
        "public": accounts.create_user(ctx, "sunny", PASSWORD),
        "private": accounts.create_user(ctx, "shy", PASSWORD),
    }
    owners["private"] = accounts.update_profile(ctx, owners["private"], "Shy", "", is_private=True)
    photo = (TESTDATA / "good" / "flower.jpg").read_bytes()
    found = {}
    for kind, owner in owners.items():
        graph.follow(ctx, users["follower"], owner)
        if owner.is_private:
            graph.follow(ctx, users["pending"], owner)
            graph.approve_request(ctx, owner, users["follower"].id)
        graph.block(ctx, owner, users["blocked"])
        post = create_post(
            ctx,
            owner,
            [PhotoUpload(photo, alt_text="a flower")],
            caption=f"#{TAG} hello @stranger @pending @follower",
            place=PLACE,
        )
        ctx.backends.queue.run_pending()
        found[kind] = get_post(ctx, post.id, owner)
    ctx.backends.queue.run_pending()
    app = create_app(ctx)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        yield ctx, client, owners, users, found
    ctx.close()


def browser(site, viewer: str, kind: str) -> TestClient:
    ctx, client, owners, users, _posts = site
    other = TestClient(client.app, base_url=str(client.base_url))
    user = owners[kind] if viewer == "owner" else users.get(viewer)
    if user is not None:
        other.cookies.set(sessions.COOKIE, sessions.start_session(ctx, user))
    return other


def allowed(kind: str, viewer: str, surface: str) -> bool:
    if viewer == "blocked":
        return False
    if surface in ("explore", "atom"):
        return kind == "public"  # public surfaces: a private post never appears there
    if surface == "feed":
        return viewer in ("follower", "owner")  # the feed holds what you follow (and your own)
    if surface == "notifications":
        # Mentioned viewers hear of the post when they may see it (the owner mentions nobody about themself).
        return viewer in ("stranger", "pending", "follower") and (kind == "public" or viewer == "follower")
    if kind == "public":
        return True
    return viewer in ("follower", "owner")


def shows_post(response, post) -> bool:
    return response.status_code == 200 and f"/p/{post.id}" in response.text


SURFACES = {
    "post page": lambda c, o, p: c.get(f"/p/{p.id}"),
    "feed": lambda c, o, p: c.get("/"),
    "profile grid": lambda c, o, p: c.get(f"/@{o.username}"),
    "explore": lambda c, o, p: c.get("/explore"),
    "tag page": lambda c, o, p: c.get(f"/tags/{TAG}"),
    "places": lambda c, o, p: c.get(f"/places/near?lat={PLACE.lat}&lon={PLACE.lon}&km=5"),
    "atom": lambda c, o, p: c.get(f"/@{o.username}.atom"),
    "notifications": lambda c, o, p: c.get("/notifications"),
}


@pytest.mark.parametrize("kind", ["public", "private"])
@pytest.mark.parametrize("viewer", VIEWERS)
def test_each_surface_shows_the_post_only_to_those_allowed(site, kind, viewer):
    _ctx, _client, owners, _users, found = site
    owner, post = owners[kind], found[kind]
    client = browser(site, viewer, kind)
    wrong = []
    for surface, fetch in SURFACES.items():
        if viewer == "anonymous" and surface in ("feed", "notifications"):
            continue  # no such page without an account
        response = fetch(client, owner, post)
        assert response.status_code < 500, (surface, response.status_code)
        if shows_post(response, post) != allowed(kind, viewer, surface):
            wrong.append(surface)
    assert not wrong, f"{viewer} on the {kind} account's post: wrong on {wrong}"


@pytest.mark.parametrize("kind", ["public", "private"])
@pytest.mark.parametrize("viewer", VIEWERS)
def test_refusals_read_like_a_missing_post(site, kind, viewer):
    """The post page, its media file and the Atom feed: not allowed answers exactly as missing does."""
    _ctx, _client, owners, _users, found = site
    owner, post = owners[kind], found[kind]
    client = browser(site, viewer, kind)
    media_url = post.media[0].urls["320"]["jpeg"]
    may_see = allowed(kind, viewer, "post page")
    page, missing_page = client.get(f"/p/{post.id}"), client.get(f"/p/{post.id + 1}")
    media, missing_media = client.get(media_url), client.get(media_url.replace(".jpg", "x.jpg"))
    if may_see:
        assert page.status_code == 200 and media.status_code == 200
    else:
        assert page.status_code == missing_page.status_code == 404
        assert page.text.replace(str(post.id), "") == missing_page.text.replace(str(post.id + 1), "")
        assert media.status_code == missing_media.status_code == 404
    atom = client.get(f"/@{owner.username}.atom")
    if not allowed(kind, viewer, "atom"):
        assert atom.status_code == client.get("/@nobody_here.atom").status_code == 404


@pytest.mark.parametrize("viewer", VIEWERS)
def test_search_finds_accounts_but_never_for_the_blocked(site, viewer):
    """Search lists accounts, public or private (as Instagram does), to everyone but someone with a block."""
    client = browser(site, viewer, "private")
    for username in ("sunny", "shy"):
        response = client.get(f"/search?q={username}")
        assert response.status_code == 200
        assert (f"/@{username}" in response.text) == (viewer != "blocked"), (viewer, username)


@pytest.mark.parametrize(
    ("kind", "viewer"),
    [("public", "blocked"), *(("private", v) for v in ("anonymous", "stranger", "pending", "blocked"))],
)
def test_those_not_allowed_cannot_like_or_comment(site, kind, viewer):
    """Acting on a post you may not see answers like a missing post and changes nothing. (Runs last: the other
    tests read the site as it was set up.)"""
    ctx, _client, owners, _users, found = site
    post = found[kind]
    client = browser(site, viewer, kind)
    token = csrf_token(client, "/login" if viewer == "anonymous" else "/settings/profile")
    headers = {"x-csrf-token": token, "hx-request": "true"}
    like = client.post(f"/p/{post.id}/like", headers=headers, follow_redirects=False)
    comment = client.post(f"/p/{post.id}/comments", data={"body": "hi"}, headers=headers, follow_redirects=False)
    expected = {303, 401} if viewer == "anonymous" else {404}
    assert like.status_code in expected and comment.status_code in expected
    after = get_post(ctx, post.id, owners[kind])
    assert (after.like_count, after.comment_count) == (0, 0)
