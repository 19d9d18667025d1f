"""Helpers for the client API tests: apps, consent and tokens through the real app, or straight from the service
when a test is about something else."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import parse_qs, urlencode, urlsplit

from app.context import Context
from app.services import accounts, oauth

REDIRECT = "https://app.example/callback"
ALL = "read write follow push"


def register(client, redirect_uris: str = REDIRECT, scopes: str = ALL, **extra) -> dict:
    response = client.post(
        "/api/v1/apps", data={"client_name": "Test App", "redirect_uris": redirect_uris, "scopes": scopes, **extra}
    )
    assert response.status_code == 200, response.text
    return response.json()


def consent(browser, app: dict, redirect_uri: str = REDIRECT, scope: str = ALL, **extra):
    """Open the consent page as the signed-in `browser`: (response, its hidden fields, its CSRF token)."""
    query = {"response_type": "code", "client_id": app["client_id"], "redirect_uri": redirect_uri, "scope": scope}
    page = browser.get("/oauth/authorize?" + urlencode({**query, **extra}), follow_redirects=False)
    fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', page.text))
    return page, fields, fields.pop("_csrf_token", None)


def approve(browser, app: dict, decision: str = "approve", **kwargs):
    page, fields, token = consent(browser, app, **kwargs)
    assert page.status_code == 200, page.text
    return browser.post(
        "/oauth/authorize", data={**fields, "decision": decision, "_csrf_token": token}, follow_redirects=False
    )


def code_from(response) -> str:
    assert response.status_code == 303, response.text
    return parse_qs(urlsplit(response.headers["location"]).query)["code"][0]


def exchange(client, app: dict, code: str, redirect_uri: str = REDIRECT, **extra):
    return client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "code": code,
            "redirect_uri": redirect_uri,
            **extra,
        },
    )


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def issue_token(ctx: Context, username: str, scopes: str = ALL) -> str:
    """A token for `username` (made if missing) through the service, as the consent flow would give it."""
    user = accounts.find_user(ctx, username) or accounts.create_user(ctx, username, "correct horse battery")
    app, _secret = oauth.register_app(ctx, "Test App", [oauth.OOB], f"{ALL} profile")
    checked = oauth.check_authorization(
        ctx, client_id=app.client_id, redirect_uri=oauth.OOB, response_type="code", scope=scopes
    )
    code = oauth.grant_code(ctx, user, checked)
    return oauth.exchange_code(ctx, app, code, oauth.OOB).access_token


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


class Api:
    """One user's app: requests with their bearer token against a TestClient, and the queue run in between."""

    def __init__(self, ctx: Context, client, username: str, scopes: str = ALL):
        self.ctx, self.client = ctx, client
        self.token = issue_token(ctx, username, scopes)
        self.user = oauth.authenticate(ctx, self.token).user
        self.id = str(self.user.id)

    def __call__(self, method: str, path: str, **kwargs):
        return self.client.request(method, path, headers={**bearer(self.token), **kwargs.pop("headers", {})}, **kwargs)

    def get(self, path: str, **kwargs):
        return self("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self("POST", path, **kwargs)

    def ok(self, method: str, path: str, **kwargs):
        """The JSON of a 200 answer (asserted)."""
        response = self(method, path, **kwargs)
        assert response.status_code == 200, f"{method} {path}: {response.status_code} {response.text[:500]}"
        return response.json()

    def upload(self, photo, description: str = "", focus: str | None = None) -> dict:
        """Upload a photo file and run the queue: the ready MediaAttachment."""
        data = {"description": description, **({"focus": focus} if focus else {})}
        response = self.post(
            "/api/v2/media", files={"file": ("photo.jpg", photo.read_bytes(), "image/jpeg")}, data=data
        )
        assert response.status_code == 202, response.text
        self.ctx.backends.queue.run_pending()
        return self.ok("GET", f"/api/v1/media/{response.json()['id']}")

    def post_status(self, photos: list, text: str = "", **fields) -> dict:
        media_ids = [self.upload(photo)["id"] for photo in photos]
        status = self.ok("POST", "/api/v1/statuses", data={"status": text, "media_ids[]": media_ids, **fields})
        self.ctx.backends.queue.run_pending()  # fan-out and indexing
        return status
