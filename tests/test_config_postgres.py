"""config.toml for Postgres: `[[database.servers]]` entries and the shard map they make.

Every logical shard must live on exactly one server; each mistake is one line naming the key.
"""

from __future__ import annotations

import dataclasses
import tomllib

import pytest

from app.cli import main as cli_main
from app.config import (
    DatabaseServer,
    as_toml,
    format_shard_ranges,
    load_config,
    mask_dsn,
    parse_shard_ranges,
)
from tests.test_config import refused, write

TWO_SERVERS = """
[database]
backend = "postgres"
logical_shards = 8

[[database.servers]]
dsn = "postgresql://pinhole:hunter2@db1.internal:5432/pinhole"
shards = "0-3"
replicas = ["postgresql://pinhole:hunter2@db1-replica.internal/pinhole"]
pool_max = 20

[[database.servers]]
dsn = "host=db2.internal dbname=pinhole user=pinhole password=hunter2"
shards = "4-7"
"""


def servers_toml(*entries: str, shards: int = 8, backend: str = "postgres") -> str:
    body = f'[database]\nbackend = "{backend}"\nlogical_shards = {shards}\n'
    for entry in entries:
        body += f"\n[[database.servers]]\n{entry}\n"
    return body


def test_two_servers_load_with_their_ranges_and_defaults(tmp_path):
    config = load_config(write(tmp_path, TWO_SERVERS), environ={})
    db = config.database
    assert db.backend == "postgres" and db.logical_shards == 8
    first, second = db.servers
    assert first.shard_list == [0, 1, 2, 3] and second.shard_list == [4, 5, 6, 7]
    assert first.replicas == ["postgresql://pinhole:hunter2@db1-replica.internal/pinhole"]
    assert (first.pool_min, first.pool_max) == (1, 20)
    assert (second.pool_min, second.pool_max, second.replicas) == (1, 10, [])
    assert db.connect_timeout_seconds == 5 and db.read_primary_after_write_seconds == 5


def test_split_ranges_and_single_shards_are_allowed(tmp_path):
    text = servers_toml('dsn = "postgresql://a/p"\nshards = "0-2, 5"', 'dsn = "postgresql://b/p"\nshards = "3,4 , 6-7"')
    config = load_config(write(tmp_path, text), environ={})
    assert [s.shard_list for s in config.database.servers] == [[0, 1, 2, 5], [3, 4, 6, 7]]


def test_servers_can_come_from_the_environment(tmp_path):
    path = write(tmp_path, "[database]\nlogical_shards = 4\n")
    config = load_config(
        path,
        environ={
            "PINHOLE_DATABASE__BACKEND": "postgres",
            "PINHOLE_DATABASE__SERVERS": '[{dsn = "postgresql://a/p", shards = "0-3"}]',
        },
    )
    assert config.database.servers == [DatabaseServer(dsn="postgresql://a/p", shards="0-3")]


@pytest.mark.parametrize(
    ("text", "must_name"),
    [
        # A range given twice, or overlapping another server's.
        (
            servers_toml('dsn = "postgresql://a/p"\nshards = "0-4"', 'dsn = "postgresql://b/p"\nshards = "4-7"'),
            ["servers[1].shards", "'4-7'", "logical shard 4", "servers[0]"],
        ),
        (
            servers_toml('dsn = "postgresql://a/p"\nshards = "0-7"', 'dsn = "postgresql://b/p"\nshards = "0-7"'),
            ["servers[1].shards", "logical shard 0"],
        ),
        (
            servers_toml('dsn = "postgresql://a/p"\nshards = "0-7, 3"'),
            ["servers[0].shards", "logical shard 3", "itself"],
        ),
        # A shard left unassigned.
        (
            servers_toml('dsn = "postgresql://a/p"\nshards = "0-2"', 'dsn = "postgresql://b/p"\nshards = "4-6"'),
            ["[database] servers", "3, 7", "unassigned"],
        ),
        # Outside 0..logical_shards-1.
        (servers_toml('dsn = "postgresql://a/p"\nshards = "0-8"'), ["servers[0].shards", "shard 8", "0-7"]),
        (servers_toml('dsn = "postgresql://a/p"\nshards = "0-255"', shards=16), ["servers[0].shards", "shard 16"]),
        # Not a range at all.
        (servers_toml('dsn = "postgresql://a/p"\nshards = "all"'), ["servers[0].shards", "'all'"]),
        (servers_toml('dsn = "postgresql://a/p"\nshards = "7-0"'), ["servers[0].shards", "backwards"]),
        (servers_toml('dsn = "postgresql://a/p"\nshards = "-1-7"'), ["servers[0].shards"]),
        (servers_toml('dsn = "postgresql://a/p"\nshards = 7'), ["servers[0].shards", "string"]),
        # Missing, empty or unknown keys in an entry.
        (servers_toml('shards = "0-7"'), ["servers[0]", "dsn is missing"]),
        (servers_toml('dsn = "postgresql://a/p"'), ["servers[0]", "shards is missing"]),
        (servers_toml('dsn = "  "\nshards = "0-7"'), ["servers[0].dsn", "empty"]),
        (
            servers_toml('dsn = "postgresql://a/p"\nshards = "0-7"\nreplica = "x"'),
            ["servers[0]", "unknown key replica"],
        ),
        (servers_toml('dsn = "postgresql://a/p"\nshards = "0-7"\nreplicas = "postgresql://r/p"'), ["replicas", "list"]),
        (servers_toml('dsn = "postgresql://a/p"\nshards = "0-7"\nreplicas = [""]'), ["servers[0].replicas"]),
        (servers_toml('dsn = "postgresql://a/p"\nshards = "0-7"\npool_max = 0'), ["servers[0].pool_max"]),
        (servers_toml('dsn = "postgresql://a/p"\nshards = "0-7"\npool_min = 5\npool_max = 2'), ["pool_max"]),
        (servers_toml('dsn = "postgresql://a/p"\nshards = "0-7"\npool_min = -1'), ["servers[0].pool_min"]),
        # Servers with the sqlite backend, postgres without servers.
        (servers_toml('dsn = "postgresql://a/p"\nshards = "0-7"', backend="sqlite"), ["[database] servers", "sqlite"]),
        (servers_toml(), ["[database] backend", "postgres", "[[database.servers]]"]),
        ('[database]\nservers = "postgresql://a/p"\n', ["[database] servers", "list"]),
        ('[database]\nbackend = "postgres"\nservers = ["postgresql://a/p"]\n', ["servers[0]", "table"]),
        ("[database]\nconnect_timeout_seconds = 0\n", ["[database] connect_timeout_seconds"]),
        ("[database]\nread_primary_after_write_seconds = -1\n", ["[database] read_primary_after_write_seconds"]),
    ],
)
def test_bad_shard_maps_are_refused_naming_the_key(tmp_path, text, must_name):
    path = write(tmp_path, text)
    message = refused(path)
    assert str(path) in message
    for word in must_name:
        assert word in message, f"{word!r} not in {message!r}"


