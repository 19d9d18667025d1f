"""Hashtags and mentions: finding them, refusing bad ones (a 500-character tag, a mention of nobody), linking them
safely, the tag directory kept right as posts turn ready, change and go, and the /tags/{tag} page with who may see
what on it."""

from __future__ import annotations

import re

import pytest
from markupsafe import Markup

from app import ids
from app.errors import UserError
from app.services import accounts, graph, interactions, notifications, tags
from app.services.posts import PhotoUpload, create_post, delete_post, get_post
from tests.conftest import PASSWORD, TESTDATA, all_rows, another_browser, sign_up

HOPPER = (TESTDATA / "good" / "hopper.jpg").read_bytes()


def ready_post(ctx, author, caption="", **fields):
    post = create_post(ctx, author, [PhotoUpload(HOPPER)], caption=caption, **fields)
    ctx.backends.queue.run_pending()
    post = get_post(ctx, post.id, author)
    assert post.status == "ready", post.error
    return post


def tag_count(ctx, tag: str) -> int | None:
    with ctx.db.read(ctx.db.shard_for_key(tag)) as conn:
        return conn.value("SELECT post_count FROM tags WHERE tag = ?", (tag,))


def mentions_of(ctx, user) -> list[dict]:
    return all_rows(ctx, "notifications", "WHERE user_id = ? AND kind = 'mention'", (user.id,))


@pytest.fixture
def ana(ctx):
    return accounts.create_user(ctx, "ana", PASSWORD)


@pytest.fixture
def bob(ctx):
    return accounts.create_user(ctx, "bob", PASSWORD)


@pytest.fixture
def carol(ctx):
    return accounts.create_user(ctx, "carol", PASSWORD)


# --- Finding tags and mentions ----------------------------------------------------------------------------------------


def test_tags_are_unicode_words_in_one_form():
    text = "Sunset at #Été_2025 with #sunset, #SUNSET and #東京 #café! #under_score #42"
    assert tags.extract_tags(text) == ["été_2025", "sunset", "東京", "café", "under_score", "42"]


def test_tags_are_not_found_inside_urls_words_or_entities():
    text = "see https://example.com/page#top and https://example.com/#anchor, a&#39;b, C#, ##double, mid#word"
    assert tags.extract_tags(text) == []
    assert tags.extract_tags("(#paren) «#quote» #end.") == ["paren", "quote", "end"]


def test_mentions_follow_the_username_rules():
    text = "Thanks @Ana and @bob.smith. Mail ana@example.com, see site.com/@carol, @x..y, @dan. @anaé @_under"
    assert tags.extract_mentions(text) == ["ana", "bob.smith", "x", "dan", "_under"]


@pytest.mark.parametrize(
    ("raw", "tag"), [("sunset", "sunset"), ("#Sunset", "sunset"), ("Été", "été"), ("a" * 100, "a" * 100)]
)
def test_parse_tag_accepts_a_tag(raw, tag):
    assert tags.parse_tag(raw) == tag


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "Give a tag"),
        ("a-b", "letters, digits and underscores"),
        ("a b", "letters, digits and underscores"),
        ("<script>", "letters, digits and underscores"),
        ("a" * 101, "tags are limited to 100"),
    ],
)
def test_parse_tag_refuses_what_is_not_a_tag(raw, message):
    with pytest.raises(UserError) as refused:
        tags.parse_tag(raw)
    assert message in refused.value.message and refused.value.status == 400


# --- Checking captions ------------------------------------------------------------------------------------------------


def test_a_500_character_tag_is_refused_and_nothing_is_stored(ctx, ana):
    long_tag = "#" + "a" * 500
    with pytest.raises(UserError) as refused:
        create_post(ctx, ana, [PhotoUpload(HOPPER)], caption=f"look {long_tag}")
    assert refused.value.message == "The tag #aaaaaaaaaaaaaaaaaaaa… is 500 characters; tags are limited to 100."
    assert refused.value.field == "caption"
    assert all_rows(ctx, "posts") == [] and list(ctx.backends.blobs.keys()) == []
    # 100 is fine.
    ready_post(ctx, ana, "#" + "b" * 100)


def test_a_mention_of_a_missing_account_is_refused_and_nothing_is_stored(ctx, ana, bob):
    with pytest.raises(UserError) as refused:
        create_post(ctx, ana, [PhotoUpload(HOPPER)], caption="with @bob and @Nobody_here")
    assert refused.value.message == "There's no account called @nobody_here."
    assert all_rows(ctx, "posts") == [] and list(ctx.backends.blobs.keys()) == []
    with pytest.raises(UserError, match="There's no account called @"):
        create_post(ctx, ana, [PhotoUpload(HOPPER)], caption="@" + "x" * 40)
    assert all_rows(ctx, "posts") == []


