"""Which rung of the ladder the functional tests run on: `PINHOLE_TEST_RUNG=top` moves every site they make.

Rung 0 (the default) is the appliance: SQLite, diskcache, Huey on SQLite, local photos. The top rung is every
backend of the ladder at once, each on servers the tests start themselves (tests/server*.py): the logical shards
split over two PostgreSQL servers, memcached, S3 (SeaweedFS) per TOP_RUNG below, and sessions, feeds, the queue and
live events in Redis (a database of its own for each site). The tests do not change: the sites they
build (tests/conftest.py `site_config`, `make_site`) get these sections, and the same assertions must hold.
`make test` runs the functional tests a second time this way (FUNCTIONAL_TESTS in the Makefile).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.backends import TEST_LOGICAL_SHARDS

RUNG = os.environ.get("PINHOLE_TEST_RUNG", "0")
if RUNG not in ("0", "top"):
    raise SystemExit(f"PINHOLE_TEST_RUNG must be 0 or top, not {RUNG!r}")

# config.toml section -> (backend name, the fixture giving that section's server settings)
TOP_RUNG: dict[str, tuple[str, str]] = {
    "database": ("postgres", "postgres_two_servers_migrated"),
    "cache": ("memcached", "memcached_servers"),
    "media": ("s3", "s3_server"),
}
ON_REDIS = ("sessions", "feeds", "queue", "events")


def rung_sections(
    request: pytest.FixtureRequest, folder: Path, sections: dict[str, Any], rung: str = RUNG
) -> dict[str, Any]:
    """`sections` for a site in `folder`, moved to `rung` (the rung under test unless given; a test's own keys win)."""
    if rung == "0":
        return sections
    moved = {name: dict(keys) for name, keys in sections.items()}
    for section, (backend, fixture) in TOP_RUNG.items():
        own = moved.get(section, {})
        if own.get("backend") not in (None, backend):
            continue  # the test chose a backend itself
        settings = request.getfixturevalue(fixture)
        if callable(settings):
            base = {"logical_shards": TEST_LOGICAL_SHARDS} if section == "database" else {}
            settings = settings(folder, {**base, **own})
        moved[section] = {**settings, **own, "backend": backend}
    on_redis = [section for section in ON_REDIS if moved.get(section, {}).get("backend") in (None, "redis")]
    if on_redis:
        moved.setdefault("redis", {}).setdefault("url", request.getfixturevalue("new_redis_url")())
        for section in on_redis:
            moved.setdefault(section, {})["backend"] = "redis"
    return moved
