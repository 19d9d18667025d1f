"""Notifications: each kind from the action that makes it, grouping, dedup, seen marking and the nav badge, who
and what is hidden, and paging by cursor (the service and the /notifications page)."""

from __future__ import annotations

import re

import pytest

from app import ids
from app.services import accounts, graph, interactions, notifications
from app.services.posts import PhotoUpload, create_post
from app.web.routes import notifications as notification_routes
from tests.conftest import PASSWORD, TESTDATA, log_in

FLOWER = (TESTDATA / "good" / "flower.jpg").read_bytes()


@pytest.fixture
def make_user(ctx):
    def make(name: str, private: bool = False) -> accounts.User:
        user = accounts.create_user(ctx, name, PASSWORD, by_operator=True)
        if private:
            user = accounts.update_profile(ctx, user, "", "", True)
        return user

    return make


@pytest.fixture
def ana(make_user):
    return make_user("ana")


def fresh(ctx, user: accounts.User) -> accounts.User:
    return accounts.get_user(ctx, user.id)


def ready_post(ctx, author: accounts.User, caption: str = "") -> int:
    post = create_post(ctx, author, [PhotoUpload(FLOWER, alt_text="a flower")], caption=caption)
    ctx.backends.queue.run_pending()
    return post.id


def lines(html: str) -> list[str]:
    """Each notification's sentence, tags stripped, spaces collapsed (the time left out)."""
    items = re.findall(r'<p class="n-text">(.*?)<time', html, re.S)
    return [" ".join(re.sub(r"<[^>]+>", "", item).split()) for item in items]


def rows(ctx, user: accounts.User) -> list[dict]:
    with ctx.db.read(user.shard) as conn:
        return conn.all("SELECT * FROM notifications WHERE user_id = ? ORDER BY id", (user.id,))


def badge(html: str) -> str | None:
    """The nav badge's number, or None when it is hidden."""
    match = re.search(r'<span class="nav-badge" id="notif-badge"( hidden)?><span class="count">([^<]*)</span>', html)
    assert match, "no badge in the nav"
    return None if match.group(1) else match.group(2)


# --- Each kind, from the action that makes it ----------------------------------------------------------------------


def test_each_kind_appears_newest_first_with_thumbnails_and_links(ctx, client, ana, make_user):
    bo, cy, eve = make_user("bo"), make_user("cy"), make_user("eve")
    post_id, bos_post = ready_post(ctx, ana), ready_post(ctx, bo)
    interactions.like(ctx, bo, post_id)
    interactions.add_comment(ctx, bo, post_id, "lovely light")
    graph.follow(ctx, bo, ana)
    graph.follow(ctx, eve, ana)
    interactions.add_comment(ctx, bo, bos_post, "look @ana")
    graph.follow(ctx, cy, accounts.update_profile(ctx, fresh(ctx, ana), "", "", True))  # now a request

    log_in(client, "ana")
    page = client.get("/notifications").text
    assert lines(page) == [
        "New: cy asked to follow you. Review the request",
        "New: bo mentioned you in a comment.",
        "New: eve and bo started following you.",
        "New: bo commented on your photo.",
        "New: bo liked your photo.",
    ]
    assert 'href="/follow-requests"' in page
    assert page.count(f'href="/p/{post_id}"') >= 4 and f'href="/p/{bos_post}"' in page
    assert page.count('class="n-thumb') == 3  # like, comment, mention carry the post's thumbnail
    assert re.search(r'class="n-thumb[^"]*"[^>]*>\s*<img src="/media/[^"]*150sq', page)


def test_likes_group_by_post_and_name_the_newest(ctx, client, ana, make_user):
    post_id, other = ready_post(ctx, ana), ready_post(ctx, ana)
    likers = [make_user(name) for name in ("bo", "cy", "dee", "eve")]
    for liker in likers:
        interactions.like(ctx, liker, post_id)
    interactions.like(ctx, likers[0], other)
    interactions.like(ctx, likers[1], other)
    log_in(client, "ana")
    page = client.get("/notifications").text
    assert lines(page) == ["New: cy and bo liked your photo.", "New: eve and 3 others liked your photo."]
    assert page.count('class="avatar"') >= 4  # two faces a group


def test_like_unlike_like_notifies_once(ctx, ana, make_user):
    bo = make_user("bo")
    post_id = ready_post(ctx, ana)
    interactions.like(ctx, bo, post_id)
    assert notifications.unread_count(ctx, ana.id) == 1
    interactions.unlike(ctx, bo, post_id)
    assert notifications.unread_count(ctx, ana.id) == 0 and rows(ctx, ana) == []
    interactions.like(ctx, bo, post_id)
    assert [r["kind"] for r in rows(ctx, ana)] == ["like"]
    # Asking twice (a Conflict) adds nothing either.
    with pytest.raises(Exception, match="already like"):
        interactions.like(ctx, bo, post_id)
    assert len(rows(ctx, ana)) == 1 and notifications.unread_count(ctx, ana.id) == 1


