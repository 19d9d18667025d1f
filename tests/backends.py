"""Which backends exist for each seam, and how a test builds one.

Every contract test module in tests/contract/ is parametrized over `BACKENDS[seam]`, and builds
its backend the way the app does: a config.toml in a temp dir, read by `app.config.load_config`,
handed to `app.backends.factory.build_backends`. Only the seam under test leaves rung 0.

Adding a backend (say Redis for the cache), once the app supports it:

1. Add its name to `BACKENDS["cache"]` (the same word operators write in config.toml:
   `[cache] backend = "redis"`).
2. If it needs settings beyond `backend` (a server address, a bucket), start a throwaway server in
   a pytest fixture (in tests/contract/conftest.py or a shared conftest), and name that fixture
   in `SERVER_FIXTURES[("cache", "redis")] = "redis_settings"`. The fixture returns a dict of keys
   for the seam's config section, e.g. `{"redis_url": "redis://127.0.0.1:54321/3"}`; it must give
   each test a clean namespace (flush the db, or a fresh key prefix/bucket), and, where the
   binary is missing, skip with how to install it, or fail when CI=true (see ladder.md).
3. If it expires keys by itself, add it to `KV_NATIVE_EXPIRY` (kv only); if its events reach other
   processes, to `EVENTS_SHARED` (events only). A database backend whose
   `snapshot()`/`restore()` make and load a backup file goes in `DATABASE_SNAPSHOTS`; the others
   must raise NotSupported naming the tool to use instead (tested for them).
4. Run `python -m pytest tests/contract`: the backend is done when every test passes for it.

One backend may be listed in several shapes as `name/shape` (`postgres/two-servers`): the part
before the slash is the config word, and each shape has its own server fixture. A fixture may
also return a function `(site folder, the seam's section so far) -> settings` instead of a dict,
when the settings depend on them: the Postgres fixtures make one database per site folder and
split `logical_shards` between their servers (tests/servers.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.backends.factory import Backends, build_backends
from app.config import Config, load_config, prepare_data_dir

BACKENDS: dict[str, list[str]] = {
    "database": ["sqlite", "postgres/one-server", "postgres/two-servers", "postgres/pgbouncer"],
    "cache": ["disk", "memcached", "redis"],
    "blobs": ["local", "s3"],
    "feeds": ["sql", "redis"],
    "queue": ["sqlite", "redis"],
    "kv": ["sqlite", "redis"],
    "events": ["local", "redis"],
}

# seam -> (its config.toml section, its attribute on Backends)
SEAMS: dict[str, tuple[str, str]] = {
    "database": ("database", "db"),
    "cache": ("cache", "cache"),
    "blobs": ("media", "blobs"),
    "feeds": ("feeds", "feeds"),
    "queue": ("queue", "queue"),
    "kv": ("sessions", "kv"),
    "events": ("events", "events"),
}

# (seam, backend) -> name of a pytest fixture returning extra settings for the seam's section.
SERVER_FIXTURES: dict[tuple[str, str], str] = {
    ("database", "postgres/one-server"): "postgres_one_server",
    ("database", "postgres/two-servers"): "postgres_two_servers",
    ("database", "postgres/pgbouncer"): "postgres_behind_pgbouncer",
    ("cache", "memcached"): "memcached_servers",
    ("blobs", "s3"): "s3_server",
    # A database of its own on the session's redis-server, as the section's redis_url (tests/server_redis.py).
    ("cache", "redis"): "redis_settings",
    ("feeds", "redis"): "redis_settings",
    ("queue", "redis"): "redis_settings",
    ("kv", "redis"): "redis_settings",
    ("events", "redis"): "redis_settings",
}

# kv backends whose store drops expired keys itself; their purge_expired() finds nothing to do.
KV_NATIVE_EXPIRY: set[str] = {"redis"}

# events backends that reach subscribers in other processes (another Backends built from the same config).
EVENTS_SHARED: set[str] = {"redis"}

# database backends whose snapshot()/restore() make and load a backup file (postgres: pg_dump's job).
DATABASE_SNAPSHOTS: set[str] = {"sqlite"}

TEST_LOGICAL_SHARDS = 8  # fewer than the default 256: faster, and still a real shard map


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table: [[database.servers]] entries
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (str, Path)):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"cannot write {value!r} as TOML")


def make_config(tmp_path: Path, environ: dict[str, str] | None = None, **sections: dict[str, Any]) -> Config:
    """Write <tmp_path>/config.toml (data in <tmp_path>/data, 8 logical shards) and load it.

    `sections` override keys per section: make_config(tmp_path, cache={"backend": "disk"}).
    The environment is ignored unless `environ` is given, so a stray PINHOLE_* cannot leak in.
    """
    body: dict[str, dict[str, Any]] = {
        "storage": {"data_dir": str(Path(tmp_path) / "data")},
        "database": {"logical_shards": TEST_LOGICAL_SHARDS},
    }
    for name, keys in sections.items():
        body.setdefault(name, {}).update(keys)
    text = "".join(
        f"[{name}]\n" + "".join(f"{key} = {_toml(value)}\n" for key, value in keys.items()) + "\n"
        for name, keys in body.items()
    )
    path = Path(tmp_path) / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ={} if environ is None else environ)


Settings = dict[str, Any] | Callable[[Path, dict[str, Any]], dict[str, Any]] | None


def build(seam: str, name: str, tmp_path: Path, settings: Settings = None, **sections: Any) -> Backends:
    """A whole Backends whose `seam` uses backend `name` (the rest stay rung 0), data in tmp_path.

    `settings` are extra keys for the seam's own section (what a SERVER_FIXTURES fixture returns).
    Two calls with the same tmp_path share one data directory, as two nodes share one site.
    The caller closes it (the contract conftest's `build` fixture does).
    """
    if name not in BACKENDS[seam]:
        raise ValueError(f"no {seam} backend {name!r} in tests/backends.py BACKENDS")
    section, _ = SEAMS[seam]
    own = sections.pop(section, {})
    if callable(settings):
        base = {"logical_shards": TEST_LOGICAL_SHARDS} if section == "database" else {}
        settings = settings(Path(tmp_path), {**base, **own})
    own = {**own, **(settings or {}), "backend": name.partition("/")[0]}
    config = make_config(tmp_path, **{section: own}, **sections)
    prepare_data_dir(config)
    return build_backends(config)


def backend_of(seam: str, backends: Backends) -> Any:
    return getattr(backends, SEAMS[seam][1])
