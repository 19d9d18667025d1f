"""A real Mastodon client library (Mastodon.py 2.3.3, what many bots and tools use) driving a running Pinhole
(`main.py serve` on a free port, queue workers inside it): register an app, authorize with a code through the consent
page, post a status with two photos and alt text, read a follower's home timeline, favourite, follow a locked
account and get approved, read notifications, paginate with fetch_next, and revoke the token.

Run on rung 0 and on sharded PostgreSQL over two servers (the top rung's database; its other seams join the
parameters as their backends land).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from mastodon import Mastodon, MastodonAPIError, MastodonUnauthorizedError

from tests.backends import make_config
from tests.conftest import PASSWORD, TESTDATA
from tests.procs import Proc, Procs, http_sign_up, wait_for
from tests.rungs import rung_sections

REDIRECT = "https://scenario.example/callback"
SCOPES = ["read", "write", "follow", "push"]
FLOWER, HOPPER = TESTDATA / "good" / "flower.jpg", TESTDATA / "good" / "hopper.jpg"
HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"')
# One address signs up and authorizes everyone here; the limits have their own tests.
GENEROUS = {"signup_per_ip": 1000, "login_per_ip": 1000, "login_per_account": 1000, "oauth_per_ip": 1000}
WAIT = 60.0  # seconds for the queue (renditions, fan-out) on a busy machine


@pytest.fixture
def server(request, tmp_path) -> Iterator[Proc]:
    """A real server on the rung under test (tests/rungs.py: `make test` runs this file on rung 0 and the top)."""
    sections = {"limits": GENEROUS, "queue": {"embedded_workers": 2}, "log": {"level": "warning"}}
    make_config(tmp_path, **rung_sections(request, tmp_path, sections))
    started = Procs(tmp_path / "logs")
    try:
        yield started.serve(tmp_path / "config.toml")
    finally:
        started.close()


def signed_in_app(url: str, username: str) -> tuple[Mastodon, httpx.Client]:
    """A new account (through the sign-up page), and a Mastodon.py client it authorized through the consent page."""
    browser = http_sign_up(url, username, PASSWORD)
    client_id, client_secret = Mastodon.create_app(
        "Pinhole scenario", scopes=SCOPES, redirect_uris=REDIRECT, api_base_url=url
    )
    app = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=url, ratelimit_method="throw")
    consent = browser.get(app.auth_request_url(redirect_uris=REDIRECT, scopes=SCOPES, state="st8", allow_http=True))
    assert consent.status_code == 200, consent.text[:500]
    fields = dict(HIDDEN.findall(consent.text))
    answer = browser.post("/oauth/authorize", data={**fields, "decision": "approve"})
    assert answer.status_code == 303, answer.text[:500]
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["state"] == ["st8"]
    app.log_in(code=query["code"][0], redirect_uri=REDIRECT, scopes=SCOPES, allow_http=True)
    return app, browser


def uploaded(app: Mastodon, photo, description: str):
    media = app.media_post(str(photo), description=description)
    return wait_for(lambda: (found := app.media(media)).url and found, WAIT, "the upload's renditions", 0.2)


def test_mastodon_py_scenario(server):
    url = server.url
    ana, _ = signed_in_app(url, "ana")
    bo, _ = signed_in_app(url, "bo")
    carl, _ = signed_in_app(url, "carl")
    me = ana.account_verify_credentials()
    assert me.username == "ana" and ana.instance().version.startswith("4.3.0")

    # bo follows ana; ana posts two photos with alt text.
    bo_id = bo.account_verify_credentials().id
    assert bo.account_follow(me.id).following is True
    first = uploaded(ana, FLOWER, "A red flower in the sun")
    second = uploaded(ana, HOPPER, "Grace Hopper, in uniform")
    assert first.meta.small.width and first.blurhash and first.description == "A red flower in the sun"
    status = ana.status_post("Two photos #scenario", media_ids=[first, second], idempotency_key="scenario-1")
    assert [m.id for m in status.media_attachments] == [first.id, second.id]
    assert [m.description for m in status.media_attachments] == [first.description, second.description]
    assert ana.status_post("Two photos #scenario", media_ids=[first, second], idempotency_key="scenario-1").id == (
        status.id
    )

    # It reaches bo's home timeline (fan-out runs in the queue).
    home = wait_for(lambda: [s for s in bo.timeline_home() if s.id == status.id], WAIT, "the home timeline")
    assert home[0].account.username == "ana" and len(home[0].media_attachments) == 2

    # bo favourites it; ana is notified.
    assert bo.status_favourite(status).favourites_count == 1
    notes = ana.notifications(types=["favourite"])
    assert [(n.type, n.account.username, n.status.id) for n in notes] == [("favourite", "bo", status.id)]
    follows = ana.notifications(types=["follow"])
    assert [n.account.id for n in follows] == [bo_id]

    # carl locks his account; bo asks to follow and carl approves.
    carl.account_update_credentials(locked=True)
    carl_id = carl.account_verify_credentials().id
    assert bo.account_follow(carl_id).requested is True
    assert [a.id for a in carl.follow_requests()] == [bo_id]
    carl.follow_request_authorize(bo_id)
    assert bo.account_relationships(carl_id)[0].following is True
    assert carl.notifications(types=["follow"])[0].account.id == bo_id

    # Pagination: one status a page, following the Link headers.
    later = ana.status_post("And one more", media_ids=[uploaded(ana, FLOWER, "Again the flower")])
    seen, page = [], bo.account_statuses(me.id, limit=1)
    while page:
        seen.extend(s.id for s in page)
        page = bo.fetch_next(page) if hasattr(page, "_pagination_next") else None
    assert seen == [later.id, status.id]

    # The token is revoked: it no longer works.
    token = ana.access_token
    ana.revoke_access_token(allow_http=True)
    stale = Mastodon(access_token=token, api_base_url=url, ratelimit_method="throw")
    with pytest.raises(MastodonUnauthorizedError):
        stale.account_verify_credentials()
    assert bo.account(me.id).statuses_count == 2  # everyone else carries on


def test_mastodon_py_sees_bad_input_as_api_errors(server):
    ana, _ = signed_in_app(server.url, "ana")
    with pytest.raises(MastodonAPIError) as refused:
        ana.status_post("no photos")
    assert "at least one photo" in str(refused.value)
    bo, _ = signed_in_app(server.url, "bo")
    theirs = uploaded(bo, HOPPER, "bo's")
    with pytest.raises(MastodonAPIError):
        ana.status_post("not mine", media_ids=[theirs])
    started = time.monotonic()
    assert ana.account_statuses(ana.account_verify_credentials().id, limit=100000) == []
    assert time.monotonic() - started < WAIT
