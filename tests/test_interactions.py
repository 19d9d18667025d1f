"""What people do on a post, through the service and over HTTP: likes (both sides of the edge, exact counts under
concurrent likes, liking twice), comments (mentions, comments off, deleted posts, deleting your own or any on your
post, never someone else's), editing, and who may do any of it (a private post answers strangers exactly as a
missing one; a block either way stops likes and comments)."""

from __future__ import annotations

import re
import threading

import pytest

from app import ids
from app.errors import Conflict, Forbidden, NotFound, UserError
from app.services import accounts, graph, interactions
from app.services.posts import NOT_FOUND, PhotoUpload, Place, create_post, delete_post, get_post
from tests.conftest import PASSWORD, TESTDATA, all_rows, another_browser, csrf_token, post_form, sign_up

HOPPER = (TESTDATA / "good" / "hopper.jpg").read_bytes()
FLOWER = (TESTDATA / "good" / "flower.jpg").read_bytes()
NO_POST = "There is no post at this address"


def ready_post(ctx, author, caption="", photos=None, **fields):
    post = create_post(ctx, author, photos or [PhotoUpload(HOPPER)], caption=caption, **fields)
    ctx.backends.queue.run_pending()
    post = get_post(ctx, post.id, author)
    assert post.status == "ready", post.error
    return post


def post_row(ctx, post_id: int) -> dict:
    with ctx.db.read(ids.shard_of(post_id)) as conn:
        return dict(conn.one("SELECT * FROM posts WHERE id = ?", (post_id,)))


def notes(ctx, user, kind: str) -> list[dict]:
    return all_rows(ctx, "notifications", "WHERE user_id = ? AND kind = ?", (user.id, kind))


def snapshot(ctx) -> dict:
    """Everything a refused action must leave as it was."""
    tables = ("posts", "post_media", "likes", "liked", "comments", "notifications", "tag_posts")
    return {table: all_rows(ctx, table) for table in tables}


def make_private(ctx, user):
    return accounts.update_profile(ctx, user, "", "", is_private=True)


@pytest.fixture
def ana(ctx):
    return accounts.create_user(ctx, "ana", PASSWORD)


@pytest.fixture
def bob(ctx):
    return accounts.create_user(ctx, "bob", PASSWORD)


@pytest.fixture
def carol(ctx):
    return accounts.create_user(ctx, "carol", PASSWORD)


# --- Likes ------------------------------------------------------------------------------------------------------------


def test_a_like_is_stored_on_both_sides_counted_and_notified(ctx, ana, bob):
    post = ready_post(ctx, ana)
    liked = interactions.like(ctx, bob, post.id)
    assert liked.like_count == 1 and post_row(ctx, post.id)["like_count"] == 1
    with ctx.db.read(ids.shard_of(post.id)) as conn:
        assert [r["user_id"] for r in conn.all("SELECT user_id FROM likes WHERE post_id = ?", (post.id,))] == [bob.id]
    with ctx.db.read(bob.shard) as conn:
        assert [r["post_id"] for r in conn.all("SELECT post_id FROM liked WHERE user_id = ?", (bob.id,))] == [post.id]
    assert [(n["actor_id"], n["post_id"]) for n in notes(ctx, ana, "like")] == [(bob.id, post.id)]
    assert interactions.liked_post_ids(ctx, bob, [post.id, 12345]) == {post.id}
    assert interactions.liked_post_ids(ctx, ana, [post.id]) == set()
    assert interactions.liked_post_ids(ctx, None, [post.id]) == set()
    assert interactions.liked_post_ids(ctx, bob, []) == set()


def test_liking_twice_is_a_conflict_that_changes_nothing(ctx, ana, bob):
    post = ready_post(ctx, ana)
    interactions.like(ctx, bob, post.id)
    before = snapshot(ctx)
    with pytest.raises(Conflict) as refused:
        interactions.like(ctx, bob, post.id)
    assert refused.value.message == "You already like this post." and refused.value.status == 409
    assert snapshot(ctx) == before


def test_liking_again_repairs_a_like_missing_from_the_likers_list(ctx, ana, bob):
    post = ready_post(ctx, ana)
    interactions.like(ctx, bob, post.id)
    with ctx.db.write(bob.shard) as conn:  # as if the process died between the two writes
        conn.run("DELETE FROM liked WHERE user_id = ?", (bob.id,))
    with pytest.raises(Conflict):
        interactions.like(ctx, bob, post.id)
    assert interactions.liked_post_ids(ctx, bob, [post.id]) == {post.id}
    assert post_row(ctx, post.id)["like_count"] == 1


