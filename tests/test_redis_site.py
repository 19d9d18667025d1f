"""The whole site with every seam that can live in Redis there: rung 2's shape on one machine (two server processes
and two worker processes sharing sessions, feeds, queue, events and cache), and what a Redis outage looks like to a
browser (503 with a message, nothing changed) and after it (everything works again)."""

from __future__ import annotations

import signal
import time

import httpx

from app.backends.redis_server import DOWN_SECONDS
from app.config import REDIS_SECTIONS
from app.web.errors import MESSAGES
from tests.backends import make_config
from tests.conftest import PASSWORD, all_users, another_browser, log_in, sign_up
from tests.procs import http_sign_up
from tests.procs import procs as procs  # noqa: F401 (fixture)
from tests.test_live import GENEROUS_LIMITS, EventStream, post_as, share_photo

UNAVAILABLE = "Nothing was changed; try again shortly."  # the end of MESSAGES[503], as a page shows it


def on_redis(url: str) -> dict[str, dict]:
    """make_config sections: every seam that can be on Redis is, on `url`."""
    return {**{section: {"backend": "redis"} for section in REDIS_SECTIONS}, "redis": {"url": url}}


def test_two_server_processes_and_two_workers_share_one_redis(tmp_path, procs, redis_url):  # noqa: F811
    sections = on_redis(redis_url)
    sections["queue"]["embedded_workers"] = 0  # only the worker processes run tasks
    make_config(tmp_path, limits=GENEROUS_LIMITS, server={"workers": 2}, **sections)
    config = tmp_path / "config.toml"
    server = procs.serve(config)
    workers = [procs.worker(config), procs.worker(config)]
    assert f"threads on redis {redis_url.removeprefix('redis://')} (Redis " in workers[0].stdout()

    ana, bo = http_sign_up(server.url, "rung2_ana", PASSWORD), http_sign_up(server.url, "rung2_bo", PASSWORD)
    stream = None
    try:
        assert post_as(bo, "/@rung2_ana/follow", "/@rung2_ana").status_code == 303
        stream = EventStream(server.url, bo.cookies)  # held by one server process; the other may take the upload
        assert stream.status == 200
        stream.next("notifications")
        post_id = share_photo(server, ana)  # processed and fanned out by a worker process
        assert stream.next("new_post", timeout=30)["post_id"] == post_id  # published there, heard here
        assert f"/p/{post_id}" in bo.get("/").text  # bo's feed, from the sorted set
        # Sessions live in Redis: every request, whichever server process answers it, knows bo.
        assert all("rung2_bo" in bo.get("/notifications").text for _ in range(6))

        ready = httpx.get(f"{server.url}/readyz").json()
        assert ready["status"] == "ready", ready
        where = f"redis {redis_url.removeprefix('redis://')} (Redis "
        for seam in ("cache", "feeds", "queue", "kv", "events"):
            assert ready["backends"][seam]["detail"].startswith(where), ready
    finally:
        if stream is not None:
            stream.close()
        ana.close()
        bo.close()
    for worker in workers:
        worker.send(signal.SIGTERM)
        assert worker.wait(timeout=20) in (0, -signal.SIGTERM), worker.describe()
        assert "Traceback" not in worker.stderr(), worker.stderr()


def test_a_redis_outage_is_a_503_page_that_changes_nothing(make_site, own_redis):
    ctx, client = make_site(server={"ops_clients": ["testclient"]}, **on_redis(own_redis.url(0)))
    assert sign_up(client, "outage_ana").status_code == 303
    assert client.get("/").status_code == 200
    stranger = another_browser(client)
    own_redis.stop()

    home = client.get("/")  # the session cannot be read
    assert home.status_code == 503 and UNAVAILABLE in home.text and "Traceback" not in home.text
    api = client.get("/", headers={"accept": "application/json"})
    assert api.status_code == 503 and api.json() == {"error": MESSAGES[503]}
    # A stranger's sign-up is refused before anything is written (the rate limit cannot be counted).
    refused = sign_up(stranger, "outage_bo")
    assert refused.status_code == 503 and UNAVAILABLE in refused.text
    assert client.get("/healthz").status_code == 200  # the process is fine...
    ready = client.get("/readyz")
    assert ready.status_code == 503  # ...but not ready, and says why
    assert f"127.0.0.1:{own_redis.port}/0 is unavailable" in ready.json()["backends"]["kv"]["detail"]

    own_redis.start()  # back, empty: sessions are gone, so ana signs in again
    time.sleep(DOWN_SECONDS)
    assert "outage_ana" not in client.get("/").text
    assert log_in(client, "outage_ana").status_code == 303
    assert "outage_ana" in client.get("/").text
    assert [u["username"] for u in all_users(ctx)] == ["outage_ana"], "the refused sign-up made an account"
    assert client.get("/readyz").status_code == 200
    assert ctx.backends.kv.check().startswith(f"redis 127.0.0.1:{own_redis.port}/0")
