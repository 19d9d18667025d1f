"""Throwaway memcached servers for the tests, on free loopback ports (never the machine's own).

Fixtures (made available to every test by tests/conftest.py):
- `memcached_processes`: two running servers for the session.
- `memcached_servers`: settings for `[cache]` (see tests/backends.py) on those two, emptied (flush_all) for the
  test: `{"servers": ["127.0.0.1:N", "127.0.0.1:M"]}`.

`Memcached(...)` starts one more for a test that stops it (an outage); each dies with the test run (PDEATHSIG).
A missing binary skips, saying how to install it, or fails under CI=true.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest

from tests.servers import free_port, need

MEMCACHED_HINT = "install memcached (Debian: apt-get install memcached)"


def die_with_parent() -> None:
    """In the child before exec: be killed when the test run ends, even by kill -9 (Linux's PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


class Memcached:
    """One memcached on a free loopback port, 64 MB, until stop()."""

    def __init__(self) -> None:
        binary = shutil.which("memcached") or ("/usr/bin/memcached" if os.path.exists("/usr/bin/memcached") else None)
        if binary is None:
            need("memcached not found", MEMCACHED_HINT)
        self.binary = binary
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, port: int | None = None) -> None:
        """Start (again) on `port` or a free one."""
        for _attempt in range(1 if port else 5):
            self.port = port or free_port()
            # As root, memcached wants -u; root keeps the parent-death signal (a switch of user would clear it).
            user = ["-u", "root"] if os.geteuid() == 0 else []
            self.proc = subprocess.Popen(
                [self.binary, "-p", str(self.port), "-l", "127.0.0.1", "-U", "0", "-m", "64", *user],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                preexec_fn=die_with_parent,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    return
                except OSError:
                    time.sleep(0.02)
            error = self.stop()
        raise RuntimeError(f"memcached did not start on 127.0.0.1:{self.port}: {error}")

    def stop(self) -> str:
        """Stop it at once (an outage); returns what it said on stderr."""
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        error = self.proc.stderr.read().decode(errors="replace").strip() if self.proc.stderr else ""
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None
        return error

    def command(self, line: str) -> bytes:
        return command(self.address, line)


def command(address: str, line: str) -> bytes:
    """One text-protocol command to the server at "host:port", its whole answer (up to END or OK)."""
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(line.encode() + b"\r\n")
        answer = b""
        while not answer.endswith((b"END\r\n", b"OK\r\n")) and b"ERROR" not in answer:
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def stored_keys(address: str) -> list[str]:
    """Every key the server holds, as stored (memcached's LRU crawler; it URL-encodes them)."""
    dump = command(address, "lru_crawler metadump all").decode()
    return [unquote(part[4:]) for line in dump.splitlines() for part in line.split(" ") if part.startswith("key=")]


@pytest.fixture(scope="session")
def memcached_processes() -> Iterator[list[Memcached]]:
    servers: list[Memcached] = []
    try:
        servers.extend(Memcached() for _ in range(2))
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def memcached_servers(memcached_processes) -> dict[str, Any]:
    for server in memcached_processes:
        if server.proc is None or server.proc.poll() is not None:  # a test stopped it: bring it back
            server.stop()
            server.start(server.port)
        assert server.command("flush_all") == b"OK\r\n"
    return {"servers": [server.address for server in memcached_processes]}
