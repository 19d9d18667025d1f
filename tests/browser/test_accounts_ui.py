"""Accounts, as a person on a phone sees them: sign up, profile, photo, log out and in, password.

Every page visited must load without console errors, CSP violations or failed requests (the
`open_context` fixture checks at teardown), fit the phone's width, and give every button a
touch target of at least 44 px. Screenshots land in tests/artifacts/.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import DESKTOP, PHONE, shoot

FLOWER = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "images" / "good" / "flower.jpg"
PASSWORD = "correct horse battery"
NEW_PASSWORD = "staple battery horse"

# Buttons and button-like links; inline links inside a sentence are exempt (WCAG 2.5.8).
TOUCH_TARGETS = "button, .button, .navlink, .tabs a, input[type=file], input[type=checkbox]"


def fits_the_phone(page: Page) -> None:
    """No sideways scrolling, and every control is big enough for a thumb."""
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px on a phone"
    small = page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)]
            .filter((el) => el.offsetParent !== null)
            .map((el) => [el, el.type === "checkbox" ? el.closest("label") || el : el])
            .map(([el, target]) => [el, target.getBoundingClientRect()])
            .filter(([el, box]) => box.height < 44 || box.width < 44)
            .map(([el, box]) => `${el.outerHTML.slice(0, 80)}: ${Math.round(box.width)}x${Math.round(box.height)}`)""",
        TOUCH_TARGETS,
    )
    assert not small, f"touch targets under 44px on {page.url}:\n" + "\n".join(small)


def main_nav(page: Page):
    return page.get_by_role("navigation", name="Main")


def src_of(img) -> str:
    return img.get_attribute("src") or ""


def wait_for_avatar(page: Page, img, seconds: float = 20) -> str:
    """Reload the editor until the queue worker has made the square photo; returns its src."""
    deadline = time.monotonic() + seconds
    while True:
        src = img.get_attribute("src") or ""
        if src.startswith("/media/avatars/"):
            return src
        assert time.monotonic() < deadline, f"avatar still {src!r} after {seconds}s"
        page.wait_for_timeout(250)
        page.reload()


def sign_up(page: Page, username: str, password: str = PASSWORD) -> None:
    page.goto("/signup")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/settings/profile\?welcome=1$"))