def test_approving_a_request_turns_it_into_a_follow(ctx, make_user):
    ana, bo = make_user("ana", private=True), make_user("bo")
    graph.follow(ctx, bo, ana)
    assert [r["kind"] for r in rows(ctx, ana)] == ["follow_request"]
    graph.approve_request(ctx, fresh(ctx, ana), bo.id)
    assert [r["kind"] for r in rows(ctx, ana)] == ["follow"]
    graph.unfollow(ctx, fresh(ctx, bo), fresh(ctx, ana))
    assert rows(ctx, ana) == []


# --- Seen, and the badge -------------------------------------------------------------------------------------------


def test_opening_the_page_marks_everything_seen_and_the_badge_follows(ctx, client, ana, make_user):
    post_id = ready_post(ctx, ana)
    for name in ("bo", "cy"):
        interactions.like(ctx, make_user(name), post_id)
    log_in(client, "ana")
    assert badge(client.get("/").text) == "2"
    assert notifications.unread_count(ctx, ana.id) == 2

    first = client.get("/notifications").text
    assert 'class="notification unread"' in first  # shown as new this once
    assert badge(first) is None
    assert fresh(ctx, ana).notifications_seen_id == max(r["id"] for r in rows(ctx, ana))
    assert notifications.unread_count(ctx, ana.id) == 0
    assert badge(client.get("/").text) is None
    assert 'class="notification unread"' not in client.get("/notifications").text

    interactions.like(ctx, make_user("dee"), post_id)
    assert badge(client.get("/").text) == "1"


def test_mark_seen_never_moves_backwards(ctx, ana, make_user):
    post_id = ready_post(ctx, ana)
    interactions.like(ctx, make_user("bo"), post_id)
    interactions.like(ctx, make_user("cy"), post_id)
    first, second = (r["id"] for r in rows(ctx, ana))
    notifications.mark_seen(ctx, ana, second)
    notifications.mark_seen(ctx, fresh(ctx, ana), first)  # an older page, opened late
    assert fresh(ctx, ana).notifications_seen_id == second


def test_the_badge_caps_at_99_plus(ctx, client, ana, make_user):
    shard = ana.shard
    with ctx.db.write(shard) as conn:
        for n in range(notifications.UNREAD_CAP + 20):
            conn.run(
                "INSERT INTO notifications (id, user_id, kind, actor_id, dedup_key, created_at)"
                " VALUES (?, ?, 'follow', ?, ?, 0)",
                (ids.next_id(conn, shard), ana.id, 10_000 + n, f"follow:{n}"),
            )
    assert notifications.unread_count(ctx, ana.id) == notifications.UNREAD_CAP
    log_in(client, "ana")
    assert badge(client.get("/").text) == "99+"


def test_signed_out_pages_have_no_badge_or_stream(client):
    page = client.get("/login").text
    assert 'id="notif-badge"' not in page and "data-live" not in page and "live.js" not in page


