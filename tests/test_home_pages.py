"""Kept home pages (app/web/home_pages.py): a viewer's first page of their home feed is sent again without being read
or rendered, until the viewer does something, their feed's head moves, their badge changes, or [feeds]
page_cache_seconds pass; and only ever to that viewer."""

from __future__ import annotations

import re
import time
from unittest.mock import patch

import pytest

from app.backends.redis_server import RedisUnavailable
from app.context import build_context
from app.services import accounts, feed, graph, interactions
from app.services.posts import delete_post
from app.web.home_pages import REFRESH_AHEAD, HomePages, PageCheck
from app.web.routes import feed as feed_routes
from app.web.routes.feed import first_page_digest
from tests.conftest import another_browser, log_in
from tests.test_feed import share, user
from tests.test_feed_caching import liked_state, token


def count_calls(monkeypatch, owner, name: str) -> list[int]:
    """One entry each time `owner.name` is called (and runs as before)."""
    calls: list[int] = []
    real = getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


@pytest.fixture
def reads(monkeypatch) -> list[int]:
    """One entry each time a page reads the home feed (a kept page reads nothing)."""
    return count_calls(monkeypatch, feed, "home_feed")


@pytest.fixture
def renders(monkeypatch) -> list[int]:
    """One entry each time the home route renders a page."""
    return count_calls(monkeypatch, feed_routes, "page")


@pytest.fixture
def clock(ctx, client) -> list[float]:
    """The kept pages' clock, moved by hand."""
    now = [1000.0]
    client.app.state["home_pages"].clock = lambda: now[0]
    return now


def cards(page) -> list[str]:
    return re.findall(r'<article class="post feed-card" id="post-(\d+)"', page.text)


def badge(page) -> str | None:
    """The unread count in the nav, None when the badge is hidden."""
    found = re.search(r'id="notif-badge"( hidden)?><span class="count">(\d+)', page.text)
    return None if found.group(1) else found.group(2)


def test_a_page_is_kept_for_its_viewer_only(ctx, client, reads):
    ana, bob, cy = user(ctx, "ana"), user(ctx, "bob"), user(ctx, "cy")
    graph.follow(ctx, bob, ana)
    graph.follow(ctx, cy, ana)
    post_id = share(ctx, ana, caption="dawn")
    interactions.like(ctx, bob, post_id)
    log_in(client, "bob")
    first = client.get("/")
    assert cards(first) == [str(post_id)] and liked_state(first, post_id) == "true"
    again = client.get("/")
    assert again.text == first.text and len(reads) == 1, "the kept page, read and rendered once"
    headers = [{k: v for k, v in answer.headers.items() if k != "x-request-id"} for answer in (first, again)]
    assert headers[0] == headers[1] and "content-security-policy" in headers[1], "as the app sent it"
    assert again.headers["content-type"].startswith("text/html") and again.headers["vary"] == "HX-Request"

    other = another_browser(client)
    log_in(other, "cy")
    cys = other.get("/")
    assert len(reads) == 2 and cards(cys) == [str(post_id)] and liked_state(cys, post_id) == "false"
    assert token(first) not in cys.text and 'href="/@bob"' not in cys.text


def test_each_answer_with_a_kept_page_has_its_own_headers(ctx, client, reads):
    ana, bob = user(ctx, "ana"), user(ctx, "bob")
    graph.follow(ctx, bob, ana)
    share(ctx, ana)
    log_in(client, "bob")
    answers = [client.get("/") for _ in range(5)]
    assert len(reads) == 1  # rendered once, then kept
    request_ids = [a.headers.get_list("x-request-id") for a in answers]
    assert all(len(ids) == 1 for ids in request_ids), request_ids  # one each, never piling up on the kept page
    assert len({ids[0] for ids in request_ids}) == 5
    for answer in answers:
        assert [len(answer.headers.get_list(name)) for name in ("content-security-policy", "vary")] == [1, 1]


def test_the_viewers_own_actions_show_at_once(ctx, client, reads):
    ana, bob = user(ctx, "ana"), user(ctx, "bob")
    graph.follow(ctx, bob, ana)
    post_id = share(ctx, ana)
    log_in(client, "bob")
    assert liked_state(client.get("/"), post_id) == "false"
    interactions.like(ctx, bob, post_id)
    assert liked_state(client.get("/"), post_id) == "true"
    interactions.add_comment(ctx, bob, post_id, "nice")
    assert "1 comment\n" in client.get("/").text
    graph.mute(ctx, bob, ana)
    assert cards(client.get("/")) == []
    graph.unmute(ctx, bob, ana.id)
    assert cards(client.get("/")) == [str(post_id)]
    graph.unfollow(ctx, bob, ana)
    assert cards(client.get("/")) == []
    assert len(reads) == 6, "each change read the feed again, once"