def log_in(page: Page, username: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_a_new_person_on_a_phone(phone: Page, open_context):
    page = phone

    # The front door.
    page.goto("/")
    expect(page.get_by_role("heading", name="Pinhole", level=1)).to_be_visible()
    fits_the_phone(page)
    shoot(page, "phone-welcome")
    main_nav(page).get_by_role("link", name="Sign up").tap()
    expect(page).to_have_url(re.compile(r"/signup$"))

    # A name the server refuses: the error says why, next to the field, and keeps what was typed.
    page.get_by_label("Username").fill("Ana Lens!")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").tap()
    username = page.get_by_label("Username")
    expect(username).to_have_attribute("aria-invalid", "true")
    expect(username).to_have_value("Ana Lens!")
    expect(page.locator("#username-note")).to_contain_text("Usernames may use")
    expect(page.get_by_label("Password")).to_have_value("")
    fits_the_phone(page)
    shoot(page, "phone-signup-error")

    username.fill("ana.lens")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").tap()

    # Straight into the profile editor, greeted.
    expect(page).to_have_url(re.compile(r"/settings/profile\?welcome=1$"))
    expect(page.get_by_role("status").first).to_contain_text("Welcome to Pinhole, ana.lens!")
    fits_the_phone(page)
    shoot(page, "phone-profile-editor-welcome")

    page.get_by_label("Name").fill("Ana Lens")
    page.get_by_label("Bio").fill("Film, fog and flowers.\nLisbon.")
    page.get_by_role("button", name="Save profile").tap()
    expect(page).to_have_url(re.compile(r"\?saved=1$"))
    expect(page.get_by_role("status").first).to_have_text("Saved.")
    expect(page.get_by_label("Name")).to_have_value("Ana Lens")
    expect(page.get_by_label("Bio")).to_have_value("Film, fog and flowers.\nLisbon.")

    # A profile photo: uploaded now, ready once the worker has made it. The editor shows it by itself
    # (htmx polls while it is prepared); without JavaScript a reload does (see the no-JS test).
    photo = page.get_by_alt_text("Your profile photo")
    expect(photo).to_have_attribute("src", re.compile(r"^/static/avatar\.svg"))
    page.get_by_label("Profile photo").set_input_files(FLOWER)
    page.get_by_role("button", name="Upload photo").tap()
    expect(page).to_have_url(re.compile(r"/settings/profile$"))
    expect(photo).to_have_attribute("src", re.compile(r"^/media/avatars/"), timeout=20_000)
    expect(page.get_by_role("button", name="Remove photo")).to_be_visible()
    expect(photo).to_have_js_property("naturalWidth", 320)
    expect(main_nav(page).get_by_role("link", name="Your profile").locator("img")).to_have_attribute(
        "src", src_of(photo)
    )
    fits_the_phone(page)
    shoot(page, "phone-profile-editor")

    # Removing it works from the controls the live update brought in; then the photo goes back up.
    page.get_by_role("button", name="Remove photo").tap()
    expect(photo).to_have_attribute("src", re.compile(r"^/static/avatar\.svg"))
    expect(page.get_by_role("button", name="Remove photo")).to_have_count(0)
    page.get_by_label("Profile photo").set_input_files(FLOWER)
    page.get_by_role("button", name="Upload photo").tap()
    src = wait_for_avatar(page, photo)
    expect(photo).to_have_js_property("naturalWidth", 320)

    # The public profile: photo, name, bio.
    page.goto("/@ana.lens")
    expect(page.get_by_role("heading", name="ana.lens", level=1)).to_be_visible()
    expect(page.locator(".profile .name")).to_have_text("Ana Lens")
    expect(page.locator(".profile .bio")).to_have_text("Film, fog and flowers.\nLisbon.")
    face = page.get_by_alt_text("Profile photo of ana.lens")
    expect(face).to_have_attribute("src", src)
    expect(face).to_have_js_property("naturalWidth", 320)
    expect(page.get_by_role("link", name="Edit profile")).to_be_visible()
    fits_the_phone(page)
    shoot(page, "phone-profile")

    # The same profile seen by a stranger at a desk, and on a phone at night.
    desk, _ = open_context(**DESKTOP)
    desk_page = desk.new_page()
    desk_page.goto("/@ana.lens")
    expect(desk_page.get_by_alt_text("Profile photo of ana.lens")).to_have_attribute("src", src)
    expect(desk_page.get_by_role("link", name="Edit profile")).to_have_count(0)
    shoot(desk_page, "desktop-profile")
    desk_page.goto("/")
    shoot(desk_page, "desktop-welcome")
    night, _ = open_context(**PHONE, color_scheme="dark")
    night_page = night.new_page()
    night_page.goto("/@ana.lens")
    expect(night_page.locator(".profile .name")).to_have_text("Ana Lens")
    shoot(night_page, "phone-dark-profile")
    night_page.goto("/signup")
    night_page.get_by_role("button", name="Sign up").tap()
    expect(night_page.locator("#username-note")).to_contain_text("Choose a username")
    shoot(night_page, "phone-dark-signup-error")

    # Log out: the site forgets this phone.
    page.get_by_role("button", name="Log out").tap()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(main_nav(page).get_by_role("link", name="Log in")).to_be_visible()

    # A wrong password: a clear error, the username kept, no hint of which part was wrong.
    main_nav(page).get_by_role("link", name="Log in").tap()
    expect(page).to_have_url(re.compile(r"/login$"))
    fits_the_phone(page)
    shoot(page, "phone-login")
    page.get_by_label("Username").fill("ana.lens")
    page.get_by_label("Password").fill("not my password")
    page.get_by_role("button", name="Log in").tap()
    expect(page.get_by_role("alert")).to_contain_text("username and password don't match")
    expect(page.get_by_label("Username")).to_have_value("ana.lens")
    shoot(page, "phone-login-error")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").tap()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", name="Welcome, Ana Lens")).to_be_visible()
    expect(main_nav(page).get_by_role("link", name="Your profile")).to_be_visible()
    fits_the_phone(page)
    shoot(page, "phone-home")

    # Change the password, from Settings (reached from your profile).
    main_nav(page).get_by_role("link", name="Your profile").tap()
    page.get_by_role("link", name="Edit profile").tap()
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Password").tap()
    expect(page).to_have_url(re.compile(r"/settings/password$"))
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").tap()
    expect(page).to_have_url(re.compile(r"\?changed=1$"))
    expect(page.get_by_role("status")).to_contain_text("Password changed")
    fits_the_phone(page)
    shoot(page, "phone-password")

    # Still signed in here; the new password is the one that works now.
    page.goto("/")
    expect(page.get_by_role("heading", name="Welcome, Ana Lens")).to_be_visible()
    page.get_by_role("button", name="Log out").tap()
    expect(main_nav(page).get_by_role("link", name="Log in")).to_be_visible()
    log_in(page, "ana.lens", PASSWORD)
    expect(page.get_by_role("alert")).to_contain_text("don't match")
    log_in(page, "ana.lens", NEW_PASSWORD)
    expect(page.get_by_role("heading", name="Welcome, Ana Lens")).to_be_visible()


