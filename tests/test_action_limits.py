"""Follows, likes and comments per account per window ([limits]): past the limit a clear 429 on the web and in the
client API alike, nothing changed, and nobody else held back."""

from __future__ import annotations

from html import unescape

from app.services import accounts, graph
from tests.apitools import bearer, issue_token
from tests.conftest import all_rows, another_browser, log_in, post_form
from tests.test_feed import share, user


def test_follows_past_the_limit_are_refused_with_a_message_and_change_nothing(make_site):
    ctx, client = make_site(limits={"follows_per_account": 2})
    ana, _bo, _cy, di = (user(ctx, name) for name in ("ana", "bo", "cy", "di"))
    log_in(client, "ana")
    for name in ("bo", "cy"):
        assert post_form(client, f"/@{name}/follow", {}, token_from="/").status_code == 303

    refused = post_form(client, "/@di/follow", {}, token_from="/")
    assert refused.status_code == 429
    assert "You've followed many accounts just now. Wait 5 minutes and try again." in unescape(refused.text)
    assert graph.relation(ctx, ana, di.id).following is None
    assert accounts.get_user(ctx, di.id).follower_count == 0

    other = another_browser(client)
    log_in(other, "bo")  # the limit is ana's alone
    assert post_form(other, "/@di/follow", {}, token_from="/").status_code == 303
    assert accounts.get_user(ctx, di.id).follower_count == 1


def test_likes_past_the_limit_are_refused_in_the_client_api_and_change_nothing(make_site):
    ctx, client = make_site(limits={"likes_per_account": 1})
    user(ctx, "ana")
    bo = user(ctx, "bo")
    first, second = share(ctx, bo), share(ctx, bo)
    token = bearer(issue_token(ctx, "ana"))
    assert client.post(f"/api/v1/statuses/{first}/favourite", headers=token).status_code == 200

    refused = client.post(f"/api/v1/statuses/{second}/favourite", headers=token)
    assert refused.status_code == 429
    assert refused.json() == {"error": "You've liked many posts just now. Wait 5 minutes and try again."}
    assert [r["post_id"] for r in all_rows(ctx, "likes")] == [first]


def test_comments_past_the_limit_are_refused_with_a_message_and_change_nothing(make_site):
    ctx, client = make_site(limits={"comments_per_account": 1})
    user(ctx, "ana")
    post_id = share(ctx, user(ctx, "bo"))
    log_in(client, "ana")
    assert (
        post_form(client, f"/p/{post_id}/comments", {"body": "lovely"}, token_from=f"/p/{post_id}").status_code == 303
    )

    refused = post_form(
        client,
        f"/p/{post_id}/comments",
        {"body": "lovely again"},
        token_from=f"/p/{post_id}",
        headers={"HX-Request": "true"},
    )
    assert refused.status_code == 429
    assert "You've commented a lot just now. Wait 5 minutes and try again." in unescape(refused.text)
    assert [r["body"] for r in all_rows(ctx, "comments")] == ["lovely"]
