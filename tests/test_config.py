"""config.toml: the shipped file loads, overrides work, and every mistake is one line naming the key."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from app.config import Config, ConfigError, as_toml, load_config, prepare_data_dir

SHIPPED = Path(__file__).resolve().parents[1] / "config.toml"


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def refused(path, environ=None) -> str:
    """The one-line message for a config that must be refused."""
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={} if environ is None else environ)
    message = str(caught.value)
    assert message and "\n" not in message, f"not one line: {message!r}"
    assert "Traceback" not in message
    return message


def test_the_shipped_config_loads_with_rung_0_defaults():
    config = load_config(SHIPPED, environ={})
    assert config.server.port == 8000 and config.server.workers == 1
    assert config.database.backend == "sqlite"
    assert config.events.backend == "local"
    assert config.data_dir == SHIPPED.parent / "storage"
    # The shipped file spells out the defaults: nothing in it differs from the dataclasses.
    defaults = Config(source=str(SHIPPED))
    assert dataclasses.replace(config, source=defaults.source) == defaults


def test_the_environment_overrides_the_file(tmp_path):
    config = load_config(
        SHIPPED, environ={"PINHOLE_SERVER__PORT": "8001", "PINHOLE_STORAGE__DATA_DIR": "/x", "HOME": "/root"}
    )
    assert config.server.port == 8001
    assert config.storage.data_dir == "/x" and config.data_dir == Path("/x")


def test_the_environment_reads_values_as_the_setting_expects(tmp_path):
    config = load_config(
        SHIPPED,
        environ={
            "PINHOLE_SERVER__MIGRATE_ON_START": "false",
            "PINHOLE_SERVER__TRUSTED_PROXIES": '["10.0.0.1", "10.0.0.2"]',
            "PINHOLE_SERVER__SECRET_KEY": "123",  # a string setting stays a string
            "PINHOLE_ACCOUNTS__REGISTRATION": "invite",
        },
    )
    assert config.server.migrate_on_start is False
    assert config.server.trusted_proxies == ["10.0.0.1", "10.0.0.2"]
    assert config.server.secret_key == "123"
    assert config.accounts.registration == "invite"


def test_pinhole_config_names_the_file(tmp_path):
    path = write(tmp_path, "[server]\nport = 8123\n", "elsewhere.toml")
    assert load_config(None, environ={"PINHOLE_CONFIG": str(path)}).server.port == 8123


def test_a_missing_section_or_key_takes_its_default(tmp_path):
    config = load_config(write(tmp_path, "[server]\nport = 9000\n"), environ={})
    assert config.server.port == 9000
    assert config.server.host == "127.0.0.1"
    assert config.database.logical_shards == 256
    assert load_config(write(tmp_path, ""), environ={}) == Config(source=str(tmp_path / "config.toml"))


@pytest.mark.parametrize(
    ("text", "must_name"),
    [
        ("[sever]\nport = 1\n", ["[sever]"]),
        ("[server]\nprot = 8000\n", ["[server] prot"]),
        ('[server]\nport = "abc"\n', ["[server] port", "abc"]),
        ("[server]\nport = 8000.5\n", ["[server] port"]),
        ("[server]\nport = true\n", ["[server] port"]),
        ("[server]\nport = 70000\n", ["[server] port", "70000"]),
        ("[server]\nport = 0\n", ["[server] port"]),
        ("[server]\nworkers = 0\n", ["[server] workers"]),
        ('[server]\npublic_url = "example.com"\n', ["[server] public_url"]),
        ('[server]\ntrusted_proxies = "10.0.0.1"\n', ["[server] trusted_proxies"]),
        ("[server]\ntrusted_proxies = [1]\n", ["[server] trusted_proxies"]),
        ('[server]\nmigrate_on_start = "yes"\n', ["[server] migrate_on_start"]),
        ("[database]\nlogical_shards = 3\n", ["[database] logical_shards", "3"]),
        ("[database]\nlogical_shards = 8192\n", ["[database] logical_shards"]),
        ("[database]\nlogical_shards = 0\n", ["[database] logical_shards"]),
        ('[database]\nbackend = "mysql"\n', ["[database] backend", "mysql"]),
        ('[accounts]\nregistration = "sometimes"\n', ["[accounts] registration", "sometimes"]),
        ('[log]\nlevel = "loud"\n', ["[log] level"]),
        ('[storage]\ndata_dir = "  "\n', ["[storage] data_dir"]),
        ("[feeds]\nmax_items = 5\n", ["[feeds] max_items"]),
        ("[feeds]\npage_cache_seconds = -1\n", ["[feeds] page_cache_seconds"]),
        ("[queue]\nembedded_workers = -1\n", ["[queue] embedded_workers"]),
        ("[limits]\nlikes_per_account = 0\n", ["[limits] likes_per_account", "at least 1"]),
        ("[limits]\nwindow_seconds = 0\n", ["[limits] window_seconds"]),
        ("server = 1\n", ["server"]),
    ],
)
def test_bad_settings_are_refused_naming_the_key_and_the_file(tmp_path, text, must_name):
    path = write(tmp_path, text)
    message = refused(path)
    assert str(path) in message
    for word in must_name:
        assert word in message, f"{word!r} not in {message!r}"


@pytest.mark.parametrize("text", ["[server\nport = 1\n", "[server]\nport = \n", "[server]\nport = 1\nport = 2\n"])
def test_invalid_toml_is_refused_naming_the_file(tmp_path, text):
    path = write(tmp_path, text)
    message = refused(path)
    assert str(path) in message and "TOML" in message


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b'[server]\nhost = "\xff\xfe"\n')
    assert str(path) in refused(path)


def test_a_missing_file_is_refused_saying_how_to_point_at_one(tmp_path):
    path = tmp_path / "nope.toml"
    message = refused(path)
    assert str(path) in message and "PINHOLE_CONFIG" in message


@pytest.mark.parametrize(
    ("var", "value", "must_name"),
    [
        ("PINHOLE_SERVER__PROT", "8000", ["PINHOLE_SERVER__PROT", "prot"]),
        ("PINHOLE_SEVER__PORT", "8000", ["PINHOLE_SEVER__PORT"]),
        ("PINHOLE_SERVER__PORT", "abc", ["PINHOLE_SERVER__PORT", "abc"]),
        ("PINHOLE_SERVER__PORT", "70000", ["PINHOLE_SERVER__PORT", "[server] port"]),
        ("PINHOLE_DATABASE__LOGICAL_SHARDS", "3", ["PINHOLE_DATABASE__LOGICAL_SHARDS", "logical_shards"]),
        ("PINHOLE_ACCOUNTS__REGISTRATION", "sometimes", ["PINHOLE_ACCOUNTS__REGISTRATION"]),
        ("PINHOLE_SERVER__MIGRATE_ON_START", "maybe", ["PINHOLE_SERVER__MIGRATE_ON_START"]),
        ("PINHOLE_SERVER_PORT", "8001", ["PINHOLE_SERVER_PORT", "PINHOLE_SERVER__KEY"]),
    ],
)
def test_bad_environment_overrides_are_refused_naming_the_variable(var, value, must_name):
    message = refused(SHIPPED, environ={var: value})
    for word in must_name:
        assert word in message, f"{word!r} not in {message!r}"


def test_a_good_file_value_and_a_bad_env_value_blame_the_env(tmp_path):
    path = write(tmp_path, "[server]\nport = 8000\n")
    message = refused(path, environ={"PINHOLE_SERVER__PORT": "0"})
    assert "PINHOLE_SERVER__PORT" in message


def test_unrelated_environment_variables_are_ignored():
    config = load_config(SHIPPED, environ={"PATH": "/bin", "PINHOLE_CONFIG_X": "1", "OTHER__THING": "2"})
    assert config.server.port == 8000


def test_a_relative_data_dir_is_next_to_the_config_file(tmp_path, monkeypatch):
    path = write(tmp_path / "site", '[storage]\ndata_dir = "state/data"\n')
    monkeypatch.chdir(tmp_path)  # not where the process happens to run
    config = load_config(Path("site") / "config.toml", environ={})
    assert config.data_dir == tmp_path / "site" / "state" / "data"
    assert prepare_data_dir(config) == config.data_dir
    assert config.data_dir.is_dir() and path.is_file()


def test_prepare_data_dir_makes_an_owner_only_directory(tmp_path):
    config = load_config(write(tmp_path, f'[storage]\ndata_dir = "{tmp_path / "a" / "b"}"\n'), environ={})
    path = prepare_data_dir(config)
    assert path.is_dir() and path.stat().st_mode & 0o777 == 0o700
    assert list(path.iterdir()) == [], "the write probe was left behind"


def test_an_unwritable_data_dir_is_refused_naming_the_key(tmp_path):
    (tmp_path / "afile").write_text("a regular file, so nothing can be created beneath it")
    config = load_config(write(tmp_path, f'[storage]\ndata_dir = "{tmp_path / "afile" / "data"}"\n'), environ={})
    with pytest.raises(ConfigError) as caught:
        prepare_data_dir(config)
    message = str(caught.value)
    assert "[storage] data_dir" in message and str(tmp_path / "config.toml") in message
    assert "\n" not in message


def test_as_toml_masks_the_secret_and_round_trips(tmp_path):
    path = write(
        tmp_path,
        '[server]\nsecret_key = "hunter2-very-secret"\nport = 8443\ntrusted_proxies = ["10.0.0.1"]\n'
        'public_url = "https://pics.example.org"\n[accounts]\nregistration = "invite"\n'
        '[storage]\ndata_dir = "C:\\\\odd \\"quoted\\" dir"\n',
    )
    config = load_config(path, environ={})
    shown = as_toml(config)
    assert "hunter2" not in shown
    parsed = tomllib.loads(shown)
    assert parsed["server"]["secret_key"] == "***"
    assert parsed["server"]["port"] == 8443
    assert parsed["storage"]["data_dir"] == 'C:\\odd "quoted" dir'
    # Unmasked, the output is a config file that loads back to the same settings.
    again = load_config(write(tmp_path, as_toml(config, mask_secrets=False), "again.toml"), environ={})
    assert dataclasses.replace(again, source=config.source) == config
    # An empty secret is shown as empty, not as ***: the operator can see it is unset.
    assert tomllib.loads(as_toml(load_config(SHIPPED, environ={})))["server"]["secret_key"] == ""


@pytest.mark.parametrize("source", ["file", "env"])
def test_several_workers_with_local_events_are_refused(tmp_path, source):
    if source == "file":
        path = write(tmp_path, "[server]\nworkers = 2\n")
        message = refused(path)
        assert str(path) in message
    else:
        message = refused(SHIPPED, environ={"PINHOLE_SERVER__WORKERS": "2"})
        assert "PINHOLE_SERVER__WORKERS" in message
    assert "workers" in message and "events" in message
