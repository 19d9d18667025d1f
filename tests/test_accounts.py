"""Accounts through the real app: sign-up, log-in, log-out, profile, password, registration modes."""

from __future__ import annotations

import html
import re

import pytest

from app.clock import now_ms
from app.services import accounts
from tests.conftest import PASSWORD, all_users, another_browser, csrf_token, log_in, post_form, sign_up


def logged_in_as(client) -> str | None:
    """The username the browser is signed in as, read from the page (None when logged out)."""
    page = client.get("/settings/profile", follow_redirects=False)
    if page.status_code == 303:
        assert page.headers["location"].startswith("/login")
        return None
    assert page.status_code == 200
    home = client.get("/")
    assert "Log in" not in home.text
    for user in all_users(client.app.state.ctx):
        if f'href="/@{user["username"]}"' in home.text:
            return user["username"]
    raise AssertionError("signed in, but the page names no known user")


def user_row(ctx, username: str) -> dict:
    (row,) = [u for u in all_users(ctx) if u["username"] == username]
    return row


def test_sign_up_log_out_log_in(client, ctx):
    response = sign_up(client, "Ana.Photos")
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/settings/profile")
    assert logged_in_as(client) == "ana.photos"  # stored in its lowercase form
    assert post_form(client, "/logout", {}, token_from="/").status_code == 303
    assert logged_in_as(client) is None
    assert "Log in" in client.get("/").text
    response = log_in(client, "ANA.photos")  # sign-in ignores case too
    assert response.status_code == 303
    assert logged_in_as(client) == "ana.photos"


def test_login_goes_back_to_a_local_next_but_never_offsite(client):
    sign_up(client, "ana")
    post_form(client, "/logout", {}, token_from="/")
    assert log_in(client, "ana", next="/settings/password").headers["location"] == "/settings/password"
    post_form(client, "/logout", {}, token_from="/")
    assert log_in(client, "ana", next="//evil.example/x").headers["location"] == "/"


def test_usernames_are_unique_whatever_the_case(client, ctx):
    assert sign_up(client, "Ana").status_code == 303
    other = another_browser(client)
    response = sign_up(other, "ana")
    assert response.status_code == 400
    assert "That username is taken" in response.text
    assert logged_in_as(other) is None
    assert [u["username"] for u in all_users(ctx)] == ["ana"]


@pytest.mark.parametrize(
    "typed, rule",
    [
        ("ana smith", "lowercase letters, digits, underscores and dots"),
        ("ana-smith", "lowercase letters, digits, underscores and dots"),
        ("émile", "lowercase letters, digits, underscores and dots"),
        ("<b>ana</b>", "lowercase letters, digits, underscores and dots"),
        ("a" * 31, "the limit is 30"),
        ("", "Choose a username"),
        (".ana", "cannot start or end with a dot"),
        ("an..a", "two dots in a row"),
    ],
)
def test_invalid_usernames_are_refused_with_the_rule_and_the_form_kept(client, ctx, typed, rule):
    response = sign_up(client, typed, password="a secret nobody sees")
    assert response.status_code == 400
    assert rule in html.unescape(response.text)
    assert f'value="{html.escape(typed)}"' in response.text  # what was typed, escaped, not lost
    assert "a secret nobody sees" not in response.text  # the password is never echoed
    assert all_users(ctx) == []


def test_usernames_at_the_edges_of_the_rule_are_accepted(client, ctx):
    assert sign_up(client, "a_b.9").status_code == 303
    assert sign_up(another_browser(client), "x" * 30).status_code == 303
    assert sorted(u["username"] for u in all_users(ctx)) == ["a_b.9", "x" * 30]


def test_a_short_password_is_refused_and_nothing_created(client, ctx):
    response = sign_up(client, "ana", password="short")
    assert response.status_code == 400
    assert "at least 8 characters" in response.text
    assert 'value="ana"' in response.text
    assert all_users(ctx) == []


def test_first_user_is_admin_and_second_is_not(client, ctx):
    sign_up(client, "first")
    sign_up(another_browser(client), "second")
    assert user_row(ctx, "first")["is_admin"] == 1
    assert user_row(ctx, "second")["is_admin"] == 0


