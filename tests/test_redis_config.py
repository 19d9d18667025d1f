"""config.toml for Redis: `[redis] url` (and a section's own `redis_url`), refused at start-up naming the key when
missing or unreadable; a server that cannot be used is named (password masked) by the CLI, doctor and /readyz."""

from __future__ import annotations

import tomllib

import pytest

from app.backends.factory import build_backends
from app.backends.redis_server import RedisServer
from app.cli import main as cli_main
from app.config import REDIS_SECTIONS, as_toml, load_config, prepare_data_dir
from tests.backends import make_config
from tests.server_redis import RedisProcess
from tests.servers import free_port
from tests.test_config import refused, write

ALL_ON_REDIS = {section: {"backend": "redis"} for section in REDIS_SECTIONS}


def all_on(url: str, **sections) -> dict:
    """make_config sections: every seam that can be on Redis is, on `url`."""
    return {**ALL_ON_REDIS, "redis": {"url": url}, **sections}


def test_every_seam_on_one_url_shares_one_pool(tmp_path):
    config = make_config(tmp_path, **all_on("redis://:hunter2@10.1.2.3:6380/4"))
    prepare_data_dir(config)
    backends = build_backends(config)  # no connection yet: pools connect on first use
    try:
        assert len(backends.pools) == 1
        (server,) = backends.pools
        assert isinstance(server, RedisServer) and server.label == "10.1.2.3:6380/4" and server.db == 4
        for seam in (backends.cache, backends.feeds, backends.queue, backends.kv, backends.events):
            assert seam.server is server
    finally:
        backends.close()


def test_a_section_may_name_its_own_server(tmp_path):
    config = make_config(
        tmp_path,
        **all_on("redis://10.0.0.1/0", feeds={"backend": "redis", "redis_url": "redis://feeds.internal:6379/2"}),
    )
    prepare_data_dir(config)
    backends = build_backends(config)
    try:
        assert sorted(s.label for s in backends.pools) == ["10.0.0.1:6379/0", "feeds.internal:6379/2"]
        assert backends.feeds.server.label == "feeds.internal:6379/2"
        assert backends.kv.server.label == "10.0.0.1:6379/0"
    finally:
        backends.close()


def test_the_environment_can_move_a_seam_onto_redis(tmp_path):
    path = write(tmp_path, "")
    config = load_config(
        path, environ={"PINHOLE_SESSIONS__BACKEND": "redis", "PINHOLE_REDIS__URL": "unix:///run/redis/redis.sock?db=1"}
    )
    assert config.sessions.backend == "redis" and config.redis.url == "unix:///run/redis/redis.sock?db=1"
    assert RedisServer(config.redis.url, 5).label == "/run/redis/redis.sock/1"


@pytest.mark.parametrize("section", REDIS_SECTIONS)
def test_redis_without_a_url_is_refused_naming_the_keys(tmp_path, section):
    path = write(tmp_path, f'[{section}]\nbackend = "redis"\n')
    message = refused(path)
    assert str(path) in message and f"[{section}] backend = 'redis'" in message and "[redis] url" in message


def test_a_missing_url_blames_the_variable_that_chose_redis(tmp_path):
    message = refused(write(tmp_path, ""), environ={"PINHOLE_FEEDS__BACKEND": "redis"})
    assert "environment variable PINHOLE_FEEDS__BACKEND" in message and "[redis] url" in message


@pytest.mark.parametrize(
    ("text", "must_name"),
    [
        ('[redis]\nurl = "127.0.0.1:6379"\n', ["[redis] url", "'127.0.0.1:6379'", "redis://"]),
        ('[redis]\nurl = "http://cache.internal/0"\n', ["[redis] url", "schemes"]),
        ('[redis]\nurl = "redis://:hunter2@cache.internal:port/0"\n', ["[redis] url", "***", "Port"]),
        ('[redis]\nurl = "redis://:hunter2@cache.internal/zero"\n', ["[redis] url", "***", "/zero", "number"]),
        ('[redis]\nurl = "redis://cache.internal/0/1"\n', ["[redis] url", "/0/1"]),
        ('[redis]\nurl = "redis://"\n', ["[redis] url", "no host"]),
        ('[redis]\nurl = "unix:///run/redis.sock?db=one"\n', ["[redis] url", "db"]),
        ('[feeds]\nbackend = "redis"\nredis_url = "redis://h:0x1"\n', ["[feeds] redis_url", "Port"]),
        ('[redis]\nurl = "redis://h/0"\ntimeout_seconds = 0\n', ["[redis] timeout_seconds", "1 to 60"]),
        ('[cache]\nredis_url = "redis://h/0"\n', ["[cache] redis_url", "backend = 'redis'", "'disk'"]),
    ],
)
def test_bad_redis_settings_are_refused_naming_the_key(tmp_path, text, must_name):
    path = write(tmp_path, text + '[sessions]\nbackend = "redis"\n')
    message = refused(path)
    assert str(path) in message and "hunter2" not in message
    for word in must_name:
        assert word in message, f"{word!r} not in {message!r}"


