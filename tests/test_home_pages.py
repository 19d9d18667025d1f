"""Kept home pages (app/web/home_pages.py): a viewer's first page of their home feed is sent again without being read
or rendered, until the viewer does something, their feed's head moves, their badge changes, or [feeds]
page_cache_seconds pass; and only ever to that viewer."""

from __future__ import annotations

import re
import time

import pytest

from app.backends.redis_server import RedisUnavailable
from app.context import build_context
from app.services import accounts, feed, graph, interactions
from app.services.posts import delete_post
from app.web.home_pages import REFRESH_AHEAD, HomePages, PageCheck
from tests.conftest import another_browser, log_in
from tests.test_feed import cheap, share, user
from tests.test_feed_caching import liked_state, token


@pytest.fixture
def site(ctx):
    return cheap(ctx)


@pytest.fixture
def reads(monkeypatch) -> list[int]:
    """One entry each time a page reads the home feed (a kept page reads nothing)."""
    calls: list[int] = []
    real = feed.home_feed

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(feed, "home_feed", counted)
    return calls


@pytest.fixture
def clock(site, client) -> list[float]:
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


def test_a_page_is_kept_for_its_viewer_only(site, client, reads):
    ana, bob, cy = user(site, "ana"), user(site, "bob"), user(site, "cy")
    graph.follow(site, bob, ana)
    graph.follow(site, cy, ana)
    post_id = share(site, ana, caption="dawn")
    interactions.like(site, bob, post_id)
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


def test_the_viewers_own_actions_show_at_once(site, client, reads):
    ana, bob = user(site, "ana"), user(site, "bob")
    graph.follow(site, bob, ana)
    post_id = share(site, ana)
    log_in(client, "bob")
    assert liked_state(client.get("/"), post_id) == "false"
    interactions.like(site, bob, post_id)
    assert liked_state(client.get("/"), post_id) == "true"
    interactions.add_comment(site, bob, post_id, "nice")
    assert "1 comment\n" in client.get("/").text
    graph.mute(site, bob, ana)
    assert cards(client.get("/")) == []
    graph.unmute(site, bob, ana.id)
    assert cards(client.get("/")) == [str(post_id)]
    graph.unfollow(site, bob, ana)
    assert cards(client.get("/")) == []
    assert len(reads) == 6, "each change read the feed again, once"


def test_posts_arriving_and_leaving_show_at_once(site, client):
    ana, bob = user(site, "ana"), user(site, "bob")
    graph.follow(site, bob, ana)
    older = share(site, ana)
    log_in(client, "bob")
    assert cards(client.get("/")) == [str(older)]
    newer = share(site, ana)
    assert cards(client.get("/")) == [str(newer), str(older)]
    delete_post(site, ana, newer)
    site.backends.queue.run_pending()  # the post_deleted task takes it out of followers' feeds
    assert cards(client.get("/")) == [str(older)]
    accounts.update_profile(site, ana, "", "", is_private=True)  # bob still follows: he still sees it
    assert cards(client.get("/")) == [str(older)]
    graph.remove_follower(site, ana, bob.id)
    assert cards(client.get("/")) == []


def test_a_block_by_the_author_shows_at_once(site, client):
    ana, bob = user(site, "ana"), user(site, "bob")
    graph.follow(site, bob, ana)
    post_id = share(site, ana, caption="not for bob")
    log_in(client, "bob")
    assert cards(client.get("/")) == [str(post_id)]
    graph.block(site, ana, bob)
    page = client.get("/")
    assert cards(page) == [] and "not for bob" not in page.text


def test_the_badge_shows_new_notifications_at_once(site, client):
    bob, cy = user(site, "bob"), user(site, "cy")
    log_in(client, "bob")
    assert badge(client.get("/")) is None
    graph.follow(site, cy, bob)
    assert badge(client.get("/")) == "1"
    client.get("/notifications")  # read
    assert badge(client.get("/")) is None


def test_what_others_do_to_the_posts_shows_within_page_cache_seconds(site, client, clock):
    ana, bob, cy = user(site, "ana"), user(site, "bob"), user(site, "cy")
    graph.follow(site, bob, ana)
    post_id = share(site, ana, caption="first words")
    log_in(client, "bob")
    assert "0 likes" in client.get("/").text
    interactions.like(site, cy, post_id)
    interactions.edit_post(site, ana, post_id, "second words", {}, None)
    clock[0] += site.config.feeds.page_cache_seconds - 0.1
    page = client.get("/").text
    assert "0 likes" in page and "first words" in page, "kept..."
    clock[0] += 0.2
    page = client.get("/").text
    assert "1 like<" in page and "second words" in page, "...for at most page_cache_seconds"