def test_edit_profile_name_bio_and_privacy(client, ctx):
    sign_up(client, "ana")
    form = {"display_name": "Ana  Photos", "bio": "Film and\r\nfog.", "is_private": "on"}
    response = post_form(client, "/settings/profile", form)
    assert response.status_code == 303
    row = user_row(ctx, "ana")
    assert (row["display_name"], row["bio"], row["is_private"]) == ("Ana Photos", "Film and\nfog.", 1)
    profile = client.get("/@ana").text
    assert "Ana Photos" in profile and "Film and\nfog." in profile and "Private" in profile
    settings = client.get("/settings/profile").text
    assert 'value="Ana Photos"' in settings and "checked" in settings

    # An unticked checkbox is simply absent from the form: the account becomes public again.
    assert post_form(client, "/settings/profile", {"display_name": "Ana", "bio": ""}).status_code == 303
    row = user_row(ctx, "ana")
    assert (row["display_name"], row["bio"], row["is_private"]) == ("Ana", "", 0)
    assert "Private" not in client.get("/@ana").text


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("display_name", "N" * 65, "Names are limited to 64 characters."),
        ("bio", "B" * 301, "Your bio is 301 characters; the limit is 300."),
    ],
)
def test_overlong_name_or_bio_is_refused_and_nothing_saved(client, ctx, field, value, message):
    sign_up(client, "ana")
    post_form(client, "/settings/profile", {"display_name": "Ana", "bio": "Hello"})
    before = user_row(ctx, "ana")
    form = {"display_name": "Ana", "bio": "Hello", "is_private": "on", field: value}
    response = post_form(client, "/settings/profile", form)
    assert response.status_code == 400
    assert message in response.text
    assert value in response.text  # the form keeps what was typed
    assert user_row(ctx, "ana") == before


