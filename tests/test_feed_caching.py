"""What makes the home feed page fast without making it wrong: cards cached for every viewer alike (one viewer's
rendering never reaches another; likes, comments, edits and deletions show on them at once), the celebrity list kept in
process memory for a few seconds (a threshold crossed shows at once where it happened, within
CELEBRITIES_MEMO_SECONDS elsewhere), and templates not re-read from disk outside development."""

from __future__ import annotations

import re

import pytest

from app.context import build_context
from app.services import accounts, feed, graph, interactions
from app.services.posts import delete_post, get_posts
from app.web.cards import CardRenderer
from tests.conftest import another_browser, log_in
from tests.test_feed import share, shown, user


def token(page) -> str:
    return re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)


def liked_state(page, post_id: int) -> str:
    return re.search(rf'id="like-button-{post_id}"[^>]*aria-pressed="(true|false)"', page.text).group(1)


def caption(page: str) -> str:
    return re.search(r'<p class="caption">(.*?)</p>', page, re.DOTALL).group(1)


def cached_card(ctx, client, post_id: int) -> str:
    """The card of the post as the cache seam holds it (every version, joined)."""
    renderer: CardRenderer = client.app.state["card_renderer"]
    renderer._memo.clear()  # what other processes would read: the cache seam
    (loaded,) = get_posts(ctx, [post_id], None)
    found = [ctx.backends.cache.get(renderer.key(loaded, first)) for first in (True, False)]
    return "".join(part for parts in found if parts for part in parts)


def test_a_cached_card_never_carries_one_viewers_rendering_to_another(ctx, client):
    ana, bob, cy = user(ctx, "ana"), user(ctx, "bob"), user(ctx, "cy")
    dee = user(ctx, "dee", private=True)
    graph.follow(ctx, bob, ana)
    graph.follow(ctx, cy, ana)
    graph.follow(ctx, bob, dee)
    graph.approve_request(ctx, dee, bob.id)
    public = share(ctx, ana, caption="sunset #beach")
    private = share(ctx, dee, caption="only for my followers")
    interactions.like(ctx, bob, public)

    log_in(client, "bob")
    bobs = client.get("/")
    assert f'id="post-{public}"' in bobs.text and f'id="post-{private}"' in bobs.text
    assert liked_state(bobs, public) == "true"
    card = cached_card(ctx, client, public)
    assert "sunset" in card and f"post-{public}" in card
    for viewer_specific in ("csrf", "aria-pressed", token(bobs), "bob", "like-button"):
        assert viewer_specific not in card, viewer_specific

    other = another_browser(client)  # the same process: its memory and the cache seam both hold bob's cards now
    log_in(other, "cy")
    cys = other.get("/")
    assert f'id="post-{public}"' in cys.text and liked_state(cys, public) == "false"
    assert token(bobs) not in cys.text and token(cys) in cys.text
    assert 'href="/@bob"' not in cys.text  # bob's nav, his like: nothing of bob's page
    assert f"post-{private}" not in cys.text and "only for my followers" not in cys.text

    # The cached card of a private post is still only shown to whom get_posts allows, now.
    graph.remove_follower(ctx, dee, bob.id)
    again = client.get("/")
    assert f"post-{private}" not in again.text and "only for my followers" not in again.text
    assert liked_state(again, public) == "true"


def test_a_like_a_comment_an_edit_and_a_deletion_show_at_once_on_cards(make_site):
    # Kept pages off: cards alone (tests/test_home_pages.py has what a kept page shows, and when).
    site, client = make_site(feeds={"page_cache_seconds": 0})
    ana, bob, cy = user(site, "ana"), user(site, "bob"), user(site, "cy")
    graph.follow(site, bob, ana)
    post_id = share(site, ana, caption="first words")
    log_in(client, "bob")
    page = client.get("/").text
    assert "0 likes" in page and "0 comments" in page and "first words" in caption(page)

    interactions.like(site, cy, post_id)
    assert "1 like<" in client.get("/").text
    interactions.add_comment(site, cy, post_id, "lovely")
    assert "1 comment\n" in client.get("/").text
    interactions.edit_post(site, ana, post_id, "second words #edited", {}, None)
    page = client.get("/").text
    assert "second words" in caption(page) and "first words" not in caption(page)
    assert 'href="/tags/edited"' in caption(page)
    accounts.update_profile(site, ana, "Ana Photographer", "")  # not on the card: the same card serves
    assert "second words" in caption(client.get("/").text)
    delete_post(site, ana, post_id)
    assert f"post-{post_id}" not in client.get("/").text


@pytest.fixture
def clock(monkeypatch):
    """time.monotonic as feed.py sees it, moved by hand."""
    now = [1000.0]
    monkeypatch.setattr(feed.time, "monotonic", lambda: now[0])
    return now


def test_a_threshold_crossed_shows_at_once_here_and_within_the_memo_window_in_other_processes(make_site, clock):
    ctx, _ = make_site(feeds={"celebrity_threshold": 2})
    other = build_context(ctx.config, register_tasks=False)  # another server process on the same data
    try:
        star, fan, second = user(ctx, "star"), user(ctx, "fan"), user(ctx, "second")
        graph.follow(ctx, fan, star)
        assert feed.celebrity_ids(ctx) == feed.celebrity_ids(other) == frozenset()  # both now hold the list

        graph.follow(ctx, second, star)  # the second follower: star becomes a celebrity
        assert feed.is_celebrity(ctx, star.id), "the process that wrote sees it at once"
        assert not feed.is_celebrity(other, star.id), "another process may hold the old list..."
        clock[0] += feed.CELEBRITIES_MEMO_SECONDS - 0.1
        assert not feed.is_celebrity(other, star.id)
        clock[0] += 0.2
        assert feed.is_celebrity(other, star.id), "...for at most CELEBRITIES_MEMO_SECONDS"

        # A post made now is not fanned out, and both processes merge it into the fan's feed.
        post_id = share(ctx, star, caption="now a star")
        assert post_id not in ctx.backends.feeds.page(fan.id, None, 50)
        assert post_id in shown(ctx, fan) and post_id in shown(other, fan)

        graph.unfollow(ctx, second, star)  # back under the threshold
        assert not feed.is_celebrity(ctx, star.id)
        clock[0] += feed.CELEBRITIES_MEMO_SECONDS + 0.1
        assert not feed.is_celebrity(other, star.id)
    finally:
        other.close()


def test_templates_are_read_once_outside_development(make_site):
    _, client = make_site()
    assert client.app.template_engine.engine.auto_reload is False
    _, dev_client = make_site(server={"reload_templates": True})
    assert dev_client.app.template_engine.engine.auto_reload is True
