"""The home feed: fan-out on write through the queue (chunked, idempotent, capped, resumable), what follows, blocks,
mutes and deletions do to it, celebrities merged in at read time, and the home page over HTTP (cards, infinite
scroll by id cursor, bad cursors). Real SQLite through the conftest fixtures; photos from ../shared/testdata."""

from __future__ import annotations

import re

import pytest

from app import ids
from app.services import accounts, feed, graph, interactions
from app.services.posts import PhotoUpload, create_post, delete_post
from app.web.routes import feed as feed_routes
from tests.conftest import PASSWORD, TESTDATA, log_in

PHOTO = (TESTDATA / "good" / "hopper.jpg").read_bytes()


def user(ctx, name: str, *, private: bool = False) -> accounts.User:
    made = accounts.create_user(ctx, name, PASSWORD, by_operator=True)
    return accounts.update_profile(ctx, made, "", "", is_private=True) if private else made


def share(ctx, author, *, photos: int = 1, caption: str = "", **fields) -> int:
    """A ready post, fanned out: every queued task run."""
    post = create_post(
        ctx,
        author,
        [PhotoUpload(PHOTO, alt_text=f"Photo {i} of {caption or 'a post'}") for i in range(1, photos + 1)],
        caption=caption,
        **fields,
    )
    ctx.backends.queue.run_pending()
    return post.id


def stored(ctx, user_id: int) -> list[int]:
    """What the FeedStore holds for the user, newest first."""
    return ctx.backends.feeds.page(user_id, None, 10_000)


def shown(ctx, viewer, limit: int = 50) -> list[int]:
    posts, _ = feed.home_feed(ctx, viewer, None, limit)
    return [p.id for p in posts]


def walk(ctx, viewer, limit: int) -> list[list[int]]:
    """Every page of the viewer's feed, following the cursors to the end."""
    pages, before = [], None
    while True:
        posts, before = feed.home_feed(ctx, viewer, before, limit)
        pages.append([p.id for p in posts])
        if before is None:
            return pages
        assert len(pages) < 50, "the cursor never ends"


def set_post(ctx, post_id: int, **columns) -> None:
    sets = ", ".join(f"{name} = ?" for name in columns)
    with ctx.db.write(ids.shard_of(post_id)) as conn:
        conn.run(f"UPDATE posts SET {sets} WHERE id = ?", (*columns.values(), post_id))


# --- Fan-out on write ------------------------------------------------------------------------------------------------


def test_fanout_reaches_every_follower_through_chained_chunks(make_site):
    ctx, _ = make_site(feeds={"fanout_chunk": 10})
    author = user(ctx, "ana")
    followers = [user(ctx, f"fan{i}") for i in range(35)]
    for follower in followers:
        graph.follow(ctx, follower, author)
    by_id = sorted(f.id for f in followers)
    queue = ctx.backends.queue
    with ctx.backends.events.subscribe([f"user:{by_id[0]}", f"user:{by_id[-1]}"]) as live:
        post = create_post(ctx, author, [PhotoUpload(PHOTO)])
        assert queue.run_pending(limit=2) == 2  # process_post, then post_ready: the first chunk
        with ctx.db.read(ids.shard_of(post.id)) as conn:
            progress = conn.value("SELECT fanout_after FROM posts WHERE id = ?", (post.id,))
        assert progress == by_id[9]
        assert [f for f in by_id if post.id in stored(ctx, f)] == by_id[:10]
        assert queue.pending() == 1  # the next chunk, chained
        assert queue.run_pending() == 3  # chunks 2, 3 and 4 (the last has 5 followers and ends the chain)
        events = [live.get(timeout=1) for _ in range(2)]
    assert {channel for channel, _ in events} == {f"user:{by_id[0]}", f"user:{by_id[-1]}"}
    assert all(message["type"] == "new_post" and message["post_id"] == str(post.id) for _, message in events)
    for follower in followers:
        assert stored(ctx, follower.id) == [post.id], follower.username
        assert shown(ctx, follower) == [post.id]
    with ctx.db.read(ids.shard_of(post.id)) as conn:
        assert conn.value("SELECT fanout_after FROM posts WHERE id = ?", (post.id,)) is None  # done
    assert stored(ctx, author.id) == [post.id]  # your own post is in your own feed