def test_config_show_masks_the_redis_passwords(tmp_path):
    text = (
        '[redis]\nurl = "redis://:hunter2@10.0.0.1:6379/0"\n[sessions]\nbackend = "redis"\n'
        '[cache]\nbackend = "redis"\nredis_url = "rediss://pinhole:hunter3@cache.internal:6380/1"\n'
    )
    shown = tomllib.loads(as_toml(load_config(write(tmp_path, text), environ={})))
    assert shown["redis"]["url"] == "redis://:***@10.0.0.1:6379/0"
    assert shown["cache"]["redis_url"] == "rediss://pinhole:***@cache.internal:6380/1"


# --- a server that cannot be used: named, password masked --------------------------------------------------------


def test_an_unreachable_server_is_named_by_the_checks_and_the_cli(tmp_path, capsys):
    port = free_port()  # nothing listens there
    config = make_config(tmp_path, **all_on(f"redis://:hunter2@127.0.0.1:{port}/3"))
    prepare_data_dir(config)
    backends = build_backends(config)
    try:
        backends.db.migrate()
        checks = backends.checks()
    finally:
        backends.close()
    for seam in ("cache", "feeds", "queue", "kv", "events"):
        ok, detail = checks[seam]
        assert not ok and f"redis server 127.0.0.1:{port}/3 is unavailable" in detail, detail
        assert "hunter2" not in detail
    assert checks["db"][0] and checks["blobs"][0]

    # Any command that needs the backends refuses with one line naming the section and the server.
    assert cli_main(["invite", "create", "--config", config.source]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "backend is not usable" in err and f"127.0.0.1:{port}/3" in err, err
    assert "hunter2" not in err
    # doctor lists every broken one.
    assert cli_main(["doctor", "--config", config.source]) == 1
    out = capsys.readouterr().out
    for section in REDIS_SECTIONS:
        assert f"FAIL [{section}] RedisUnavailable: redis server 127.0.0.1:{port}/3" in out, out
    assert "hunter2" not in out


@pytest.fixture(scope="module")
def locked_redis():
    server = RedisProcess(password="s3cret-pass")
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.mark.parametrize(
    ("password", "reason"), [("wrong-pass", "invalid username-password pair"), ("", "Authentication required")]
)
def test_a_wrong_or_missing_password_is_named_and_masked(tmp_path, locked_redis, password, reason):
    url = locked_redis.url(db=2, password=password)
    config = make_config(tmp_path, **all_on(url))
    prepare_data_dir(config)
    backends = build_backends(config)
    try:
        checks = backends.checks()
    finally:
        backends.close()
    for seam in ("cache", "feeds", "queue", "kv", "events"):
        ok, detail = checks[seam]
        assert not ok, detail
        assert f"redis server 127.0.0.1:{locked_redis.port}/2 is unavailable" in detail and reason in detail, detail
        assert "s3cret-pass" not in detail and (not password or password not in detail)


def test_the_right_password_answers_naming_the_server(tmp_path, locked_redis):
    config = make_config(tmp_path, **all_on(locked_redis.url(db=2)))
    prepare_data_dir(config)
    backends = build_backends(config)
    try:
        checks = backends.checks()
    finally:
        backends.close()
    for seam in ("cache", "feeds", "queue", "kv", "events"):
        ok, detail = checks[seam]
        assert ok and detail.startswith(f"redis 127.0.0.1:{locked_redis.port}/2 (Redis "), detail
        assert "s3cret-pass" not in detail