def test_unlike_takes_the_like_and_its_notification_back(ctx, ana, bob):
    post = ready_post(ctx, ana)
    interactions.like(ctx, bob, post.id)
    assert interactions.unlike(ctx, bob, post.id).like_count == 0
    assert all_rows(ctx, "likes") == [] and all_rows(ctx, "liked") == [] and notes(ctx, ana, "like") == []
    assert interactions.unlike(ctx, bob, post.id).like_count == 0  # nothing to undo: fine, nothing changes
    assert interactions.like(ctx, bob, post.id).like_count == 1  # and again
    assert len(notes(ctx, ana, "like")) == 1


def test_the_count_stays_exact_under_concurrent_likes(ctx, ana):
    post = ready_post(ctx, ana)
    people = [accounts.create_user(ctx, f"fan{i}", PASSWORD) for i in range(12)]
    start = threading.Barrier(len(people))
    errors: list[BaseException] = []

    def act(user, action):
        try:
            start.wait()
            action(ctx, user, post.id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    for action in (interactions.like, interactions.unlike):
        threads = [threading.Thread(target=act, args=(user, action)) for user in people]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        expected = len(people) if action is interactions.like else 0
        assert (
            post_row(ctx, post.id)["like_count"]
            == expected
            == len(all_rows(ctx, "likes"))
            == len(all_rows(ctx, "liked"))
        )


def test_the_same_person_liking_at_once_from_two_tabs_counts_once(ctx, ana, bob):
    post = ready_post(ctx, ana)
    start = threading.Barrier(6)
    outcomes: list[str] = []

    def act():
        start.wait()
        try:
            interactions.like(ctx, bob, post.id)
            outcomes.append("liked")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=act) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 5 + ["liked"]
    assert post_row(ctx, post.id)["like_count"] == 1


def test_a_post_still_processing_cannot_be_liked_yet(ctx, ana):
    post = create_post(ctx, ana, [PhotoUpload(HOPPER)])
    with pytest.raises(UserError, match="still being prepared"):
        interactions.like(ctx, ana, post.id)
    assert all_rows(ctx, "likes") == []


# --- Who may ----------------------------------------------------------------------------------------------------------


def test_a_private_post_is_not_found_for_strangers_and_pending_followers(ctx, ana, bob):
    ana = make_private(ctx, ana)
    post = ready_post(ctx, ana)
    before = snapshot(ctx)
    for action in (
        lambda: interactions.like(ctx, bob, post.id),
        lambda: interactions.unlike(ctx, bob, post.id),
        lambda: interactions.add_comment(ctx, bob, post.id, "hi"),
        lambda: interactions.list_comments(ctx, bob, post.id),
        lambda: interactions.list_comments(ctx, None, post.id),
    ):
        with pytest.raises(NotFound) as hidden:
            action()
        assert hidden.value.message == NOT_FOUND
    graph.follow(ctx, bob, ana)
    with pytest.raises(NotFound):
        interactions.like(ctx, bob, post.id)
    assert {k: v for k, v in snapshot(ctx).items() if k != "notifications"} == {
        k: v for k, v in before.items() if k != "notifications"
    }
    graph.approve_request(ctx, ana, bob.id)
    assert interactions.like(ctx, bob, post.id).like_count == 1
    interactions.add_comment(ctx, bob, post.id, "now I can")


@pytest.mark.parametrize("who_blocks", ["author", "viewer"])
def test_a_block_either_way_stops_likes_and_comments(ctx, ana, bob, who_blocks):
    post = ready_post(ctx, ana)
    graph.block(ctx, *((ana, bob) if who_blocks == "author" else (bob, ana)))
    before = snapshot(ctx)
    with pytest.raises(NotFound):
        interactions.like(ctx, bob, post.id)
    with pytest.raises(NotFound):
        interactions.add_comment(ctx, bob, post.id, "hello")
    assert snapshot(ctx) == before


def test_a_deleted_post_cannot_be_liked_or_commented(ctx, ana, bob):
    post = ready_post(ctx, ana)
    delete_post(ctx, ana, post.id)
    for action in (interactions.like, interactions.unlike):
        with pytest.raises(NotFound):
            action(ctx, bob, post.id)
    with pytest.raises(NotFound):
        interactions.add_comment(ctx, bob, post.id, "hello?")
    assert all_rows(ctx, "comments") == [] and all_rows(ctx, "likes") == []