def test_a_rerun_or_duplicate_fanout_adds_nothing_and_feeds_stay_capped(make_site):
    ctx, _ = make_site(feeds={"max_items": 10, "fanout_chunk": 10})
    author, fan = user(ctx, "ana"), user(ctx, "bob")
    graph.follow(ctx, fan, author)
    posted = [share(ctx, author) for _ in range(12)]
    newest_ten = sorted(posted, reverse=True)[:10]
    assert stored(ctx, fan.id) == newest_ten  # the feed reads as its newest max_items
    assert stored(ctx, author.id) == newest_ten

    rows_before = feed_rows(ctx, fan.id)

    # A rerun after the chain ended changes nothing and queues nothing.
    feed.fanout_post(ctx, posted[-1], 0)
    assert ctx.backends.queue.pending() == 0
    # A duplicate of a chunk still in progress: the post is already there once; no row is added twice.
    set_post(ctx, posted[-1], fanout_after=0)
    feed.fanout_post(ctx, posted[-1], 0)
    feed.fanout_post(ctx, posted[-1], 0)
    ctx.backends.queue.run_pending()
    assert feed_rows(ctx, fan.id) == rows_before
    assert stored(ctx, fan.id) == newest_ten
    # Redelivering an old post never pushes a newer one out of what the feed shows.
    set_post(ctx, posted[0], fanout_after=0)
    feed.fanout_post(ctx, posted[0], 0)
    assert stored(ctx, fan.id) == newest_ten
    assert shown(ctx, fan, limit=10) == newest_ten


def feed_rows(ctx, user_id: int) -> int:
    with ctx.db.read(ids.shard_of(user_id)) as conn:
        return conn.value("SELECT count(*) FROM feed_items WHERE user_id = ?", (user_id,))


def test_own_posts_are_in_your_own_feed(ctx):
    ana = user(ctx, "ana")
    first, second = share(ctx, ana, caption="one"), share(ctx, ana, caption="two")
    assert shown(ctx, ana) == [second, first]


# --- The follow graph and the feed ---------------------------------------------------------------------------------


def test_pending_followers_get_nothing_from_a_private_account(ctx):
    owner = user(ctx, "ana", private=True)
    approved, waiting = user(ctx, "bob"), user(ctx, "cy")
    assert graph.follow(ctx, approved, owner) == "pending"
    graph.approve_request(ctx, owner, approved.id)
    assert graph.follow(ctx, waiting, owner) == "pending"
    post_id = share(ctx, owner)
    assert stored(ctx, approved.id) == [post_id] and shown(ctx, approved) == [post_id]
    assert stored(ctx, waiting.id) == [] and shown(ctx, waiting) == []
    # Even a feed that names the post (a stale or wrong entry) never shows it to someone not approved.
    ctx.backends.feeds.add(post_id, [waiting.id])
    assert shown(ctx, waiting) == []
    # Approval backfills it.
    graph.approve_request(ctx, owner, waiting.id)
    assert shown(ctx, waiting) == [post_id]


def test_follow_backfills_and_unfollow_removes(ctx):
    ana, bob, cy = user(ctx, "ana"), user(ctx, "bob"), user(ctx, "cy")
    anas = [share(ctx, ana) for _ in range(3)]
    cys = share(ctx, cy)
    graph.follow(ctx, bob, cy)
    assert shown(ctx, bob) == [cys]  # cy posted before bob followed: the backfill brought it
    graph.follow(ctx, bob, ana)
    assert shown(ctx, bob) == sorted([*anas, cys], reverse=True)
    graph.unfollow(ctx, bob, ana)
    assert shown(ctx, bob) == [cys] and stored(ctx, bob.id) == [cys]


