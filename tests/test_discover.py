"""Explore and search: the ranking (engagement with time decay, public accounts, the last week), the cached snapshot
(read from the cache, ranked afresh when it is cold or failing), the per-viewer filtering (visibility, blocks both
ways, mutes), paging, and search of accounts and tags by prefix, over the service and over HTTP."""

from __future__ import annotations

import datetime
import json

import pytest
from litestar.testing import TestClient

from app import cli, ids
from app.clock import now_ms
from app.errors import UserError
from app.services import accounts, discover, graph, posts, sessions
from app.services.discover import EXPLORE_KEY, explore_page, rank_explore, refresh_explore, score, search
from app.services.posts import PhotoUpload, create_post
from app.web.routes import discover as discover_routes
from tests.conftest import PASSWORD, TESTDATA

PHOTO = (TESTDATA / "good" / "hopper.png").read_bytes()
HOUR = 3_600_000


def ready(ctx, author, caption: str = "", **fields) -> posts.Post:
    post = create_post(ctx, author, [PhotoUpload(PHOTO, alt_text=f"by {author.username}")], caption=caption, **fields)
    ctx.backends.queue.run_pending()
    return posts.get_post(ctx, post.id, author)


def engage(ctx, post, likes: int = 0, comments: int = 0, hours_old: float = 0) -> None:
    """Counters and age as the likes, comments and clock would leave them (the ranking reads only these)."""
    with ctx.db.write(ids.shard_of(post.id)) as conn:
        conn.run(
            "UPDATE posts SET like_count = ?, comment_count = ?, created_at = created_at - ? WHERE id = ?",
            (likes, comments, int(hours_old * HOUR), post.id),
        )


def user(ctx, name: str, private: bool = False) -> accounts.User:
    made = accounts.create_user(ctx, name, PASSWORD)
    return accounts.update_profile(ctx, made, "", "", is_private=True) if private else made


def add_tag(ctx, tag: str, post_count: int) -> None:
    with ctx.db.write(ctx.db.shard_for_key(tag)) as conn:
        conn.run("INSERT INTO tags (tag, post_count, last_used_at) VALUES (?, ?, ?)", (tag, post_count, now_ms()))


def signed_in(client: TestClient, ctx, who) -> TestClient:
    other = TestClient(client.app, base_url=str(client.base_url))
    if who is not None:
        other.cookies.set(sessions.COOKIE, sessions.start_session(ctx, who))
    return other


def page_ids(page) -> list[int]:
    return [p.id for p in page.posts]


@pytest.fixture
def ana(ctx):
    return user(ctx, "ana")


@pytest.fixture
def bob(ctx):
    return user(ctx, "bob")


# --- ranking -------------------------------------------------------------------------------------------------------


def test_the_score_weighs_comments_twice_and_decays_with_age():
    assert score(0, 0, 0) > 0  # a fresh post with nothing yet can still be found
    assert score(0, 5, 3) == score(10, 0, 3)
    assert score(10, 0, 1) > score(10, 0, 2) > score(10, 0, 48)
    assert score(100, 0, 12) > score(1, 0, 0)  # a much loved post beats a new one for a while
    assert score(100, 0, 24 * 6) < score(5, 0, 0)  # ...but not for ever


def test_ranking_orders_by_engagement_with_decay(ctx, ana, bob):
    quiet = ready(ctx, ana)
    loved = ready(ctx, bob)
    talked = ready(ctx, ana)
    old_hit = ready(ctx, bob)
    engage(ctx, quiet)
    engage(ctx, loved, likes=10)
    engage(ctx, talked, likes=4, comments=4)  # 12 points: above the 10 likes
    engage(ctx, old_hit, likes=40, hours_old=30)  # more likes, but a day older
    assert rank_explore(ctx)["ids"] == [talked.id, loved.id, quiet.id, old_hit.id]


def test_ranking_takes_public_ready_posts_of_the_last_week_only(ctx, ana):
    shy = user(ctx, "shy", private=True)
    public = ready(ctx, ana)
    ready(ctx, shy)
    stale = ready(ctx, ana)
    processing = create_post(ctx, ana, [PhotoUpload(PHOTO)])  # its task has not run
    engage(ctx, stale, likes=1000, hours_old=24 * 7 + 1)
    ranked = rank_explore(ctx)
    assert ranked["ids"] == [public.id]
    assert processing.id not in ranked["ids"]
    assert rank_explore(ctx, now=now_ms() + 8 * 24 * HOUR)["ids"] == []  # a week on, nothing is recent


