"""OAuth 2 for the client API: app registration, the consent page, codes with PKCE, tokens, refresh, revocation and
Settings -> Apps, through the real app (Litestar's TestClient) on a rung-0 site."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from app.services import oauth
from tests.apitools import REDIRECT, approve, bearer, code_from, consent, exchange, register, s256
from tests.conftest import PASSWORD, all_rows, another_browser, csrf_token, post_form, sign_up


@pytest.fixture
def ana(client):
    """The client signed in as ana (the browser that sees the consent page)."""
    assert sign_up(client, "ana").status_code == 303
    return client


@pytest.fixture
def app_side(ana):
    """The app's own HTTP client: no cookies."""
    return another_browser(ana)


def token_for(browser, app_side, scope: str = "read write follow push") -> dict:
    app = register(app_side)
    response = exchange(app_side, app, code_from(approve(browser, app, scope=scope)))
    assert response.status_code == 200, response.text
    return {**response.json(), "app": app}


def me(client, token: str):
    return client.get("/api/v1/accounts/verify_credentials", headers=bearer(token))


def test_code_flow_with_pkce_gives_a_working_token_stored_only_as_its_hash(ctx, ana, app_side):
    app = register(app_side)
    assert app["redirect_uris"] == [REDIRECT] and app["scopes"] == ["read", "write", "follow", "push"]
    verifier = "v" * 64
    redirected = approve(
        ana, app, state="xyz", code_challenge=s256(verifier), code_challenge_method="S256", scope="read write"
    )
    location = urlsplit(redirected.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    assert parse_qs(location.query)["state"] == ["xyz"]
    response = exchange(app_side, app, code_from(redirected), code_verifier=verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "read write" and body["refresh_token"]
    assert response.headers["cache-control"] == "no-store"
    account = me(app_side, body["access_token"])
    assert account.status_code == 200 and account.json()["username"] == "ana"
    # Neither the token, the refresh token nor the client secret is in any row.
    stored = repr([all_rows(ctx, t) for t in ("oauth_tokens", "oauth_refresh_tokens", "oauth_grants", "oauth_apps")])
    for secret in (body["access_token"], body["refresh_token"], app["client_secret"]):
        assert secret not in stored
    # A code works once.
    again = exchange(app_side, app, code_from(redirected), code_verifier=verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_oob_shows_the_code_to_copy(ana, app_side):
    app = register(app_side, redirect_uris=oauth.OOB)
    page = approve(ana, app, redirect_uri=oauth.OOB)
    assert page.status_code == 200
    code = re.search(r'<code class="big" id="code">([^<]+)</code>', page.text).group(1)
    response = exchange(app_side, app, code, redirect_uri=oauth.OOB)
    assert response.status_code == 200 and me(app_side, response.json()["access_token"]).status_code == 200


def test_an_unregistered_redirect_uri_gets_a_page_and_never_a_redirect(ctx, ana, app_side):
    app = register(app_side)
    page, fields, _ = consent(ana, app, redirect_uri="https://evil.example/steal")
    assert page.status_code == 400 and "location" not in page.headers
    assert "didn't register" in html.unescape(page.text) and not fields
    # Nor can the form be sent with it.
    token = csrf_token(ana, "/settings/profile")
    sent = ana.post(
        "/oauth/authorize",
        data={
            "client_id": app["client_id"],
            "redirect_uri": "https://evil.example/steal",
            "response_type": "code",
            "scope": "read",
            "decision": "approve",
            "_csrf_token": token,
        },
        follow_redirects=False,
    )
    assert sent.status_code == 400 and "location" not in sent.headers
    assert all_rows(ctx, "oauth_codes") == []


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"redirect_uris": "javascript:alert(1)"}, "javascript"),
        ({"redirect_uris": "https://app.example/cb#frag"}, "fragment"),
        ({"redirect_uris": "not a uri"}, "absolute URI"),
        ({"redirect_uris": "https://app.example:99999/cb"}, "absolute URI"),
        ({"redirect_uris": ""}, "redirect_uris"),
        ({"scopes": "read admin:write"}, "Unknown scope"),
        ({"client_name": ""}, "client_name"),
        ({"website": "ftp://x"}, "website"),
    ],
)
def test_bad_app_registrations_are_refused_with_422(ctx, client, fields, message):
    data = {"client_name": "App", "redirect_uris": REDIRECT, "scopes": "read", **fields}
    response = client.post("/api/v1/apps", data=data)
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]
    assert all_rows(ctx, "oauth_apps") == []