def test_a_block_either_way_removes_the_posts_both_ways(ctx):
    ana, bob = user(ctx, "ana"), user(ctx, "bob")
    graph.follow(ctx, bob, ana)
    graph.follow(ctx, ana, bob)
    anas, bobs = share(ctx, ana), share(ctx, bob)
    assert shown(ctx, bob) == [bobs, anas] and shown(ctx, ana) == [bobs, anas]
    graph.block(ctx, ana, bob)
    assert shown(ctx, bob) == [bobs] and stored(ctx, bob.id) == [bobs]
    assert shown(ctx, ana) == [anas] and stored(ctx, ana.id) == [anas]
    # A stale entry naming the blocker's post is still never shown.
    ctx.backends.feeds.add(anas, [bob.id])
    assert shown(ctx, bob) == [bobs]


def test_mute_hides_an_account_from_the_feed_until_unmuted(ctx):
    ana, bob, cy = user(ctx, "ana"), user(ctx, "bob"), user(ctx, "cy")
    graph.follow(ctx, bob, ana)
    graph.follow(ctx, bob, cy)
    anas = [share(ctx, ana) for _ in range(3)]
    cys = share(ctx, cy)
    graph.mute(ctx, bob, ana)
    assert shown(ctx, bob) == [cys]
    assert walk(ctx, bob, 1) == [[cys]]  # muted posts do not leave empty pages behind
    graph.unmute(ctx, bob, ana.id)
    assert shown(ctx, bob) == sorted([*anas, cys], reverse=True)


def test_a_deleted_post_disappears_and_a_feed_naming_it_still_renders(ctx, client):
    ana, bob = user(ctx, "ana"), user(ctx, "bob")
    graph.follow(ctx, bob, ana)
    kept, gone = share(ctx, ana, caption="kept"), share(ctx, ana, caption="gone")
    delete_post(ctx, ana, gone)
    assert gone in stored(ctx, bob.id)  # the post_deleted task has not run yet
    assert shown(ctx, bob) == [kept]
    log_in(client, "bob")
    home = client.get("/")
    assert home.status_code == 200
    assert f'id="post-{kept}"' in home.text and f"post-{gone}" not in home.text
    ctx.backends.queue.run_pending()  # post_deleted
    assert stored(ctx, bob.id) == [kept] and stored(ctx, ana.id) == [kept]


# --- Celebrities ---------------------------------------------------------------------------------------------------


def test_a_celebrity_is_merged_in_at_read_time_and_pages_have_no_gaps_or_duplicates(make_site):
    ctx, _ = make_site(feeds={"celebrity_threshold": 3})
    star, friend = user(ctx, "star"), user(ctx, "friend")
    fan, other, third = user(ctx, "fan"), user(ctx, "other"), user(ctx, "third")
    stranger = user(ctx, "stranger")
    for follower in (fan, other, third):
        graph.follow(ctx, follower, star)
    assert feed.is_celebrity(ctx, star.id)
    graph.follow(ctx, fan, friend)
    stars, friends = [], []
    for i in range(7):
        stars.append(share(ctx, star, caption=f"star {i}"))
        if i % 2 == 0:
            friends.append(share(ctx, friend, caption=f"friend {i}"))
    mine = share(ctx, fan, caption="mine")
    assert stored(ctx, fan.id) == sorted([*friends, mine], reverse=True)  # the star was not fanned out
    assert stored(ctx, star.id) == sorted(stars, reverse=True)  # but is in its own feed
    everything = sorted([*stars, *friends, mine], reverse=True)
    assert shown(ctx, fan) == everything
    for limit in (1, 2, 3, 5):
        pages = walk(ctx, fan, limit)
        assert [post_id for page in pages for post_id in page] == everything, limit
        assert all(len(page) == limit for page in pages[:-1]) and pages[-1]  # no empty last page either
    assert shown(ctx, other) == sorted(stars, reverse=True)
    assert shown(ctx, stranger) == []
    # A new follower of a celebrity gets no backfill rows, and still sees the posts.
    graph.follow(ctx, stranger, star)
    assert stored(ctx, stranger.id) == [] and shown(ctx, stranger) == sorted(stars, reverse=True)
    # Muting the celebrity hides the merged posts too.
    graph.mute(ctx, fan, star)
    assert shown(ctx, fan) == sorted([*friends, mine], reverse=True)


