"""The top rung on this machine, for the benchmarks: the test suite's throwaway servers (tests/server*.py) on free
loopback ports, and a site config that uses them all, as scaling/rung3.toml does.

    with top_rung() as rung:
        config = rung.site_config(folder, feeds={...})

starts two PostgreSQL clusters (the logical shards split between them, a database `pinhole` on each), one Redis
(sessions, feeds, the queue, live events), two memcached and SeaweedFS (an S3 bucket for photos), and stops them all
when the block ends. App nodes (`main.py serve`), worker nodes (`main.py worker`) and nginx are started by the
benchmark with tests/procs.py's `Procs` and tests/server_nginx.py's `Nginx`.

These are test servers, tuned for speed over safety: PostgreSQL runs with fsync, synchronous_commit and
full_page_writes off and 32 MB of shared buffers (tests/servers.py), Redis saves nothing to disk; everything shares
the machine's cores with the app and with wrk.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from seeded import site_config  # first: it puts the checkout on sys.path for `tests` below

from tests.server_memcached import Memcached
from tests.server_nginx import nginx_binary
from tests.server_redis import RedisProcess
from tests.server_s3 import SeaweedFS
from tests.servers import PgCluster, split_shards, start_clusters, stop_clusters

LOGICAL_SHARDS = 256
DATABASE = "pinhole"
POOL_MAX = 8  # connections per server in each process (test clusters allow 200 in all)


@dataclass
class TopRung:
    clusters: list[PgCluster]
    redis: RedisProcess
    memcached: list[Memcached]
    s3: SeaweedFS
    bucket: str

    def sections(self) -> dict[str, dict]:
        """config.toml sections for a site on these servers (rung3.toml's shape; no replicas)."""
        ranges = split_shards(LOGICAL_SHARDS, len(self.clusters))
        servers = [
            {"dsn": c.dsn(DATABASE), "shards": r, "pool_min": 0, "pool_max": POOL_MAX}
            for c, r in zip(self.clusters, ranges, strict=True)
        ]
        return {
            "database": {"backend": "postgres", "logical_shards": LOGICAL_SHARDS, "servers": servers},
            "cache": {"backend": "memcached", "servers": [m.address for m in self.memcached]},
            "media": {"backend": "s3", **self.s3.settings(self.bucket)},
            "redis": {"url": self.redis.url(0)},
            "sessions": {"backend": "redis"},
            "feeds": {"backend": "redis"},
            "queue": {"backend": "redis", "embedded_workers": 0},
            "events": {"backend": "redis"},
        }

    def site_config(self, folder: Path, **overrides: dict):
        """seeded.site_config on these servers; `overrides` add keys to a section."""
        sections = self.sections()
        for name, keys in overrides.items():
            sections[name] = {**sections.get(name, {}), **keys}
        return site_config(folder, **sections)

    def versions(self) -> str:
        postgres = self.clusters[0].sql("SHOW server_version")[0][0]
        with self.redis.client() as client:
            redis_version = client.info("server")["redis_version"]
        memcached = subprocess.run([self.memcached[0].binary, "-V"], capture_output=True, text=True).stdout.split()[-1]
        weed = subprocess.run([self.s3.binary, "version"], capture_output=True, text=True).stdout.split()
        found = (
            f"PostgreSQL {postgres} ×2, Redis {redis_version}, memcached {memcached} ×2, "
            f"SeaweedFS {weed[2] if len(weed) > 2 else '?'}"
        )
        nginx = nginx_binary()
        if nginx:
            version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
            found += f", {version.removeprefix('nginx version: ')}"
        return found


@contextmanager
def top_rung() -> Iterator[TopRung]:
    """Every server of the top rung, started here and stopped when the block ends (also on failure)."""
    with ExitStack() as stack:
        try:
            clusters, root = start_clusters(2)
            stack.callback(stop_clusters, clusters, root)
            for cluster in clusters:
                cluster.sql(f"CREATE DATABASE {DATABASE}")
            redis = RedisProcess()
            stack.callback(redis.remove)
            redis.start()
            memcached = []
            for _ in range(2):
                memcached.append(Memcached())
                stack.callback(memcached[-1].stop)
            s3_root = Path(tempfile.mkdtemp(prefix="pinhole-bench-s3-"))
            stack.callback(shutil.rmtree, s3_root, ignore_errors=True)
            s3 = SeaweedFS(s3_root)
            stack.callback(s3.stop)
        except pytest.skip.Exception as missing:  # tests/servers.py `need`: say what to install, no pytest here
            raise SystemExit(f"the top-rung benchmarks need every server: {missing}") from None
        yield TopRung(clusters, redis, memcached, s3, s3.new_bucket())