def test_apps_register_with_json_too_and_with_several_redirect_uris(client):
    response = client.post(
        "/api/v1/apps",
        json={"client_name": "Phone", "redirect_uris": ["ivory://callback", REDIRECT], "scopes": "read write:media"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["redirect_uris"] == ["ivory://callback", REDIRECT]
    assert response.json()["scopes"] == ["read", "write:media"]


def test_asking_for_more_than_registered_or_unknown_scopes_goes_back_to_the_app_as_invalid_scope(ana, app_side):
    app = register(app_side, scopes="read")
    for scope in ("read write", "read bogus"):
        page, _, _ = consent(ana, app, scope=scope, state="s1")
        assert page.status_code == 303
        query = parse_qs(urlsplit(page.headers["location"]).query)
        assert query["error"] == ["invalid_scope"] and query["state"] == ["s1"]


def test_a_pkce_mismatch_is_invalid_grant_and_leaves_the_code_usable(ana, app_side):
    app = register(app_side)
    verifier = "a" * 50
    code = code_from(approve(ana, app, code_challenge=s256(verifier), code_challenge_method="S256"))
    for wrong in ({"code_verifier": "b" * 50}, {}):
        response = exchange(app_side, app, code, **wrong)
        assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
        assert "code_verifier" in response.json()["error_description"]
    assert exchange(app_side, app, code, code_verifier=verifier).status_code == 200


def test_plain_pkce_is_refused(ana, app_side):
    app = register(app_side)
    page, _, _ = consent(ana, app, code_challenge="x" * 43, code_challenge_method="plain")
    assert page.status_code == 303 and "error=invalid_request" in page.headers["location"]


def test_a_code_of_another_app_or_with_another_redirect_uri_is_refused(ana, app_side):
    first, second = register(app_side), register(app_side, redirect_uris=f"{REDIRECT} https://other.example/cb")
    code = code_from(approve(ana, first))
    stolen = exchange(app_side, second, code)
    assert stolen.status_code == 400 and "another app" in stolen.json()["error_description"]
    moved = exchange(app_side, first, code, redirect_uri="https://other.example/cb")
    assert moved.status_code == 400 and moved.json()["error"] == "invalid_grant"
    assert exchange(app_side, first, code).status_code == 200


def test_a_wrong_client_secret_is_invalid_client(ana, app_side):
    app = register(app_side)
    code = code_from(approve(ana, app))
    response = exchange(app_side, {**app, "client_secret": "wrong"}, code)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert exchange(app_side, app, code).status_code == 200


def test_http_basic_client_authentication_works(ana, app_side):
    app = register(app_side)
    code = code_from(approve(ana, app))
    response = app_side.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=(app["client_id"], app["client_secret"]),
    )
    assert response.status_code == 200, response.text


def test_refresh_rotates_the_pair(ana, app_side):
    issued = token_for(ana, app_side)
    app = issued["app"]
    refreshed = app_side.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": issued["refresh_token"],
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "scope": "read",
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["scope"] == "read"
    assert me(app_side, refreshed.json()["access_token"]).status_code == 200
    assert me(app_side, issued["access_token"]).status_code == 401
    again = app_side.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": issued["refresh_token"],
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_revoke_ends_the_token_and_another_apps_token_is_refused(ana, app_side):
    mine, theirs = token_for(ana, app_side), token_for(ana, app_side)
    app = mine["app"]
    refused = app_side.post(
        "/oauth/revoke",
        data={"client_id": app["client_id"], "client_secret": app["client_secret"], "token": theirs["access_token"]},
    )
    assert refused.status_code == 403 and refused.json()["error"] == "unauthorized_client"
    assert me(app_side, theirs["access_token"]).status_code == 200
    done = app_side.post(
        "/oauth/revoke",
        data={"client_id": app["client_id"], "client_secret": app["client_secret"], "token": mine["access_token"]},
    )
    assert done.status_code == 200 and done.json() == {}
    gone = me(app_side, mine["access_token"])
    assert gone.status_code == 401 and gone.json() == {"error": "The access token is invalid"}
    assert gone.headers["www-authenticate"].startswith("Bearer")


def test_an_expired_token_is_refused(ctx, ana, app_side):
    issued = token_for(ana, app_side)
    token_hash = oauth._hash(issued["access_token"])
    with ctx.db.write(ctx.db.shard_for_key(token_hash)) as conn:
        conn.run("UPDATE oauth_tokens SET expires_at = 1 WHERE token_hash = ?", (token_hash,))
    response = me(app_side, issued["access_token"])
    assert response.status_code == 401 and response.json() == {"error": "The access token expired"}


@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer ", "Basic abc", "Bearer " + "x" * 500])
def test_malformed_or_unknown_tokens_are_401(client, header):
    response = client.get("/api/v1/accounts/verify_credentials", headers={"authorization": header})
    assert response.status_code == 401 and "error" in response.json()


def test_a_password_change_ends_the_accounts_tokens(ana, app_side):
    issued = token_for(ana, app_side)
    changed = post_form(
        ana,
        "/settings/password",
        {"current_password": PASSWORD, "new_password": "another long password"},
    )
    assert changed.status_code == 303
    assert me(app_side, issued["access_token"]).status_code == 401


def test_settings_lists_authorized_apps_and_revokes_them(ctx, ana, app_side):
    issued = token_for(ana, app_side)
    page = ana.get("/settings/apps")
    assert page.status_code == 200 and "Test App" in page.text
    assert "Change your photo uploads" not in page.text and "Post, edit and delete photos" in page.text
    client_id = issued["app"]["client_id"]
    forged = ana.post(f"/settings/apps/{client_id}/revoke", follow_redirects=False)
    assert forged.status_code == 403  # no CSRF token
    assert me(app_side, issued["access_token"]).status_code == 200
    revoked = post_form(ana, f"/settings/apps/{client_id}/revoke", {}, token_from="/settings/apps")
    assert revoked.status_code == 303
    assert "Test App can no longer use your account" in ana.get(revoked.headers["location"]).text
    assert me(app_side, issued["access_token"]).status_code == 401
    refresh = app_side.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": issued["refresh_token"],
            "client_id": client_id,
            "client_secret": issued["app"]["client_secret"],
        },
    )
    assert refresh.status_code == 400
    assert all_rows(ctx, "oauth_grants") == [] and all_rows(ctx, "oauth_tokens") == []