def test_posts_arriving_and_leaving_show_at_once(ctx, client):
    ana, bob = user(ctx, "ana"), user(ctx, "bob")
    graph.follow(ctx, bob, ana)
    older = share(ctx, ana)
    log_in(client, "bob")
    assert cards(client.get("/")) == [str(older)]
    newer = share(ctx, ana)
    assert cards(client.get("/")) == [str(newer), str(older)]
    delete_post(ctx, ana, newer)
    ctx.backends.queue.run_pending()  # the post_deleted task takes it out of followers' feeds
    assert cards(client.get("/")) == [str(older)]
    accounts.update_profile(ctx, ana, "", "", is_private=True)  # bob still follows: he still sees it
    assert cards(client.get("/")) == [str(older)]
    graph.remove_follower(ctx, ana, bob.id)
    assert cards(client.get("/")) == []


def test_a_block_by_the_author_shows_at_once(ctx, client):
    ana, bob = user(ctx, "ana"), user(ctx, "bob")
    graph.follow(ctx, bob, ana)
    post_id = share(ctx, ana, caption="not for bob")
    log_in(client, "bob")
    assert cards(client.get("/")) == [str(post_id)]
    graph.block(ctx, ana, bob)
    page = client.get("/")
    assert cards(page) == [] and "not for bob" not in page.text


def test_the_badge_shows_new_notifications_at_once(ctx, client):
    bob, cy = user(ctx, "bob"), user(ctx, "cy")
    log_in(client, "bob")
    assert badge(client.get("/")) is None
    graph.follow(ctx, cy, bob)
    assert badge(client.get("/")) == "1"
    client.get("/notifications")  # read
    assert badge(client.get("/")) is None


def test_what_others_do_to_the_posts_shows_within_page_cache_seconds(ctx, client, clock):
    ana, bob, cy = user(ctx, "ana"), user(ctx, "bob"), user(ctx, "cy")
    graph.follow(ctx, bob, ana)
    post_id = share(ctx, ana, caption="first words")
    log_in(client, "bob")
    assert "0 likes" in client.get("/").text
    interactions.like(ctx, cy, post_id)
    interactions.edit_post(ctx, ana, post_id, "second words", {}, None)
    clock[0] += ctx.config.feeds.page_cache_seconds - 0.1
    page = client.get("/").text
    assert "0 likes" in page and "first words" in page, "kept..."
    clock[0] += 0.2
    page = client.get("/").text
    assert "1 like<" in page and "second words" in page, "...for at most page_cache_seconds"


def late_request(ctx, client, clock) -> str:
    """GET / late in the kept page's time, then the page once the work it started behind it is done."""
    clock[0] += ctx.config.feeds.page_cache_seconds * REFRESH_AHEAD + 0.1
    client.get("/")
    pages = client.app.state["home_pages"]
    deadline = time.monotonic() + 10
    while pages._refreshing and time.monotonic() < deadline:
        time.sleep(0.01)
    return client.get("/").text


def test_an_unchanged_page_is_kept_longer_without_rendering_it(ctx, client, clock, renders):
    ana, bob = user(ctx, "ana"), user(ctx, "bob")
    graph.follow(ctx, bob, ana)
    share(ctx, ana)
    log_in(client, "bob")
    first = client.get("/").text
    for _ in range(3):  # each time late in its time, so each time read again: nothing changed
        assert late_request(ctx, client, clock) == first
    assert len(renders) == 1
    clock[0] += ctx.config.feeds.page_cache_seconds * (1 - REFRESH_AHEAD)  # past the first page's own expiry
    assert client.get("/").text == first and len(renders) == 1, "kept for another page_cache_seconds each time"