def test_a_page_of_skipped_posts_never_hides_the_posts_below_it(make_site):
    """A page that reads only muted posts at first reads on from the end of what it read, never past a post
    one source had just beyond its window."""
    ctx, _ = make_site(feeds={"celebrity_threshold": 2})
    fan, star, friend, loud = user(ctx, "fan"), user(ctx, "star"), user(ctx, "friend"), user(ctx, "loud")
    for followed in (loud, friend, star):
        graph.follow(ctx, fan, followed)
    graph.follow(ctx, user(ctx, "other"), star)
    limit = 3
    window = limit + feed.FEED_OVERFETCH
    stars = [share(ctx, star) for _ in range(window)]  # oldest: the celebrity's, merged at read time
    friends = share(ctx, friend)  # between the two windows: only in the stored feed, just past its first window
    loud_ones = [share(ctx, loud) for _ in range(window)]  # newest, and muted
    graph.mute(ctx, fan, loud)
    assert feed.is_celebrity(ctx, star.id) and not feed.is_celebrity(ctx, friend.id)
    assert friends in stored(ctx, fan.id)
    assert set(loud_ones) <= set(stored(ctx, fan.id))
    pages = walk(ctx, fan, limit)
    assert [post_id for page in pages for post_id in page] == sorted([*stars, friends], reverse=True)


def test_an_account_falling_below_the_threshold_keeps_its_posts_in_feeds(make_site):
    ctx, _ = make_site(feeds={"celebrity_threshold": 2})
    star, fan, other = user(ctx, "star"), user(ctx, "fan"), user(ctx, "other")
    graph.follow(ctx, fan, star)
    before = share(ctx, star)  # fanned out: star had one follower
    graph.follow(ctx, other, star)
    during = [share(ctx, star) for _ in range(2)]  # merged at read time, never fanned out
    assert feed.is_celebrity(ctx, star.id) and stored(ctx, fan.id) == [before]
    graph.unfollow(ctx, other, star)  # below the threshold: no longer merged in
    assert not feed.is_celebrity(ctx, star.id)
    ctx.backends.queue.run_pending()  # so its recent posts are fanned out now
    assert stored(ctx, fan.id) == shown(ctx, fan) == sorted([before, *during], reverse=True)
    assert stored(ctx, other.id) == []


def test_a_celebritys_deleted_post_leaves_the_merged_feed(make_site):
    ctx, _ = make_site(feeds={"celebrity_threshold": 1})
    star, fan = user(ctx, "star"), user(ctx, "fan")
    graph.follow(ctx, fan, star)
    kept, gone = share(ctx, star), share(ctx, star)
    delete_post(ctx, star, gone)
    assert shown(ctx, fan) == [kept]


# --- A lost task ---------------------------------------------------------------------------------------------------


def test_a_stalled_chain_is_resumed_by_the_sweep(make_site):
    ctx, _ = make_site(feeds={"fanout_chunk": 10})
    author = user(ctx, "ana")
    followers = sorted((user(ctx, f"fan{i}") for i in range(25)), key=lambda u: u.id)
    for follower in followers:
        graph.follow(ctx, follower, author)
    post_id = share(ctx, author)
    # As if the task for the second chunk was lost with its worker ten minutes ago: progress recorded, feeds not
    # reached past the first chunk.
    for follower in followers[10:]:
        ctx.backends.feeds.remove(follower.id, [post_id])
    set_post(ctx, post_id, fanout_after=followers[9].id)
    assert feed.sweep_stalled_fanouts(ctx) == 0  # recent progress: the chain may still be running
    set_post(ctx, post_id, updated_at=1)
    assert feed.sweep_stalled_fanouts(ctx) == 1
    ctx.backends.queue.run_pending()
    assert all(stored(ctx, f.id) == [post_id] for f in followers)
    assert feed.sweep_stalled_fanouts(ctx) == 0  # finished chains are not resumed again