def test_another_user_cannot_revoke_my_app(ana, app_side):
    issued = token_for(ana, app_side)
    bo = another_browser(ana)
    assert sign_up(bo, "bo").status_code == 303
    post_form(bo, f"/settings/apps/{issued['app']['client_id']}/revoke", {}, token_from="/settings/apps")
    assert me(app_side, issued["access_token"]).status_code == 200


def test_client_credentials_reach_public_reads_but_not_a_users_routes(ana, app_side):
    app = register(app_side)
    response = app_side.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "scope": "read",
        },
    )
    assert response.status_code == 200 and "refresh_token" not in response.json()
    token = response.json()["access_token"]
    assert app_side.get("/api/v1/accounts/lookup?acct=ana", headers=bearer(token)).status_code == 200
    refused = me(app_side, token)
    assert refused.status_code == 422 and refused.json() == {"error": "This method requires an authenticated user"}


def test_unsupported_grant_types_are_named(app_side):
    app = register(app_side)
    response = app_side.post(
        "/oauth/token",
        data={"grant_type": "password", "client_id": app["client_id"], "client_secret": app["client_secret"]},
    )
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"


def test_signing_in_from_the_consent_page_comes_back_to_it(ana, app_side):
    app = register(app_side)
    stranger = another_browser(ana)
    page, _, _ = consent(stranger, app, state="keep")
    assert page.status_code == 303
    login = page.headers["location"]
    assert login.startswith("/login?next=")
    signed_in = post_form(stranger, "/login", {"username": "ana", "password": PASSWORD, "next": _next(login)})
    assert signed_in.status_code == 303 and signed_in.headers["location"].startswith("/oauth/authorize?")
    again = stranger.get(signed_in.headers["location"])
    assert again.status_code == 200 and 'value="keep"' in again.text


def _next(login_location: str) -> str:
    return parse_qs(urlsplit(login_location).query)["next"][0]


