"""The follow graph through its pages and buttons: profiles, follow/unfollow (form, htmx, JSON), private accounts'
requests, blocks, mutes, removing followers, the lists, and every refusal leaving nothing changed."""

from __future__ import annotations

import re

import pytest
from litestar.testing import TestClient

from app.services import accounts, graph
from app.services.posts import PhotoUpload, create_post
from app.web.routes import social
from tests.conftest import TESTDATA, another_browser, csrf_token, post_form, sign_up

FLOWER = (TESTDATA / "good" / "flower.jpg").read_bytes()
GENEROUS_LIMITS = {"signup_per_ip": 10_000, "login_per_ip": 10_000, "login_per_account": 10_000}
HTMX = {"hx-request": "true"}
JSON = {"accept": "application/json"}
MISSING = "There is no account with that name."


@pytest.fixture
def site(make_site):
    return make_site(limits=GENEROUS_LIMITS)


@pytest.fixture
def ctx(site):
    return site[0]


@pytest.fixture
def people(site):
    """people("ana", "bo") -> a signed-in browser for each, on one site."""
    _ctx, first = site
    used = []

    def make(*names: str, private: tuple[str, ...] = ()) -> list[TestClient]:
        browsers = []
        for name in names:
            browser = first if not used else another_browser(first)
            used.append(browser)
            assert sign_up(browser, name).status_code == 303
            if name in private:
                form = {"display_name": name.title(), "bio": "", "is_private": "on"}
                assert post_form(browser, "/settings/profile", form).status_code == 303
            browsers.append(browser)
        return browsers

    return make


def user(ctx, name: str) -> accounts.User:
    found = accounts.find_user(ctx, name)
    assert found is not None
    return found


def counts(ctx, name: str) -> tuple[int, int]:
    """(followers, following) as stored on the account's row."""
    row = user(ctx, name)
    return row.follower_count, row.following_count


def act(browser: TestClient, path: str, data: dict | None = None, *, headers: dict | None = None, page: str = "/"):
    """A POST as the page's form sends it (CSRF field from `page`)."""
    return post_form(browser, path, data or {}, token_from=page, headers=headers or {})


def ready_post(ctx, author: accounts.User) -> int:
    post = create_post(ctx, author, [PhotoUpload(FLOWER, alt_text="a flower")])
    ctx.backends.queue.run_pending()
    return post.id


def button(html: str) -> str:
    """The text of the profile's follow button."""
    match = re.search(r'class="button[^"]*follow-button">([^<]+)<', html)
    assert match, "no follow button"
    return match.group(1).strip()


def same_as_missing(browser: TestClient, response) -> None:
    missing = browser.get("/@nobody_at_all")
    assert response.status_code == missing.status_code == 404
    assert MISSING in response.text and MISSING in missing.text


# --- Profiles ------------------------------------------------------------------------------------------------------


def test_a_profile_shows_counts_and_a_follow_button_that_works_without_javascript(ctx, people):
    ana, bo = people("ana", "bo")
    ready_post(ctx, user(ctx, "ana"))
    page = bo.get("/@ana").text
    assert button(page) == "Follow"
    assert re.search(r"<strong>1</strong> post\b", page) and re.search(r"<strong>0</strong> followers", page)
    assert 'href="/@ana/followers"' in page and 'href="/@ana/following"' in page

    followed = act(bo, "/@ana/follow", page="/@ana")
    assert followed.status_code == 303 and followed.headers["location"] == "/@ana"
    assert counts(ctx, "ana") == (1, 0) and counts(ctx, "bo") == (0, 1)
    page = bo.get("/@ana").text
    assert button(page) == "Following" and re.search(r"<strong>1</strong> follower\b", page)

    # ana sees bo follows her, and the button says so.
    theirs = ana.get("/@bo").text
    assert button(theirs) == "Follow back" and "Follows you" in theirs and "Remove follower" in theirs
    own = ana.get("/@ana").text
    assert "Edit profile" in own and "follow-button" not in own

    assert act(bo, "/@ana/unfollow", page="/@ana").status_code == 303
    assert counts(ctx, "ana") == (0, 0) and counts(ctx, "bo") == (0, 0)
    assert button(bo.get("/@ana").text) == "Follow"


def test_a_visitor_is_sent_to_log_in_to_follow(ctx, people, site):
    people("ana")
    visitor = another_browser(site[1])
    page = visitor.get("/@ana").text
    assert 'href="/login?next=/@ana"' in page and "More options" not in page
    refused = visitor.post("/@ana/follow", data={"_csrf_token": csrf_token(visitor, "/login")}, follow_redirects=False)
    assert refused.status_code == 401
    assert counts(ctx, "ana") == (0, 0)