def test_too_many_tags_or_mentions_are_refused(ctx, ana):
    with pytest.raises(UserError, match="Use up to 30 hashtags; this has 31"):
        tags.check_text(ctx, " ".join(f"#t{i}" for i in range(31)))
    with pytest.raises(UserError, match="Mention up to 20 people; this mentions 21"):
        tags.check_text(ctx, " ".join(f"@u{i}" for i in range(21)))


def test_check_text_returns_the_tags_and_the_accounts(ctx, ana, bob):
    found_tags, mentioned = tags.check_text(ctx, "#One #one @BOB @ana @bob")
    assert found_tags == ["one"]
    assert {name: user.id for name, user in mentioned.items()} == {"bob": bob.id, "ana": ana.id}


# --- Rendering --------------------------------------------------------------------------------------------------------


def test_render_caption_links_tags_and_mentions_and_escapes_the_rest():
    html = tags.render_caption("<script>alert(\"x\")</script> & 'q' #Été @Ana.")
    assert isinstance(html, Markup)
    assert html == (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#39;q&#39; "
        '<a class="tag" href="/tags/%C3%A9t%C3%A9">#Été</a> <a class="mention" href="/@ana">@Ana</a>.'
    )


@pytest.mark.parametrize(
    "text",
    [
        'https://example.com/#"><img src=x onerror=alert(1)>',
        "javascript:alert(1)#x",
        "http://a.b/@bob?x=<b>",
        '#tag"onmouseover="alert(1)',
        "#<script>",
        "@<img>",
        "&#35;tag &lt;b&gt;",
    ],
)
def test_render_caption_never_lets_markup_through(text):
    html = str(tags.render_caption(text))
    stripped = re.sub(r'<a class="(tag|mention)" href="[^"<>]*">[^<>]*</a>', "", html)
    assert "<" not in stripped and ">" not in stripped and '"' not in stripped
    assert "javascript:" not in re.findall(r'href="([^"]*)"', html)
    if text.startswith("#tag"):
        assert '<a class="tag" href="/tags/tag">#tag</a>&#34;onmouseover=&#34;alert(1)' in html


def test_render_caption_keeps_a_too_long_tag_as_text():
    html = str(tags.render_caption("#" + "z" * 101))
    assert "<a" not in html and html == "#" + "z" * 101


# --- The directory ----------------------------------------------------------------------------------------------------


def test_a_post_is_indexed_when_ready_and_the_task_can_run_again(ctx, ana, bob):
    post = create_post(ctx, ana, [PhotoUpload(HOPPER)], caption="#Sea #sky hi @bob")
    assert all_rows(ctx, "tag_posts") == []  # not while processing
    ctx.backends.queue.run_pending()
    with ctx.db.read(ids.shard_of(post.id)) as conn:
        assert {r["tag"] for r in conn.all("SELECT tag FROM post_tags WHERE post_id = ?", (post.id,))} == {
            "sea",
            "sky",
        }
    for tag in ("sea", "sky"):
        with ctx.db.read(ctx.db.shard_for_key(tag)) as conn:
            assert conn.all("SELECT post_id, author_id FROM tag_posts WHERE tag = ?", (tag,)) == [
                {"post_id": post.id, "author_id": ana.id}
            ]
        assert tag_count(ctx, tag) == 1
    assert [(n["actor_id"], n["post_id"]) for n in mentions_of(ctx, bob)] == [(ana.id, post.id)]

    tags.index_post(ctx, post.id)  # a rerun of the task
    tags.index_post(ctx, post.id)
    assert tag_count(ctx, "sea") == 1 and len(all_rows(ctx, "tag_posts")) == 2 and len(all_rows(ctx, "post_tags")) == 2
    assert len(mentions_of(ctx, bob)) == 1


def test_deleting_a_post_takes_it_out_of_its_tags(ctx, ana):
    first = ready_post(ctx, ana, "#sea one")
    ready_post(ctx, ana, "#sea two")
    assert tag_count(ctx, "sea") == 2
    delete_post(ctx, ana, first.id)
    ctx.backends.queue.run_pending()
    assert tag_count(ctx, "sea") == 1
    assert [r["post_id"] for r in all_rows(ctx, "tag_posts")] != [first.id] and len(all_rows(ctx, "tag_posts")) == 1
    tags.unindex_post(ctx, first.id, ["sea"])  # a rerun changes nothing
    assert tag_count(ctx, "sea") == 1


