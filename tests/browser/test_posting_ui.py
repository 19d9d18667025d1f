"""Posting photos on a phone: choose two photos, a filter with its live preview, alt text, a caption, share with
a progress bar, watch the processing state turn into the photos without a reload, then browse and delete.

This module runs its own server with no embedded queue worker, so the post stays "processing" until the test
starts `main.py worker`: the processing state is seen for certain, not by winning a race. The `open_context`
fixture (tests/browser/conftest.py) fails the test on any console error, CSP violation or failed request.
Screenshots: tests/artifacts/posting-*.png.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.backends import make_config
from tests.browser.conftest import DESKTOP, PHONE, shoot
from tests.procs import Procs

IMAGES = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "images"
PHOTOS = [IMAGES / "good" / "flower.jpg", IMAGES / "good" / "flower2.jpg"]
PASSWORD = "correct horse battery"
TOUCH_TARGETS = "button, .button, .navlink, .thumb-pick, .thumb-add, .filter-choice, input[type=checkbox]"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("posting-site")
    config = make_config(
        tmp,
        queue={"embedded_workers": 0},
        limits={"signup_per_ip": 1000, "login_per_ip": 1000, "login_per_account": 1000},
        log={"level": "warning", "format": "text"},
    )
    procs = Procs(tmp / "logs")
    try:
        yield procs, config, procs.serve(config.source)
    finally:
        procs.close()


def start_worker(procs: Procs, config) -> None:
    """`main.py worker` for this module's site, once."""
    if not any(proc.name == "worker" and proc.alive() for proc in procs.started):
        procs.worker(config.source, threads=1)


@pytest.fixture(scope="module")
def server(site) -> str:
    """Overrides the session server of tests/browser/conftest.py for this module (open_context uses it)."""
    return site[2].url


def sign_up(page: Page, username: str) -> None:
    page.goto("/signup")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/settings/profile\?welcome=1$"))


def fits_the_phone(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px on a phone"
    small = page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)]
            .filter((el) => el.offsetParent !== null && el.getBoundingClientRect().width > 1)
            .map((el) => [el, el.type === "checkbox" ? el.closest("label") || el : el])
            .map(([el, target]) => [el, target.getBoundingClientRect()])
            .filter(([el, box]) => box.height < 44 || box.width < 44)
            .map(([el, box]) => `${el.outerHTML.slice(0, 80)}: ${Math.round(box.width)}x${Math.round(box.height)}`)""",
        TOUCH_TARGETS,
    )
    assert not small, f"touch targets under 44px on {page.url}:\n" + "\n".join(small)


def wait_until(page: Page, script: str, timeout: float = 10) -> None:
    """Poll a JS expression with page.evaluate: wait_for_function evals a string, which this CSP blocks."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(script):
        assert time.monotonic() < deadline, f"still false after {timeout}s: {script}"
        page.wait_for_timeout(50)


def computed_filter(page: Page, selector: str) -> str:
    return page.eval_on_selector(selector, "(el) => getComputedStyle(el).filter")


