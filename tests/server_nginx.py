"""nginx in front of app nodes, for the tests: scaling/nginx.conf itself, with its addresses and paths rewritten.

`Nginx(upstream_urls)` writes the shipped file into a temp dir with the upstream servers, the listening port, the
pid and the log files replaced, checks it with `nginx -t`, starts nginx in the foreground and waits until it answers
at `.url`; `stop()` ends it. The `nginx` fixture hands out `in_front(upstream_urls) -> url` and stops each one when
the test ends (the benchmarks in scaling/bench/ use the class). A missing nginx skips the test with an install hint,
or fails it under CI=true.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.procs import wait_for
from tests.servers import free_port, need

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "scaling" / "nginx.conf"
NGINX_HINT = "install nginx (Debian: apt-get install nginx)"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).is_file()), None)


def rewrite(conf: str, upstreams: list[str], port: int, folder: Path) -> str:
    """The shipped config pointed at this test's nodes, port and temp dir; everything else as shipped."""
    servers = "".join(f"        server {u} max_fails=2 fail_timeout=10s;\n" for u in upstreams)
    upstream = re.compile(r"(upstream pinhole_app \{\n\s*least_conn;\n)(?:\s*server [^\n]+\n)+")
    conf, found = upstream.subn(rf"\g<1>{servers}", conf)
    assert found == 1, "scaling/nginx.conf: upstream pinhole_app's server lines not found"
    replacements = {
        r"listen 80;": f"listen 127.0.0.1:{port};",
        r"pid /run/nginx.pid;": f"pid {folder}/nginx.pid;",
        r"error_log /var/log/nginx/error.log warn;": f"error_log {folder}/error.log warn;",
        r"access_log /var/log/nginx/access.log;": f"access_log {folder}/access.log;",
        r"worker_processes auto;": "worker_processes 1;\ndaemon off;",
    }
    for old, new in replacements.items():
        assert old in conf, f"scaling/nginx.conf: {old!r} not found"
        conf = conf.replace(old, new)
    temp_paths = "".join(
        f"    {kind}_temp_path {folder}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return conf.replace("http {\n", "http {\n" + temp_paths, 1)


class Nginx:
    """scaling/nginx.conf, rewritten, running in front of `upstream_urls` (http://host:port) until stop()."""

    def __init__(self, upstream_urls: list[str]):
        binary = nginx_binary()
        if binary is None:
            need("nginx not found", NGINX_HINT)
        self.folder = Path(tempfile.mkdtemp(prefix="pinhole-nginx-"))
        port = free_port()
        upstreams = [url.removeprefix("http://") for url in upstream_urls]
        conf = self.folder / "nginx.conf"
        conf.write_text(rewrite(SHIPPED.read_text(), upstreams, port, self.folder))
        check = subprocess.run([binary, "-t", "-c", str(conf), "-p", str(self.folder)], capture_output=True, text=True)
        assert check.returncode == 0, f"nginx -t refused the rewritten scaling/nginx.conf:\n{check.stderr}"
        self.popen = subprocess.Popen(
            [binary, "-c", str(conf), "-p", str(self.folder)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.url = f"http://127.0.0.1:{port}"

        def answering() -> bool:
            assert self.popen.poll() is None, f"nginx exited: {self.popen.stderr.read().decode()}"
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_for(answering, 10, f"nginx on {self.url}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.popen.terminate()
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def nginx() -> Iterator[Callable[[list[str]], str]]:
    if nginx_binary() is None:
        need("nginx not found", NGINX_HINT)
    started: list[Nginx] = []

    def in_front(upstream_urls: list[str]) -> str:
        started.append(Nginx(upstream_urls))
        return started[-1].url

    yield in_front
    for server in started:
        server.stop()