# --- The home page ---------------------------------------------------------------------------------------------------


def test_anonymous_home_is_the_welcome_page(client):
    page = client.get("/")
    assert page.status_code == 200 and "Create an account" in page.text and "feed-card" not in page.text


def test_an_empty_feed_points_to_explore_and_upload(ctx, client):
    user(ctx, "ana")
    log_in(client, "ana")
    page = client.get("/")
    assert page.status_code == 200
    assert 'href="/explore"' in page.text and 'href="/upload"' in page.text
    assert "feed-card" not in page.text and "Older posts" not in page.text


def test_home_page_cards(ctx, client):
    ana, bob = user(ctx, "ana"), user(ctx, "bob")
    graph.follow(ctx, bob, ana)
    long_caption = "A long walk by the sea " * 12
    single = share(ctx, ana, caption="<b>hello</b> world #sunset")
    several = share(ctx, ana, photos=2, caption=long_caption)
    log_in(client, "bob")
    page = client.get("/")
    assert page.status_code == 200 and page.headers["vary"] == "HX-Request"
    text = page.text
    assert '<a id="new-posts" class="new-posts" href="/" hidden>New posts — show them</a>' in text
    cards = re.findall(r'<article class="post feed-card" id="post-(\d+)"', text)
    assert cards == [str(several), str(single)]
    card = text[text.index(f'id="post-{several}"') : text.index(f'id="post-{single}"')]
    assert 'href="/@ana"' in card and "/media/" in card
    assert card.count('class="slide"') == 2 and f'href="#p{several}-photo-2"' in card
    assert 'alt="Photo 1 of A long walk' in card and 'alt="Photo 2 of A long walk' in card
    assert re.search(rf'<source type="image/webp" srcset="/media/posts/{several}/\w+-320.webp 128w"', card)
    assert card.count('fetchpriority="high"') == 1  # the page's first photo; every other one loads lazily
    actions = re.search(r'<div class="card-actions">(.*?)</div>\s*(<p class="caption">|</div>)', card, re.S)[1]
    assert re.search(r'<span class="like-count"[^>]*>0 likes</span>', actions)
    assert 'aria-pressed="false"' in actions
    # Counts and hearts are the viewer's own and exact.
    interactions.like(ctx, bob, single)
    interactions.add_comment(ctx, bob, single, "Lovely")
    liked = client.get("/").text
    liked_card = liked[liked.index(f'id="post-{single}"') :]
    assert 'aria-pressed="true"' in liked_card and ">1 like</span>" in liked_card and "1 comment\n" in liked_card
    assert f'href="/p/{several}#comments"' in card and "0 comments" in card
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT[\d:]+\+00:00">just now</time>', card)
    caption = re.search(r'<p class="caption">(.*?)</p>', card, re.S)[1]
    assert long_caption.strip() not in caption and "A long walk by the sea A long" in caption
    assert len(caption) < 400 and caption.endswith(f'… <a class="more" href="/p/{several}">more</a>')
    # Captions are escaped, never markup.
    assert "&lt;b&gt;hello&lt;/b&gt; world" in text and "<b>hello</b>" not in text
    assert '<a class="tag" href="/tags/sunset">#sunset</a>' in text  # tags linked, as on the post page
    # One photo: no carousel controls; every image has alt text.
    last = text[text.index(f'id="post-{single}"') :]
    assert "carousel-arrow" not in last.split("</article>")[0]
    photos = re.findall(r'<img src="/media/posts/[^>]*>', text)
    assert len(photos) == 3 and all(re.search(r'alt="[^"]+"', img) for img in photos)
    assert "That's everything" in text  # the end of the feed, no sentinel
    assert 'hx-trigger="revealed"' not in text