def test_posting_two_photos_on_a_phone(open_context, site):
    procs, config, _server = site
    context, _watch = open_context(
        **PHONE, permissions=["geolocation"], geolocation={"latitude": 48.85837, "longitude": 2.294481}
    )
    page = context.new_page()
    sign_up(page, "lena")

    # The composer, empty: the nav's New post button leads here.
    page.get_by_role("link", name="New post").click()
    expect(page).to_have_url(re.compile(r"/upload$"))
    expect(page.get_by_role("heading", name="New post")).to_be_visible()
    expect(page.get_by_role("button", name="Choose photos")).to_be_visible()
    fits_the_phone(page)
    shoot(page, "posting-upload-empty")

    # Two photos: previews, a thumbnail strip, a filter strip.
    page.set_input_files("#f-photos", [str(p) for p in PHOTOS])
    expect(page.locator("#thumbs .thumb-pick")).to_have_count(2)
    expect(page.locator("#stage-img")).to_be_visible()
    wait_until(page, "document.getElementById('stage-img').naturalWidth > 0")
    assert computed_filter(page, "#stage-img") == "none"

    # A filter for photo 1: the preview takes the recipe's CSS filter (set through the CSSOM, CSP-safe).
    page.get_by_role("button", name="Clarendon").click()
    expect(page.get_by_role("button", name="Clarendon")).to_have_attribute("aria-pressed", "true")
    assert "contrast(1.2)" in computed_filter(page, "#stage-img")
    assert page.locator("#stage-pic .fx-layer").count() == 1  # its colour overlay
    assert page.locator("#filter-0").input_value() == "clarendon"
    page.get_by_label("Alt text for photo 1", exact=True).fill("A pink flower, close up")

    # Photo 2 keeps Normal; its own alt text.
    page.get_by_role("button", name=re.compile(r"^Photo 2")).click()
    expect(page.get_by_label("Alt text for photo 2", exact=True)).to_be_visible()
    assert computed_filter(page, "#stage-img") == "none"
    page.get_by_role("button", name="Moon").click()
    assert "grayscale(1)" in computed_filter(page, "#stage-img")
    page.get_by_role("button", name="Normal").click()
    assert computed_filter(page, "#stage-img") == "none"
    page.get_by_label("Alt text for photo 2", exact=True).fill("Yellow flowers in a garden")

    # Back on photo 1, its look and words are still there.
    page.get_by_role("button", name=re.compile(r"^Photo 1")).click()
    assert "contrast(1.2)" in computed_filter(page, "#stage-img")
    expect(page.get_by_label("Alt text for photo 1", exact=True)).to_have_value("A pink flower, close up")

    # The counter counts characters as the server does: an emoji is one.
    page.get_by_label("Caption").fill("Spring 🌸")
    expect(page.locator("#caption-note")).to_have_text("8 / 2,200")
    caption = "Spring in the garden.\nTwo favourites from this morning."
    page.get_by_label("Caption").fill(caption)
    expect(page.locator("#caption-note")).to_have_text(f"{len(caption)} / 2,200")
    page.get_by_label("Name", exact=True).fill("Jardin des Plantes")
    page.get_by_role("button", name="Use my location").click()
    expect(page.get_by_label("Latitude")).to_have_value("48.85837")
    expect(page.get_by_label("Longitude")).to_have_value("2.29448")
    fits_the_phone(page)
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, "posting-upload")

    # Share over a slow uplink, so the progress bar is seen moving.
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 60 * 1024},
    )
    page.evaluate("window.__sameDocument = 'upload'")
    page.get_by_role("button", name="Share").click()
    expect(page.locator("#progress")).to_be_visible()
    expect(page.locator("#progress-text")).to_contain_text("Uploading…")
    expect(page.get_by_role("button", name="Sharing…")).to_be_disabled()
    wait_until(page, "document.getElementById('progress-bar').value > 0")
    shoot(page, "posting-uploading", full_page=False)

    # The post page, processing: no worker runs yet.
    expect(page).to_have_url(re.compile(r"/p/\d+$"), timeout=20_000)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    expect(page.get_by_text("Preparing your 2 photos…")).to_be_visible()
    page.evaluate("window.__sameDocument = 'post'")
    shoot(page, "posting-processing")

    # A worker starts; the htmx poll swaps the photos in without reloading the page.
    start_worker(procs, config)
    images = page.locator("#post-media img")
    expect(images).to_have_count(2, timeout=15_000)
    assert page.evaluate("window.__sameDocument") == "post", "the page reloaded"
    assert [images.nth(i).get_attribute("alt") for i in range(2)] == [
        "A pink flower, close up",
        "Yellow flowers in a garden",
    ]
    wait_until(
        page, "[...document.querySelectorAll('#post-media img')].every((img) => img.complete && img.naturalWidth > 0)"
    )
    expect(page.get_by_text("Two favourites from this morning.")).to_be_visible()
    expect(page.locator(".post-head").get_by_text("Jardin des Plantes")).to_be_visible()

    # The carousel: swipe or arrows; the dots follow.
    next_button = page.get_by_role("button", name="Next photo")
    expect(next_button).to_be_visible()
    expect(page.get_by_role("button", name="Previous photo")).to_be_hidden()
    page.locator(".post-media").scroll_into_view_if_needed()
    page.evaluate("window.scrollTo(0, 0)")
    fits_the_phone(page)
    shoot(page, "posting-post")
    next_button.click()
    expect(page.locator(".dots .dot").nth(1)).to_have_attribute("aria-current", "true")
    expect(page.get_by_role("button", name="Previous photo")).to_be_visible()

    # Anyone may see a public account's post; on a wide screen it is a card. No ⋯ menu for them.
    post_url = page.url
    desktop, _ = open_context(**DESKTOP)
    visitor = desktop.new_page()
    visitor.goto(post_url)
    expect(visitor.locator("#post-media img")).to_have_count(2)
    expect(visitor.get_by_label("Post options")).to_have_count(0)
    wait_until(visitor, "document.querySelector('#post-media img').naturalWidth > 0")
    shoot(visitor, "posting-desktop-post", full_page=False)

    # The profile's grid has it as a square tile, marked as several photos; a tap opens it.
    page.goto("/@lena")
    tile = page.locator(".grid li a")
    expect(tile).to_have_count(1)
    expect(tile.locator("img")).to_have_attribute("alt", "A pink flower, close up")
    wait_until(page, "document.querySelector('.grid img').naturalWidth > 0")
    fits_the_phone(page)
    shoot(page, "posting-profile-grid", full_page=False)
    tile.click()
    expect(page).to_have_url(post_url)

    # Delete it from the ⋯ menu: back to the profile, and the post is gone.
    page.get_by_label("Post options").click()
    page.get_by_role("button", name="Delete post").click()
    expect(page).to_have_url(re.compile(r"/@lena$"))
    expect(page.get_by_text("No photos yet")).to_be_visible()
    _watch.error_documents.add(post_url)
    answer = page.goto(post_url)
    assert answer is not None and answer.status == 404