def test_a_deleted_posts_likes_leave_the_likers_lists(ctx, ana, bob, carol):
    post = ready_post(ctx, ana, "#gone")
    kept = ready_post(ctx, ana)
    for user in (bob, carol):
        interactions.like(ctx, user, post.id)
    interactions.like(ctx, bob, kept.id)
    delete_post(ctx, ana, post.id)
    ctx.backends.queue.run_pending()  # post_deleted
    assert [(r["user_id"], r["post_id"]) for r in all_rows(ctx, "liked")] == [(bob.id, kept.id)]
    interactions.forget_likes(ctx, post.id, [bob.id, carol.id])  # a rerun is harmless
    assert len(all_rows(ctx, "liked")) == 1


# --- Comments ---------------------------------------------------------------------------------------------------------


def test_a_comment_lives_with_its_post_and_notifies(ctx, ana, bob, carol):
    post = ready_post(ctx, ana)
    comment = interactions.add_comment(ctx, bob, post.id, "  Lovely light, @Carol and @ana!\r\n  ")
    assert comment.body == "Lovely light, @Carol and @ana!" and comment.author.id == bob.id
    assert ids.shard_of(comment.id) == ids.shard_of(post.id)
    assert post_row(ctx, post.id)["comment_count"] == 1
    assert [(n["actor_id"], n["comment_id"]) for n in notes(ctx, ana, "comment")] == [(bob.id, comment.id)]
    assert notes(ctx, ana, "mention") == []  # told once, as the comment
    assert [(n["actor_id"], n["post_id"], n["comment_id"]) for n in notes(ctx, carol, "mention")] == [
        (bob.id, post.id, comment.id)
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "Write something to comment."),
        ("   \n ", "Write something to comment."),
        ("x" * 2201, "The comment is 2201 characters; the limit is 2200."),
        ("hi @nobody", "There's no account called @nobody."),
        ("#" + "t" * 500, "tags are limited to 100"),
    ],
)
def test_a_bad_comment_is_refused_and_nothing_is_stored(ctx, ana, bob, body, message):
    post = ready_post(ctx, ana)
    before = snapshot(ctx)
    with pytest.raises(UserError) as refused:
        interactions.add_comment(ctx, bob, post.id, body)
    assert message in refused.value.message
    assert snapshot(ctx) == before


def test_a_comment_of_2200_characters_is_fine(ctx, ana, bob):
    post = ready_post(ctx, ana)
    assert len(interactions.add_comment(ctx, bob, post.id, "y" * 2200).body) == 2200


def test_comments_off_refuses_new_comments_and_keeps_the_old(ctx, ana, bob):
    post = ready_post(ctx, ana)
    interactions.add_comment(ctx, bob, post.id, "first")
    with pytest.raises(Forbidden, match="Only its author"):
        interactions.set_comments_off(ctx, bob, post.id, True)
    interactions.set_comments_off(ctx, ana, post.id, True)
    assert get_post(ctx, post.id, bob).comments_off
    before = snapshot(ctx)
    for who in (bob, ana):
        with pytest.raises(Forbidden) as refused:
            interactions.add_comment(ctx, who, post.id, "second")
        assert refused.value.message == "Comments are turned off for this post."
    assert snapshot(ctx) == before
    assert [c.body for c in interactions.list_comments(ctx, bob, post.id)[0]] == ["first"]
    interactions.set_comments_off(ctx, ana, post.id, False)
    interactions.add_comment(ctx, bob, post.id, "second")
    assert post_row(ctx, post.id)["comment_count"] == 2


def test_people_delete_their_own_comments_and_any_on_their_posts(ctx, ana, bob, carol):
    post = ready_post(ctx, ana)
    by_bob = interactions.add_comment(ctx, bob, post.id, "hey @carol")
    by_carol = interactions.add_comment(ctx, carol, post.id, "hello")
    assert len(notes(ctx, carol, "mention")) == 1

    before = snapshot(ctx)
    with pytest.raises(Forbidden) as refused:
        interactions.delete_comment(ctx, carol, by_bob.id)
    assert "your own comments" in refused.value.message
    assert snapshot(ctx) == before

    interactions.delete_comment(ctx, bob, by_bob.id)  # one's own
    assert notes(ctx, carol, "mention") == [] and [n["actor_id"] for n in notes(ctx, ana, "comment")] == [carol.id]
    interactions.delete_comment(ctx, ana, by_carol.id)  # any on one's own post
    assert all_rows(ctx, "comments") == [] and notes(ctx, ana, "comment") == []
    assert post_row(ctx, post.id)["comment_count"] == 0
    for missing in (by_bob.id, 999, "abc", by_carol.id):
        with pytest.raises(NotFound):
            interactions.delete_comment(ctx, ana, missing)
    assert post_row(ctx, post.id)["comment_count"] == 0