def test_edit_profile_needs_a_login(client):
    response = client.get("/settings/profile", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/settings/profile"


def test_change_password(client, ctx):
    sign_up(client, "ana")
    response = post_form(
        client, "/settings/password", {"current_password": PASSWORD, "new_password": "a brand new secret"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/settings/password?changed=1"
    assert logged_in_as(client) == "ana"
    stranger = another_browser(client)
    assert log_in(stranger, "ana", PASSWORD).status_code == 401
    assert log_in(stranger, "ana", "a brand new secret").status_code == 303


def test_wrong_current_password_changes_nothing(client, ctx):
    sign_up(client, "ana")
    before = user_row(ctx, "ana")
    response = post_form(
        client, "/settings/password", {"current_password": "not my password", "new_password": "a brand new secret"}
    )
    assert response.status_code == 400
    assert "Your current password is not right." in response.text
    assert user_row(ctx, "ana") == before
    assert logged_in_as(client) == "ana"
    assert log_in(another_browser(client), "ana", PASSWORD).status_code == 303


def test_too_short_new_password_changes_nothing(client, ctx):
    sign_up(client, "ana")
    before = user_row(ctx, "ana")
    response = post_form(client, "/settings/password", {"current_password": PASSWORD, "new_password": "short"})
    assert response.status_code == 400
    assert "at least 8 characters" in response.text
    assert user_row(ctx, "ana") == before


# Registration modes -------------------------------------------------------------------------------


def invite_site(make_site, **accounts_settings):
    ctx, client = make_site(accounts={"registration": "invite", **accounts_settings})
    admin = accounts.create_user(ctx, "boss", PASSWORD, by_operator=True)
    return ctx, client, admin


def test_invite_mode_code_works_once(make_site):
    ctx, client, admin = invite_site(make_site)
    code = accounts.create_invite(ctx, admin.id)
    assert sign_up(client, "ana", invite=code).status_code == 303
    assert logged_in_as(client) == "ana"
    again = another_browser(client)
    response = sign_up(again, "bob", invite=code)
    assert response.status_code == 400
    assert "That invite code is not valid" in response.text
    assert sorted(u["username"] for u in all_users(ctx)) == ["ana", "boss"]


@pytest.mark.parametrize("code", ["", "not-a-real-code"])
def test_invite_mode_refuses_a_missing_or_wrong_code(make_site, code):
    ctx, client, admin = invite_site(make_site)
    accounts.create_invite(ctx, admin.id)
    response = sign_up(client, "ana", invite=code)
    assert response.status_code == 400
    assert "invite" in response.text.lower()
    assert [u["username"] for u in all_users(ctx)] == ["boss"]


def test_invite_mode_refuses_an_expired_code(make_site):
    ctx, client, admin = invite_site(make_site)
    code = accounts.create_invite(ctx, admin.id)
    with ctx.db.write(0) as conn:
        conn.run("UPDATE invites SET expires_at = created_at - 1")
    response = sign_up(client, "ana", invite=code)
    assert response.status_code == 400
    assert "expired" in response.text
    assert [u["username"] for u in all_users(ctx)] == ["boss"]


def test_invite_code_is_not_used_up_by_a_failed_sign_up(make_site):
    ctx, client, admin = invite_site(make_site)
    code = accounts.create_invite(ctx, admin.id)
    response = sign_up(client, "Boss", invite=code)  # the name is taken
    assert response.status_code == 400
    assert "That username is taken" in response.text
    assert f'value="{code}"' in response.text  # the code stays in the form
    assert sign_up(client, "ana", invite=code, password="short").status_code == 400
    assert sign_up(client, "ana", invite=code).status_code == 303
    assert sorted(u["username"] for u in all_users(ctx)) == ["ana", "boss"]


def test_an_invite_claim_left_by_a_crash_is_taken_over_once_stale(make_site):
    ctx, client, admin = invite_site(make_site)
    code = accounts.create_invite(ctx, admin.id)
    with ctx.db.write(0) as conn:  # a sign-up claimed the code, then the process died
        conn.run("UPDATE invites SET used_by = 0, used_at = ?", (now_ms(),))
    assert sign_up(client, "ana", invite=code).status_code == 400  # a fresh claim may still finish
    with ctx.db.write(0) as conn:
        conn.run("UPDATE invites SET used_at = ?", (now_ms() - accounts.STALE_CLAIM_MS - 1,))
    assert sign_up(client, "ana", invite=code).status_code == 303
    assert sorted(u["username"] for u in all_users(ctx)) == ["ana", "boss"]


def test_closed_mode_explains_and_creates_nothing(make_site):
    ctx, client = make_site(accounts={"registration": "closed"})
    page = client.get("/signup")
    assert page.status_code == 200
    assert "Sign-ups are closed on this server" in page.text
    # The form is gone, so the token comes from the login page; the POST is refused all the same,
    # whether or not the fields would have been valid.
    for username, password in (("ana", PASSWORD), ("Not Valid", "short")):
        form = {"username": username, "password": password}
        response = post_form(client, "/signup", form, token_from="/login")
        assert response.status_code == 403
        assert "Sign-ups are closed" in response.text
    assert all_users(ctx) == []
    assert log_in(client, "ana").status_code == 401


def test_invites_page_is_for_admins_only(client, ctx):
    sign_up(client, "boss")
    member = another_browser(client)
    sign_up(member, "member")
    assert member.get("/settings/invites").status_code == 403
    token = csrf_token(member, "/settings/profile")
    response = member.post("/settings/invites", data={"_csrf_token": token})
    assert response.status_code == 403
    assert "Only admins can make invite codes." in response.text
    with ctx.db.read(0) as conn:
        assert conn.value("SELECT count(*) FROM invites") == 0
    assert client.get("/settings/invites").status_code == 200


def test_admin_makes_an_invite_code_that_works(make_site):
    ctx, admin_browser, _admin = invite_site(make_site)
    assert log_in(admin_browser, "boss").status_code == 303
    response = post_form(admin_browser, "/settings/invites", {})
    assert response.status_code == 200
    code = re.search(r"/signup\?invite=([A-Za-z0-9_-]+)", response.text).group(1)
    assert response.text.count(code) >= 2  # shown as a code and as a link
    newcomer = another_browser(admin_browser)
    page = newcomer.get(f"/signup?invite={code}")
    assert f'value="{html.escape(code)}"' in page.text  # the link fills the code in
    assert sign_up(newcomer, "ana", invite=code).status_code == 303
    assert sorted(u["username"] for u in all_users(ctx)) == ["ana", "boss"]