def test_the_composer_refuses_nothing_chosen_and_a_long_caption(open_context):
    """In dark mode, for its screenshot."""
    context, _watch = open_context(**PHONE, color_scheme="dark")
    page = context.new_page()
    sign_up(page, "milo")
    page.goto("/upload")
    page.get_by_role("button", name="Share").click()
    expect(page.get_by_role("alert")).to_have_text("Choose at least one photo to share.")
    page.set_input_files("#f-photos", str(PHOTOS[0]))
    page.get_by_label("Caption").fill("x" * 2201)
    expect(page.locator("#caption-note")).to_have_text("2,201 / 2,200")
    page.get_by_role("button", name="Share").click()
    expect(page.get_by_role("alert")).to_contain_text("the limit is 2,200")
    # A file the server refuses comes back as a message in the page, and the chosen photos stay.
    page.get_by_label("Caption").fill("fine")
    page.set_input_files(
        "#f-photos", {"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"%PDF-1.4 not a photo"}
    )
    expect(page.locator("#thumbs .thumb-pick")).to_have_count(2)
    page.get_by_role("button", name="Share").click()
    expect(page.get_by_role("alert")).to_contain_text("Photo 2: That file is not a photo Pinhole can read")
    expect(page).to_have_url(re.compile(r"/upload$"))
    expect(page.get_by_role("button", name="Share")).to_be_enabled()
    # That 422 answer (which Chromium logs as a failed resource) is the one the test asked for, not a fault.
    _watch.problems[:] = [p for p in _watch.problems if not ("/upload" in p and "422" in p)]
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, "posting-dark-upload-error")
    page.get_by_role("button", name="Remove photo 2").click()
    expect(page.locator("#thumbs .thumb-pick")).to_have_count(1)
    expect(page.get_by_role("alert")).to_be_hidden()


def test_the_form_works_without_javascript(open_context, site):
    procs, config, _server = site
    context, _watch = open_context(**PHONE, java_script_enabled=False)
    page = context.new_page()
    sign_up(page, "noor")
    page.goto("/upload")
    # No composer: the plain file input, and a details list of each photo's filter and alt text.
    expect(page.get_by_label("Photos", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Use my location")).to_be_hidden()
    page.get_by_label("Photos", exact=True).set_input_files([str(p) for p in PHOTOS])
    page.get_by_text("Filters and descriptions for each photo").click()
    page.locator("#filter-1").select_option("inkwell")
    page.locator("#alt-0").fill("Frangipani")
    page.locator("#alt-1").fill("Heather")
    page.get_by_label("Caption").fill("Sent without JavaScript")
    page.get_by_role("switch", name=re.compile("Content warning")).check()
    fits_the_phone(page)
    shoot(page, "posting-nojs-upload")
    page.get_by_role("button", name="Share").click()
    expect(page).to_have_url(re.compile(r"/p/\d+$"))
    expect(page.get_by_role("link", name="Refresh")).to_be_visible()

    start_worker(procs, config)
    deadline = time.monotonic() + 15
    while page.locator("#post-media img").count() == 0:
        assert time.monotonic() < deadline, "the post never became ready"
        page.wait_for_timeout(300)
        page.get_by_role("link", name="Refresh").click()
    # Sensitive: a cover first; the photos after a tap, no JavaScript needed (<details>).
    expect(page.get_by_text("Sensitive content")).to_be_visible()
    expect(page.locator("#post-media img").first).to_be_hidden()
    shoot(page, "posting-nojs-sensitive")
    page.get_by_text("Show photos").click()
    expect(page.locator("#post-media img").first).to_be_visible()
    assert page.locator("#post-media img").nth(1).get_attribute("alt") == "Heather"