def test_a_page_asked_for_late_in_its_time_is_rendered_again_in_the_background(site, client, clock, reads):
    ana, bob, cy = user(site, "ana"), user(site, "bob"), user(site, "cy")
    graph.follow(site, bob, ana)
    post_id = share(site, ana)
    log_in(client, "bob")
    assert "0 likes" in client.get("/").text
    interactions.like(site, cy, post_id)
    clock[0] += site.config.feeds.page_cache_seconds * REFRESH_AHEAD + 0.1
    assert "0 likes" in client.get("/").text, "the kept page at once..."
    deadline = time.monotonic() + 10
    while "1 like<" not in (page := client.get("/").text) and time.monotonic() < deadline:
        time.sleep(0.01)  # meanwhile, the same kept page
    assert "1 like<" in page and len(reads) == 2, "...and the page rendered again behind it, once, then kept"


def test_a_write_in_another_process_shows_at_once(site, client):
    ana, bob = user(site, "ana"), user(site, "bob")
    graph.follow(site, bob, ana)
    post_id = share(site, ana)
    log_in(client, "bob")
    assert liked_state(client.get("/"), post_id) == "false"
    other = build_context(site.config, register_tasks=False)  # another app node or worker on the same site
    try:
        interactions.like(other, bob, post_id)
    finally:
        other.close()
    assert liked_state(client.get("/"), post_id) == "true"


def test_a_new_csrf_cookie_gets_a_page_rendered_with_it(site, client, reads):
    ana, bob = user(site, "ana"), user(site, "bob")
    graph.follow(site, bob, ana)
    share(site, ana)
    log_in(client, "bob")
    first = client.get("/")
    client.cookies.delete("pinhole_csrf")
    second = client.get("/")  # no CSRF cookie: a new one is set, and the page must carry it
    assert token(second) != token(first) and token(second) == second.cookies["pinhole_csrf"]
    assert token(client.get("/")) == token(second) and len(reads) == 3


def test_a_cookie_header_it_cannot_read_goes_to_the_app(site, client):
    user(site, "bob")
    log_in(client, "bob")
    token = client.cookies["pinhole_session"]
    for header in (f'pinhole_session="{token}; pinhole_csrf=', f"pinhole_session={token}; pinhole_csrf=\x00;;="):
        answer = client.get("/", headers={"Cookie": header})
        assert answer.status_code == 200 and "Pinhole" in answer.text


def test_older_pages_and_fragments_are_not_kept(site, client, reads):
    ana, bob = user(site, "ana"), user(site, "bob")
    graph.follow(site, bob, ana)
    for _ in range(12):
        share(site, ana)
    log_in(client, "bob")
    before = re.search(r'href="/\?before=(\d+)"', client.get("/").text).group(1)
    client.get(f"/?before={before}")
    client.get(f"/?before={before}")
    client.get(f"/?before={before}", headers={"HX-Request": "true"})
    assert len(reads) == 4


def test_nothing_is_kept_when_turned_off_or_without_page_versions(make_site, monkeypatch, reads):
    off, client = make_site(feeds={"page_cache_seconds": 0})
    cheap(off)
    user(off, "bob")
    log_in(client, "bob")
    client.get("/")
    client.get("/")
    assert len(reads) == 2

    site, client = make_site()
    cheap(site)
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


def test_a_session_store_outage_gets_the_apps_answer(site, client, monkeypatch):
    user(site, "bob")
    log_in(client, "bob")

    def down(key):
        raise RedisUnavailable("redis://sessions.internal:6379 cannot be reached")

    monkeypatch.setattr(site.backends.kv, "get", down)
    answer = client.get("/")
    assert answer.status_code == 503 and "Traceback" not in answer.text


def test_each_process_keeps_at_most_max_pages(site):
    pages = HomePages(site, max_pages=2, clock=lambda: 0.0)
    checks = [PageCheck(viewer_id, "v1", "csrf", (3, 2, 1)) for viewer_id in (1, 2, 3)]
    for check in checks:
        pages.keep(check, [], b"page %d" % check.viewer_id)
    assert pages.get(checks[0]) is None and pages.get(checks[2]).body == b"page 3"
    assert pages.get(PageCheck(3, "v2", "csrf", (3, 2, 1))) is None
