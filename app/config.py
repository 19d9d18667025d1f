"""Load config.toml, apply PINHOLE_<SECTION>__<KEY> environment overrides, validate.

Every mistake becomes a ConfigError whose message is one line naming the key and where it came
from; the CLI prints it and exits 2. Sections are frozen dataclasses: the field list *is* the schema,
so an unknown key is anything not declared here.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

ENV_PREFIX = "PINHOLE_"
DEFAULT_PATH = "config.toml"


class ConfigError(Exception):
    """A bad setting; str() is the one line shown to the operator."""


def secret(default: Any = "") -> Any:
    """A field whose value `config show` masks."""
    return field(default=default, metadata={"secret": True})


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    # The address people use to reach Pinhole; https here turns on Secure cookies and HSTS.
    public_url: str = ""
    # Signs CSRF tokens. Empty: one is generated once into <data_dir>/secret_key.
    secret_key: str = secret()
    # Requests from these addresses may set X-Forwarded-For (nginx in front of the app nodes).
    trusted_proxies: list[str] = field(default_factory=list)
    # Clients that may read /metrics and the backend details in /readyz (a Prometheus host, say).
    ops_clients: list[str] = field(default_factory=lambda: ["127.0.0.1", "::1"])
    migrate_on_start: bool = True
    max_body_mb: int = 220
    # Development: re-read a template whose file changed (a stat of every template on every render). Off, templates
    # are read once per process; a deploy restarts it.
    reload_templates: bool = False


@dataclass(frozen=True)
class StorageConfig:
    data_dir: str = "storage"


@dataclass(frozen=True)
class DatabaseServer:
    """One `[[database.servers]]` entry: a Postgres server and the logical shards it holds."""

    # A libpq connection string or postgresql:// URL; `config show` masks its password.
    dsn: str = field(metadata={"dsn": True})
    # Inclusive ranges of logical shards, e.g. "0-127" or "0-4, 6-127".
    shards: str
    # Read replicas of this server (streaming standbys), as DSNs.
    replicas: list[str] = field(default_factory=list, metadata={"dsn": True})
    pool_min: int = 1
    pool_max: int = 10

    @property
    def shard_list(self) -> list[int]:
        return parse_shard_ranges(self.shards)


@dataclass(frozen=True)
class DatabaseConfig:
    backend: Literal["sqlite", "postgres"] = "sqlite"
    # A power of two, fixed at install; see scaling/LADDER.md for the trade-off.
    logical_shards: int = 256
    busy_timeout_ms: int = 5000
    # postgres: how long a request waits for a connection before the server counts as unavailable.
    connect_timeout_seconds: int = 5
    # postgres with replicas: after a write on a shard, this thread reads that shard from the primary this long.
    read_primary_after_write_seconds: int = 5
    servers: list[DatabaseServer] = field(default_factory=list)


@dataclass(frozen=True)
class CacheConfig:
    backend: Literal["disk", "memcached", "redis"] = "disk"
    size_limit_mb: int = 256
    default_ttl_seconds: int = 300
    # memcached: "host:port" of each server; keys are spread over them (rendezvous hashing).
    servers: list[str] = field(default_factory=list)
    # backend = "redis": this section's own Redis server, instead of [redis] url.
    redis_url: str = field(default="", metadata={"dsn": True})


@dataclass(frozen=True)
class MediaConfig:
    backend: Literal["local", "s3"] = "local"
    max_upload_mb: int = 25
    max_pixels: int = 90_000_000
    # Keep each post's raw upload after its renditions are made (for reprocessing later); off: deleted.
    keep_original: bool = False
    # Also make AVIF renditions (smaller files, slower to encode).
    avif: bool = False
    # A post still processing this long after its task was enqueued is re-enqueued by the sweep (the task was lost).
    processing_timeout_seconds: int = 600
    # s3: any S3 API (AWS, SeaweedFS, MinIO, R2...), addressed path-style: <s3_endpoint>/<s3_bucket>/<key>.
    s3_endpoint: str = ""
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    # Empty: boto3's own chain (AWS_ACCESS_KEY_ID..., ~/.aws, an instance role).
    s3_access_key: str = secret()
    s3_secret_key: str = secret()
    # s3: where anyone may fetch <public_base_url>/<key> (a CDN in front of the bucket). Photos that anonymous
    # visitors may see, and avatars, are sent there; empty: to presigned URLs like the rest.
    public_base_url: str = ""
    # s3: lifetime of the presigned URL handed out, after the visibility check, for each photo fetched.
    presign_seconds: int = 300


@dataclass(frozen=True)
class FeedsConfig:
    backend: Literal["sql", "redis"] = "sql"
    # Each home feed keeps this many newest post ids (Pixelfed keeps 400).
    max_items: int = 800
    # Followers handled by one fan-out task (Instagram used 10,000).
    fanout_chunk: int = 1000
    # Accounts with at least this many followers are not fanned out: their posts are merged in when a feed is read.
    celebrity_threshold: int = 50_000
    # Each process keeps a viewer's rendered first page of their home feed this long (0: never). Their own actions and
    # new posts show at once; others' likes, comments and edits of the posts on it show within this time.
    page_cache_seconds: int = 5
    # backend = "redis": this section's own Redis server, instead of [redis] url.
    redis_url: str = field(default="", metadata={"dsn": True})


@dataclass(frozen=True)
class SessionsConfig:
    backend: Literal["sqlite", "redis"] = "sqlite"
    lifetime_days: int = 30
    # backend = "redis": this section's own Redis server, instead of [redis] url.
    redis_url: str = field(default="", metadata={"dsn": True})


@dataclass(frozen=True)
class QueueConfig:
    backend: Literal["sqlite", "redis"] = "sqlite"
    # Huey consumer threads inside `serve`; 0 when `main.py worker` processes do the work.
    embedded_workers: int = 2
    task_retries: int = 3
    # backend = "redis": this section's own Redis server, instead of [redis] url.
    redis_url: str = field(default="", metadata={"dsn": True})


@dataclass(frozen=True)
class EventsConfig:
    backend: Literal["local", "redis"] = "local"
    # backend = "redis": this section's own Redis server, instead of [redis] url.
    redis_url: str = field(default="", metadata={"dsn": True})


@dataclass(frozen=True)
class RedisConfig:
    """The Redis server of every section whose backend is "redis" (unless the section names its own redis_url)."""

    # redis://[[user]:password@]host[:port][/db], rediss:// for TLS, or unix:///path/to/socket?db=N.
    url: str = field(default="", metadata={"dsn": True})
    # Seconds to connect or to wait for an answer before the server counts as unavailable.
    timeout_seconds: int = 5


@dataclass(frozen=True)
class AccountsConfig:
    registration: Literal["open", "invite", "closed"] = "open"
    invite_days: int = 14


@dataclass(frozen=True)
class LimitsConfig:
    """Attempts allowed per window; beyond them the answer is 429."""

    window_seconds: int = 300
    login_per_ip: int = 20
    login_per_account: int = 10
    signup_per_ip: int = 10
    password_per_account: int = 10
    # Client API: app registrations and token requests per address.
    oauth_per_ip: int = 30
    # Per account, from the web and the client API alike: what a person does by hand stays far below these; a
    # script that follows, likes or comments in bulk (spam) does not.
    follows_per_account: int = 50
    likes_per_account: int = 150
    comments_per_account: int = 50


@dataclass(frozen=True)
class ApiConfig:
    """The Mastodon-compatible client API."""

    # An access token works this long after it is issued; apps renew it with their refresh token. Mastodon's never
    # expire and many phone apps never refresh, so keep it long.
    access_token_days: int = 365


@dataclass(frozen=True)
class LogConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = "json"


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    feeds: FeedsConfig = field(default_factory=FeedsConfig)
    sessions: SessionsConfig = field(default_factory=SessionsConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    accounts: AccountsConfig = field(default_factory=AccountsConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    log: LogConfig = field(default_factory=LogConfig)
    # Where the file was read from; relative paths in it are relative to its folder.
    source: str = field(default=DEFAULT_PATH, metadata={"internal": True})

    @property
    def data_dir(self) -> Path:
        path = Path(self.storage.data_dir).expanduser()
        if not path.is_absolute():
            path = Path(self.source).resolve().parent / path
        return path

    @property
    def public_url(self) -> str:
        return (self.server.public_url or f"http://{self.server.host}:{self.server.port}").rstrip("/")

    @property
    def https(self) -> bool:
        return self.public_url.startswith("https://")


# Bounds checked after types: (section, key) -> (test, what the value must be).
_BOUNDS: dict[tuple[str, str], tuple[typing.Callable[[Any], bool], str]] = {
    ("server", "port"): (lambda v: 1 <= v <= 65535, "a port number from 1 to 65535"),
    ("server", "workers"): (lambda v: 1 <= v <= 64, "from 1 to 64"),
    ("server", "public_url"): (
        lambda v: v == "" or v.startswith(("http://", "https://")),
        "empty or a URL starting with http:// or https://",
    ),
    ("server", "max_body_mb"): (lambda v: v >= 1, "at least 1"),
    ("storage", "data_dir"): (lambda v: v.strip() != "", "a directory path"),
    ("database", "logical_shards"): (
        lambda v: 1 <= v <= 4096 and v & (v - 1) == 0,
        "a power of two from 1 to 4096",
    ),
    ("database", "busy_timeout_ms"): (lambda v: v >= 0, "0 or more"),
    ("database", "connect_timeout_seconds"): (lambda v: 1 <= v <= 120, "from 1 to 120"),
    ("database", "read_primary_after_write_seconds"): (lambda v: 0 <= v <= 3600, "from 0 to 3600"),
    ("cache", "size_limit_mb"): (lambda v: v >= 1, "at least 1"),
    ("cache", "default_ttl_seconds"): (lambda v: v >= 1, "at least 1"),
    ("media", "max_upload_mb"): (lambda v: 1 <= v <= 200, "from 1 to 200"),
    ("media", "max_pixels"): (lambda v: 1_000_000 <= v <= 500_000_000, "from 1000000 to 500000000"),
    ("media", "processing_timeout_seconds"): (lambda v: 60 <= v <= 86_400, "from 60 to 86400"),
    ("media", "s3_endpoint"): (lambda v: v == "" or _is_url(v), "empty or a URL like https://s3.example.com"),
    ("media", "s3_bucket"): (
        lambda v: v == "" or re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", v) is not None,
        "an S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens",
    ),
    ("media", "s3_region"): (lambda v: re.fullmatch(r"[a-z0-9\-]{1,32}", v) is not None, "a region like us-east-1"),
    ("media", "public_base_url"): (lambda v: v == "" or _is_url(v), "empty or a URL like https://cdn.example.com"),
    # S3 signs URLs for at most 7 days.
    ("media", "presign_seconds"): (lambda v: 1 <= v <= 604_800, "from 1 to 604800"),
    ("feeds", "max_items"): (lambda v: 10 <= v <= 10_000, "from 10 to 10000"),
    ("feeds", "fanout_chunk"): (lambda v: 10 <= v <= 100_000, "from 10 to 100000"),
    ("feeds", "celebrity_threshold"): (lambda v: v >= 1, "at least 1"),
    ("feeds", "page_cache_seconds"): (lambda v: 0 <= v <= 60, "from 0 to 60"),
    ("sessions", "lifetime_days"): (lambda v: 1 <= v <= 400, "from 1 to 400"),
    ("queue", "embedded_workers"): (lambda v: 0 <= v <= 32, "from 0 to 32"),
    ("queue", "task_retries"): (lambda v: 0 <= v <= 10, "from 0 to 10"),
    ("accounts", "invite_days"): (lambda v: 1 <= v <= 365, "from 1 to 365"),
    ("redis", "timeout_seconds"): (lambda v: 1 <= v <= 60, "from 1 to 60"),
    ("api", "access_token_days"): (lambda v: 1 <= v <= 3650, "from 1 to 3650"),
    # A limit of 0 would refuse every attempt: nobody could sign in, follow, like or comment.
    **{("limits", f.name): (lambda v: v >= 1, "at least 1") for f in fields(LimitsConfig)},
}


def load_config(path: str | os.PathLike | None = None, environ: typing.Mapping[str, str] | None = None) -> Config:
    """Read the file named (or PINHOLE_CONFIG, or ./config.toml) and the environment overrides."""
    environ = os.environ if environ is None else environ
    path = Path(path or environ.get("PINHOLE_CONFIG") or DEFAULT_PATH)
    where = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: config file not found (pass --config PATH or set PINHOLE_CONFIG)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot read the config file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    sections = _section_types()
    values: dict[str, dict[str, Any]] = {}
    origins: dict[tuple[str, str], str] = {}
    for name, body in raw.items():
        if name not in sections:
            raise ConfigError(f"{where}: unknown section [{name}] (known: {', '.join(sections)})")
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: {name} must be a [{name}] section, not a single value")
        known = _field_types(sections[name])
        for key, value in body.items():
            if key not in known:
                raise ConfigError(f"{where}: unknown key [{name}] {key} (known: {', '.join(known)})")
            values.setdefault(name, {})[key] = _convert(value, known[key], f"{where}: [{name}] {key}")
            origins[name, key] = where
    for var, text in environ.items():
        if not var.startswith(ENV_PREFIX) or var == "PINHOLE_CONFIG":
            continue
        if "__" not in var:
            section = var[len(ENV_PREFIX) :].lower().split("_", 1)[0]
            if section in sections:
                raise ConfigError(
                    f"environment variable {var}: separate section and key with two underscores, "
                    f"e.g. PINHOLE_{section.upper()}__KEY"
                )
            continue
        name, _, key = var[len(ENV_PREFIX) :].lower().partition("__")
        if name not in sections or key not in _field_types(sections[name]):
            raise ConfigError(f"environment variable {var}: no such setting [{name}] {key}")
        target = _field_types(sections[name])[key]
        values.setdefault(name, {})[key] = _convert(_parse_env(text, target), target, f"environment variable {var}")
        origins[name, key] = f"environment variable {var}"
    for (name, key), (test, wanted) in _BOUNDS.items():
        if key in values.get(name, {}) and not test(values[name][key]):
            raise ConfigError(f"{origins[name, key]}: [{name}] {key} must be {wanted} (got {values[name][key]!r})")
    config = Config(**{name: sections[name](**values.get(name, {})) for name in sections}, source=str(path))
    _check_database(config.database, origins.get(("database", "servers"), where), origins)
    _check_cache(config.cache, origins.get(("cache", "servers"), origins.get(("cache", "backend"), where)))
    _check_media(config.media, origins.get(("media", "backend"), where))
    _check_redis(config, where, origins)
    if config.events.backend == "local" and config.server.workers > 1:
        where = origins.get(("server", "workers"), where)
        raise ConfigError(
            f"{where}: [server] workers = {config.server.workers} needs a shared [events] backend; "
            "events.backend = 'local' reaches one process only, so keep workers = 1"
        )
    return config


def parse_shard_ranges(text: str) -> list[int]:
    """ "0-127" or "0-4, 6-127" (inclusive) -> the logical shards named; ValueError says what is wrong."""
    shards: list[int] = []
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        low, high = low.strip(), high.strip() if dash else low.strip()
        if not (low.isascii() and low.isdigit() and high.isascii() and high.isdigit()):
            raise ValueError(f'{text!r} is not a shard range like "0-127" or "0-4, 6-127"')
        first, last = int(low), int(high)
        if first > last:
            raise ValueError(f"the range {part.strip()!r} runs backwards")
        shards.extend(range(first, last + 1))
    return shards


def format_shard_ranges(shards: typing.Iterable[int]) -> str:
    """[0, 1, 2, 5] -> "0-2, 5": the spelling config.toml uses."""
    ranges: list[list[int]] = []
    for shard in sorted(shards):
        if ranges and shard == ranges[-1][1] + 1:
            ranges[-1][1] = shard
        else:
            ranges.append([shard, shard])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def _check_database(db: DatabaseConfig, where: str, origins: dict[tuple[str, str], str]) -> None:
    """The shard map: every logical shard on exactly one server, and servers only with postgres."""
    if db.backend == "sqlite":
        if db.servers:
            raise ConfigError(
                f"{where}: [database] servers are for backend = 'postgres'; "
                "sqlite keeps every shard in one file, so remove the [[database.servers]] entries"
            )
        return
    if not db.servers:
        where = origins.get(("database", "backend"), where)
        raise ConfigError(
            f"{where}: [database] backend = 'postgres' needs [[database.servers]] entries "
            '(dsn = "postgresql://...", shards = "0-...")'
        )
    owner: dict[int, int] = {}
    for i, server in enumerate(db.servers):
        key = f"[database] servers[{i}]"
        if not server.dsn.strip():
            raise ConfigError(f"{where}: {key}.dsn is empty; give a connection string like postgresql://host/db")
        if any(not r.strip() for r in server.replicas):
            raise ConfigError(f"{where}: {key}.replicas has an empty connection string")
        if not (0 <= server.pool_min <= 1000):
            raise ConfigError(f"{where}: {key}.pool_min must be from 0 to 1000 (got {server.pool_min})")
        if not (max(1, server.pool_min) <= server.pool_max <= 1000):
            raise ConfigError(f"{where}: {key}.pool_max must be from max(1, pool_min) to 1000 (got {server.pool_max})")
        try:
            shards = server.shard_list
        except ValueError as exc:
            raise ConfigError(f"{where}: {key}.shards: {exc}") from None
        for shard in shards:
            if not 0 <= shard < db.logical_shards:
                raise ConfigError(
                    f"{where}: {key}.shards = {server.shards!r} names shard {shard}, outside "
                    f"0-{db.logical_shards - 1} ([database] logical_shards = {db.logical_shards})"
                )
            if shard in owner:
                other = owner[shard]
                whom = "itself" if other == i else f"servers[{other}]"
                raise ConfigError(
                    f"{where}: {key}.shards = {server.shards!r} gives logical shard {shard} again "
                    f"(also held by {whom}); each shard lives on exactly one server"
                )
            owner[shard] = i
    missing = [s for s in range(db.logical_shards) if s not in owner]
    if missing:
        raise ConfigError(
            f"{where}: [database] servers leave logical shards {format_shard_ranges(missing)} unassigned; "
            f"every shard 0-{db.logical_shards - 1} needs a server"
        )


_SERVER_ADDRESS = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.\-]*):(\d{1,5})")


def _check_cache(cache: CacheConfig, where: str) -> None:
    if cache.backend != "memcached":
        if cache.servers:
            raise ConfigError(f"{where}: [cache] servers are for backend = 'memcached'; remove them or set the backend")
        return
    if not cache.servers:
        raise ConfigError(f"{where}: [cache] backend = 'memcached' needs servers = [\"host:port\", ...]")
    for i, server in enumerate(cache.servers):
        match = _SERVER_ADDRESS.fullmatch(server)
        if not match or not 1 <= int(match[1]) <= 65535:
            raise ConfigError(f'{where}: [cache] servers[{i}] = {server!r} is not "host:port" (e.g. "10.0.0.5:11211")')
    if len(set(cache.servers)) != len(cache.servers):
        raise ConfigError(f"{where}: [cache] servers names a server twice")


def _check_media(media: MediaConfig, where: str) -> None:
    if media.backend != "s3":
        if media.public_base_url:
            raise ConfigError(
                f"{where}: [media] public_base_url needs backend = 's3' (a CDN in front of the bucket); "
                "local photos are served by Pinhole itself"
            )
        return
    for key in ("s3_endpoint", "s3_bucket"):
        if not getattr(media, key):
            raise ConfigError(
                f"{where}: [media] backend = 's3' needs {key} "
                '(e.g. s3_endpoint = "https://s3.eu-west-1.amazonaws.com", s3_bucket = "pinhole-media")'
            )
    if bool(media.s3_access_key) != bool(media.s3_secret_key):
        raise ConfigError(f"{where}: [media] give s3_access_key and s3_secret_key both, or neither (boto3's chain)")


def media_origins(config: Config) -> list[str]:
    """Origins the browser loads photos from besides Pinhole itself (for the Content-Security-Policy)."""
    if config.media.backend != "s3":
        return []
    urls = [config.media.s3_endpoint, config.media.public_base_url]
    return list(dict.fromkeys(_origin(url) for url in urls if url))


def _is_url(text: str) -> bool:
    return re.fullmatch(r"https?://[^\s/?#@]+(?:/[^\s?#]*)?", text) is not None


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


# The sections that may say backend = "redis".
REDIS_SECTIONS = ("cache", "feeds", "sessions", "queue", "events")


def redis_url(config: Config, section: str) -> str:
    """The Redis server a section with backend = "redis" uses: its own redis_url, else [redis] url."""
    return getattr(config, section).redis_url or config.redis.url


def _check_redis(config: Config, where: str, origins: dict[tuple[str, str], str]) -> None:
    """Every section on Redis has a server URL that redis-py can read, and redis_url only goes with "redis"."""
    for section in REDIS_SECTIONS:
        body = getattr(config, section)
        if body.backend != "redis":
            if body.redis_url:
                raise ConfigError(
                    f"{origins[section, 'redis_url']}: [{section}] redis_url is for backend = 'redis' "
                    f"(this section says {body.backend!r}); remove it or set backend = 'redis'"
                )
            continue
        url = redis_url(config, section)
        if not url.strip():
            raise ConfigError(
                f"{origins.get((section, 'backend'), where)}: [{section}] backend = 'redis' needs a server: "
                'set [redis] url (e.g. url = "redis://127.0.0.1:6379/0")'
            )
        problem = redis_url_problem(url)
        if problem:
            key = (section, "redis_url") if body.redis_url else ("redis", "url")
            raise ConfigError(
                f"{origins.get(key, where)}: [{key[0]}] {key[1]} = {mask_dsn(url)!r} is not a Redis URL: {problem}"
            )


def redis_url_problem(url: str) -> str | None:
    """Why redis-py cannot use this URL, or None. Stricter than redis-py, which reads "/abc" as database 0."""
    from redis.connection import parse_url  # only on sites that use Redis

    try:
        parts = parse_url(url)
    except ValueError as exc:
        return str(exc)
    if "path" in parts:  # unix:///path?db=N: the database is in the query, checked by parse_url
        return None
    if not parts.get("host"):
        return "it names no host (redis://HOST:6379/0)"
    path = urlparse(url).path.removeprefix("/")
    if path and not (path.isascii() and path.isdigit()):
        return f"the database after the host must be a number like /0 (got /{path})"
    return None


def _section_types() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config) if not f.metadata.get("internal")}


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _parse_env(text: str, target: Any) -> Any:
    """Environment values are strings; read them as the setting's type expects."""
    if target is str or typing.get_origin(target) is Literal:
        return text
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _convert(value: Any, target: Any, where: str) -> Any:
    origin = typing.get_origin(target)
    if origin is Literal:
        choices = typing.get_args(target)
        if value not in choices:
            raise ConfigError(f"{where} must be one of {', '.join(map(repr, choices))} (got {value!r})")
        return value
    if dataclasses.is_dataclass(target):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table of keys (got {value!r})")
        known = _field_types(target)
        for key in value:
            if key not in known:
                raise ConfigError(f"{where}: unknown key {key} (known: {', '.join(known)})")
        required = [f.name for f in dataclasses.fields(target) if _is_required(f)]
        for key in required:
            if key not in value:
                raise ConfigError(f"{where}: {key} is missing")
        return target(**{key: _convert(v, known[key], f"{where}.{key}") for key, v in value.items()})
    if origin in (list, types.GenericAlias):
        (item,) = typing.get_args(target)
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list (got {value!r})")
        return [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if target is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false (got {value!r})")
        return value
    if target is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number (got {value!r})")
        return value
    if target is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number (got {value!r})")
        return float(value)
    if target is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string in quotes (got {value!r})")
        return value
    raise TypeError(f"unsupported config type {target!r}")  # a programming error, not bad input


def _is_required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def prepare_data_dir(config: Config) -> Path:
    """Create the data directory (owner-only) and prove it is writable, or say which key is wrong."""
    path = config.data_dir
    where = f"{config.source}: [storage] data_dir = {config.storage.data_dir!r}"
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = path / ".write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot write there ({exc.strerror or exc})") from None
    return path


