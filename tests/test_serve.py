"""`python main.py serve` as a real process on a free port, and `main.py worker` beside it."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import apsw
import httpx
import pytest

from tests.backends import make_config
from tests.conftest import PASSWORD, TESTDATA
from tests.procs import (
    Proc,
    Procs,
    form_token,
    http_sign_up,
    one_line_error,
    procs,  # noqa: F401 (fixture)
    run_cli,
    wait_for,
)

PHOTO = TESTDATA / "good" / "flower.jpg"
AVATAR_SRC = re.compile(r'src="(/media/avatars/[^"]+\.webp)"')
# Tests sign up many users from one address; the per-IP limits have their own tests.
GENEROUS_LIMITS = {"signup_per_ip": 10_000, "login_per_ip": 10_000, "login_per_account": 10_000}


def site(tmp_path: Path, **sections) -> Path:
    make_config(tmp_path, limits=GENEROUS_LIMITS, **sections)
    return tmp_path / "config.toml"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Proc]:
    """One server with embedded queue workers, started on an empty data dir, shared by this module."""
    tmp = tmp_path_factory.mktemp("serve")
    started = Procs(tmp / "logs")
    try:
        yield started.serve(site(tmp))
    finally:
        started.close()


def test_serve_prints_its_url_and_migrates_an_empty_data_dir(server):
    assert f"http://127.0.0.1:{server.port}/" in server.stdout()
    assert "migrated: 0001_accounts" in server.stderr()
    db = Path(server.stdout_path).parents[1] / "data" / "pinhole.sqlite3"
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
    finally:
        conn.close()
    assert {"users", "usernames", "schema_migrations"} <= tables
    assert 1 in versions
    # Nothing left for the operator to do.
    result = run_cli("migrate", config=db.parents[1] / "config.toml")
    assert result.returncode == 0 and "nothing to do" in result.stdout, result.stdout + result.stderr


def test_healthz(server):
    r = httpx.get(f"{server.url}/healthz")
    assert r.status_code == 200
    assert r.text.strip() == "ok"


def test_signup_page_renders_a_form(server):
    r = httpx.get(f"{server.url}/signup")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert re.search(r'<form method="post" action="/signup"', r.text)
    assert 'name="username"' in r.text and 'name="password"' in r.text
    assert re.search(r'name="_csrf_token" value="[^"]+"', r.text)
    assert "pinhole_csrf" in r.cookies


def test_readyz_reports_every_backend_and_the_embedded_workers(server):
    r = httpx.get(f"{server.url}/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    backends = body["backends"]
    assert {"db", "cache", "blobs", "feeds", "queue", "kv", "events"} <= set(backends)
    assert backends["embedded_workers"]["ok"] is True, backends
    assert all(check["ok"] for check in backends.values()), backends


def test_second_server_on_the_same_port_is_refused(server, procs):  # noqa: F811
    second = procs.serve(Path(server.stdout_path).parents[1] / "config.toml", port=server.port, wait=False)
    code = second.wait(timeout=20)
    assert code == 2, second.describe()
    line = one_line_error(second.stderr())
    assert str(server.port) in line and "in use" in line
    assert server.alive()
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def upload_avatar(client: httpx.Client) -> None:
    token = form_token(client, "/settings/profile")
    with PHOTO.open("rb") as photo:
        r = client.post(
            "/settings/avatar", data={"_csrf_token": token}, files={"avatar": ("flower.jpg", photo, "image/jpeg")}
        )
    assert r.status_code == 303, f"{r.status_code} {r.text[:1000]}"
    assert r.headers["location"].startswith("/settings/profile")


def avatar_src(base_url: str, username: str) -> str | None:
    r = httpx.get(f"{base_url}/@{username}")
    assert r.status_code == 200, r.text[:500]
    match = AVATAR_SRC.search(r.text)
    return match.group(1) if match else None


def assert_avatar_served(base_url: str, src: str) -> None:
    """The avatar's bytes: from the app on local storage, or where it redirects to on S3."""
    r = httpx.get(f"{base_url}{src}", follow_redirects=True)
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/webp"
    assert r.content[:4] == b"RIFF" and r.content[8:12] == b"WEBP"


def test_embedded_workers_make_the_avatar(server):
    with closing(http_sign_up(server.url, "ava", PASSWORD)) as client:
        assert avatar_src(server.url, "ava") is None
        upload_avatar(client)
    src = wait_for(lambda: avatar_src(server.url, "ava"), 20, "the avatar made by the embedded workers", 0.1)
    assert_avatar_served(server.url, src)


def test_a_separate_worker_runs_the_tasks(tmp_path, procs):  # noqa: F811
    config = site(tmp_path, queue={"embedded_workers": 0})
    server = procs.serve(config)
    ready = httpx.get(f"{server.url}/readyz").json()
    assert "embedded_workers" not in ready["backends"]
    with closing(http_sign_up(server.url, "wendy", PASSWORD)) as client:
        upload_avatar(client)
    # No worker yet: the task waits in the queue (the server must not run it itself).
    r = httpx.get(f"{server.url}/readyz").json()
    assert "1 pending" in r["backends"]["queue"]["detail"], r
    assert avatar_src(server.url, "wendy") is None
    worker = procs.worker(config)
    src = wait_for(lambda: avatar_src(server.url, "wendy"), 20, "the avatar made by `main.py worker`", 0.1)
    assert_avatar_served(server.url, src)
    assert worker.alive(), worker.describe()
    worker.send(signal.SIGTERM)
    assert worker.wait(timeout=20) in (0, -signal.SIGTERM), worker.describe()
    assert "Traceback" not in worker.stderr(), worker.stderr()
    assert worker.wait_group_gone(10)


def test_sigterm_stops_the_server_cleanly(tmp_path, procs):  # noqa: F811
    server = procs.serve(site(tmp_path))
    with closing(http_sign_up(server.url, "tess", PASSWORD)):
        pass
    server.send(signal.SIGTERM)
    code = server.wait(timeout=20)
    assert code in (0, -signal.SIGTERM), server.describe()
    assert "Traceback" not in server.stderr(), server.stderr()
    # The server's own worker processes went with it, and the port is free again.
    assert server.wait_group_gone(10), "a server process outlived SIGTERM"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/healthz", timeout=2)
