"""The security checklist (docs/quality.md) for accounts: passwords, sessions, CSRF, rate limits,
enumeration, headers, and bad input that must never become a 5xx."""

from __future__ import annotations

import re

import apsw
import pytest
from litestar.testing import TestClient

from app.context import PASSWORD_HASHER
from app.services import sessions
from tests.conftest import (
    PASSWORD,
    TESTDATA,
    all_users,
    another_browser,
    csrf_token,
    log_in,
    post_form,
    sign_up,
)

NEW_PASSWORD = "a brand new secret"
CSRF_EXPIRED = "This form expired or came from another site, so nothing was changed."


def is_logged_in(client) -> bool:
    response = client.get("/settings/profile", follow_redirects=False)
    assert response.status_code in (200, 303)
    return response.status_code == 200


def session_cookie_header(response) -> str:
    (header,) = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{sessions.COOKIE}=")]
    return header


def cookie_value(header: str) -> str:
    return header.split(";", 1)[0].split("=", 1)[1]


# Passwords ---------------------------------------------------------------------------------------


def argon2_parameters(password_hash: str) -> tuple[int, int, int]:
    """(memory in KiB, passes, lanes) of an argon2id hash."""
    match = re.fullmatch(r"\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+", password_hash)
    assert match, password_hash
    memory_kib, passes, lanes = map(int, match.groups())
    return memory_kib, passes, lanes


def test_passwords_are_argon2id_at_or_above_owasp_minimums(client, ctx):
    ctx.hasher = PASSWORD_HASHER  # the app's own cost (the test sites hash at the lowest)
    sign_up(client, "ana")
    (row,) = all_users(ctx)
    memory_kib, passes, lanes = argon2_parameters(row["password_hash"])
    assert memory_kib >= 19 * 1024
    assert passes >= 2
    assert lanes == 1


def test_a_password_hashed_at_a_lower_cost_is_hashed_again_at_log_in(client, ctx):
    sign_up(client, "ana")  # at the test sites' lowest cost
    (before,) = all_users(ctx)
    assert argon2_parameters(before["password_hash"]) == (8, 1, 1)
    ctx.hasher = PASSWORD_HASHER  # as after an upgrade that raised the cost
    log_in(another_browser(client), "ana")
    (after,) = all_users(ctx)
    assert argon2_parameters(after["password_hash"]) == (
        PASSWORD_HASHER.memory_cost,
        PASSWORD_HASHER.time_cost,
        PASSWORD_HASHER.parallelism,
    )
    log_in(another_browser(client), "ana")  # the new hash works