def test_following_with_htmx_swaps_the_button_and_the_counts(ctx, people):
    _ana, bo = people("ana", "bo")
    answer = act(bo, "/@ana/follow", {"ui": "profile"}, headers=HTMX, page="/@ana")
    assert answer.status_code == 200
    assert button(answer.text) == "Following"
    assert 'id="profile-counts" hx-swap-oob="true"' in answer.text
    assert re.search(r"<strong>1</strong> follower\b", answer.text)
    assert "<html" not in answer.text  # a fragment, not a page

    again = act(bo, "/@ana/unfollow", {"ui": "row", "next": "/@bo/following"}, headers=HTMX, page="/@ana")
    assert button(again.text) == "Follow" and "profile-counts" not in again.text
    assert counts(ctx, "ana") == (0, 0)


def test_following_answers_json_clients(ctx, people):
    _ana, bo = people("ana", "bo")
    answer = act(bo, "/@ana/follow", headers=JSON, page="/@ana")
    assert answer.status_code == 200 and answer.json() == {"following": "active", "follower_count": 1}
    twice = act(bo, "/@ana/follow", headers=JSON, page="/@ana")
    assert twice.status_code == 409 and twice.json() == {"error": "You already follow @ana."}


def test_following_yourself_or_twice_is_refused_and_changes_nothing(ctx, people):
    ana, bo = people("ana", "bo")
    refused = act(ana, "/@ana/follow", page="/@ana")
    assert refused.status_code == 400 and "You can&#39;t follow yourself." in refused.text
    assert counts(ctx, "ana") == (0, 0)

    assert act(bo, "/@ana/follow", page="/@ana").status_code == 303
    twice = act(bo, "/@ana/follow", page="/@ana")
    assert twice.status_code == 409 and "You already follow @ana." in twice.text
    assert counts(ctx, "ana") == (1, 0) and counts(ctx, "bo") == (0, 1)
    # With htmx the button comes back as it is, with the message beside it.
    swapped = act(bo, "/@ana/follow", {"ui": "profile"}, headers=HTMX, page="/@ana")
    assert swapped.status_code == 200 and button(swapped.text) == "Following"
    assert "You already follow @ana." in swapped.text
    assert counts(ctx, "ana") == (1, 0)


def test_following_a_missing_account_is_the_missing_account_404(people):
    (bo,) = people("bo")
    same_as_missing(bo, act(bo, "/@nobody_here/follow", page="/@bo"))
    same_as_missing(bo, bo.get("/@nobody_here/followers"))


# --- Private accounts ----------------------------------------------------------------------------------------------


def test_a_private_account_keeps_a_follow_pending_until_it_approves(ctx, people):
    ana, bo = people("ana", "bo", private=("ana",))
    post_id = ready_post(ctx, user(ctx, "ana"))
    page = bo.get("/@ana").text
    assert "This account is private" in page and "Follow to see their photos." in page
    assert f"/p/{post_id}" not in page
    assert "<strong>0</strong> followers" in page and 'href="/@ana/followers"' not in page  # the header still shows
    assert bo.get("/@ana/followers").status_code == 403

    assert act(bo, "/@ana/follow", page="/@ana").status_code == 303
    page = bo.get("/@ana").text
    assert button(page) == "Requested" and "You asked to follow @ana" in page and f"/p/{post_id}" not in page
    assert counts(ctx, "ana") == (0, 0) and counts(ctx, "bo") == (0, 0)  # a request is not a follow
    assert bo.get(f"/p/{post_id}").status_code == 404

    requests = ana.get("/follow-requests").text
    assert "bo" in requests and f"/follow-requests/{user(ctx, 'bo').id}/approve" in requests
    approved = act(ana, f"/follow-requests/{user(ctx, 'bo').id}/approve", page="/follow-requests")
    assert approved.status_code == 303 and "done=approved" in approved.headers["location"]
    assert "@bo now follows you." in ana.get(approved.headers["location"]).text
    assert counts(ctx, "ana") == (1, 0) and counts(ctx, "bo") == (0, 1)
    page = bo.get("/@ana").text
    assert button(page) == "Following" and f"/p/{post_id}" in page and "This account is private" not in page
    assert bo.get("/@ana/followers").status_code == 200