def test_the_consent_page_lets_its_form_lead_to_the_apps_address_and_deny_says_so(ana, app_side):
    app = register(app_side, redirect_uris="ivory://callback")
    page, _, _ = consent(ana, app, redirect_uri="ivory://callback")
    assert "form-action 'self' ivory:" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    denied = approve(ana, app, decision="deny", redirect_uri="ivory://callback", state="s")
    assert denied.status_code == 303
    assert denied.headers["location"].startswith("ivory://callback?error=access_denied")
    assert "state=s" in denied.headers["location"]


def test_the_consent_form_needs_its_csrf_token(ctx, ana, app_side):
    app = register(app_side)
    _, fields, _ = consent(ana, app)
    response = ana.post("/oauth/authorize", data={**fields, "decision": "approve"}, follow_redirects=False)
    assert response.status_code == 403 and all_rows(ctx, "oauth_codes") == []


def test_cookie_authenticated_api_writes_need_the_csrf_token_and_bearer_ones_do_not(ana, app_side):
    assert ana.get("/api/v1/accounts/verify_credentials").json()["username"] == "ana"
    forged = ana.patch("/api/v1/accounts/update_credentials", data={"display_name": "Forged"})
    assert forged.status_code == 403 and "CSRF" in forged.json()["error"]
    token = csrf_token(ana, "/settings/profile")
    ok = ana.patch("/api/v1/accounts/update_credentials", data={"display_name": "Ana"}, headers={"x-csrf-token": token})
    assert ok.status_code == 200 and ok.json()["display_name"] == "Ana"
    issued = token_for(ana, app_side)
    by_token = app_side.patch(
        "/api/v1/accounts/update_credentials", data={"display_name": "Ana B"}, headers=bearer(issued["access_token"])
    )
    assert by_token.status_code == 200 and by_token.json()["display_name"] == "Ana B"


def test_app_registration_is_rate_limited_per_address(make_site):
    _ctx, client = make_site(limits={"oauth_per_ip": 3})
    statuses = [register_status(client) for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def register_status(client) -> int:
    return client.post("/api/v1/apps", data={"client_name": "A", "redirect_uris": REDIRECT}).status_code


def test_server_metadata_names_the_endpoints(client):
    body = client.get("/.well-known/oauth-authorization-server").json()
    assert body["token_endpoint"].endswith("/oauth/token") and body["code_challenge_methods_supported"] == ["S256"]
    assert "authorization_code" in body["grant_types_supported"] and "read:statuses" in body["scopes_supported"]


def test_nothing_from_a_redirect_uri_but_its_scheme_and_host_reaches_the_csp(ana, app_side):
    odd = "https://a;script-src:*@x;b.example/cb"
    app = register(app_side, redirect_uris=f"{odd} http://127.0.0.1:9/cb")
    page, _, _ = consent(ana, app, redirect_uri=odd)
    assert page.status_code == 200
    assert "form-action 'self';" in page.headers["content-security-policy"]
    assert "script-src 'self';" in page.headers["content-security-policy"]
    local, _, _ = consent(ana, app, redirect_uri="http://127.0.0.1:9/cb")
    assert "form-action 'self' http://127.0.0.1:9;" in local.headers["content-security-policy"]


def refresh_with(client, app: dict, refresh_token: str):
    return client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )


def test_a_refresh_token_of_another_app_is_refused_and_stays_valid(ana, app_side):
    mine, theirs = token_for(ana, app_side), token_for(ana, app_side)
    stolen = refresh_with(app_side, mine["app"], theirs["refresh_token"])
    assert stolen.status_code == 400 and "another app" in stolen.json()["error_description"]
    assert me(app_side, theirs["access_token"]).status_code == 200
    assert refresh_with(app_side, theirs["app"], theirs["refresh_token"]).status_code == 200


def test_revoking_the_refresh_token_ends_its_access_token_too(ctx, ana, app_side):
    issued = token_for(ana, app_side)
    app = issued["app"]
    done = app_side.post(
        "/oauth/revoke",
        data={"client_id": app["client_id"], "client_secret": app["client_secret"], "token": issued["refresh_token"]},
    )
    assert done.status_code == 200
    assert me(app_side, issued["access_token"]).status_code == 401
    assert refresh_with(app_side, app, issued["refresh_token"]).status_code == 400
    assert all_rows(ctx, "oauth_grants") == [] and all_rows(ctx, "oauth_refresh_tokens") == []