def test_missing_pages_are_friendly(phone: Page):
    for path in ("/@nobody.here", "/no/such/page"):
        answer = phone.goto(path)
        assert answer is not None and answer.status == 404
        expect(phone.get_by_role("heading", name="Not found")).to_be_visible()
        expect(phone.get_by_role("link", name="Back to Pinhole")).to_be_visible()
        fits_the_phone(phone)
    shoot(phone, "phone-404")
    phone.get_by_role("link", name="Back to Pinhole").tap()
    expect(phone).to_have_url(re.compile(r"/$"))


def test_sign_up_and_log_in_without_javascript(open_context):
    context, _ = open_context(**PHONE, java_script_enabled=False)
    page = context.new_page()
    sign_up(page, "no.script")
    expect(page.get_by_role("status").first).to_contain_text("Welcome to Pinhole, no.script!")
    page.get_by_label("Name").fill("No Script")
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_role("status").first).to_have_text("Saved.")

    # The photo upload works too; the page's Refresh link stands in for the live update.
    page.get_by_label("Profile photo").set_input_files(FLOWER)
    page.get_by_role("button", name="Upload photo").click()
    photo = page.get_by_alt_text("Your profile photo")
    deadline = time.monotonic() + 20
    while not src_of(photo).startswith("/media/avatars/"):
        assert time.monotonic() < deadline, "the photo was not ready after 20 s"
        page.wait_for_timeout(250)
        refresh = page.get_by_role("link", name="Refresh")
        if refresh.count():
            refresh.click()
            page.wait_for_load_state()
    expect(photo).to_have_js_property("naturalWidth", 320)
    page.get_by_role("button", name="Log out").click()
    expect(main_nav(page).get_by_role("link", name="Log in")).to_be_visible()
    log_in(page, "no.script", PASSWORD)
    expect(page.get_by_role("heading", name="Welcome, No Script")).to_be_visible()


def test_sign_up_with_the_keyboard_alone(open_context):
    context, _ = open_context(**DESKTOP)
    page = context.new_page()
    page.goto("/signup")
    focused = "() => document.activeElement && (document.activeElement.id || document.activeElement.className)"

    # The first Tab shows the skip link, and it lands on the form's page content.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0, "the focused skip link should be on screen"

    for _ in range(10):
        if page.evaluate(focused) == "f-username":
            break
        page.keyboard.press("Tab")
    expect(page.get_by_label("Username")).to_be_focused()
    page.keyboard.type("kay.board")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/settings/profile\?welcome=1$"))
    expect(page.get_by_role("status").first).to_contain_text("Welcome to Pinhole, kay.board!")