def test_a_comment_named_under_another_post_is_not_found(ctx, ana, bob):
    first, second = ready_post(ctx, ana), ready_post(ctx, ana)
    comment = interactions.add_comment(ctx, bob, first.id, "hi")
    with pytest.raises(NotFound):
        interactions.delete_comment(ctx, bob, comment.id, post_id=second.id)
    assert len(all_rows(ctx, "comments")) == 1


def test_comments_are_oldest_first_paged_by_id_and_hide_blocked_people(ctx, ana, bob, carol):
    post = ready_post(ctx, ana)
    made = [interactions.add_comment(ctx, who, post.id, f"c{i}") for i, who in enumerate((bob, carol, bob, ana))]
    page, after = interactions.list_comments(ctx, None, post.id, None, 3)
    assert [c.body for c in page] == ["c0", "c1", "c2"] and after == made[2].id
    page, after = interactions.list_comments(ctx, None, post.id, after, 3)
    assert [c.body for c in page] == ["c3"] and after is None
    assert page[0].author.username == "ana"
    graph.block(ctx, carol, bob)
    assert [c.body for c in interactions.list_comments(ctx, carol, post.id)[0]] == ["c1", "c3"]
    assert [c.body for c in interactions.list_comments(ctx, ana, post.id)[0]] == ["c0", "c1", "c2", "c3"]


# --- Editing ----------------------------------------------------------------------------------------------------------


def test_the_author_edits_caption_alt_text_and_place(ctx, ana, bob, carol):
    dave = accounts.create_user(ctx, "dave", PASSWORD)
    post = ready_post(
        ctx,
        ana,
        "#old with @bob and @dave",
        photos=[PhotoUpload(HOPPER, alt_text="a"), PhotoUpload(FLOWER)],
        place=Place("Lisbon", 38.7139, -9.1598),
    )
    assert len(notes(ctx, bob, "mention")) == 1 and len(notes(ctx, dave, "mention")) == 1
    assert [r["post_id"] for r in all_rows(ctx, "place_posts")] == [post.id]
    first, second = post.media

    edited = interactions.edit_post(
        ctx,
        ana,
        post.id,
        "  #New caption for @bob and @carol  ",
        {second.id: "  A flower  "},
        Place("Paris", 48.8584, 2.2945),
    )
    assert edited.caption == "#New caption for @bob and @carol"
    assert [m.alt_text for m in edited.media] == ["a", "A flower"]
    assert edited.place == Place("Paris", 48.8584, 2.2945)
    assert [(r["tag"], r["post_id"]) for r in all_rows(ctx, "tag_posts")] == [("new", post.id)]
    assert {r["tag"]: r["post_count"] for r in all_rows(ctx, "tags")} == {"old": 0, "new": 1}
    assert len(notes(ctx, bob, "mention")) == 1  # mentioned before: not told again
    assert len(notes(ctx, carol, "mention")) == 1  # newly mentioned
    assert notes(ctx, dave, "mention") == []  # no longer mentioned
    assert [(r["post_id"], r["lat"], r["lon"]) for r in all_rows(ctx, "place_posts")] == [(post.id, 48.8584, 2.2945)]

    cleared = interactions.edit_post(ctx, ana, post.id, "", {}, None)
    assert cleared.caption == "" and cleared.place is None and all_rows(ctx, "place_posts") == []
    assert all_rows(ctx, "tag_posts") == [] and all_rows(ctx, "post_tags") == []


@pytest.mark.parametrize(
    ("caption", "alts", "place", "message"),
    [
        ("hi @nobody", {}, None, "There's no account called @nobody."),
        ("#" + "q" * 500, {}, None, "tags are limited to 100"),
        ("x" * 2201, {}, None, "the limit is 2200"),
        ("ok", "too long", None, "Photo 1: the description is 1001 characters"),
        ("ok", {1: "x"}, None, "That photo isn't part of this post"),
        ("ok", {}, Place("Somewhere", 91.0, 0.0), "latitude must be between -90 and 90"),
        ("ok", {}, Place("", 10.0, 10.0), "Give the place a name"),
    ],
)
def test_a_bad_edit_is_refused_and_changes_nothing(ctx, ana, caption, alts, place, message):
    post = ready_post(ctx, ana, "#kept")
    if alts == "too long":
        alts = {post.media[0].id: "z" * 1001}
    before = snapshot(ctx)
    with pytest.raises(UserError) as refused:
        interactions.edit_post(ctx, ana, post.id, caption, alts, place)
    assert message in refused.value.message
    assert snapshot(ctx) == before