def test_a_mentioned_account_that_may_not_see_the_post_is_not_told(ctx, ana, bob):
    accounts.update_profile(ctx, ana, "", "", is_private=True)
    ana = accounts.get_user(ctx, ana.id)
    ready_post(ctx, ana, "hi @bob")
    assert mentions_of(ctx, bob) == []


def test_an_account_that_blocks_the_author_is_not_told(ctx, ana, bob):
    graph.block(ctx, bob, ana)
    ready_post(ctx, ana, "hi @bob")
    assert mentions_of(ctx, bob) == []


# --- The tag page (service) -------------------------------------------------------------------------------------------


def test_tag_page_is_newest_first_and_pages_by_cursor(ctx, ana):
    made = [ready_post(ctx, ana, f"#walk {i}") for i in range(5)]
    first = tags.tag_page(ctx, None, "#Walk", None, 2)
    assert first.tag == "walk" and first.post_count == 5
    assert [p.id for p in first.posts] == [made[4].id, made[3].id] and first.before == made[3].id
    second = tags.tag_page(ctx, None, "walk", first.before, 2)
    assert [p.id for p in second.posts] == [made[2].id, made[1].id]
    last = tags.tag_page(ctx, None, "walk", second.before, 2)
    assert [p.id for p in last.posts] == [made[0].id] and last.before is None


def test_tag_page_shows_only_what_the_viewer_may_see(ctx, ana, bob, carol):
    accounts.update_profile(ctx, bob, "", "", is_private=True)
    bob = accounts.get_user(ctx, bob.id)
    public = ready_post(ctx, ana, "#mix public")
    private = ready_post(ctx, bob, "#mix private")

    def seen(viewer):
        return [p.id for p in tags.tag_page(ctx, viewer, "mix", None, 10).posts]

    assert seen(None) == [public.id]
    assert seen(carol) == [public.id]
    assert seen(bob) == [private.id, public.id]
    graph.follow(ctx, carol, bob)
    assert seen(carol) == [public.id]  # pending
    graph.approve_request(ctx, bob, carol.id)
    assert seen(carol) == [private.id, public.id]
    graph.block(ctx, ana, carol)
    assert seen(carol) == [private.id]


def test_a_tag_with_only_hidden_posts_reads_like_an_unused_tag(ctx, ana, bob):
    accounts.update_profile(ctx, bob, "", "", is_private=True)
    bob = accounts.get_user(ctx, bob.id)
    ready_post(ctx, bob, "#secret")
    assert tags.tag_page(ctx, ana, "secret", None, 10) == tags.TagPage("secret", 0, [], None)
    assert tags.tag_page(ctx, None, "neverused", None, 10).post_count == 0


def test_tag_page_reads_past_many_hidden_posts(ctx, ana, bob, monkeypatch):
    accounts.update_profile(ctx, bob, "", "", is_private=True)
    bob = accounts.get_user(ctx, bob.id)
    visible = ready_post(ctx, ana, "#busy")
    for _ in range(4):
        ready_post(ctx, bob, "#busy")
    page = tags.tag_page(ctx, None, "busy", None, 1)  # batches of 20: read at once
    assert [p.id for p in page.posts] == [visible.id] and page.before is None
    monkeypatch.setattr(tags, "_MAX_ROUNDS", 1)
    monkeypatch.setattr(tags, "_MIN_BATCH", 2)
    page = tags.tag_page(ctx, None, "busy", None, 1)
    assert page.posts == [] and page.before is not None  # it stopped early and says where to go on
    assert [p.id for p in tags.tag_page(ctx, None, "busy", page.before, 1).posts] == []
    monkeypatch.setattr(tags, "_MAX_ROUNDS", 10)
    assert [p.id for p in tags.tag_page(ctx, None, "busy", page.before, 1).posts] == [visible.id]


# --- The tag page (HTTP) ----------------------------------------------------------------------------------------------


def main_of(page_html: str) -> str:
    main = page_html.split('<main id="main"', 1)[1].split("</main>", 1)[0]
    return re.sub(r'value="[0-9a-f]{40,}"', "", main)