def test_ranking_reads_every_shard(ctx):
    authors = [user(ctx, f"user{i}") for i in range(12)]
    assert len({a.shard for a in authors}) > 1  # random shards at sign-up: several of the 8
    made = {ready(ctx, a).id for a in authors}
    assert set(rank_explore(ctx)["ids"]) == made


def test_the_ranking_runs_every_five_minutes_in_the_queue(ctx):
    huey = ctx.backends.queue.huey
    runs = [
        m
        for m in range(60)
        if "rank_explore" in {t.name for t in huey.read_periodic(datetime.datetime(2026, 1, 1, 12, m))}
    ]
    assert runs == list(range(0, 60, 5))


# --- the cached snapshot -------------------------------------------------------------------------------------------


def test_pages_read_the_snapshot_from_the_cache(ctx, ana):
    first = ready(ctx, ana)
    assert refresh_explore(ctx) == [first.id]
    assert ctx.backends.cache.get(EXPLORE_KEY)["ids"] == [first.id]
    second = ready(ctx, ana)
    assert page_ids(explore_page(ctx, None)) == [first.id]  # the snapshot, not the database
    ctx.backends.cache.set(EXPLORE_KEY, {"ids": [first.id, second.id], "ranked_at": now_ms()}, 60)
    assert page_ids(explore_page(ctx, None)) == [first.id, second.id]  # in the cached order
    refresh_explore(ctx)
    assert page_ids(explore_page(ctx, None)) == [second.id, first.id]


def test_a_cold_cache_is_ranked_and_filled(ctx, ana):
    post = ready(ctx, ana)
    ctx.backends.cache.delete(EXPLORE_KEY)
    assert page_ids(explore_page(ctx, None)) == [post.id]
    assert ctx.backends.cache.get(EXPLORE_KEY)["ids"] == [post.id]


class Broken(Exception):
    pass


@pytest.fixture
def broken_cache(ctx, monkeypatch):
    def fail(*_args, **_kwargs):
        raise Broken("cache down")

    for method in ("get", "get_many", "set", "add", "delete"):
        monkeypatch.setattr(ctx.backends.cache, method, fail)


def test_a_failing_cache_still_serves_explore(ctx, ana, client, broken_cache):
    post = ready(ctx, ana)
    assert page_ids(explore_page(ctx, None)) == [post.id]
    assert refresh_explore(ctx) == [post.id]  # the task logs the failure instead of raising
    response = client.get("/explore")
    assert response.status_code == 200 and f"/p/{post.id}" in response.text


def test_a_deleted_post_leaves_the_snapshot_at_once(ctx, ana):
    kept, gone = ready(ctx, ana), ready(ctx, ana)
    refresh_explore(ctx)
    posts.delete_post(ctx, ana, gone.id)
    assert page_ids(explore_page(ctx, None)) == [kept.id]


# --- per viewer ----------------------------------------------------------------------------------------------------


def test_each_viewer_sees_the_snapshot_without_blocks_mutes_or_private_accounts(ctx, ana, bob):
    cat = user(ctx, "cat")
    follower = user(ctx, "follower")
    a, b, c = ready(ctx, ana), ready(ctx, bob), ready(ctx, cat)
    refresh_explore(ctx)
    everything = [c.id, b.id, a.id]
    assert page_ids(explore_page(ctx, None)) == everything
    graph.block(ctx, ana, bob)
    assert page_ids(explore_page(ctx, bob)) == [c.id, b.id]  # the blocked see nothing of the blocker
    assert page_ids(explore_page(ctx, ana)) == [c.id, a.id]  # nor the blocker of the blocked
    graph.mute(ctx, follower, cat)
    assert page_ids(explore_page(ctx, follower)) == [b.id, a.id]
    graph.follow(ctx, follower, ana)
    accounts.update_profile(ctx, ana, "", "", is_private=True)  # gone private since the ranking
    for viewer in (None, follower, ana, cat):
        assert a.id not in page_ids(explore_page(ctx, viewer))  # Explore is a public surface, even to followers


