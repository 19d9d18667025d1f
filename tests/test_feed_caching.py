"""What makes the home feed page fast without making it wrong: the celebrity list kept in process memory for a few
seconds (a threshold crossed shows at once where it happened, within CELEBRITIES_MEMO_SECONDS elsewhere), and
templates not re-read from disk outside development."""

from __future__ import annotations

import pytest

from app.context import build_context
from app.services import feed, graph
from tests.test_feed import cheap, share, shown, user


@pytest.fixture
def clock(monkeypatch):
    """time.monotonic as feed.py sees it, moved by hand."""
    now = [1000.0]
    monkeypatch.setattr(feed.time, "monotonic", lambda: now[0])
    return now


def test_a_threshold_crossed_shows_at_once_here_and_within_the_memo_window_in_other_processes(make_site, clock):
    ctx, _ = make_site(feeds={"celebrity_threshold": 2})
    cheap(ctx)
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