def test_only_the_author_edits(ctx, ana, bob):
    post = ready_post(ctx, ana, "mine")
    with pytest.raises(Forbidden):
        interactions.edit_post(ctx, bob, post.id, "yours", {}, None)
    ana = make_private(ctx, ana)
    with pytest.raises(NotFound):
        interactions.edit_post(ctx, bob, post.id, "yours", {}, None)
    assert get_post(ctx, post.id, ana).caption == "mine"


def test_editing_a_post_while_it_is_processing_is_indexed_when_ready(ctx, ana, bob):
    post = create_post(ctx, ana, [PhotoUpload(HOPPER)], caption="#before")
    interactions.edit_post(ctx, ana, post.id, "#after @bob", {}, None)
    assert all_rows(ctx, "tag_posts") == [] and notes(ctx, bob, "mention") == []
    ctx.backends.queue.run_pending()
    assert [r["tag"] for r in all_rows(ctx, "tag_posts")] == ["after"]
    assert len(notes(ctx, bob, "mention")) == 1


# --- Over HTTP --------------------------------------------------------------------------------------------------------


def htmx_headers(client, path: str) -> dict:
    return {"hx-request": "true", "x-csrf-token": csrf_token(client, path)}


def main_of(page_html: str) -> str:
    main = page_html.split('<main id="main"', 1)[1].split("</main>", 1)[0]
    return re.sub(r'value="[0-9a-f]{40,}"', "", main)


@pytest.fixture
def two(ctx, client):
    """ana's browser (client) and bob's (the second), each signed in, and a ready public post by ana."""
    sign_up(client, "ana")
    bob_browser = another_browser(client)
    sign_up(bob_browser, "bob")
    post = ready_post(ctx, accounts.find_user(ctx, "ana"), "Hello #world")
    return client, bob_browser, post


def test_like_and_unlike_with_htmx_answer_the_button_with_the_exact_count(ctx, two):
    _ana, bob, post = two
    page = bob.get(f"/p/{post.id}")
    assert 'aria-pressed="false"' in page.text and f'hx-post="/p/{post.id}/like"' in page.text
    assert "0 likes" in page.text
    liked = bob.post(f"/p/{post.id}/like", headers=htmx_headers(bob, f"/p/{post.id}"))
    assert liked.status_code == 200 and "<html" not in liked.text
    assert 'aria-pressed="true"' in liked.text and "1 like<" in liked.text
    assert f'hx-post="/p/{post.id}/unlike"' in liked.text and f'id="like-button-{post.id}"' in liked.text
    again = bob.post(f"/p/{post.id}/like", headers=htmx_headers(bob, f"/p/{post.id}"))
    assert again.status_code == 409 and again.text == "You already like this post."
    assert again.headers["content-type"].startswith("text/plain")
    unliked = bob.post(f"/p/{post.id}/unlike", headers=htmx_headers(bob, f"/p/{post.id}"))
    assert 'aria-pressed="false"' in unliked.text and "0 likes" in unliked.text
    assert post_row(ctx, post.id)["like_count"] == 0


def test_like_without_javascript_posts_and_comes_back(ctx, two):
    _ana, bob, post = two
    response = post_form(bob, f"/p/{post.id}/like", {}, token_from=f"/p/{post.id}")
    assert response.status_code == 303 and response.headers["location"] == f"/p/{post.id}"
    assert 'aria-pressed="true"' in bob.get(f"/p/{post.id}").text
    twice = post_form(bob, f"/p/{post.id}/like", {}, token_from=f"/p/{post.id}")
    assert twice.status_code == 409 and "You already like this post." in twice.text and "<html" in twice.text
    back = post_form(bob, f"/p/{post.id}/unlike", {"next": "/#post-1"}, token_from=f"/p/{post.id}")
    assert back.headers["location"] == "/#post-1"
    elsewhere = post_form(bob, f"/p/{post.id}/like", {"next": "//evil.example/"}, token_from=f"/p/{post.id}")
    assert elsewhere.headers["location"] == "/"
    as_json = bob.post(
        f"/p/{post.id}/unlike",
        headers={"accept": "application/json", "x-csrf-token": csrf_token(bob, f"/p/{post.id}")},
    )
    assert as_json.json() == {"liked": False, "like_count": 0}