def test_pages_continue_by_position_and_skip_what_the_viewer_cannot_see(ctx, ana, bob):
    made = [ready(ctx, ana if i % 2 else bob) for i in range(5)]
    refresh_explore(ctx)
    ranked = discover.explore_ids(ctx)
    assert set(ranked) == {p.id for p in made}
    first = explore_page(ctx, None, limit=2)
    assert page_ids(first) == ranked[:2] and first.next_after == 2
    second = explore_page(ctx, None, str(first.next_after), limit=2)
    assert page_ids(second) == ranked[2:4] and second.next_after == 4
    last = explore_page(ctx, None, "4", limit=2)
    assert page_ids(last) == ranked[4:] and last.next_after is None
    assert explore_page(ctx, None, "999").posts == []  # past the end of a snapshot that shrank
    graph.block(ctx, bob, ana)
    ana_first = explore_page(ctx, ana, limit=2)
    by_ana = [i for i in ranked if i in {p.id for p in made if p.author.id == ana.id}]
    assert page_ids(ana_first) == by_ana[:2]  # bob's posts skipped, the page still full


@pytest.mark.parametrize("after", ["abc", "-1", "1.5", "1" * 7, "٣"])
def test_a_bad_position_is_refused(ctx, after):
    with pytest.raises(UserError) as caught:
        explore_page(ctx, None, after)
    assert caught.value.message == discover.BAD_AFTER and caught.value.status == 400


# --- explore over HTTP ---------------------------------------------------------------------------------------------


def test_explore_page_shows_the_search_box_and_the_grid(ctx, client, ana):
    post = ready(ctx, ana)
    response = client.get("/explore")
    assert response.status_code == 200
    assert 'action="/search"' in response.text and 'name="q"' in response.text
    assert 'hx-get="/search"' in response.text and "delay:300ms" in response.text
    assert f'href="/p/{post.id}"' in response.text and 'alt="by ana"' in response.text


def test_explore_empty_state(client):
    response = client.get("/explore")
    assert response.status_code == 200 and "Nothing to explore yet" in response.text