@pytest.fixture
def five_posts(ctx, client, monkeypatch):
    """bob follows ana, who posted five times; pages of two posts."""
    monkeypatch.setattr(feed_routes, "FEED_PAGE", 2)
    ana, bob = user(ctx, "ana"), user(ctx, "bob")
    graph.follow(ctx, bob, ana)
    posted = sorted((share(ctx, ana) for _ in range(5)), reverse=True)
    log_in(client, "bob")
    return posted


def card_ids(text: str) -> list[int]:
    return [int(i) for i in re.findall(r'<article class="post feed-card" id="post-(\d+)"', text)]


def test_infinite_scroll_fragments_follow_the_cursor(client, five_posts):
    first = client.get("/")
    assert card_ids(first.text) == five_posts[:2]
    sentinel = f'<div class="feed-more" hx-get="/?before={five_posts[1]}" hx-trigger="revealed" hx-swap="outerHTML">'
    assert sentinel in first.text and f'href="/?before={five_posts[1]}">Older posts</a>' in first.text
    seen = card_ids(first.text)
    before = five_posts[1]
    while before:
        fragment = client.get(f"/?before={before}", headers={"HX-Request": "true"})
        assert fragment.status_code == 200 and "<html" not in fragment.text and "topbar" not in fragment.text
        seen += card_ids(fragment.text)
        found = re.search(r'hx-get="/\?before=(\d+)"', fragment.text)
        before = int(found[1]) if found else None
    assert seen == five_posts
    assert "caught up" in fragment.text


def test_older_posts_link_works_without_javascript(client, five_posts):
    page = client.get(f"/?before={five_posts[1]}")
    assert page.status_code == 200 and "<html" in page.text  # a whole page, not a fragment
    assert card_ids(page.text) == five_posts[2:4]
    assert f'href="/?before={five_posts[3]}">Older posts</a>' in page.text
    assert 'href="/">Back to the newest posts</a>' in page.text
    last = client.get(f"/?before={five_posts[3]}")
    assert card_ids(last.text) == five_posts[4:] and "Older posts" not in last.text
    beyond = client.get(f"/?before={five_posts[4]}")
    assert beyond.status_code == 200 and card_ids(beyond.text) == [] and "You're all caught up" in beyond.text


@pytest.mark.parametrize("cursor", ["abc", "0", "-5", "12.5", "99999999999999999999", "1e9", "%00"])
def test_a_cursor_that_is_not_an_id_is_a_clear_400(ctx, client, cursor):
    user(ctx, "ana")
    log_in(client, "ana")
    page = client.get(f"/?before={cursor}")
    assert page.status_code == 400 and feed_routes.BAD_CURSOR.replace("'", "&#39;") in page.text
    answer = client.get(f"/?before={cursor}", headers={"Accept": "application/json"})
    assert answer.status_code == 400 and answer.json() == {"error": feed_routes.BAD_CURSOR}


def test_time_ago():
    now = 1_750_000_000_000
    assert feed_routes.time_ago(now - 30_000, now) == "just now"
    assert feed_routes.time_ago(now - 60_000, now) == "1 minute ago"
    assert feed_routes.time_ago(now - 5 * 60_000, now) == "5 minutes ago"
    assert feed_routes.time_ago(now - 3 * 3_600_000, now) == "3 hours ago"
    assert feed_routes.time_ago(now - 6 * 86_400_000, now) == "6 days ago"
    assert feed_routes.time_ago(now - 8 * 86_400_000, now) == "June 7"
    assert feed_routes.time_ago(now - 400 * 86_400_000, now) == "May 11, 2024"
    assert feed_routes.time_ago(now + 5_000, now) == "just now"  # a clock a little ahead
