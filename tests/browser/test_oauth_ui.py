"""Authorizing a phone app, as a person sees it in the browser the app opens: the consent page, the way back to the
app (the page's CSP lets its form lead there), and Settings -> Apps with its Revoke button. Screenshots land in
tests/artifacts/."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

from playwright.sync_api import Page, expect

from tests.browser.conftest import shoot
from tests.browser.test_accounts_ui import fits_the_phone, sign_up


def app_address(server: str) -> str:
    """The app's callback: another origin than the site's (localhost, not 127.0.0.1) that answers 200, so the
    browser really goes there, past the consent page's CSP form-action."""
    return server.replace("127.0.0.1", "localhost") + "/healthz"


def test_authorizing_an_app_and_taking_it_back(phone: Page, server: str):
    page, redirect = phone, app_address(server)
    sign_up(page, "appuser")
    app = page.request.post(
        "/api/v1/apps",
        form={
            "client_name": "Ivory",
            "redirect_uris": redirect,
            "scopes": "read write follow",
            "website": "https://ivory.example",
        },
    ).json()

    query = {"response_type": "code", "client_id": app["client_id"], "redirect_uri": redirect, "scope": "read write"}
    page.goto("/oauth/authorize?" + urlencode({**query, "state": "s1"}))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Ivory")
    expect(page.get_by_text("See everything your account can see")).to_be_visible()
    expect(page.get_by_text("Follow, unfollow, block and mute")).to_have_count(0)  # not asked for
    fits_the_phone(page)
    shoot(page, "phone-oauth-consent")

    page.get_by_role("button", name="Authorize").tap()
    expect(page).to_have_url(re.compile("^" + re.escape(redirect) + r"\?code="))
    code = parse_qs(urlsplit(page.url).query)
    assert code["state"] == ["s1"]
    token = page.request.post(
        "/oauth/token",
        form={
            "grant_type": "authorization_code",
            "code": code["code"][0],
            "redirect_uri": redirect,
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    ).json()["access_token"]
    me = page.request.get("/api/v1/accounts/verify_credentials", headers={"authorization": f"Bearer {token}"})
    assert me.status == 200 and me.json()["username"] == "appuser"

    page.goto("/settings/apps")
    listed = page.get_by_role("list", name="Authorized apps")
    expect(listed.get_by_role("heading", name="Ivory")).to_be_visible()
    fits_the_phone(page)
    shoot(page, "phone-settings-apps")
    listed.get_by_role("button", name="Revoke Ivory").tap()
    expect(page.get_by_role("status")).to_contain_text("Ivory can no longer use your account")
    expect(page.get_by_text("No app can use your account")).to_be_visible()
    gone = page.request.get("/api/v1/accounts/verify_credentials", headers={"authorization": f"Bearer {token}"})
    assert gone.status == 401


def test_denying_sends_the_app_away_empty_handed(phone: Page, server: str):
    page, redirect = phone, app_address(server)
    sign_up(page, "denier")
    app = page.request.post("/api/v1/apps", form={"client_name": "Nosy", "redirect_uris": redirect}).json()
    query = {"response_type": "code", "client_id": app["client_id"], "redirect_uri": redirect, "scope": "read"}
    page.goto("/oauth/authorize?" + urlencode(query))
    page.get_by_role("button", name="Deny").tap()
    expect(page).to_have_url(re.compile("^" + re.escape(redirect) + r"\?error=access_denied"))
