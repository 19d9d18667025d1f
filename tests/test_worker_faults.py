"""A worker node killed with SIGKILL in the middle of a task: the queue delivers at most once, so the task is lost;
the post records its state, and the sweep has the next worker finish it, exactly once (ladder.md, "The queue")."""

from __future__ import annotations

import signal

from app import ids
from app.context import build_context
from app.services import accounts, graph, posts
from tests.backends import make_config
from tests.conftest import PASSWORD, TESTDATA, all_rows
from tests.procs import procs, wait_for  # noqa: F401 (fixture)
from tests.rungs import rung_sections

PHOTOS = [TESTDATA / "good" / name for name in ("flower.jpg", "flower2.jpg", "hopper_bad_exif.jpg")]
TRIES = 3  # posts to upload until one is caught mid-task (a fast machine may finish one before the kill lands)


def status(ctx, post_id: int) -> str:
    with ctx.db.read(ids.shard_of(post_id)) as conn:
        return conn.value("SELECT status FROM posts WHERE id = ?", (post_id,))


def test_a_task_lost_with_its_killed_worker_is_finished_once_by_the_sweep(request, tmp_path, procs, monkeypatch):  # noqa: F811
    sections = {"queue": {"embedded_workers": 0}}
    config = make_config(tmp_path, **rung_sections(request, tmp_path, sections))
    ctx = build_context(config)
    request.addfinalizer(ctx.close)
    ctx.db.migrate()
    ana = accounts.create_user(ctx, "ana", PASSWORD, by_operator=True)
    bob = accounts.create_user(ctx, "bob", PASSWORD, by_operator=True)
    graph.follow(ctx, bob, ana)
    ctx.backends.queue.run_pending()
    ten_photos = [posts.PhotoUpload(PHOTOS[i % len(PHOTOS)].read_bytes()) for i in range(10)]

    lost = None
    for _ in range(TRIES):
        worker = procs.worker(str(config.source), threads=1)
        post = posts.create_post(ctx, ana, ten_photos, caption="ten at once")
        wait_for(lambda: ctx.backends.queue.pending() == 0, 30, "the worker taking the task")
        worker.kill_group(signal.SIGKILL)
        assert worker.wait_group_gone(10)
        if status(ctx, post.id) == "processing":  # the task went with the worker
            lost = post
            break
    assert lost is not None, f"no task was caught mid-way in {TRIES} tries"
    finished_before = {p.id for p in posts.list_author_posts(ctx, ana, ana, None, 50)}

    # Later than [media] processing_timeout_seconds: the minute sweep finds the post and queues its task again.
    later = posts.now_ms() + (config.media.processing_timeout_seconds + 1) * 1000
    monkeypatch.setattr(posts, "now_ms", lambda: later)
    assert posts.sweep_stuck_posts(ctx) == 1
    assert posts.sweep_stuck_posts(ctx) == 0  # a second sweep (another node) finds nothing to do
    procs.worker(str(config.source), threads=1)
    wait_for(lambda: status(ctx, lost.id) == "ready", 60, "the swept task finished by the next worker", 0.1)

    # Exactly once: one post with its ten photos, counted once, once in the follower's feed, every rendition stored.
    mine = [p.id for p in posts.list_author_posts(ctx, ana, ana, None, 50)]
    assert mine.count(lost.id) == 1 and set(mine) == finished_before | {lost.id}
    assert accounts.get_user(ctx, ana.id).post_count == len(mine)
    assert len(all_rows(ctx, "post_media", "WHERE post_id = ?", (lost.id,))) == 10
    wait_for(lambda: lost.id in ctx.backends.feeds.page(bob.id, None, 50), 30, "the post in the follower's feed")
    assert ctx.backends.feeds.page(bob.id, None, 50).count(lost.id) == 1
    ready = posts.get_post(ctx, lost.id, ana)
    assert all(ctx.backends.blobs.exists(key) for key in posts.media_keys(ready))