def test_a_denied_request_leaves_nothing_and_may_be_asked_again(ctx, people):
    ana, bo = people("ana", "bo", private=("ana",))
    act(bo, "/@ana/follow", page="/@ana")
    bo_id = user(ctx, "bo").id
    answer = act(ana, f"/follow-requests/{bo_id}/deny", headers=HTMX, page="/follow-requests")
    assert answer.status_code == 200 and "Declined" in answer.text
    assert graph.follow_requests(ctx, user(ctx, "ana"), None, 10) == []
    assert graph.relation(ctx, user(ctx, "bo"), user(ctx, "ana").id).following is None
    assert counts(ctx, "ana") == (0, 0)
    assert button(bo.get("/@ana").text) == "Follow"
    assert act(bo, "/@ana/follow", page="/@ana").status_code == 303
    assert [u.username for u in graph.follow_requests(ctx, user(ctx, "ana"), None, 10)] == ["bo"]


def test_withdrawing_a_request_removes_it_from_the_owners_list(ctx, people):
    ana, bo = people("ana", "bo", private=("ana",))
    act(bo, "/@ana/follow", page="/@ana")
    withdrawn = act(bo, "/@ana/unfollow", {"ui": "profile"}, headers=HTMX, page="/@ana")
    assert button(withdrawn.text) == "Follow"
    assert "No follow requests" in ana.get("/follow-requests").text
    assert counts(ctx, "ana") == (0, 0)


def test_unfollowing_a_private_account_with_htmx_reloads_the_profile(ctx, people):
    ana, bo = people("ana", "bo", private=("ana",))
    act(bo, "/@ana/follow", page="/@ana")
    act(ana, f"/follow-requests/{user(ctx, 'bo').id}/approve", page="/follow-requests")
    answer = act(bo, "/@ana/unfollow", {"ui": "profile"}, headers=HTMX, page="/@ana")
    assert answer.headers.get("hx-refresh") == "true"  # the grid must go: the page reloads
    assert counts(ctx, "ana") == (0, 0) and counts(ctx, "bo") == (0, 0)


def test_acting_on_a_follow_request_that_is_not_yours_or_not_there_is_404(ctx, people):
    ana, bo, cy = people("ana", "bo", "cy", private=("ana",))
    act(bo, "/@ana/follow", page="/@ana")
    bo_id = user(ctx, "bo").id
    for path in (
        f"/follow-requests/{bo_id}/approve",  # bo asked ana, not cy
        f"/follow-requests/{bo_id}/deny",
        f"/follow-requests/{user(ctx, 'ana').id}/approve",  # no request at all
        "/follow-requests/not-an-id/approve",
        "/follow-requests/99999999999999999999/deny",
    ):
        refused = act(cy, path, page="/follow-requests")
        assert refused.status_code == 404, path
        assert "There is no follow request from that account." in refused.text
    as_json = act(cy, f"/follow-requests/{bo_id}/approve", headers=JSON, page="/follow-requests")
    assert as_json.status_code == 404 and as_json.json() == {"error": "There is no follow request from that account."}
    # Nothing changed: bo's request still waits for ana, and nobody follows anybody.
    assert [u.username for u in graph.follow_requests(ctx, user(ctx, "ana"), None, 10)] == ["bo"]
    assert counts(ctx, "ana") == counts(ctx, "bo") == counts(ctx, "cy") == (0, 0)
    # Approving twice: the second finds nothing.
    assert act(ana, f"/follow-requests/{bo_id}/approve", page="/follow-requests").status_code == 303
    again = act(ana, f"/follow-requests/{bo_id}/approve", headers=HTMX, page="/follow-requests")
    assert again.status_code == 200 and "There is no follow request from that account." in again.text
    assert counts(ctx, "ana") == (1, 0)


def test_going_public_approves_every_pending_request(ctx, people):
    ana, bo, cy = people("ana", "bo", "cy", private=("ana",))
    act(bo, "/@ana/follow", page="/@ana")
    act(cy, "/@ana/follow", page="/@ana")
    assert counts(ctx, "ana") == (0, 0)
    saved = post_form(ana, "/settings/profile", {"display_name": "Ana", "bio": ""})  # the box unticked
    assert saved.status_code == 303
    assert not user(ctx, "ana").is_private
    assert counts(ctx, "ana") == (2, 0) and counts(ctx, "bo") == (0, 1) and counts(ctx, "cy") == (0, 1)
    assert graph.follow_requests(ctx, user(ctx, "ana"), None, 10) == []
    assert button(bo.get("/@ana").text) == "Following"
    # Saving the profile while public again approves nobody twice.
    post_form(ana, "/settings/profile", {"display_name": "Ana A", "bio": ""})
    assert counts(ctx, "ana") == (2, 0)