def test_signed_out_visitors_see_the_count_and_are_asked_to_log_in(ctx, two, client):
    _ana, _bob, post = two
    interactions.like(ctx, accounts.find_user(ctx, "bob"), post.id)
    visitor = another_browser(client)
    page = visitor.get(f"/p/{post.id}")
    assert "1 like<" in page.text and f'href="/login?next=/p/{post.id}"' in page.text
    assert 'name="body"' not in page.text
    token = csrf_token(visitor, "/login")
    assert visitor.post(f"/p/{post.id}/like", data={"_csrf_token": token}).status_code == 401
    assert post_row(ctx, post.id)["like_count"] == 1


def test_without_the_csrf_token_nothing_is_liked_or_commented(ctx, two):
    _ana, bob, post = two
    assert bob.post(f"/p/{post.id}/like", headers={"hx-request": "true"}).status_code == 403
    assert bob.post(f"/p/{post.id}/comments", data={"body": "x"}).status_code == 403
    assert all_rows(ctx, "likes") == [] and all_rows(ctx, "comments") == []


def test_private_posts_answer_strangers_like_missing_ones(ctx, client):
    sign_up(client, "ana")
    ana = make_private(ctx, accounts.find_user(ctx, "ana"))
    post = ready_post(ctx, ana, "secret #hush")
    stranger = another_browser(client)
    sign_up(stranger, "bob")
    anonymous = another_browser(client)
    before = snapshot(ctx)
    for browser in (stranger, anonymous):
        hidden, missing = browser.get(f"/p/{post.id}"), browser.get("/p/99999999999")
        assert hidden.status_code == missing.status_code == 404
        assert main_of(hidden.text) == main_of(missing.text)
        assert browser.get(f"/p/{post.id}/comments?after=1", headers={"hx-request": "true"}).status_code == 404
    for path in (f"/p/{post.id}/like", f"/p/{post.id}/unlike", f"/p/{post.id}/comments", f"/p/{post.id}/edit"):
        hidden = post_form(stranger, path, {"body": "hi"}, token_from="/upload")
        missing = post_form(stranger, path.replace(str(post.id), "99999999999"), {"body": "hi"}, token_from="/upload")
        assert hidden.status_code == missing.status_code == 404, path
        assert main_of(hidden.text) == main_of(missing.text), path
        hidden = stranger.post(path, data={"body": "hi"}, headers=htmx_headers(stranger, "/upload"))
        assert hidden.status_code == 404 and NO_POST in hidden.text
    assert snapshot(ctx) == before
    assert f"/p/{post.id}" not in stranger.get("/tags/hush").text


def test_a_blocked_person_cannot_like_or_comment_over_http(ctx, two):
    _ana, bob, post = two
    graph.block(ctx, accounts.find_user(ctx, "ana"), accounts.find_user(ctx, "bob"))
    for path in (f"/p/{post.id}/like", f"/p/{post.id}/comments"):
        assert post_form(bob, path, {"body": "hi"}, token_from="/upload").status_code == 404
    assert all_rows(ctx, "likes") == [] and all_rows(ctx, "comments") == []


def test_comment_with_htmx_appends_it_and_the_new_count(ctx, two):
    ana, bob, post = two
    page = bob.get(f"/p/{post.id}")
    assert 'hx-target="#comment-list"' in page.text and "No comments yet." in page.text
    added = bob.post(
        f"/p/{post.id}/comments",
        data={"body": "So <b>good</b> @ana #wow"},
        headers=htmx_headers(bob, f"/p/{post.id}"),
    )
    assert added.status_code == 200 and "<html" not in added.text
    comment_id = all_rows(ctx, "comments")[0]["id"]
    assert f'<li class="comment" id="c{comment_id}">' in added.text
    assert "So &lt;b&gt;good&lt;/b&gt; " in added.text and '<a class="mention" href="/@ana">@ana</a>' in added.text
    assert '<span class="count" id="comment-count" hx-swap-oob="true">1</span>' in added.text
    assert "Delete comment by bob" in added.text  # bob's own