def test_explore_more_pages_as_fragments_and_plain_links(ctx, client, ana, monkeypatch):
    monkeypatch.setattr(discover_routes, "EXPLORE_PAGE", 2)
    made = [ready(ctx, ana) for _ in range(3)]
    refresh_explore(ctx)
    first = client.get("/explore")
    assert 'href="/explore?after=2"' in first.text and 'hx-trigger="revealed, click"' in first.text
    fragment = client.get("/explore?after=2", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert f"/p/{made[0].id}" in fragment.text and "explore?after=" not in fragment.text
    whole = client.get("/explore?after=2")
    assert "<html" in whole.text and f"/p/{made[0].id}" in whole.text


def test_explore_bad_position_is_a_clear_400(client):
    response = client.get("/explore?after=abc")
    assert response.status_code == 400 and discover.BAD_AFTER in response.text
    api = client.get("/explore?after=abc", headers={"Accept": "application/json"})
    assert api.status_code == 400 and api.json() == {"error": discover.BAD_AFTER}


# --- search --------------------------------------------------------------------------------------------------------


def names(results) -> list[str]:
    return [u.username for u in results.accounts]


def test_accounts_by_username_prefix_case_insensitive(ctx):
    for name in ("anna", "annabel", "ann.lee", "bob", "zanna"):
        user(ctx, name)
    assert names(search(ctx, None, "ANN")) == ["ann.lee", "anna", "annabel"]
    assert names(search(ctx, None, "  annab ")) == ["annabel"]
    assert names(search(ctx, None, "@Anna")) == ["anna", "annabel"]
    assert names(search(ctx, None, "b")) == ["bob"]
    assert names(search(ctx, None, "x")) == []
    assert names(search(ctx, None, "an%")) == [] and names(search(ctx, None, "a_")) == []  # no wildcards
    assert len(search(ctx, None, "a", limit=2).accounts) == 2


def named(ctx, username: str, display_name: str) -> accounts.User:
    return accounts.update_profile(ctx, user(ctx, username), display_name, "")


def test_accounts_by_a_word_of_their_display_name_after_usernames(ctx):
    named(ctx, "alima", "Ana Lima")
    named(ctx, "jo", "José Álvarez-Núñez")
    named(ctx, "limasol", "Sol")
    named(ctx, "q", "Limón 🍋 Fan")
    assert names(search(ctx, None, "lim")) == ["limasol", "alima", "q"]  # usernames first, then names in order
    assert names(search(ctx, None, "ana li")) == ["alima"]  # each word of the query starts a word of the name
    assert names(search(ctx, None, "li ana")) == ["alima"]
    assert names(search(ctx, None, "ana sol")) == []
    assert names(search(ctx, None, "jose")) == ["jo"]  # accents and case aside
    assert names(search(ctx, None, "NUÑEZ")) == ["jo"]
    assert names(search(ctx, None, "alvarez nunez")) == ["jo"]
    assert names(search(ctx, None, "@ana")) == ["alima"]
    assert names(search(ctx, None, "🍋")) == []  # not a word


def test_a_new_display_name_is_found_and_the_old_one_no_longer(ctx, client):
    ana = named(ctx, "ana", "Ana Lima")
    accounts.update_profile(ctx, ana, "Ana Sousa", "")
    assert names(search(ctx, None, "lima")) == []
    assert names(search(ctx, None, "sousa")) == ["ana"]
    assert 'href="/@ana"' in client.get("/search?q=Sousa").text  # the search page too
    accounts.update_profile(ctx, accounts.get_user(ctx, ana.id), "", "")
    assert names(search(ctx, None, "sousa")) == []
    assert "@ana" in client.get("/search?q=ana").text  # the username still finds the account


def forget_name_words(ctx) -> None:
    """As on a site made before migration 0008 added name_words."""
    for _reader, shards in ctx.db.shard_groups():
        for shard in shards:
            with ctx.db.write(shard) as conn:
                conn.run("DELETE FROM name_words")
    with ctx.db.write(0) as conn:
        conn.run("DELETE FROM site_flags WHERE name = ?", (accounts.NAMES_INDEXED,))


def test_names_given_before_the_index_existed_are_indexed_by_migrate_once(ctx):
    named(ctx, "ana", "Ana Lima")
    named(ctx, "bo", "Bo Lindqvist")
    user(ctx, "cy")
    forget_name_words(ctx)
    assert names(search(ctx, None, "lin")) == []
    assert cli._migrate(ctx) == []  # no migration left to apply; the names are indexed all the same
    assert names(search(ctx, None, "lin")) == ["bo"]
    assert names(search(ctx, None, "li")) == ["ana", "bo"]
    assert accounts.index_all_names(ctx) == 2 and names(search(ctx, None, "li")) == ["ana", "bo"]  # again: the same
    ana = accounts.find_user(ctx, "ana")
    with ctx.db.write(ana.shard) as conn:
        conn.run("DELETE FROM name_words WHERE user_id = ?", (ana.id,))
    cli._migrate(ctx)  # done once for the site: not again at every migrate or start
    assert names(search(ctx, None, "li")) == ["bo"]


def test_tags_by_prefix_exact_first_then_most_used(ctx):
    add_tag(ctx, "sunset", 40)
    add_tag(ctx, "sun", 1)
    add_tag(ctx, "sunday", 7)
    add_tag(ctx, "sunflower", 0)  # every post gone: not offered
    add_tag(ctx, "été", 3)
    found = search(ctx, None, "#Sun")
    assert [(t.tag, t.post_count) for t in found.tags] == [("sun", 1), ("sunset", 40), ("sunday", 7)]
    assert found.scope == "tags" and found.accounts == []
    assert [t.tag for t in search(ctx, None, "sun", limit=1).tags] == ["sun"]  # exact, however little used
    assert [t.tag for t in search(ctx, None, "ÉT").tags] == ["été"]
    assert search(ctx, None, "#su n").tags == []


def test_scope_narrows_to_accounts_or_tags(ctx):
    user(ctx, "sunny")
    add_tag(ctx, "sunset", 2)
    both = search(ctx, None, "sun")
    assert names(both) == ["sunny"] and [t.tag for t in both.tags] == ["sunset"] and both.scope == "all"
    only_accounts = search(ctx, None, "@sun")
    assert names(only_accounts) == ["sunny"] and only_accounts.tags == []
    only_tags = search(ctx, None, "#sun")
    assert only_tags.accounts == [] and [t.tag for t in only_tags.tags] == ["sunset"]


def test_accounts_with_a_block_either_way_are_left_out(ctx):
    ana, anabel, andy = user(ctx, "ana"), user(ctx, "anabel"), user(ctx, "andy")
    graph.block(ctx, ana, anabel)
    graph.block(ctx, andy, ana)
    assert names(search(ctx, ana, "an")) == ["ana"]
    assert names(search(ctx, anabel, "an")) == ["anabel", "andy"]
    assert names(search(ctx, andy, "an")) == ["anabel", "andy"]
    assert names(search(ctx, None, "an")) == ["ana", "anabel", "andy"]
    assert names(search(ctx, ana, "an", limit=1)) == ["ana"]


def test_private_accounts_are_found_but_show_no_posts(ctx, client):
    shy = user(ctx, "shy", private=True)
    post = ready(ctx, shy)
    response = client.get("/search?q=shy")
    assert response.status_code == 200 and 'href="/@shy"' in response.text and "private" in response.text
    assert f"/p/{post.id}" not in response.text


def test_empty_query_is_empty(ctx):
    user(ctx, "ana")
    for query in ("", "   ", "@", "#"):
        assert search(ctx, None, query).empty


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("a" * 101, "Searches are limited to 100 characters; that one has 101."),
        ("#" + "t" * 500, "Searches are limited to 100 characters; that one has 501."),
    ],
)
def test_overlong_queries_and_tags_are_refused(ctx, query, message):
    with pytest.raises(UserError) as caught:
        search(ctx, None, query)
    assert caught.value.message == message and caught.value.status == 400