# --- Blocks and mutes ----------------------------------------------------------------------------------------------


def test_a_block_ends_follows_both_ways_and_hides_both_profiles(ctx, people):
    ana, bo = people("ana", "bo")
    act(bo, "/@ana/follow", page="/@ana")
    act(ana, "/@bo/follow", page="/@bo")
    assert counts(ctx, "ana") == (1, 1) and counts(ctx, "bo") == (1, 1)

    confirm = ana.get("/@bo/block")
    assert confirm.status_code == 200 and "Block @bo?" in confirm.text
    blocked = act(ana, "/@bo/block", page="/@bo/block")
    assert blocked.status_code == 303 and blocked.headers["location"].startswith("/settings/blocked?done=blocked")
    listing = ana.get(blocked.headers["location"]).text
    assert "You blocked @bo." in listing and 'action="/@bo/unblock"' in listing
    assert counts(ctx, "ana") == (0, 0) and counts(ctx, "bo") == (0, 0)

    # Neither sees the other: the same 404 as a missing account, on the profile and on every action.
    same_as_missing(bo, bo.get("/@ana"))
    same_as_missing(ana, ana.get("/@bo"))
    for path in ("/@ana/follow", "/@ana/mute", "/@ana/block", "/@ana/unfollow", "/@ana/remove-follower"):
        same_as_missing(bo, act(bo, path, page="/@bo"))
    for path in ("/@ana/followers", "/@ana/following", "/@ana/block", "/@ana/remove-follower"):
        same_as_missing(bo, bo.get(path))
    assert graph.relation(ctx, user(ctx, "bo"), user(ctx, "ana").id).following is None
    assert counts(ctx, "ana") == (0, 0)
    # bo cannot lift ana's block.
    same_as_missing(bo, act(bo, "/@ana/unblock", page="/@bo"))
    assert graph.relation(ctx, user(ctx, "ana"), user(ctx, "bo").id).blocking

    unblocked = act(ana, "/@bo/unblock", page="/settings/blocked")
    assert unblocked.status_code == 303 and "done=unblocked" in unblocked.headers["location"]
    assert bo.get("/@ana").status_code == 200 and ana.get("/@bo").status_code == 200
    assert counts(ctx, "ana") == (0, 0)  # follows don't come back
    assert "You haven" in ana.get("/settings/blocked").text


def test_blocking_twice_or_yourself_is_refused(ctx, people):
    ana, bo = people("ana", "bo")
    refused = act(ana, "/@ana/block", page="/@ana")
    assert refused.status_code == 400 and "You can&#39;t block yourself." in refused.text
    assert ana.get("/@ana/block").status_code == 400
    assert graph.blocked_accounts(ctx, user(ctx, "ana"), None, 10) == []


def test_mute_and_unmute_from_the_profile_menu(ctx, people):
    ana, bo = people("ana", "bo")
    act(bo, "/@ana/follow", page="/@ana")
    assert 'action="/@ana/mute"' in bo.get("/@ana").text
    muted = act(bo, "/@ana/mute", page="/@ana")
    assert muted.status_code == 303 and muted.headers["location"] == "/@ana?done=muted&who=ana"
    page = bo.get(muted.headers["location"]).text
    assert "You muted @ana." in page and 'action="/@ana/unmute"' in page
    assert button(page) == "Following" and counts(ctx, "ana") == (1, 0)  # a mute is not an unfollow
    assert graph.muted_ids(ctx, user(ctx, "bo").id) == {user(ctx, "ana").id}
    again = act(bo, "/@ana/mute", page="/@ana")
    assert again.status_code == 409 and "You already mute @ana." in again.text
    assert "ana" in bo.get("/settings/blocked").text.split("Muted accounts", 1)[1]

    unmuted = act(bo, "/@ana/unmute", page="/@ana")
    assert unmuted.status_code == 303 and 'action="/@ana/mute"' in bo.get("/@ana").text
    assert graph.muted_ids(ctx, user(ctx, "bo").id) == set()
    assert act(ana, "/@ana/mute", page="/@ana").status_code == 400  # yourself