def test_the_tag_page_shows_a_grid_with_the_tag_and_count(ctx, client, monkeypatch):
    sign_up(client, "ana")
    ana = accounts.find_user(ctx, "ana")
    made = [ready_post(ctx, ana, f"#Sunset no. {i}") for i in range(3)]
    from app.web.routes import tags as tag_routes

    monkeypatch.setattr(tag_routes, "TAG_PAGE", 2)
    page = another_browser(client).get("/tags/SUNSET")
    assert page.status_code == 200
    assert "<title>#sunset · Pinhole</title>" in page.text
    assert "<h1>#sunset</h1>" in page.text and "3 posts" in page.text
    assert re.findall(r'<a href="/p/(\d+)">', page.text) == [str(made[2].id), str(made[1].id)]
    assert f'href="/tags/sunset?before={made[1].id}"' in page.text
    older = client.get(f"/tags/sunset?before={made[1].id}")
    assert re.findall(r'<a href="/p/(\d+)">', older.text) == [str(made[0].id)]
    assert "Older posts" not in older.text


def test_a_caption_links_to_the_tag_page(ctx, client):
    sign_up(client, "ana")
    post = ready_post(ctx, accounts.find_user(ctx, "ana"), "Morning #Café")
    page = client.get(f"/p/{post.id}")
    assert '<a class="tag" href="/tags/caf%C3%A9">#Café</a>' in page.text
    assert client.get("/tags/caf%C3%A9").status_code == 200


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/tags/a-b", "Tags are made of letters, digits and underscores only"),
        ("/tags/" + "a" * 101, "tags are limited to 100"),
        ("/tags/" + "a" * 5000, "tags are limited to 100"),
        ("/tags/%3Cscript%3E", "Tags are made of letters"),
        ("/tags/sunset?before=abc", "That link to older posts is broken"),
        ("/tags/sunset?before=-1", "That link to older posts is broken"),
    ],
)
def test_a_bad_tag_or_cursor_is_a_clear_400(client, path, message):
    page = client.get(path)
    assert page.status_code == 400 and message in page.text
    as_json = client.get(path, headers={"accept": "application/json"})
    assert as_json.status_code == 400 and message in as_json.json()["error"]


def test_an_unknown_tag_is_an_empty_page(client):
    page = client.get("/tags/nothinghere")
    assert page.status_code == 200
    assert "No posts tagged #nothinghere yet" in page.text and '<ul class="grid"' not in page.text


def test_a_private_accounts_tag_is_the_same_for_strangers_as_an_unused_one(ctx, client):
    stranger = another_browser(client)
    sign_up(stranger, "bob")
    anonymous_before = main_of(another_browser(client).get("/tags/hidden").text)
    stranger_before = main_of(stranger.get("/tags/hidden").text)

    sign_up(client, "ana")
    ana = accounts.find_user(ctx, "ana")
    accounts.update_profile(ctx, ana, "", "", is_private=True)
    post = ready_post(ctx, accounts.get_user(ctx, ana.id), "#hidden")
    assert f'href="/p/{post.id}"' in client.get("/tags/hidden").text  # the owner sees it

    assert main_of(stranger.get("/tags/hidden").text) == stranger_before
    assert main_of(another_browser(client).get("/tags/hidden").text) == anonymous_before
    bob = accounts.find_user(ctx, "bob")
    graph.follow(ctx, bob, accounts.get_user(ctx, ana.id))
    graph.approve_request(ctx, accounts.get_user(ctx, ana.id), bob.id)
    assert f'href="/p/{post.id}"' in stranger.get("/tags/hidden").text


def test_a_comment_mentioning_someone_tells_them_once(ctx, ana, bob, carol):
    post = ready_post(ctx, ana, "hello")
    comment = interactions.add_comment(ctx, carol, post.id, "look @bob #notindexed")
    assert [(n["actor_id"], n["comment_id"]) for n in mentions_of(ctx, bob)] == [(carol.id, comment.id)]
    assert all_rows(ctx, "tag_posts") == []  # tags in comments are links, not directory entries
    assert notifications.unread_count(ctx, bob.id) == 1


def test_deleting_a_post_takes_back_the_mentions_in_its_caption_and_comments(ctx, ana, bob, carol):
    post = ready_post(ctx, ana, "with @bob")
    interactions.add_comment(ctx, ana, post.id, "and @carol too")
    kept = ready_post(ctx, ana, "again @bob")
    assert len(mentions_of(ctx, bob)) == 2 and len(mentions_of(ctx, carol)) == 1
    delete_post(ctx, ana, post.id)
    ctx.backends.queue.run_pending()
    assert [n["post_id"] for n in mentions_of(ctx, bob)] == [kept.id]
    assert mentions_of(ctx, carol) == []
    assert notifications.unread_count(ctx, bob.id) == 1 and notifications.unread_count(ctx, carol.id) == 0
