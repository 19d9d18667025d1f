"""Two people on phones: sign up, follow, post with a filter, like and comment, and each sees the other's doings in
their feed and notifications, live, in Chromium. Runs against the session's real server (one embedded queue
worker). The `open_context` fixture fails the test on any console error, CSP violation or failed request.
Screenshots: tests/artifacts/social-*.png.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, shoot

PHOTO = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "images" / "good" / "flower.jpg"
PASSWORD = "correct horse battery"


def sign_up(page: Page, username: str) -> None:
    page.goto("/signup")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/settings/profile\?welcome=1$"))


def share_a_photo(page: Page, caption: str) -> str:
    """Post one photo with the Clarendon filter; returns the post's path once its photos are ready."""
    page.get_by_role("link", name="New post").click()
    page.set_input_files("#f-photos", [str(PHOTO)])
    page.get_by_role("button", name="Clarendon").click()
    page.get_by_label("Alt text for photo 1", exact=True).fill("A pink flower, close up")
    page.get_by_label("Caption").fill(caption)
    page.get_by_role("button", name="Share").click()
    expect(page).to_have_url(re.compile(r"/p/\d+$"), timeout=20_000)
    expect(page.get_by_role("img", name="A pink flower, close up").first).to_be_visible(timeout=30_000)
    return re.search(r"/p/\d+$", page.url).group(0)


def test_two_people_follow_post_like_comment_and_are_notified(open_context):
    ana_context, _ = open_context(**PHONE)
    ben_context, _ = open_context(**PHONE)
    ana, ben = ana_context.new_page(), ben_context.new_page()
    sign_up(ana, "ana_social")
    sign_up(ben, "ben_social")

    # Ben follows Ana from her profile, without a reload.
    ben.goto("/@ana_social")
    ben.get_by_role("button", name=re.compile(r"^Follow @?ana_social|^Follow$")).click()
    expect(ben.get_by_role("button", name=re.compile(r"^Following"))).to_be_visible()
    shoot(ben, "social-profile-followed")

    # Ben's home page is open when Ana posts: the "new posts" banner appears by itself.
    ben.goto("/")
    post_path = share_a_photo(ana, "Spring is here #garden with @ben_social")
    shoot(ana, "social-post-own")
    expect(ben.locator("#new-posts")).to_be_visible(timeout=15_000)
    ben.locator("#new-posts").click()
    card = ben.locator("article", has=ben.locator(f"a[href='{post_path}']")).first
    expect(card).to_be_visible()
    expect(card.get_by_role("img", name="A pink flower, close up").first).to_be_visible()
    shoot(ben, "social-feed")

    # Ana keeps a page open; Ben likes and comments on the post page.
    ana.goto("/")
    ben.goto(post_path)
    like = ben.get_by_role("button", name="Like")
    like.click()
    expect(like).to_have_attribute("aria-pressed", "true")
    expect(ben.locator(".like-count, .likes").first).to_contain_text("1")
    ben.get_by_role("textbox", name=re.compile("comment", re.I)).fill("Lovely colours!")
    ben.get_by_role("button", name="Post").click()
    expect(ben.get_by_text("Lovely colours!")).to_be_visible()
    shoot(ben, "social-post")

    # Ana's badge counts Ben's follow, like and comment live; the notifications page groups and names them.
    expect(ana.locator("#notif-badge")).to_be_visible(timeout=15_000)
    expect(ana.locator("#notif-badge .count")).to_have_text("3")
    ana.get_by_role("link", name=re.compile("^Notifications")).click()
    for what in ("liked your", "commented", "follow"):
        expect(ana.locator("main").get_by_text(re.compile(what)).first).to_be_visible()
    expect(ana.locator("main")).to_contain_text("ben_social")
    expect(ana.locator("#notif-badge")).to_be_hidden()
    shoot(ana, "social-notifications")

    # Ben was mentioned in the caption.
    ben.goto("/notifications")
    expect(ben.locator("main").get_by_text(re.compile("mentioned you")).first).to_be_visible()

    # The tag page and Explore show the post to anyone.
    ben.goto("/tags/garden")
    expect(ben.locator(f"a[href='{post_path}']")).to_be_visible()
    ben.goto("/explore")
    shoot(ben, "social-explore")