def test_a_bad_server_list_from_the_environment_blames_the_variable(tmp_path):
    path = write(tmp_path, '[database]\nbackend = "postgres"\nlogical_shards = 4\n')
    message = refused(path, environ={"PINHOLE_DATABASE__SERVERS": '[{dsn = "postgresql://a/p", shards = "0-2"}]'})
    assert "PINHOLE_DATABASE__SERVERS" in message and "3" in message and "unassigned" in message


def test_the_cli_exits_2_naming_the_key(tmp_path, capsys):
    text = servers_toml('dsn = "postgresql://a/p"\nshards = "0-4"', 'dsn = "postgresql://b/p"\nshards = "4-7"')
    path = write(tmp_path, text)
    assert cli_main(["config", "show", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "servers[1].shards" in err


def test_config_show_masks_every_password_and_round_trips(tmp_path):
    config = load_config(write(tmp_path, TWO_SERVERS), environ={})
    shown = as_toml(config)
    assert "hunter2" not in shown
    parsed = tomllib.loads(shown)
    servers = parsed["database"]["servers"]
    assert servers[0]["dsn"] == "postgresql://pinhole:***@db1.internal:5432/pinhole"
    assert servers[0]["replicas"] == ["postgresql://pinhole:***@db1-replica.internal/pinhole"]
    assert servers[1]["dsn"] == "host=db2.internal dbname=pinhole user=pinhole password=***"
    again = load_config(write(tmp_path, as_toml(config, mask_secrets=False), "again.toml"), environ={})
    assert dataclasses.replace(again, source=config.source) == config


@pytest.mark.parametrize(
    ("dsn", "masked"),
    [
        ("postgresql://u:s3cret@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgres://u:p%40ss@h/db?sslmode=require", "postgres://u:***@h/db?sslmode=require"),
        ("postgresql://u@h/db?password=s3cret&sslmode=require", "postgresql://u@h/db?password=***&sslmode=require"),
        ("host=h password=s3cret user=u", "host=h password=*** user=u"),
        ("host=h password = 's3 cr\\'et' user=u", "host=h password = *** user=u"),
        ("postgresql://h/db", "postgresql://h/db"),
        ("host=h user=u", "host=h user=u"),
    ],
)
def test_mask_dsn_hides_the_password_in_every_spelling(dsn, masked):
    assert mask_dsn(dsn) == masked


def test_shard_ranges_parse_and_print_back():
    assert parse_shard_ranges("0-3") == [0, 1, 2, 3]
    assert parse_shard_ranges(" 5 ") == [5]
    assert parse_shard_ranges("0-1, 4-5,7") == [0, 1, 4, 5, 7]
    assert format_shard_ranges([7, 0, 1, 4, 5]) == "0-1, 4-5, 7"
    assert format_shard_ranges(range(256)) == "0-255"
    for bad in ("", "a-b", "1-", "-3", "3-1", "1..4", "٣", "1-2-3"):
        with pytest.raises(ValueError):
            parse_shard_ranges(bad)