def test_comment_without_javascript_posts_and_shows_it(ctx, two):
    ana, bob, post = two
    response = post_form(bob, f"/p/{post.id}/comments", {"body": "Nice <script>x()</script>"}, token_from="/upload")
    comment_id = all_rows(ctx, "comments")[0]["id"]
    assert response.status_code == 303 and response.headers["location"] == f"/p/{post.id}#c{comment_id}"
    for browser in (ana, bob):
        page = browser.get(f"/p/{post.id}")
        assert "Nice &lt;script&gt;x()&lt;/script&gt;" in page.text and "<script>x()" not in page.text
        assert '<span class="count" id="comment-count">1</span>' in page.text
    assert "Delete comment by bob" in ana.get(f"/p/{post.id}").text  # on her own post


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ("hi @ghost", 400, "There&#39;s no account called @ghost."),
        ("", 400, "Write something to comment."),
        ("#" + "w" * 500, 400, "tags are limited to 100"),
    ],
)
def test_a_refused_comment_shows_the_page_again_with_the_message(ctx, two, body, status, message):
    _ana, bob, post = two
    response = post_form(bob, f"/p/{post.id}/comments", {"body": body}, token_from="/upload")
    assert response.status_code == status and message in response.text
    assert 'aria-invalid="true"' in response.text
    if body:
        assert f">{body}</textarea>" in response.text  # what was typed is kept
    fragment = bob.post(f"/p/{post.id}/comments", data={"body": body}, headers=htmx_headers(bob, "/upload"))
    assert fragment.status_code == status and message in fragment.text.replace("'", "&#39;")
    assert fragment.headers["content-type"].startswith("text/plain")
    assert all_rows(ctx, "comments") == []


def test_comments_off_and_on_over_http(ctx, two):
    ana, bob, post = two
    assert "Turn comments off" in ana.get(f"/p/{post.id}").text
    assert post_form(bob, f"/p/{post.id}/comments/off", {}, token_from="/upload").status_code == 403
    response = post_form(ana, f"/p/{post.id}/comments/off", {}, token_from="/upload")
    assert response.status_code == 303 and response.headers["location"] == f"/p/{post.id}#comments"
    page = bob.get(f"/p/{post.id}")
    assert "Comments are turned off for this post." in page.text and 'name="body"' not in page.text
    refused = post_form(bob, f"/p/{post.id}/comments", {"body": "let me"}, token_from="/upload")
    assert refused.status_code == 403 and "Comments are turned off for this post." in refused.text
    assert all_rows(ctx, "comments") == []
    assert "Turn comments on" in ana.get(f"/p/{post.id}").text
    post_form(ana, f"/p/{post.id}/comments/on", {}, token_from="/upload")
    assert 'name="body"' in bob.get(f"/p/{post.id}").text


def test_deleting_comments_over_http(ctx, two, client):
    ana, bob, post = two
    carol = another_browser(client)
    sign_up(carol, "carol")
    interactions.add_comment(ctx, accounts.find_user(ctx, "bob"), post.id, "by bob")
    interactions.add_comment(ctx, accounts.find_user(ctx, "carol"), post.id, "by carol")
    by_bob, by_carol = (r["id"] for r in sorted(all_rows(ctx, "comments"), key=lambda r: r["id"]))
    assert "Delete comment by bob" not in carol.get(f"/p/{post.id}").text

    refused = post_form(carol, f"/p/{post.id}/comments/{by_bob}/delete", {}, token_from="/upload")
    assert refused.status_code == 403 and len(all_rows(ctx, "comments")) == 2
    other_post = ready_post(ctx, accounts.find_user(ctx, "ana"))
    wrong = post_form(bob, f"/p/{other_post.id}/comments/{by_bob}/delete", {}, token_from="/upload")
    assert wrong.status_code == 404 and len(all_rows(ctx, "comments")) == 2

    gone = bob.post(f"/p/{post.id}/comments/{by_bob}/delete", headers=htmx_headers(bob, "/upload"))
    assert gone.status_code == 200 and '<span class="count" id="comment-count" hx-swap-oob="true">1</span>' in gone.text
    response = post_form(ana, f"/p/{post.id}/comments/{by_carol}/delete", {}, token_from="/upload")
    assert response.status_code == 303 and response.headers["location"] == f"/p/{post.id}#comments"
    assert all_rows(ctx, "comments") == []
    again = bob.post(f"/p/{post.id}/comments/{by_bob}/delete", headers=htmx_headers(bob, "/upload"))
    assert again.status_code == 404 and again.text == interactions.NO_COMMENT
    assert post_form(bob, f"/p/{post.id}/comments/abc/delete", {}, token_from="/upload").status_code == 404


