"""The throwaway-server helpers: a missing PostgreSQL skips with an install hint, and fails under CI=true."""

from __future__ import annotations

import pytest

from tests import servers


def test_a_missing_postgres_skips_with_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PINHOLE_PG_BIN", str(tmp_path))  # no initdb here
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install postgresql"):
        servers.start_clusters(1)


def test_a_missing_postgres_fails_under_ci(monkeypatch, tmp_path):
    monkeypatch.setenv("PINHOLE_PG_BIN", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install postgresql"):
        servers.start_clusters(1)


@pytest.mark.parametrize(
    ("shards", "parts", "ranges"), [(8, 2, ["0-3", "4-7"]), (8, 1, ["0-7"]), (16, 3, ["0-4", "5-9", "10-15"])]
)
def test_split_shards_covers_every_shard_once(shards, parts, ranges):
    assert servers.split_shards(shards, parts) == ranges