# --- search over HTTP ----------------------------------------------------------------------------------------------


def test_search_page_lists_accounts_and_tags(ctx, client):
    user(ctx, "sunny")
    add_tag(ctx, "sunset", 2)
    response = client.get("/search?q=sun")
    assert response.status_code == 200 and "<html" in response.text
    assert 'href="/@sunny"' in response.text and 'href="/tags/sunset"' in response.text and "2 posts" in response.text
    assert 'value="sun"' in response.text  # the box keeps what was typed


def test_search_as_you_type_answers_a_fragment(ctx, client):
    user(ctx, "sunny")
    response = client.get("/search?q=su", headers={"HX-Request": "true"})
    assert response.status_code == 200 and "<html" not in response.text and 'href="/@sunny"' in response.text
    assert "HX-Request" in response.headers["vary"]
    none = client.get("/search?q=zz", headers={"HX-Request": "true"})
    assert "No accounts or tags match “zz”" in none.text
    cleared = client.get("/search?q=", headers={"HX-Request": "true"})
    assert cleared.status_code == 200 and cleared.text.strip() == ""


def test_search_as_json(ctx, client):
    sunny = user(ctx, "sunny")
    add_tag(ctx, "sunset", 2)
    response = client.get("/search?q=sun", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.json() == {
        "query": "sun",
        "accounts": [{"id": str(sunny.id), "username": "sunny", "display_name": "", "url": "/@sunny"}],
        "tags": [{"tag": "sunset", "post_count": 2, "url": "/tags/sunset"}],
    }


def test_empty_search_is_the_explore_page(ctx, client, ana):
    post = ready(ctx, ana)
    response = client.get("/search?q=")
    assert response.status_code == 200 and f"/p/{post.id}" in response.text and "Popular now" in response.text


def test_search_escapes_what_was_typed(ctx, client):
    response = client.get("/search", params={"q": '<script>alert("x")</script>'})
    assert response.status_code == 200 and "<script>alert" not in response.text
    assert "&lt;script&gt;" in response.text


def test_overlong_search_is_a_clear_400_everywhere(ctx, client):
    long = "#" + "t" * 500
    page = client.get("/search", params={"q": long})
    assert page.status_code == 400 and "Searches are limited to 100 characters" in page.text
    fragment = client.get("/search", params={"q": long}, headers={"HX-Request": "true"})
    assert fragment.status_code == 400 and "<html" not in fragment.text and "limited to 100" in fragment.text
    api = client.get("/search", params={"q": long}, headers={"Accept": "application/json"})
    assert api.status_code == 400 and "limited to 100" in api.json()["error"]


def test_search_leaves_out_blocked_accounts_over_http(ctx, client):
    ana, anabel = user(ctx, "ana"), user(ctx, "anabel")
    graph.block(ctx, anabel, ana)
    as_ana = signed_in(client, ctx, ana)
    response = as_ana.get("/search?q=ana")
    assert 'href="/@anabel"' not in response.text
    data = json.loads(as_ana.get("/search?q=ana", headers={"Accept": "application/json"}).text)
    assert [a["username"] for a in data["accounts"]] == ["ana"]