def test_removing_a_follower(ctx, people):
    ana, bo, cy = people("ana", "bo", "cy")
    act(bo, "/@ana/follow", page="/@ana")
    assert "Remove follower" not in ana.get("/@cy").text  # cy doesn't follow ana
    confirm = ana.get("/@bo/remove-follower")
    assert confirm.status_code == 200 and "Remove @bo from your followers?" in confirm.text
    removed = act(ana, "/@bo/remove-follower", page="/@bo/remove-follower")
    assert removed.status_code == 303 and "done=removed" in removed.headers["location"]
    assert counts(ctx, "ana") == (0, 0) and counts(ctx, "bo") == (0, 0)
    assert button(bo.get("/@ana").text) == "Follow"
    # Someone who doesn't follow you can't be removed: a clear 404, nothing changed.
    refused = act(ana, "/@cy/remove-follower", page="/@cy")
    assert refused.status_code == 404 and "@cy doesn" in refused.text
    assert ana.get("/@cy/remove-follower").status_code == 404


# --- Lists ---------------------------------------------------------------------------------------------------------


def test_followers_and_following_lists_page_by_cursor(ctx, people, monkeypatch):
    monkeypatch.setattr(social, "LIST_PAGE", 2)
    ana, *others = people("ana", "bo", "cy", "dee")
    for browser in others:
        act(browser, "/@ana/follow", page="/@ana")
    act(ana, "/@bo/follow", page="/@bo")
    names = lambda html: re.findall(r'<span class="username">([^<]+)</span>', html)  # noqa: E731

    first = ana.get("/@ana/followers")
    assert first.status_code == 200 and names(first.text) == ["dee", "cy"]  # newest account first
    more = re.search(r'href="(/@ana/followers\?before=\d+)"', first.text).group(1)
    second = ana.get(more)
    assert names(second.text) == ["bo"] and "Show more" not in second.text
    # ana's own list offers to remove each follower; others' lists offer follow buttons.
    assert 'href="/@dee/remove-follower?next=' in first.text
    assert names(ana.get("/@ana/following").text) == ["bo"]
    listed = others[0].get("/@ana/followers").text
    assert "remove-follower" not in listed and 'action="/@cy/follow"' in listed

    bad = ana.get("/@ana/followers?before=yesterday")
    assert bad.status_code == 400 and "That page link is broken" in bad.text

    # Removing from the list comes back to it, saying so (once, however many were removed before).
    for name, back in (("dee", "/@ana/followers"), ("cy", "/@ana/followers?done=removed&who=dee")):
        confirm = ana.get(f"/@{name}/remove-follower", params={"next": back})
        assert f'name="next" value="{back.replace("&", "&amp;")}"' in confirm.text
        removed = act(ana, f"/@{name}/remove-follower", {"next": back}, page="/@ana")
        assert removed.headers["location"] == f"/@ana/followers?done=removed&who={name}"
        assert f"@{name} no longer follows you." in ana.get(removed.headers["location"]).text
    assert counts(ctx, "ana") == (1, 1)


def test_lists_of_a_private_account_show_only_to_those_who_see_its_posts(ctx, people, site):
    ana, bo, cy = people("ana", "bo", "cy", private=("ana",))
    act(bo, "/@ana/follow", page="/@ana")
    act(ana, f"/follow-requests/{user(ctx, 'bo').id}/approve", page="/follow-requests")
    visitor = another_browser(site[1])
    for browser, status in ((ana, 200), (bo, 200), (cy, 403), (visitor, 403)):
        for which in ("followers", "following"):
            response = browser.get(f"/@ana/{which}")
            assert response.status_code == status, (which, status)
            if status == 403:
                assert "account is private" in response.text and 'class="people"' not in response.text


def test_the_follow_requests_page_needs_a_session(site):
    visitor = another_browser(site[1])
    answer = visitor.get("/follow-requests", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_the_profile_and_graph_counts_stay_right_through_a_sequence(ctx, people):
    ana, bo, cy = people("ana", "bo", "cy")
    act(bo, "/@ana/follow", page="/@ana")
    act(cy, "/@ana/follow", page="/@ana")
    act(ana, "/@cy/follow", page="/@cy")
    act(bo, "/@ana/unfollow", page="/@ana")
    act(bo, "/@ana/unfollow", page="/@ana")  # unfollowing what you don't follow changes nothing
    act(bo, "/@ana/follow", page="/@ana")
    act(ana, "/@cy/block", page="/@cy/block")
    assert counts(ctx, "ana") == (1, 0) and counts(ctx, "bo") == (0, 1) and counts(ctx, "cy") == (0, 0)
    page = bo.get("/@ana").text
    assert re.search(r"<strong>1</strong> follower\b", page) and re.search(r"<strong>0</strong> following", page)