def test_the_page_needs_a_session(client):
    answer = client.get("/notifications", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/notifications"


# --- Hidden: muted and blocked actors, posts no longer visible -----------------------------------------------------


def test_muted_and_blocked_actors_are_hidden_and_not_counted(ctx, client, ana, make_user):
    bo, cy, dee, eve = (make_user(n) for n in ("bo", "cy", "dee", "eve"))
    post_id = ready_post(ctx, ana)
    for liker in (bo, cy, dee, eve):
        interactions.like(ctx, liker, post_id)
    assert notifications.unread_count(ctx, ana.id) == 4
    graph.mute(ctx, ana, bo)  # ana mutes bo
    graph.block(ctx, ana, cy)  # ana blocks cy
    graph.block(ctx, dee, ana)  # dee blocks ana
    assert notifications.unread_count(ctx, ana.id) == 1
    log_in(client, "ana")
    assert badge(client.get("/").text) == "1"
    assert lines(client.get("/notifications").text) == ["New: eve liked your photo."]

    # From now on a muted account's actions don't notify at all.
    other = ready_post(ctx, ana)
    assert not notifications.notify(ctx, ana.id, "like", bo.id, post_id=other)
    graph.follow(ctx, fresh(ctx, bo), fresh(ctx, ana))
    assert [r["kind"] for r in rows(ctx, ana) if r["actor_id"] == bo.id] == ["like"]

    # Unmuting shows what they did before again.
    graph.unmute(ctx, ana, bo.id)
    assert "bo" in " ".join(lines(client.get("/notifications").text))


def test_a_post_the_viewer_can_no_longer_see_takes_its_notifications_with_it(ctx, client, ana, make_user):
    bo = make_user("bo")
    post_id = ready_post(ctx, bo)
    interactions.add_comment(ctx, bo, post_id, "with @ana")
    log_in(client, "ana")
    assert lines(client.get("/notifications").text) == ["New: bo mentioned you in a comment."]
    accounts.update_profile(ctx, fresh(ctx, bo), "", "", True)  # bo goes private; ana doesn't follow
    page = client.get("/notifications").text
    assert lines(page) == [] and f"/p/{post_id}" not in page


# --- Paging --------------------------------------------------------------------------------------------------------


def test_the_page_is_cursor_paged_and_htmx_loads_the_next(ctx, client, ana, make_user, monkeypatch):
    monkeypatch.setattr(notification_routes, "PAGE", 2)
    bo = make_user("bo")
    first_post, second_post = ready_post(ctx, ana), ready_post(ctx, ana)
    interactions.like(ctx, bo, first_post)
    interactions.like(ctx, bo, second_post)
    graph.follow(ctx, bo, ana)
    log_in(client, "ana")
    page = client.get("/notifications").text
    assert lines(page) == ["New: bo started following you.", "New: bo liked your photo."]
    more = re.search(r'href="(/notifications\?before=\d+)"', page).group(1)
    older = client.get(more, headers={"hx-request": "true"})
    assert older.status_code == 200 and "<html" not in older.text
    assert lines(older.text) == ["bo liked your photo."]  # seen now: the first page marked it
    assert f'href="/p/{first_post}"' in older.text and "before=" not in older.text

    bad = client.get("/notifications?before=last-tuesday")
    assert bad.status_code == 400 and "That page link is broken" in bad.text


def _insert(ctx, user: accounts.User, kind: str, actor_id: int, post_id: int | None, day: int, seq: int) -> int:
    """A notification made `day` days after 2026-01-01 (ids carry their time)."""
    ms = (365 + day) * notifications.DAY_MS + seq  # since the id epoch, 2025-01-01
    id_ = ids.compose(ms, user.shard, seq % 1000)
    with ctx.db.write(user.shard) as conn:
        conn.run(
            "INSERT INTO notifications (id, user_id, kind, actor_id, post_id, dedup_key, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, 0)",
            (id_, user.id, kind, actor_id, post_id, f"{kind}:{actor_id}:{post_id}:{day}"),
        )
    return id_


def test_groups_are_per_day_and_paging_one_at_a_time_sees_each_whole_once(ctx, ana, make_user):
    actors = [make_user(name) for name in ("bo", "cy", "dee")]
    post_id = ready_post(ctx, ana)
    # Likes on one post on days 0 and 40 (two groups), follows on days 1, 1, 1 and 90 (two groups).
    _insert(ctx, ana, "like", actors[0].id, post_id, 0, 1)
    _insert(ctx, ana, "like", actors[1].id, post_id, 0, 2)
    _insert(ctx, ana, "like", actors[2].id, post_id, 40, 3)
    for n, actor in enumerate(actors):
        _insert(ctx, ana, "follow", actor.id, None, 1, 10 + n)
    _insert(ctx, ana, "follow", actors[0].id, None, 90, 20)

    everything = notifications.page(ctx, ana, None, 10)
    assert [(g.kind, g.actor_count) for g in everything.groups] == [
        ("follow", 1),
        ("like", 1),
        ("follow", 3),
        ("like", 2),
    ]
    assert everything.next_before is None and everything.newest_id == max(r["id"] for r in rows(ctx, ana))
    assert [a.username for a in everything.groups[2].actors] == ["dee", "cy", "bo"]
    assert everything.groups[2].others == 0

    seen, before = [], None
    while True:
        one = notifications.page(ctx, ana, before, 1)
        seen += [(g.kind, g.actor_count, g.newest_id) for g in one.groups]
        if one.next_before is None:
            break
        before = one.next_before
    assert seen == [(g.kind, g.actor_count, g.newest_id) for g in everything.groups]


@pytest.mark.parametrize("before", ["1", str(ids.MAX_ID), str(ids.MAX_ID - 1)])
def test_any_id_is_a_cursor_even_at_the_ends_of_time(ctx, client, ana, make_user, before):
    interactions.like(ctx, make_user("bo"), ready_post(ctx, ana))
    log_in(client, "ana")
    answer = client.get(f"/notifications?before={before}")
    assert answer.status_code == 200
    assert lines(answer.text) == ([] if before == "1" else ["New: bo liked your photo."])
    assert notifications.unread_count(ctx, ana.id) == 1  # only the first page marks anything seen