def as_toml(config: Config, mask_secrets: bool = True) -> str:
    """The effective configuration as TOML, secrets replaced by ***."""
    lines: list[str] = []
    for name in _section_types():
        lines.append(f"[{name}]")
        body = getattr(config, name)
        tables: list[tuple[str, Any]] = []
        for f in dataclasses.fields(body):
            value = getattr(body, f.name)
            if isinstance(value, list) and value and dataclasses.is_dataclass(value[0]):
                tables.extend((f"{name}.{f.name}", item) for item in value)
                continue
            lines.append(f"{f.name} = {_toml_value(_shown(f, value, mask_secrets))}")
        lines.append("")
        for title, item in tables:  # arrays of tables come after the section's plain keys
            lines.append(f"[[{title}]]")
            for f in dataclasses.fields(item):
                lines.append(f"{f.name} = {_toml_value(_shown(f, getattr(item, f.name), mask_secrets))}")
            lines.append("")
    return "\n".join(lines)


def _shown(f: dataclasses.Field, value: Any, mask: bool) -> Any:
    if not mask:
        return value
    if f.metadata.get("secret") and value:
        return "***"
    if f.metadata.get("dsn"):
        return [mask_dsn(v) for v in value] if isinstance(value, list) else mask_dsn(value)
    return value


_URL_PASSWORD = re.compile(r"(?P<head>://[^:/?#@\s]*:)[^@/?#\s]*(?P<at>@)")
_KW_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)[^&#\s]*", re.IGNORECASE)


def mask_dsn(dsn: str) -> str:
    """A connection string with any password replaced by ***, for display and error messages."""
    if "://" in dsn:
        return _QUERY_PASSWORD.sub(r"\g<head>***", _URL_PASSWORD.sub(r"\g<head>***\g<at>", dsn))
    return _KW_PASSWORD.sub(r"\g<head>***", dsn)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