def test_passwords_are_never_stored_in_plain_text(client, ctx):
    sign_up(client, "ana")
    log_in(another_browser(client), "ana")
    post_form(client, "/settings/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    files = [p for p in ctx.config.data_dir.rglob("*") if p.is_file()]
    assert any(p.name.startswith("pinhole.sqlite3") for p in files)
    for path in files:
        data = path.read_bytes()
        for secret in (PASSWORD, NEW_PASSWORD):
            assert secret.encode() not in data, f"{secret!r} found in {path}"


# Sessions ----------------------------------------------------------------------------------------


def test_session_cookie_is_httponly_lax_and_not_secure_over_http(client):
    header = session_cookie_header(sign_up(client, "ana")).lower()
    assert "httponly" in header
    assert "samesite=lax" in header
    assert "secure" not in header
    header = session_cookie_header(log_in(another_browser(client), "ana")).lower()
    assert "httponly" in header and "samesite=lax" in header and "secure" not in header


def test_session_cookie_is_secure_behind_https(make_site):
    _ctx, client = make_site(server={"public_url": "https://photos.example"})
    # Secure cookies only travel over https, so this browser talks https to the app.
    browser = TestClient(client.app, base_url="https://photos.example")
    header = session_cookie_header(sign_up(browser, "ana")).lower()
    assert "; secure" in header
    assert "httponly" in header and "samesite=lax" in header


def test_login_issues_a_new_session_id_and_never_adopts_a_planted_one(client, ctx):
    sign_up(client, "ana")
    browser = another_browser(client)
    browser.cookies.set(sessions.COOKIE, "planted-by-an-attacker")
    response = log_in(browser, "ana")
    token = cookie_value(session_cookie_header(response))
    assert token and token != "planted-by-an-attacker"
    assert sessions.user_for_session(ctx, "planted-by-an-attacker") is None
    assert sessions.user_for_session(ctx, token).username == "ana"

    # Signing in again from the same browser replaces the session; the old id is dead.
    again = cookie_value(session_cookie_header(log_in(browser, "ana")))
    assert again != token
    assert sessions.user_for_session(ctx, token) is None


def test_logout_ends_the_session_on_the_server(client):
    sign_up(client, "ana")
    old = client.cookies.get(sessions.COOKIE)
    assert old and is_logged_in(client)
    response = post_form(client, "/logout", {}, token_from="/")
    assert response.status_code == 303
    assert "max-age=0" in session_cookie_header(response).lower()  # the browser forgets it too
    assert not is_logged_in(client)
    client.cookies.set(sessions.COOKIE, old)  # replay the cookie a thief copied before logout
    assert not is_logged_in(client)
    assert "Log in" in client.get("/").text


def test_password_change_ends_other_sessions_but_keeps_this_one(client):
    sign_up(client, "ana")
    laptop = another_browser(client)
    log_in(laptop, "ana")
    old_token = client.cookies.get(sessions.COOKIE)
    assert is_logged_in(laptop)
    response = post_form(client, "/settings/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 303
    assert is_logged_in(client)
    assert not is_logged_in(laptop)
    replay = another_browser(client)
    replay.cookies.set(sessions.COOKIE, old_token)
    assert not is_logged_in(replay)  # this browser's pre-change session id died too


def test_wrong_current_password_keeps_every_session(client, ctx):
    sign_up(client, "ana")
    laptop = another_browser(client)
    log_in(laptop, "ana")
    before = all_users(ctx)
    response = post_form(client, "/settings/password", {"current_password": "wrong one", "new_password": NEW_PASSWORD})
    assert response.status_code == 400
    assert all_users(ctx) == before
    assert is_logged_in(client) and is_logged_in(laptop)


# CSRF --------------------------------------------------------------------------------------------


def site_state(ctx) -> tuple:
    """What a forged request could change: users, invites, stored files, sessions."""
    with ctx.db.read(0) as conn:
        invites = conn.all("SELECT * FROM invites ORDER BY code_hash")
    sessions_rows = sorted(str(k) for k in _kv_keys(ctx))
    return all_users(ctx), invites, sorted(ctx.backends.blobs.keys()), ctx.backends.queue.pending(), sessions_rows


def _kv_keys(ctx) -> list:
    """Every row of the sessions/counters store, read from its file."""
    path = ctx.config.data_dir / "state.sqlite3"
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return [row for table in tables for row in conn.execute(f"SELECT * FROM {table}")]
    finally:
        conn.close()


def jpeg() -> bytes:
    return (TESTDATA / "good" / "hopper.jpg").read_bytes()


# (path, form fields, files): every state-changing POST the app has.
MUTATIONS = [
    ("/signup", {"username": "mallory", "password": PASSWORD}, None),
    ("/login", {"username": "ana", "password": PASSWORD}, None),
    ("/logout", {}, None),
    ("/settings/profile", {"display_name": "Hacked", "bio": "pwned", "is_private": "on"}, None),
    ("/settings/avatar", {}, {"avatar": ("me.jpg", jpeg(), "image/jpeg")}),
    ("/settings/avatar/remove", {}, None),
    ("/settings/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}, None),
    ("/settings/invites", {}, None),
]


@pytest.mark.parametrize("path, fields, files", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_post_without_a_valid_csrf_token_is_refused_and_changes_nothing(client, ctx, path, fields, files):
    sign_up(client, "ana")  # the first user: an admin, so the invites form is open to her
    csrf_token(client, "/settings/profile")  # the browser holds its CSRF cookie
    before = site_state(ctx)
    for token in (None, "x" * 64, csrf_token(another_browser(client), "/login")):
        data = dict(fields) if token is None else {**fields, "_csrf_token": token}
        response = client.post(path, data=data, files=files, follow_redirects=False)
        assert response.status_code == 403, token
        assert CSRF_EXPIRED in response.text
        assert "text/html" in response.headers["content-type"]
        assert site_state(ctx) == before
        assert is_logged_in(client)


def test_htmx_header_token_works_instead_of_the_form_field(client, ctx):
    sign_up(client, "ana")
    token = csrf_token(client, "/settings/profile")
    response = client.post(
        "/settings/profile",
        data={"display_name": "Via htmx", "bio": ""},
        headers={"x-csrf-token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert all_users(ctx)[0]["display_name"] == "Via htmx"
    response = client.post("/logout", headers={"x-csrf-token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert not is_logged_in(client)


def test_every_page_carries_the_htmx_csrf_header(client):
    sign_up(client, "ana")
    page = client.get("/settings/profile").text
    form_token = re.search(r'name="_csrf_token" value="([^"]+)"', page).group(1)
    header_token = re.search(r'hx-headers=\'[^\']*"x-csrf-token":\s*"([^"]+)"', page).group(1)
    assert header_token == form_token


def test_get_never_changes_state(client, ctx):
    sign_up(client, "ana")
    post_form(client, "/settings/profile", {"display_name": "Ana", "bio": "Hi"})
    before = site_state(ctx)
    for path in [
        "/logout",
        "/settings/avatar/remove",
        "/settings/invites",
        "/settings/profile?display_name=x&bio=y",
        "/settings/password?current_password=x&new_password=yyyyyyyyyy",
        "/signup?username=mallory&password=correct+horse+battery",
        "/login?username=ana&password=correct+horse+battery",
        "/",
        "/@ana",
    ]:
        response = client.get(path, follow_redirects=False)
        assert response.status_code < 500, path
        assert site_state(ctx) == before, path
    assert is_logged_in(client)


@pytest.mark.parametrize(
    "target", ["//evil.example/", "/\\evil.example", "https://evil.example/", "/\t/evil.example", "javascript:alert(1)"]
)
def test_login_never_redirects_off_site(client, target):
    sign_up(client, "ana")
    response = log_in(another_browser(client), "ana", next=target)
    assert response.status_code == 303
    location = response.headers["location"]
    browser_sees = re.sub(r"[\t\n\r]", "", location)  # browsers drop these before parsing a URL
    assert browser_sees.startswith("/") and not browser_sees.startswith(("//", "/\\")), location


# Rate limits -------------------------------------------------------------------------------------


def log_in_from(client, username: str, forwarded_for: str):
    """A wrong-password sign-in arriving with an X-Forwarded-For header."""
    form = {"username": username, "password": "wrong password"}
    return post_form(client, "/login", form, headers={"x-forwarded-for": forwarded_for})


def too_many(response) -> bool:
    if response.status_code != 429:
        return False
    assert "Too many attempts. Wait" in response.text
    return True


def test_login_is_throttled_per_ip(make_site):
    _ctx, client = make_site(limits={"login_per_ip": 3, "login_per_account": 100})
    answers = [log_in(client, f"nobody{i}", "wrong password") for i in range(4)]
    assert [r.status_code for r in answers[:3]] == [401, 401, 401]
    assert too_many(answers[3])


def test_login_is_throttled_per_account_even_with_the_right_password(make_site):
    _ctx, client = make_site(limits={"login_per_account": 2, "login_per_ip": 100})
    sign_up(client, "ana")
    sign_up(another_browser(client), "bob")
    attacker = another_browser(client)
    assert [log_in(attacker, "ana", "guess one").status_code for _ in range(2)] == [401, 401]
    assert too_many(log_in(attacker, "ANA", PASSWORD))  # the right password waits too; case doesn't help
    assert not is_logged_in(attacker)
    assert log_in(another_browser(client), "bob").status_code == 303  # other accounts are untouched


def test_per_account_limit_is_not_reset_by_spelling_the_name_differently(make_site):
    _ctx, client = make_site(limits={"login_per_account": 2, "login_per_ip": 100})
    attacker = another_browser(client)
    assert log_in(attacker, "ana", "guess one").status_code == 401
    assert log_in(attacker, "@ana", "guess two").status_code == 401
    for spelling in ("@@ana", " ANA ", "@@@Ana"):  # each would find the account "ana" at sign-in
        assert too_many(log_in(attacker, spelling, "guess three")), spelling


def test_signup_is_throttled_per_ip(make_site):
    ctx, client = make_site(limits={"signup_per_ip": 2})
    assert sign_up(client, "", PASSWORD).status_code == 400
    assert sign_up(another_browser(client), "bo b").status_code == 400
    assert too_many(sign_up(another_browser(client), "carol"))
    assert all_users(ctx) == []


def test_password_change_is_throttled_per_account(make_site):
    ctx, client = make_site(limits={"password_per_account": 2})
    sign_up(client, "ana")
    for _ in range(2):
        form = {"current_password": "wrong one", "new_password": NEW_PASSWORD}
        assert post_form(client, "/settings/password", form).status_code == 400
    before = all_users(ctx)
    form = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert too_many(post_form(client, "/settings/password", form))
    assert all_users(ctx) == before
    # Per account: another browser of the same account waits as well.
    laptop = another_browser(client)
    log_in(laptop, "ana")
    assert too_many(post_form(laptop, "/settings/password", form))


def test_x_forwarded_for_is_ignored_from_an_untrusted_peer(make_site):
    _ctx, client = make_site(limits={"login_per_ip": 2, "login_per_account": 100})
    answers = [log_in_from(client, f"nobody{i}", f"203.0.113.{i}") for i in range(3)]
    assert [r.status_code for r in answers[:2]] == [401, 401]
    assert too_many(answers[2])


def test_x_forwarded_for_is_used_behind_a_trusted_proxy(make_site):
    # The TestClient's peer address is "testclient": here it is the configured proxy.
    _ctx, client = make_site(
        server={"trusted_proxies": ["testclient"]}, limits={"login_per_ip": 2, "login_per_account": 100}
    )
    spread = [log_in_from(client, f"nobody{i}", f"203.0.113.{i}, testclient") for i in range(4)]
    assert [r.status_code for r in spread] == [401] * 4  # four people behind the proxy, one try each
    same = [log_in_from(client, f"other{i}", "198.51.100.7") for i in range(3)]
    assert [r.status_code for r in same[:2]] == [401, 401]
    assert too_many(same[2])  # one person is still throttled


# Enumeration -------------------------------------------------------------------------------------


def normalized(page: str, typed: str) -> str:
    page = re.sub(r'value="[^"]*"( />|>)?', 'value=""', page.replace(typed, "NAME"))
    page = re.sub(r'"x-csrf-token": "[^"]*"', "", page)
    return page


def test_unknown_user_and_wrong_password_get_the_same_answer(client):
    sign_up(client, "ana")
    stranger = another_browser(client)
    unknown = log_in(stranger, "nosuchuser", "some password")
    wrong = log_in(stranger, "ana", "some password")
    assert unknown.status_code == wrong.status_code == 401
    assert "That username and password don&#39;t match" in wrong.text or "don't match" in wrong.text
    assert normalized(unknown.text, "nosuchuser") == normalized(wrong.text, "ana")


# Headers -----------------------------------------------------------------------------------------


def check_headers(response, https: bool = False) -> None:
    csp = response.headers.get("content-security-policy", "")
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert "script-src" in directives or "default-src" in directives, csp
    script_src = directives.get("script-src", directives.get("default-src"))
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'"
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert response.headers.get("referrer-policy")
    hsts = response.headers.get("strict-transport-security")
    if https:
        assert hsts and "max-age=" in hsts and int(re.search(r"max-age=(\d+)", hsts).group(1)) >= 15552000
    else:
        assert hsts is None


def test_security_headers_on_pages_errors_and_404s(client):
    responses = [client.get(p) for p in ("/", "/login", "/signup", "/no/such/page", "/@nobody", "/healthz")]
    responses.append(client.post("/settings/profile", data={"bio": "x"}))  # CSRF refusal
    sign_up(client, "ana")
    responses += [client.get(p) for p in ("/", "/@ana", "/settings/profile", "/settings/password")]
    assert {r.status_code for r in responses} == {200, 403, 404}
    for response in responses:
        check_headers(response)


def test_hsts_only_over_https(make_site):
    _ctx, client = make_site(server={"public_url": "https://photos.example"})
    for path in ("/", "/login", "/no/such/page"):
        check_headers(client.get(path), https=True)


def test_no_inline_script_in_any_page(client):
    pages = [client.get(p) for p in ("/", "/login", "/signup", "/no/such/page")]
    sign_up(client, "ana")
    post_form(client, "/settings/profile", {"display_name": "Ana", "bio": "<script>alert(1)</script>"})
    pages += [client.get(p) for p in ("/", "/@ana", "/settings/profile", "/settings/password", "/settings/invites")]
    pages.append(post_form(client, "/settings/profile", {"display_name": "N" * 99, "bio": ""}))  # an error page
    for page in pages:
        assert "text/html" in page.headers["content-type"]
        scripts = re.findall(r"<script\b([^>]*)>(.*?)</script\s*>", page.text, re.S | re.I)
        assert scripts, "the page should load htmx"
        for attributes, body in scripts:
            assert "src=" in attributes and body.strip() == "", page.url
        handlers = r"<[^>]+\son(?:click|load|error|submit|change|input|focus|blur|key\w+|mouse\w+|pointer\w+)\s*="
        assert not re.search(handlers, page.text, re.I), page.url  # no inline event handlers either


# Bad input ---------------------------------------------------------------------------------------


def no_server_error(response) -> None:
    assert response.status_code < 500, response.text[:500]
    assert "Traceback" not in response.text
    assert 'File "' not in response.text


FORM = "application/x-www-form-urlencoded"


def test_bad_form_bodies_never_give_a_5xx(client, ctx):
    sign_up(client, "ana")
    token = csrf_token(client, "/settings/profile")
    headers = {"x-csrf-token": token}
    bodies = [
        (FORM, b"%%%&&&==&=\xff\xfe"),
        (FORM, b"username=\xff\xfe\xfd&password=\xc3\x28\xa0\xa1"),
        (FORM, b""),
        (FORM, b"username=" + b"a" * 10_000 + b"&password=" + b"p" * 10_000),
        (FORM, b"username=a&username=b&password[]=x"),
        ("application/json", b'{"username": "ana", "password": "x"}'),
        ("application/json", b"{not json"),
        ("text/plain", b"\x00\x01\x02"),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nbroken"),
        ("multipart/form-data", b"no boundary at all"),
        ("application/octet-stream", bytes(range(256))),
    ]
    for path in ("/signup", "/login", "/settings/profile", "/settings/password", "/settings/avatar"):
        for content_type, body in bodies:
            response = client.post(
                path, content=body, headers={**headers, "content-type": content_type}, follow_redirects=False
            )
            no_server_error(response)
    assert [u["username"] for u in all_users(ctx)] == ["ana"]
    assert is_logged_in(client)


def test_a_10kb_username_is_refused_with_a_message(client, ctx):
    response = sign_up(client, "a" * 10_000)
    assert response.status_code == 400
    assert "the limit is 30" in response.text
    assert all_users(ctx) == []
    response = log_in(client, "a" * 10_000)
    assert response.status_code == 401
    no_server_error(response)


def test_missing_fields_get_a_message_not_an_error(client, ctx):
    response = post_form(client, "/signup", {})
    assert response.status_code == 400
    assert "Choose a username" in response.text
    assert post_form(client, "/login", {}).status_code == 401
    sign_up(client, "ana")
    response = post_form(client, "/settings/password", {})
    assert response.status_code == 400
    assert "Your current password is not right." in response.text
    response = post_form(client, "/settings/avatar", {}, token_from="/settings/profile")
    assert response.status_code == 400
    assert "Choose a photo to upload." in response.text
    post_form(client, "/settings/profile", {"display_name": "Ana", "bio": "Still here."})
    before = all_users(ctx)
    response = post_form(client, "/settings/profile", {})
    assert response.status_code == 400
    assert "nothing was changed" in response.text
    assert all_users(ctx) == before


def test_signing_up_while_signed_in_ends_the_old_session(client):
    sign_up(client, "first.account")
    old = client.cookies.get("pinhole_session")
    sign_up(client, "second.account")
    client.cookies.set("pinhole_session", old)
    assert "/@first.account" not in client.get("/").text


def test_a_photo_over_the_upload_limit_gets_a_413_with_a_message(make_site):
    ctx, client = make_site(media={"max_upload_mb": 1})
    sign_up(client, "ana")
    before = all_users(ctx)
    big = b"\xff\xd8\xff" + b"\0" * (1024 * 1024)
    response = post_form(
        client, "/settings/avatar", {}, token_from="/settings/profile", files={"avatar": ("big.jpg", big, "image/jpeg")}
    )
    assert response.status_code == 413
    assert "That photo is larger than 1 MB." in response.text
    assert all_users(ctx) == before
    assert list(ctx.backends.blobs.keys()) == []


def test_a_body_over_the_limit_gets_a_413_page(make_site):
    ctx, client = make_site(server={"max_body_mb": 1})
    sign_up(client, "ana")
    token = csrf_token(client, "/settings/profile")
    big = b"\xff\xd8\xff" + b"\0" * (1024 * 1024 + 10)
    for kwargs in (
        {"files": {"avatar": ("big.jpg", big, "image/jpeg")}, "data": {"_csrf_token": token}},
        {"files": {"avatar": ("big.jpg", big, "image/jpeg")}, "headers": {"x-csrf-token": token}},
    ):
        response = client.post("/settings/avatar", follow_redirects=False, **kwargs)
        assert response.status_code == 413
        assert "larger than this server accepts (1 MB in all)" in response.text
        assert "text/html" in response.headers["content-type"]
        check_headers(response)
    response = client.post(
        "/signup",
        content=b"username=ana2&password=" + b"p" * (1024 * 1024 + 10),
        headers={"content-type": FORM, "x-csrf-token": token},
        follow_redirects=False,
    )
    assert response.status_code == 413
    assert [u["username"] for u in all_users(ctx)] == ["ana"]
    assert list(ctx.backends.blobs.keys()) == []


def test_files_on_disk_are_not_reachable_by_path_tricks(client, ctx):
    secret_key = (ctx.config.data_dir / "secret_key").read_text().strip()
    for path in (
        "/static/../config.toml",
        "/media/../secret_key",
        "/media/..%2f..%2fdata%2fsecret_key",
        "/static/%2e%2e/tests/conftest.py",
        "/media/avatars/..%2f..%2fsecret_key",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert secret_key not in response.text and "[storage]" not in response.text and "import" not in response.text
