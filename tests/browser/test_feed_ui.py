"""The home feed in Chromium on a phone: cards, a several-photo card's carousel, infinite scroll through htmx, the
"new posts" banner arriving live when a followed account posts, and the Older posts link without JavaScript.

This module runs its own server (one embedded queue worker) on a data dir seeded through the services before it
starts: bob follows ana, who posted 13 times (the newest with three photos). The `open_context` fixture fails a
test on any console error, CSP violation or failed request. Screenshots: tests/artifacts/feed-*.png.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Page, expect

from app.context import build_context
from app.services import accounts, graph
from app.services.posts import PhotoUpload, create_post
from tests.backends import make_config
from tests.browser.conftest import PHONE, shoot
from tests.procs import Procs

GOOD = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "images" / "good"
PHOTOS = ["flower.jpg", "flower2.jpg", "hopper.jpg"]
PASSWORD = "correct horse battery"
POSTS = 13  # more than one page (10): the rest come by scrolling


def ana_posts(ctx, ana, number: int, photos: int = 1):
    uploads = [
        PhotoUpload((GOOD / PHOTOS[(number + k) % len(PHOTOS)]).read_bytes(), alt_text=f"Post {number}, photo {k + 1}")
        for k in range(photos)
    ]
    return create_post(ctx, ana, uploads, caption=f"Walk number {number} #outdoors")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("feed-site")
    config = make_config(
        tmp,
        queue={"embedded_workers": 1},
        limits={"signup_per_ip": 1000, "login_per_ip": 1000, "login_per_account": 1000},
        log={"level": "warning", "format": "text"},
    )
    ctx = build_context(config)
    ctx.db.migrate()
    ctx.hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # seeding only; logins rehash
    ana = accounts.create_user(ctx, "ana", PASSWORD, by_operator=True)
    bob = accounts.create_user(ctx, "bob", PASSWORD, by_operator=True)
    graph.follow(ctx, bob, ana)
    for number in range(1, POSTS + 1):
        ana_posts(ctx, ana, number, photos=3 if number == POSTS else 1)
    ctx.backends.queue.run_pending()  # processed and fanned out before the server starts
    procs = Procs(tmp / "logs")
    try:
        yield ctx, ana, procs.serve(config.source)
    finally:
        procs.close()
        ctx.close()


@pytest.fixture(scope="module")
def server(site) -> str:
    """Overrides the session server of tests/browser/conftest.py for this module (open_context uses it)."""
    return site[2].url


def log_in(page: Page, username: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/$"))


def card_ids(page: Page) -> list[str]:
    return page.eval_on_selector_all("article.feed-card", "(cards) => cards.map((card) => card.id)")


def wait_until(page: Page, script: str, timeout: float = 10) -> None:
    """Poll a JS expression with page.evaluate: wait_for_function evals a string, which this CSP blocks."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(script):
        assert time.monotonic() < deadline, f"still false after {timeout}s: {script}"
        page.wait_for_timeout(50)


def test_the_feed_on_a_phone(open_context, site):
    ctx, ana, _server = site
    context, _watch = open_context(**PHONE)
    page = context.new_page()
    log_in(page, "bob")
    expect(page.locator("article.feed-card")).to_have_count(10)
    first = page.locator("article.feed-card").first
    expect(first.locator(".username").first).to_have_text("ana")
    expect(first.locator("time")).to_have_text("just now")
    expect(first.get_by_role("img", name="Post 13, photo 1")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the feed scrolls sideways by {overflow}px on a phone"
    shoot(page, "feed-phone", full_page=False)

    # The newest card has three photos: the arrow and the keyboard move through them, the dots follow.
    dots = first.locator(".dots .dot")
    expect(dots).to_have_count(3)
    first.get_by_role("button", name="Next photo").click()
    expect(dots.nth(1)).to_have_attribute("aria-current", "true")
    first.locator(".carousel").press("ArrowRight")
    expect(dots.nth(2)).to_have_attribute("aria-current", "true")
    expect(first.get_by_role("button", name="Next photo")).to_be_hidden()

    # Scrolling to the end brings the older posts in through htmx, once each, and then the end of the feed.
    for _ in range(40):
        if page.locator(".feed-end").count():
            break
        page.mouse.wheel(0, 4000)
        page.wait_for_timeout(150)
    expect(page.locator(".feed-end")).to_be_visible()
    ids = card_ids(page)
    assert len(ids) == POSTS and len(set(ids)) == POSTS
    assert page.url.endswith("/")  # scrolling never navigated
    shoot(page, "feed-phone-end", full_page=False)

    # ana posts: the banner appears live, and following it shows the new post first.
    page.evaluate("window.scrollTo(0, 0)")
    banner = page.locator("#new-posts")
    expect(banner).to_be_hidden()
    fresh = ana_posts(ctx, ana, 99)  # processed and fanned out by the server's own worker
    expect(banner).to_be_visible(timeout=20_000)
    expect(banner).to_have_text("New posts — show them")
    shoot(page, "feed-phone-new-posts", full_page=False)
    banner.click()
    expect(page.locator("article.feed-card").first).to_have_id(f"post-{fresh.id}")


def test_older_posts_without_javascript(open_context, site):
    context, _watch = open_context(**PHONE, java_script_enabled=False)
    page = context.new_page()
    log_in(page, "bob")
    newest = card_ids(page)
    assert len(newest) == 10
    page.get_by_role("link", name="Older posts").click()
    expect(page).to_have_url(re.compile(r"/\?before=\d+$"))
    older = card_ids(page)
    assert older and not set(older) & set(newest)
    expect(page.get_by_role("link", name="Back to the newest posts")).to_be_visible()