def test_a_changed_page_is_rendered_again_in_the_background(ctx, client, clock, renders):
    ana, bob, cy = user(ctx, "ana"), user(ctx, "bob"), user(ctx, "cy")
    graph.follow(ctx, bob, ana)
    post_id = share(ctx, ana)
    log_in(client, "bob")
    assert "0 likes" in client.get("/").text
    interactions.like(ctx, cy, post_id)  # by someone else: the viewer's page version stays
    assert "1 like<" in late_request(ctx, client, clock) and len(renders) == 2
    interactions.edit_post(ctx, ana, post_id, "golden hour", {}, None)  # the author's new caption
    assert "golden hour" in late_request(ctx, client, clock) and len(renders) == 3
    clock[0] += 120  # past the kept page's expiry, and the time ago with it
    wall = time.time()
    with patch("app.web.routes.feed.time.time", lambda: wall + 120):
        page = client.get("/").text
    assert "2 minutes ago" in page and len(renders) == 4
    with patch("app.web.routes.feed.time.time", lambda: wall + 180):
        assert "3 minutes ago" in late_request(ctx, client, clock) and len(renders) == 5


def test_a_write_in_another_process_shows_at_once(ctx, client):
    ana, bob = user(ctx, "ana"), user(ctx, "bob")
    graph.follow(ctx, bob, ana)
    post_id = share(ctx, ana)
    log_in(client, "bob")
    assert liked_state(client.get("/"), post_id) == "false"
    other = build_context(ctx.config, register_tasks=False)  # another app node or worker on the same ctx
    try:
        interactions.like(other, bob, post_id)
    finally:
        other.close()
    assert liked_state(client.get("/"), post_id) == "true"


def test_a_new_csrf_cookie_gets_a_page_rendered_with_it(ctx, client, reads):
    ana, bob = user(ctx, "ana"), user(ctx, "bob")
    graph.follow(ctx, bob, ana)
    share(ctx, ana)
    log_in(client, "bob")
    first = client.get("/")
    client.cookies.delete("pinhole_csrf")
    second = client.get("/")  # no CSRF cookie: a new one is set, and the page must carry it
    assert token(second) != token(first) and token(second) == second.cookies["pinhole_csrf"]
    assert token(client.get("/")) == token(second) and len(reads) == 3


def test_a_cookie_header_it_cannot_read_goes_to_the_app(ctx, client):
    user(ctx, "bob")
    log_in(client, "bob")
    token = client.cookies["pinhole_session"]
    for header in (f'pinhole_session="{token}; pinhole_csrf=', f"pinhole_session={token}; pinhole_csrf=\x00;;="):
        answer = client.get("/", headers={"Cookie": header})
        assert answer.status_code == 200 and "Pinhole" in answer.text


def test_older_pages_and_fragments_are_not_kept(ctx, client, reads):
    ana, bob = user(ctx, "ana"), user(ctx, "bob")
    graph.follow(ctx, bob, ana)
    for _ in range(12):
        share(ctx, ana)
    log_in(client, "bob")
    before = re.search(r'href="/\?before=(\d+)"', client.get("/").text).group(1)
    client.get(f"/?before={before}")
    client.get(f"/?before={before}")
    client.get(f"/?before={before}", headers={"HX-Request": "true"})
    assert len(reads) == 4


def test_nothing_is_kept_when_turned_off_or_without_page_versions(make_site, monkeypatch, reads):
    off, client = make_site(feeds={"page_cache_seconds": 0})
    user(off, "bob")
    log_in(client, "bob")
    client.get("/")
    client.get("/")
    assert len(reads) == 2

    site, client = make_site()
    user(site, "bob")
    log_in(client, "bob")
    kv_get = site.backends.kv.get

    def versions_down(key):
        if key.startswith("pagever:"):
            raise ConnectionError("store down")
        return kv_get(key)

    monkeypatch.setattr(site.backends.kv, "get", versions_down)
    assert client.get("/").status_code == 200 and client.get("/").status_code == 200
    assert len(reads) == 4


def test_a_session_store_outage_gets_the_apps_answer(ctx, client, monkeypatch):
    user(ctx, "bob")
    log_in(client, "bob")

    def down(key):
        raise RedisUnavailable("redis://sessions.internal:6379 cannot be reached")

    monkeypatch.setattr(ctx.backends.kv, "get", down)
    answer = client.get("/")
    assert answer.status_code == 503 and "Traceback" not in answer.text


def test_each_process_keeps_at_most_max_pages(ctx):
    pages = HomePages(ctx, first_page_digest, max_pages=2, clock=lambda: 0.0)
    checks = [PageCheck(viewer_id, "v1", "csrf", (3, 2, 1)) for viewer_id in (1, 2, 3)]
    for check in checks:
        pages.keep(check, "digest", [], b"page %d" % check.viewer_id)
    assert pages.get(checks[0]) is None and pages.get(checks[2]).body == b"page 3"
    assert pages.get(PageCheck(3, "v2", "csrf", (3, 2, 1))) is None
