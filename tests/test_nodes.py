"""Two app nodes behind nginx (scaling/nginx.conf) and two worker nodes, all on one site.

No sticky sessions: a browser signs up through nginx and stays signed in whichever node answers; the work its
requests queue is done by the worker nodes; an app node that dies is routed around. On the top rung
(PINHOLE_TEST_RUNG=top) the nodes share Postgres, Redis, memcached and S3; on rung 0 they share the data dir.
"""

from __future__ import annotations

import json
from contextlib import closing

import httpx

from tests.backends import make_config
from tests.conftest import PASSWORD
from tests.procs import form_token, http_sign_up, procs, run_cli, wait_for  # noqa: F401 (fixture)
from tests.rungs import rung_sections
from tests.server_nginx import nginx  # noqa: F401 (fixture)
from tests.test_serve import GENEROUS_LIMITS, assert_avatar_served, avatar_src, upload_avatar


def node_config(request, folder, **sections) -> str:
    """The site's config.toml as every node reads it: the worker nodes run the queue (no embedded workers), and
    nginx on this machine is the trusted proxy."""
    sections = {
        "queue": {"embedded_workers": 0},
        "limits": GENEROUS_LIMITS,
        "server": {"trusted_proxies": ["127.0.0.1"]},
        **sections,
    }
    return str(make_config(folder, **rung_sections(request, folder, sections)).source)


def served_paths(proc) -> list[str]:
    """The paths this node answered, from its request log lines."""
    paths = []
    for line in proc.stdout().splitlines() + proc.stderr().splitlines():
        if line.startswith("{") and '"request"' in line:
            paths.append(json.loads(line).get("path"))
    return paths


def test_two_app_nodes_and_two_worker_nodes_behind_nginx(request, tmp_path, procs, nginx):  # noqa: F811
    config = node_config(request, tmp_path)
    assert run_cli("migrate", config=config).returncode == 0
    nodes = [procs.serve(config), procs.serve(config)]
    workers = [procs.worker(config), procs.worker(config)]
    base = nginx([node.url for node in nodes])

    with closing(http_sign_up(base, "nadia", PASSWORD)) as browser:
        for _ in range(6):  # signed in on every answer, whichever node gave it
            home = browser.get("/")
            assert home.status_code == 200 and "Welcome, nadia" in home.text, home.text[:300]
        upload_avatar(browser)  # queued by a node, made by a worker node
    src = wait_for(lambda: avatar_src(base, "nadia"), 30, "the avatar made by a worker node", 0.1)
    assert_avatar_served(base, src)
    for node in nodes:
        assert "/" in served_paths(node), f"nginx sent no page to {node.url}"
    assert all(worker.alive() for worker in workers), [worker.describe() for worker in workers]

    nodes[0].kill_group()  # a node dies: nginx sends everything to the other
    for _ in range(4):
        assert httpx.get(f"{base}/@nadia", timeout=10).status_code == 200


def next_event(lines, name: str) -> dict:
    """The data of the next server-sent event called `name` on a stream's lines."""
    event = None
    for line in lines:
        if line.startswith("event:"):
            event = line.partition(":")[2].strip()
        elif line.startswith("data:") and event == name:
            return json.loads(line.partition(":")[2])
    raise AssertionError(f"the stream ended before a {name!r} event")


def test_live_events_cross_app_nodes_through_redis(request, tmp_path, procs, new_redis_url):  # noqa: F811
    """A follow made on node B reaches, as it happens, the page the followed person has open on node A."""
    config = node_config(request, tmp_path, events={"backend": "redis"}, redis={"url": new_redis_url()})
    assert run_cli("migrate", config=config).returncode == 0
    node_a, node_b = procs.serve(config), procs.serve(config)
    with (
        closing(http_sign_up(node_a.url, "ines", PASSWORD)) as ines,
        closing(http_sign_up(node_b.url, "otto", PASSWORD)) as otto,
    ):
        with ines.stream("GET", "/events", timeout=20) as stream:
            lines = stream.iter_lines()
            assert next_event(lines, "notifications")["unread"] == 0  # the count when the page opened
            token = form_token(otto, "/@ines")
            assert otto.post("/@ines/follow", data={"_csrf_token": token}).status_code == 303
            assert next_event(lines, "notifications")["unread"] == 1
