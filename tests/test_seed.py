"""`main.py seed`: made-up data that is exactly what the services would have written."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest

from app import ids
from app.context import build_context
from app.seed import SEED_PASSWORD, SeedOptions, _ShardIds, check_site, count_users, seed
from app.services import accounts, feed, posts
from tests.backends import make_config
from tests.conftest import fetch_media, log_in
from tests.procs import one_line_error, run_cli
from tests.rungs import rung_sections

MAX_ITEMS = 10
THRESHOLD = 15
SMALL = SeedOptions(users=30, posts=240, follows_per_user=4, celebrities=1, celebrity_followers=20)


def rows(ctx, sql: str, params=()) -> list[dict]:
    found: list[dict] = []
    for reader, _shards in ctx.db.shard_groups():
        with reader as conn:
            found.extend(conn.all(sql, params))
    return found


@pytest.fixture
def seeded(make_site):
    ctx, client = make_site(feeds={"max_items": MAX_ITEMS, "celebrity_threshold": THRESHOLD})
    summary = seed(ctx, SMALL)
    return ctx, client, summary


def test_counts_and_counters_match_the_rows(seeded):
    ctx, _, summary = seeded
    users = {r["id"]: r for r in rows(ctx, "SELECT * FROM users")}
    assert len(users) == summary.users == 30
    assert summary.first_username == "seed1" and summary.last_username == "seed30"
    names = {r["username"]: r["user_id"] for r in rows(ctx, "SELECT * FROM usernames")}
    assert names == {u["username"]: i for i, u in users.items()}
    following = rows(ctx, "SELECT * FROM following")
    followers = rows(ctx, "SELECT * FROM followers")
    # Both sides of every edge, active, with the same time.
    assert {(r["user_id"], r["target_id"], r["created_at"]) for r in following} == {
        (r["follower_id"], r["user_id"], r["created_at"]) for r in followers
    }
    assert len(following) == summary.follows and all(r["state"] == "active" for r in following + followers)
    assert all(r["user_id"] != r["target_id"] for r in following)
    post_rows = rows(ctx, "SELECT * FROM posts")
    assert len(post_rows) == summary.posts == 240
    assert all(r["status"] == "ready" and r["fanout_after"] is None for r in post_rows)
    media = rows(ctx, "SELECT * FROM post_media")
    assert len(media) == summary.photos >= 240
    for user_id, user in users.items():
        assert user["post_count"] == sum(r["author_id"] == user_id for r in post_rows)
        assert user["following_count"] == sum(r["user_id"] == user_id for r in following)
        assert user["follower_count"] == sum(r["user_id"] == user_id for r in followers)
        assert user["following_count"] >= SMALL.follows_per_user
    celebrity = next(u for u in users.values() if u["username"] == "seed1")
    assert celebrity["follower_count"] == SMALL.celebrity_followers, "exactly: random follows go to others"
    celebrities = {r["user_id"]: r["follower_count"] for r in rows(ctx, "SELECT * FROM celebrities")}
    assert celebrities == {i: u["follower_count"] for i, u in users.items() if u["follower_count"] >= THRESHOLD}
    assert len(celebrities) == summary.celebrities == 1


def test_ids_live_on_their_owners_shards_and_the_sequences_carry_on_after_them(seeded):
    ctx, _, _ = seeded
    users = {r["id"] for r in rows(ctx, "SELECT id FROM users")}
    post_rows = rows(ctx, "SELECT id, author_id, created_at FROM posts")
    media = rows(ctx, "SELECT id, post_id FROM post_media")
    every = [*users, *(r["id"] for r in post_rows), *(m["id"] for m in media)]
    assert len(set(every)) == len(every)
    for r in post_rows:
        assert ids.shard_of(r["id"]) == ids.shard_of(r["author_id"])
        assert r["created_at"] == ids.unix_ms_of(r["id"])
        assert r["id"] > r["author_id"], "a post is newer than its author's account"
    for m in media:
        assert ids.shard_of(m["id"]) == ids.shard_of(m["post_id"])
    for shard in {ids.shard_of(i) for i in every}:
        with ctx.db.write(shard) as conn:
            assert ids.next_id(conn, shard) > max(i for i in every if ids.shard_of(i) == shard)


def test_feeds_hold_what_fan_out_would_have_put_there(seeded):
    ctx, _, summary = seeded
    following = defaultdict(set)
    for r in rows(ctx, "SELECT user_id, target_id FROM following"):
        following[r["user_id"]].add(r["target_id"])
    celebrities = {r["user_id"] for r in rows(ctx, "SELECT user_id FROM celebrities")}
    by_author = defaultdict(list)
    for r in rows(ctx, "SELECT id, author_id FROM posts"):
        by_author[r["author_id"]].append(r["id"])
    total = 0
    for r in rows(ctx, "SELECT id FROM users"):
        user_id = r["id"]
        authors = {user_id} | (following[user_id] - celebrities)
        expected = sorted((p for a in authors for p in by_author[a]), reverse=True)[:MAX_ITEMS]
        assert ctx.backends.feeds.page(user_id, None, 1000) == expected
        total += len(expected)
    assert total == summary.feed_items
    assert any(
        len(ctx.backends.feeds.page(r["id"], None, 1000)) == MAX_ITEMS for r in rows(ctx, "SELECT id FROM users")
    )


@pytest.fixture
def top_rung_site(request, tmp_path):
    """A site on the top rung whatever PINHOLE_TEST_RUNG says: Postgres shards on two servers, feeds in Redis."""
    sections = {"feeds": {"max_items": MAX_ITEMS, "celebrity_threshold": THRESHOLD}, "queue": {"embedded_workers": 0}}
    ctx = build_context(make_config(tmp_path, **rung_sections(request, tmp_path, sections, rung="top")))
    ctx.db.migrate()
    yield ctx
    ctx.close()


def test_on_the_top_rung_feeds_are_seeded_into_the_feed_store_and_read_by_home_feed(top_rung_site):
    ctx = top_rung_site
    assert (ctx.db.dialect, ctx.config.feeds.backend) == ("postgres", "redis")
    summary = seed(ctx, SMALL)
    assert rows(ctx, "SELECT * FROM feed_items") == [], "nothing in the SQL table a Redis feed store never reads"
    following = defaultdict(set)
    for r in rows(ctx, "SELECT user_id, target_id FROM following"):
        following[r["user_id"]].add(r["target_id"])
    by_author = defaultdict(list)
    for r in rows(ctx, "SELECT id, author_id FROM posts"):
        by_author[r["author_id"]].append(r["id"])
    users = accounts.get_users(ctx, [r["id"] for r in rows(ctx, "SELECT id FROM users")])
    stored = 0
    for user_id, viewer in users.items():
        stored += len(ctx.backends.feeds.page(user_id, None, 1000))
        # The first page: the newest of everyone followed, celebrities' posts merged in as the feed is read.
        expected = sorted((p for a in {user_id} | following[user_id] for p in by_author[a]), reverse=True)[:5]
        shown, _cursor = feed.home_feed(ctx, viewer, None, 5)
        assert [p.id for p in shown] == expected
    assert stored == summary.feed_items > 0


def test_every_post_loads_and_its_photos_are_served(seeded):
    ctx, client, _ = seeded
    post_ids = [r["id"] for r in rows(ctx, "SELECT id FROM posts ORDER BY id")]
    served = set()
    for post_id in post_ids:
        post = posts.get_post(ctx, post_id, None)
        assert post.status == "ready" and post.media
        for media in post.media:
            assert media.width and media.height and media.blurhash and media.alt_text
            assert set(media.urls) == {"1080", "640", "320", "150sq"}
            served.add(media.urls["320"]["webp"])
    assert 1 < len(served) <= 4, "a few template photos, shared"
    for url in served:
        key = url.removeprefix("/media/")
        assert ctx.backends.blobs.exists(key)
        answer = fetch_media(client, url)  # served by the app, or where it redirects (photos on S3)
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/webp"
    # A post that is not a template shows the template's files too.
    page = client.get(f"/p/{post_ids[-1]}")
    assert page.status_code == 200
    assert re.search(r'src="/media/posts/\d+/seed-[a-z_0-9]+-\w+\.(webp|jpg)"', page.text)


def test_a_seeded_user_signs_in_with_the_seed_password_and_sees_their_feed(seeded):
    ctx, client, _ = seeded
    user = accounts.find_user(ctx, "seed7")
    assert user is not None
    assert accounts.authenticate(ctx, "seed7", SEED_PASSWORD) is not None
    assert log_in(client, "seed7", SEED_PASSWORD).status_code == 303
    home = client.get("/")
    assert home.status_code == 200
    newest = ctx.backends.feeds.page(user.id, None, 1)
    assert newest, "every seeded feed here has posts"
    assert f"/p/{newest[0]}" in home.text


def test_a_site_with_accounts_is_refused_unless_force_add(seeded):
    ctx, _, _ = seeded
    with pytest.raises(Exception, match="already has 30 account"):
        check_site(ctx, SMALL)
    before = count_users(ctx)
    more = seed(ctx, SeedOptions(users=5, posts=10, follows_per_user=2, force_add=True))
    assert (more.first_username, more.last_username) == ("seed31", "seed35")
    assert count_users(ctx) == before + 5


def test_the_id_allocator_spreads_ids_and_never_goes_back():
    alloc = _ShardIds(3, -1, 0)
    spread = alloc.take(4, 1000, 5000)
    assert [ids.unix_ms_of(i) - ids.EPOCH_MS for i in spread] == [1000, 2000, 3000, 4000]
    assert {ids.shard_of(i) for i in spread} == {3}
    # A window already passed (the shard's sequence is later): packed right after, 1024 a millisecond.
    packed = alloc.take(1030, 0, 10)
    assert packed == sorted(packed) and packed[0] > spread[-1]
    assert [ids.unix_ms_of(i) - ids.EPOCH_MS for i in (packed[0], packed[1022], packed[1023])] == [4000, 4000, 4001]
    assert len(set(spread + packed)) == 1034


# --- the command line ---


@pytest.fixture
def site(tmp_path):
    make_config(tmp_path)
    path = tmp_path / "config.toml"
    assert run_cli("migrate", config=path).returncode == 0
    return path


def test_the_command_seeds_then_refuses_a_second_run(site):
    args = ("seed", "--users", "12", "--posts", "40", "--follows-per-user", "3")
    result = run_cli(*args, config=site)
    assert result.returncode == 0, result.stderr
    summary = r"seeded 12 accounts \(seed1 to seed12, password 'pinhole seed password'\), 36 follows, 40 posts"
    assert re.search(summary, result.stdout), result.stdout
    again = run_cli(*args, config=site)
    assert again.returncode == 1
    line = one_line_error(again)
    assert "already has 12 account(s)" in line and "--force-add" in line
    added = run_cli(*args, "--force-add", config=site)
    assert added.returncode == 0, added.stderr
    assert "seed13 to seed24" in added.stdout


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ("--users 5 --posts 1 --follows-per-user 5", "--follows-per-user must be from 0 to"),
        ("--users 0 --posts 1 --follows-per-user 0", "--users must be from 1"),
        ("--users 5 --posts -1 --follows-per-user 1", "--posts must be from 0"),
        ("--users 5 --posts 1 --follows-per-user 1 --celebrities 1", "go together"),
        (
            "--users 5 --posts 1 --follows-per-user 1 --celebrities 1 --celebrity-followers 5",
            "--celebrity-followers must be from 0",
        ),
    ],
)
def test_impossible_numbers_are_one_line_and_exit_2(site, extra, words):
    result = run_cli("seed", *extra.split(), config=site)
    assert result.returncode == 2
    assert words in one_line_error(result)


def test_an_unmigrated_site_says_to_migrate(tmp_path):
    make_config(tmp_path)
    result = run_cli("seed", "--users", "3", "--posts", "3", "--follows-per-user", "1", config=tmp_path / "config.toml")
    assert result.returncode == 1
    assert "migrate" in one_line_error(result)


def test_help():
    result = run_cli("seed", "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: main.py seed") and "--follows-per-user" in result.stdout


def test_hello_is_plain_text_for_anyone(client):
    """The baseline the feed benchmark compares to (scaling/bench/bench_feed.py)."""
    answer = client.get("/hello")
    assert answer.status_code == 200
    assert answer.text == "Hello from Pinhole\n" and answer.headers["content-type"].startswith("text/plain")
