"""Live updates end to end: a real `main.py serve`, browsers' event streams on /events, and the actions that
feed them (a like, a follow's new post, opening the notifications page), plus a stream's end: the client leaving,
the server stopping."""

from __future__ import annotations

import json
import queue
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.services import sessions
from tests.backends import make_config
from tests.conftest import PASSWORD, TESTDATA
from tests.procs import Proc, Procs, form_token, http_sign_up, wait_for
from tests.procs import procs as procs  # noqa: F401 (fixture)

PHOTO = TESTDATA / "good" / "flower.jpg"
GENEROUS_LIMITS = {"signup_per_ip": 10_000, "login_per_ip": 10_000, "login_per_account": 10_000}


def site(tmp_path: Path) -> Path:
    make_config(tmp_path, limits=GENEROUS_LIMITS, queue={"embedded_workers": 2})
    return tmp_path / "config.toml"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Proc]:
    tmp = tmp_path_factory.mktemp("live")
    started = Procs(tmp / "logs")
    try:
        yield started.serve(site(tmp))
    finally:
        started.close()


class EventStream:
    """A browser's EventSource, by hand: GET /events over a raw socket (so the test can hang up at any moment),
    chunked body decoded, each event parsed into (event, data) on a queue; comment lines as ("comment", text)."""

    def __init__(self, base_url: str, cookies: httpx.Cookies | None = None):
        host, port = re.match(r"http://([^:]+):(\d+)", base_url).groups()
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        cookie = "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())
        request = f"GET /events HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
        if cookie:
            request += f"Cookie: {cookie}\r\n"
        self.sock.sendall((request + "\r\n").encode())
        self.file = self.sock.makefile("rb")
        self.status = int(self.file.readline().split()[1])
        self.headers: dict[str, str] = {}
        while (line := self.file.readline().strip()) != b"":
            name, _, value = line.decode().partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.events: queue.Queue[tuple[str, object]] = queue.Queue()
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _chunks(self) -> Iterator[bytes]:
        if self.headers.get("transfer-encoding") != "chunked":
            while data := self.file.read1(65536):
                yield data
            return
        while size_line := self.file.readline():
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return
            yield self.file.read(size)
            self.file.readline()

    def _read(self) -> None:
        buffer, fields = b"", {}
        try:
            for chunk in self._chunks():
                buffer += chunk
                while b"\n" in buffer:
                    raw, buffer = buffer.split(b"\n", 1)
                    line = raw.rstrip(b"\r").decode()
                    if line == "":
                        if "data" in fields:
                            self.events.put((fields.get("event", "message"), json.loads(fields["data"])))
                        fields = {}
                    elif line.startswith(":"):
                        self.events.put(("comment", line[1:].strip()))
                    else:
                        name, _, value = line.partition(":")
                        fields[name] = value[1:] if value.startswith(" ") else value
        except (OSError, ValueError):
            pass
        finally:
            self.ended.set()

    def next(self, kind: str, timeout: float = 15) -> object:
        """The data of the next `kind` event (others are skipped), or fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event, data = self.events.get(timeout=left)
            except queue.Empty:
                break
            if event == kind:
                return data
        raise AssertionError(f"no {kind!r} event within {timeout:.0f}s (stream ended: {self.ended.is_set()})")

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


def signed_up(server: Proc, name: str) -> httpx.Client:
    return http_sign_up(server.url, name, PASSWORD)


def share_photo(server: Proc, client: httpx.Client) -> str:
    """Upload a photo as the no-JS form does and wait until the embedded workers made it ready; its id."""
    token = form_token(client, "/upload")
    posted = client.post(
        "/upload",
        data={"_csrf_token": token, "caption": "live"},
        files=[("photos", ("flower.jpg", PHOTO.read_bytes(), "image/jpeg"))],
    )
    assert posted.status_code == 303, posted.text[:500]
    path = posted.headers["location"]
    wait_for(lambda: "processing" not in client.get(f"{path}/status").text, 60, "the photo to be processed")
    return path.rsplit("/", 1)[1]


def post_as(client: httpx.Client, path: str, token_from: str, **data: str) -> httpx.Response:
    return client.post(path, data={"_csrf_token": form_token(client, token_from), **data})


def listener_channels(server: Proc) -> int:
    detail = httpx.get(f"{server.url}/readyz").json()["backends"]["events"]["detail"]
    return int(re.search(r"\((\d+) channels", detail).group(1))


# --- Tests -------------------------------------------------------------------------------------------------------


def test_events_need_a_signed_in_viewer(server):
    stream = EventStream(server.url)
    try:
        assert stream.status == 401
    finally:
        stream.close()
    garbage = EventStream(server.url, httpx.Cookies({sessions.COOKIE: "not-a-session"}))
    try:
        assert garbage.status == 401
    finally:
        garbage.close()


def test_a_like_reaches_the_authors_open_stream_and_seeing_clears_it(server):
    ana, bo = signed_up(server, "live_ana"), signed_up(server, "live_bo")
    post_id = share_photo(server, ana)
    stream = EventStream(server.url, ana.cookies)
    try:
        assert stream.status == 200 and stream.headers["content-type"].startswith("text/event-stream")
        assert stream.next("notifications") == {"type": "notifications", "unread": 0}  # on connecting: catch up

        assert post_as(bo, f"/p/{post_id}/like", f"/p/{post_id}").status_code in (200, 303)
        assert stream.next("notifications") == {"type": "notifications", "unread": 1}

        # Unliking takes the notification back, and the badge with it.
        assert post_as(bo, f"/p/{post_id}/unlike", f"/p/{post_id}").status_code in (200, 303)
        assert stream.next("notifications") == {"type": "notifications", "unread": 0}

        # A follow, then ana opens her notifications (in another tab): every open page's badge goes to zero.
        assert post_as(bo, "/@live_ana/follow", "/@live_ana").status_code == 303
        assert stream.next("notifications")["unread"] == 1
        assert ana.get("/notifications").status_code == 200
        assert stream.next("notifications")["unread"] == 0
    finally:
        stream.close()
        ana.close()
        bo.close()


def test_a_followed_accounts_new_post_reaches_the_followers_stream(server):
    ana, bo = signed_up(server, "poster_ana"), signed_up(server, "reader_bo")
    assert post_as(bo, "/@poster_ana/follow", "/@poster_ana").status_code == 303
    stream = EventStream(server.url, bo.cookies)
    try:
        stream.next("notifications")
        post_id = share_photo(server, ana)
        message = stream.next("new_post", timeout=30)
        assert message["type"] == "new_post" and message["author"] == "poster_ana" and message["post_id"] == post_id
        # Every signed-in page names the stream for static/live.js (which un-hides the home page's #new-posts).
        page = bo.get("/@reader_bo").text
        assert 'data-live="/events"' in page and "/static/live.js" in page
    finally:
        stream.close()
        ana.close()
        bo.close()


def test_a_client_that_leaves_is_unsubscribed(server):
    cy = signed_up(server, "leaving_cy")
    baseline = listener_channels(server)
    stream = EventStream(server.url, cy.cookies)
    try:
        stream.next("notifications")
        assert listener_channels(server) == baseline + 1
    finally:
        stream.close()
        cy.close()
    wait_for(lambda: listener_channels(server) == baseline, 10, "the stream's subscription to be closed")


def test_stopping_the_server_is_not_held_up_by_open_streams(tmp_path, procs):  # noqa: F811
    server = procs.serve(site(tmp_path))
    dee = signed_up(server, "dee")
    streams = [EventStream(server.url, dee.cookies) for _ in range(3)]
    try:
        for stream in streams:
            stream.next("notifications")
        stopped_at = time.monotonic()
        server.send(signal.SIGTERM)
        assert server.wait_group_gone(15), server.describe()
        assert time.monotonic() - stopped_at < 10
        # Gracefully: no worker killed, and the app's own shutdown ran (the embedded queue workers stopped).
        assert "Killing" not in server.stdout() and "Shutting down gracefully" in server.stderr()
        for stream in streams:
            assert stream.ended.wait(5)
    finally:
        for stream in streams:
            stream.close()
        dee.close()
