"""The commented config of each rung in scaling/ loads as written and says what its rung is."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import load_config

SCALING = Path(__file__).resolve().parents[1] / "scaling"


def rung(number: int):
    return load_config(SCALING / f"rung{number}.toml", environ={})


def test_rung0_is_the_appliance():
    config = rung(0)
    assert (config.database.backend, config.cache.backend, config.media.backend) == ("sqlite", "disk", "local")
    assert config.queue.embedded_workers > 0 and config.events.backend == "local"


def test_rung1_leaves_the_queue_to_worker_processes():
    config = rung(1)
    assert config.queue.backend == "sqlite" and config.queue.embedded_workers == 0


@pytest.mark.parametrize("number", [2, 3])
def test_rungs_2_and_3_use_every_server_of_the_ladder(number):
    config = rung(number)
    assert config.database.backend == "postgres" and config.cache.backend == "memcached"
    assert config.media.backend == "s3" and config.queue.embedded_workers == 0
    assert {config.sessions.backend, config.feeds.backend, config.queue.backend, config.events.backend} == {"redis"}
    held = sorted(shard for server in config.database.servers for shard in server.shard_list)
    assert held == list(range(config.database.logical_shards))


def test_rung3_splits_the_shards_over_servers_with_replicas():
    servers = rung(3).database.servers
    assert len(servers) >= 2 and all(server.replicas for server in servers)