def test_comments_page_by_cursor(ctx, two, monkeypatch):
    from app.web.routes import posts as post_routes

    monkeypatch.setattr(post_routes, "COMMENTS_PAGE", 2)
    ana, bob, post = two
    author = accounts.find_user(ctx, "bob")
    made = [interactions.add_comment(ctx, author, post.id, f"comment {i}") for i in range(5)]
    page = ana.get(f"/p/{post.id}")
    assert re.findall(r"comment (\d)", page.text) == ["0", "1"]
    assert f'hx-get="/p/{post.id}/comments?after={made[1].id}"' in page.text
    more = ana.get(f"/p/{post.id}/comments?after={made[1].id}", headers={"hx-request": "true"})
    assert re.findall(r"comment (\d)", more.text) == ["2", "3"] and "<html" not in more.text
    assert f"after={made[3].id}" in more.text
    no_js = ana.get(f"/p/{post.id}?comments_after={made[3].id}")
    assert re.findall(r"comment (\d)", no_js.text) == ["4"] and "Show the first comments" in no_js.text
    plain = ana.get(f"/p/{post.id}/comments?after={made[3].id}", follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"].endswith(f"comments_after={made[3].id}#comments")
    for bad in (f"/p/{post.id}?comments_after=abc", f"/p/{post.id}/comments?after=-3"):
        response = ana.get(bad, headers={"hx-request": "true"})
        assert response.status_code == 400 and "That link to more comments is broken" in response.text


def test_the_edit_page(ctx, two):
    ana, bob, post = two
    form = ana.get(f"/p/{post.id}/edit")
    assert form.status_code == 200 and ">Hello #world</textarea>" in form.text
    assert f'name="alt_{post.media[0].id}"' in form.text
    assert bob.get(f"/p/{post.id}/edit").status_code == 403
    assert another_browser(ana).get(f"/p/{post.id}/edit", follow_redirects=False).status_code == 303  # log in

    response = post_form(
        ana,
        f"/p/{post.id}/edit",
        {
            "caption": "New words #fresh",
            f"alt_{post.media[0].id}": "A man",
            "place_name": "Rome",
            "place_lat": "41.9",
            "place_lon": "12.5",
        },
    )
    assert response.status_code == 303 and response.headers["location"] == f"/p/{post.id}"
    page = bob.get(f"/p/{post.id}")
    assert '<a class="tag" href="/tags/fresh">#fresh</a>' in page.text and 'alt="A man"' in page.text
    assert 'href="/places/near?lat=41.90000&amp;lon=12.50000&amp;km=10"' in page.text and ">Rome</a>" in page.text
    assert f"/p/{post.id}" in bob.get("/tags/fresh").text and f"/p/{post.id}" not in bob.get("/tags/world").text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"caption": "hey @nobody"}, "There&#39;s no account called @nobody."),
        ({"caption": "#" + "e" * 500}, "tags are limited to 100"),
        ({"place_name": "X", "place_lat": "north", "place_lon": "1"}, "Latitude and longitude must be numbers"),
        ({"place_name": "X", "place_lat": "100", "place_lon": "1"}, "latitude must be between -90 and 90"),
    ],
)
def test_a_bad_edit_over_http_shows_the_form_again(ctx, two, fields, message):
    ana, _bob, post = two
    before = snapshot(ctx)
    data = {"caption": "Hello #world", "place_name": "", "place_lat": "", "place_lon": "", **fields}
    response = post_form(ana, f"/p/{post.id}/edit", data)
    assert response.status_code == 400 and message in response.text and "Edit post" in response.text
    assert snapshot(ctx) == before


def test_the_post_page_shows_photos_place_and_menu(ctx, client):
    sign_up(client, "ana")
    post = ready_post(
        ctx,
        accounts.find_user(ctx, "ana"),
        "two",
        photos=[PhotoUpload(HOPPER, alt_text="first"), PhotoUpload(FLOWER, alt_text="second")],
        place=Place("Lisbon", 38.7139, -9.1598),
    )
    page = client.get(f"/p/{post.id}").text
    assert 'aria-label="Previous photo"' in page and 'aria-label="Next photo"' in page
    assert page.count('class="dot"') == 2 and 'alt="first"' in page and 'alt="second"' in page
    assert 'href="/places/near?lat=38.71390&amp;lon=-9.15980&amp;km=10"' in page
    assert f'href="/p/{post.id}/edit"' in page and "Turn comments off" in page and "Delete post" in page
    visitor = another_browser(client).get(f"/p/{post.id}").text
    assert f'href="/p/{post.id}/edit"' not in visitor and "Turn comments off" not in visitor


def test_liked_hearts_come_from_one_query_on_the_viewers_shard(ctx, ana, bob):
    made = [ready_post(ctx, ana) for _ in range(3)]
    interactions.like(ctx, bob, made[0].id)
    interactions.like(ctx, bob, made[2].id)
    seen: list[int] = []
    real_read = ctx.db.read

    def counting_read(shard):
        seen.append(shard)
        return real_read(shard)

    ctx.db.read = counting_read
    try:
        assert interactions.liked_post_ids(ctx, bob, [p.id for p in made]) == {made[0].id, made[2].id}
    finally:
        del ctx.db.read
    assert seen == [bob.shard]
