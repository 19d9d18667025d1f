"""Operator endpoints and the pages around them: health, readiness, metrics, favicon, 404s, profiles."""

from __future__ import annotations

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TESTDATA, post_form, sign_up


def metric(client, name: str, **labels) -> float:
    """One sample's value from /metrics (0 when the labelled series does not exist yet)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.text.strip() == "ok"


def test_readyz_reports_every_backend(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["backends"]) == {"db", "cache", "blobs", "feeds", "queue", "kv", "events"}
    assert all(check["ok"] for check in body["backends"].values())
    assert response.headers["cache-control"] == "no-store"


def test_readyz_keeps_a_node_without_its_cache_ready_but_degraded(client, ctx, monkeypatch):
    def fail():
        raise ConnectionError("memcached gone")

    monkeypatch.setattr(ctx.backends.cache, "check", fail)
    response = client.get("/readyz")
    assert response.status_code == 200  # slower without its cache, never broken: the load balancer keeps it
    body = response.json()
    assert body["status"] == "degraded"
    assert body["backends"]["cache"] == {"ok": False, "detail": "ConnectionError: memcached gone"}


@pytest.mark.parametrize("broken", ["db", "kv", "blobs", "queue", "feeds", "events"])
def test_readyz_names_the_broken_backend(client, ctx, monkeypatch, broken):
    def fail():
        raise ConnectionError("disk on fire")

    monkeypatch.setattr(getattr(ctx.backends, broken), "check", fail)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["backends"][broken] == {"ok": False, "detail": "ConnectionError: disk on fire"}
    assert [name for name, check in body["backends"].items() if not check["ok"]] == [broken]
    assert client.get("/healthz").status_code == 200  # alive, just not ready


def test_metrics_count_requests_by_route(client):
    before = metric(client, "pinhole_http_requests_total", route="/login", method="GET", status="200")
    for _ in range(3):
        client.get("/login")
    assert metric(client, "pinhole_http_requests_total", route="/login", method="GET", status="200") == before + 3
    # Routes are labelled by their template, never by the raw path (one series per route, not per user).
    client.get("/@someone-unknown")
    text = client.get("/metrics").text
    assert 'route="/{handle}"' in text
    assert "someone-unknown" not in text
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_metrics_count_refused_requests_with_their_real_status(client):
    labels = {"route": "/settings/profile", "method": "POST"}
    forbidden = metric(client, "pinhole_http_requests_total", status="403", **labels)
    errors = metric(client, "pinhole_http_requests_total", status="500", **labels)
    assert client.post("/settings/profile", data={"bio": "no token"}).status_code == 403  # CSRF refusal
    assert metric(client, "pinhole_http_requests_total", status="403", **labels) == forbidden + 1
    assert metric(client, "pinhole_http_requests_total", status="500", **labels) == errors


def test_metrics_count_signups(client):
    before = metric(client, "pinhole_signups_total")
    sign_up(client, "ana")
    assert metric(client, "pinhole_signups_total") == before + 1
    sign_up(client, "Bad Name")  # refused: not counted
    assert metric(client, "pinhole_signups_total") == before + 1


def test_metrics_show_queue_depth(client, ctx):
    sign_up(client, "ana")
    assert metric(client, "pinhole_queue_depth") == 0
    photo = (TESTDATA / "good" / "hopper.jpg").read_bytes()
    post_form(
        client, "/settings/avatar", {}, token_from="/settings/profile", files={"avatar": ("a.jpg", photo, "image/jpeg")}
    )
    assert metric(client, "pinhole_queue_depth") == 1
    ctx.backends.queue.run_pending()
    assert metric(client, "pinhole_queue_depth") == 0


def test_favicon_is_served_with_caching(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["content-type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert "max-age=" in response.headers["cache-control"]
    assert int(response.headers["cache-control"].split("max-age=")[1].split(",")[0]) >= 86400


@pytest.mark.parametrize("path", ["/no-such-page", "/no/such/page", "/settings/nothing", "/media/nothing.webp"])
def test_unknown_paths_get_a_friendly_404_page(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "Not found" in response.text
    assert 'href="/"' in response.text  # a way back


def test_unknown_paths_answer_json_to_json_clients(client):
    response = client.get("/no/such/page", headers={"accept": "application/json"})
    assert response.status_code == 404
    assert "error" in response.json()


def test_unknown_profile_is_404(client):
    response = client.get("/@nobody")
    assert response.status_code == 404
    assert "There is no account with that name." in response.text


def test_profile_page_shows_the_account_with_its_bio_escaped(client):
    sign_up(client, "ana")
    bio = '<script>alert("hi")</script> & <b>bold</b>'
    post_form(client, "/settings/profile", {"display_name": "Ana <i>P</i>", "bio": bio})
    for viewer in (client, None):
        if viewer is None:
            post_form(client, "/logout", {}, token_from="/")
            viewer = client
        response = viewer.get("/@ana")
        assert response.status_code == 200
        assert re.search(r"<h1[^>]*>\s*ana\b", response.text)
        assert "&lt;script&gt;alert(&#34;hi&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in response.text
        assert "Ana &lt;i&gt;P&lt;/i&gt;" in response.text
        assert "<script>alert" not in response.text and "<b>bold" not in response.text
    assert client.get("/@ANA").status_code == 200  # names are case-insensitive


def test_unknown_addresses_are_counted_and_carry_a_request_id(client):
    before = metric(client, "pinhole_http_requests_total", route="unmatched", method="GET", status="404")
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert re.fullmatch(r"[0-9a-f]{12}", response.headers["x-request-id"])
    assert metric(client, "pinhole_http_requests_total", route="unmatched", method="GET", status="404") == before + 1
    refused = client.post("/settings/profile", data={"bio": "no token"})  # CSRF refusal, outside any handler
    assert refused.status_code == 403 and "x-request-id" in refused.headers


def test_a_404_page_keeps_the_signed_in_header(client):
    sign_up(client, "header.kept")
    page = client.get("/no/such/thing")
    assert page.status_code == 404
    assert "/@header.kept" in page.text and 'action="/logout"' in page.text


def test_metrics_and_backend_details_are_for_operator_addresses_only(make_site):
    _, client = make_site()  # the default ops_clients: loopback only; the test client is "testclient"
    assert client.get("/metrics").status_code == 404
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["backends"]["db"] == {"ok": True}  # no paths or versions for strangers
    _, operator = make_site(server={"ops_clients": ["testclient"]})
    assert operator.get("/metrics").status_code == 200
    assert "sqlite" in operator.get("/readyz").json()["backends"]["db"]["detail"]


def test_a_database_server_down_answers_503_with_a_message(client, ctx, monkeypatch):
    """What lives on an unreachable shard fails with a page that says so (and JSON for the API), never a 500."""
    from app.backends.database.base import DatabaseUnavailable

    sign_up(client, "ana")

    def down(shard):
        raise DatabaseUnavailable("db2.internal:5432/pinhole (primary for logical shards 128-255)")

    monkeypatch.setattr(ctx.db, "read", down)
    page = client.get("/@ana")
    assert page.status_code == 503
    assert "reach part of its storage right now" in page.text
    answer = client.get("/@ana", headers={"accept": "application/json"})
    assert answer.status_code == 503 and "error" in answer.json()
    assert "db2.internal" not in page.text  # where the data lives is for the operator's log
