"""Throwaway servers for the tests: real PostgreSQL clusters (and pgbouncer) on free loopback ports.

Each cluster is `initdb` + `pg_ctl` in its own temp dir (data, socket and log), trust auth on
127.0.0.1 only, fsync off, stopped and deleted when the session ends. Two clusters make a real
two-server shard map. The machine's own servers (5432, 6379) are never used.

`initdb` and `postgres` refuse to run as root, so as root they run as the `postgres` user through
`runuser`. Debian keeps the binaries in /usr/lib/postgresql/<version>/bin (PINHOLE_PG_BIN overrides).
A missing binary skips the tests that need it, saying how to install it, except under CI=true,
where it fails them.

Fixtures (made available to every test by tests/conftest.py):
- `postgres_clusters`: two running clusters for the session.
- `postgres_one_server` / `postgres_two_servers`: settings for `[database]` (see tests/backends.py)
  on fresh databases made for the test and dropped after it.
- `pgbouncers` / `postgres_behind_pgbouncer`: the same two servers, each reached through its own
  pgbouncer in transaction mode with two server connections (pgbouncer refuses root too).
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

PG_HINT = (
    "install the PostgreSQL server (Debian: apt-get install postgresql), or set PINHOLE_PG_BIN to its bin directory"
)
MACHINE_PORTS = {5432, 6379}  # the machine's own servers: never ours


def need(what: str, hint: str) -> None:
    """Skip (or, under CI=true, fail) a test whose server cannot be had."""
    message = f"{what}: {hint}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in MACHINE_PORTS:
            return port


def postgres_bin_dir() -> Path | None:
    override = os.environ.get("PINHOLE_PG_BIN")
    if override:  # the operator's word: no looking elsewhere
        path = Path(override)
        return path if (path / "initdb").is_file() and (path / "pg_ctl").is_file() else None
    candidates: list[Path] = []
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += versions
    if shutil.which("pg_ctl"):
        candidates.append(Path(shutil.which("pg_ctl")).parent)
    for path in candidates:
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            return path
    return None


class PgCluster:
    """One PostgreSQL server in a temp dir, run as the `postgres` user when we are root."""

    _template_lock = threading.Lock()
    _counter = itertools.count()

    def __init__(self, bin_dir: Path, root: Path, name: str):
        self.bin = bin_dir
        self.dir = root / name
        self.data = self.dir / "data"
        self.sock = self.dir / "sock"
        self.log = self.dir / "server.log"
        self.name = name
        self.port = 0
        self.running = False

    # --- running commands as the cluster's owner -----------------------------------------------

    @staticmethod
    def owner() -> tuple[int, int] | None:
        """(uid, gid) to run as, or None when we are not root and run as ourselves."""
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            need("no 'postgres' user to run PostgreSQL as (it refuses root)", PG_HINT)
        return entry.pw_uid, entry.pw_gid

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.owner() is not None:
            if not shutil.which("runuser"):
                need("runuser not found (needed to run PostgreSQL as the postgres user)", "apt-get install util-linux")
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.dir)

    def _chown(self, path: Path) -> None:
        ids = self.owner()
        if ids is not None:
            os.chown(path, *ids)

    # --- life cycle ----------------------------------------------------------------------------

    def init(self, template: Path | None = None) -> None:
        self.dir.mkdir(mode=0o700, parents=True)
        self._chown(self.dir)
        if template is not None:
            subprocess.run(["cp", "-a", str(template), str(self.data)], check=True)
            (self.data / "postmaster.pid").unlink(missing_ok=True)
        else:
            done = self._run(
                "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                "--locale=C", "--no-sync", "--no-instructions",
            )  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"initdb failed for {self.name}: {done.stderr.strip() or done.stdout.strip()}")
        self.sock.mkdir(exist_ok=True)
        self._chown(self.sock)
        self._base_conf = (self.data / "postgresql.auto.conf").read_text()

    def init_standby_of(self, primary: PgCluster) -> None:
        """A streaming replica of a running cluster (pg_basebackup -R), not started yet."""
        self.dir.mkdir(mode=0o700, parents=True)
        self._chown(self.dir)
        done = self._run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "-D", str(self.data),
            "-R", "-X", "stream", "--no-sync", "--checkpoint=fast",
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"pg_basebackup failed for {self.name}: {done.stderr.strip()}")
        self.sock.mkdir(exist_ok=True)
        self._chown(self.sock)
        self._base_conf = (self.data / "postgresql.auto.conf").read_text()

    def require_password(self, user: str) -> None:
        """Before start: `user` must give its password (scram) on 127.0.0.1; everyone else stays trusted."""
        hba = self.data / "pg_hba.conf"
        hba.write_text(f"host all {user} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())

    def start(self, extra_conf: str = "", port: int | None = None) -> None:
        """Start on `port`, or a free one (another if that one was taken meanwhile)."""
        for _attempt in range(1 if port else 5):
            self.port = port or free_port()
            conf = self._base_conf + (
                f"\n# tests/servers.py\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.sock}'\nfsync = off\nsynchronous_commit = off\n"
                "full_page_writes = off\nmax_connections = 200\nshared_buffers = 32MB\n"
                "log_min_messages = warning\nlogging_collector = off\n" + extra_conf
            )
            (self.data / "postgresql.auto.conf").write_text(conf)
            self._chown(self.data / "postgresql.auto.conf")
            done = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
            if done.returncode == 0:
                self.running = True
                return
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            if "could not bind" not in log and "Address already in use" not in log:
                raise RuntimeError(f"PostgreSQL {self.name} did not start: {done.stderr.strip()} {log[-2000:]}")
        raise RuntimeError(f"PostgreSQL {self.name}: no free port after 5 tries")

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
            self.running = False

    # --- databases -----------------------------------------------------------------------------

    def dsn(self, dbname: str = "postgres", **extra: str) -> str:
        parts = {"host": "127.0.0.1", "port": str(self.port), "dbname": dbname, "user": "postgres", **extra}
        return " ".join(f"{k}={v}" for k, v in parts.items())

    def sql(self, statement: str, dbname: str = "postgres") -> list[tuple]:
        import psycopg

        with psycopg.connect(self.dsn(dbname), autocommit=True, connect_timeout=10) as conn:
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else []

    def create_database(self, owner: str = "postgres") -> str:
        name = f"t{os.getpid()}_{next(self._counter)}"
        self.sql(f"CREATE DATABASE {name} OWNER {owner}")
        return name

    def drop_database(self, name: str) -> None:
        if self.running:
            self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


PGBOUNCER_HINT = "install pgbouncer (Debian: apt-get install pgbouncer)"


class PgBouncer:
    """pgbouncer in transaction mode in front of one cluster: any database name, user postgres, no password.

    Two server connections per database serve all the app's client connections, so a transaction
    that left session state behind (a plain SET, a prepared statement) would leak into others."""

    def __init__(self, cluster: PgCluster, root: Path, pool_size: int = 2):
        self.cluster = cluster
        self.dir = root / f"bouncer-{cluster.name}"
        self.pool_size = pool_size
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
        if binary is None:
            need("pgbouncer not found", PGBOUNCER_HINT)
        self.dir.mkdir(mode=0o700)
        (self.dir / "userlist.txt").write_text('"postgres" ""\n')
        for _attempt in range(5):
            self.port = free_port()
            (self.dir / "pgbouncer.ini").write_text(
                f"[databases]\n* = host=127.0.0.1 port={self.cluster.port}\n\n[pgbouncer]\n"
                f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir = {self.dir}\n"
                f"auth_type = trust\nauth_file = {self.dir}/userlist.txt\npool_mode = transaction\n"
                f"default_pool_size = {self.pool_size}\nmax_client_conn = 500\n"
                f"logfile = {self.dir}/pgbouncer.log\npidfile = {self.dir}/pgbouncer.pid\n"
            )
            for path in [self.dir, *self.dir.iterdir()]:
                self.cluster._chown(path)
            cmd = [binary, str(self.dir / "pgbouncer.ini")]
            if PgCluster.owner() is not None:  # pgbouncer refuses to run as root
                cmd = ["runuser", "-u", "postgres", "--", *cmd]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    return
                except OSError:
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError(
            f"pgbouncer did not start: {(self.dir / 'pgbouncer.log').read_text(errors='replace')[-2000:]}"
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:  # signal pgbouncer itself: runuser would wait 2 s before passing a SIGTERM on
                os.kill(int((self.dir / "pgbouncer.pid").read_text().strip()), signal.SIGTERM)
            except (OSError, ValueError):
                self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def dsn(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user=postgres"


# Run beside the tests: once the test process is gone (killed, so no fixture teardown ran), stop every server
# left under the root (postmaster: SIGQUIT, an immediate shutdown; pgbouncer: SIGTERM) and delete it. It exits
# by itself when a normal teardown has deleted the root.
_WATCHDOG = r"""
import glob, os, shutil, signal, sys, time
parent, root = int(sys.argv[1]), sys.argv[2]
while os.path.isdir(root):
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        break
    time.sleep(1)
else:
    sys.exit(0)
pidfiles = glob.glob(os.path.join(root, "*", "data", "postmaster.pid"))
for pidfile in pidfiles + glob.glob(os.path.join(root, "*", "pgbouncer.pid")):
    try:
        with open(pidfile) as f:
            pid = int(f.readline())
        os.kill(pid, signal.SIGQUIT if pidfile.endswith("postmaster.pid") else signal.SIGTERM)
    except (OSError, ValueError):
        pass
time.sleep(3)
shutil.rmtree(root, ignore_errors=True)
"""


def temp_root(prefix: str) -> Path:
    """A temp dir the server user owns, whose servers are stopped even if the test process is killed."""
    ids = PgCluster.owner()
    # As root, in a temp dir anyone may enter (/tmp, /dev/shm): one under /root is out of the postgres user's reach.
    base = tempfile.gettempdir()
    if ids is not None and not os.stat(base).st_mode & stat.S_IXOTH:
        base = "/tmp"
    root = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    if ids is not None:
        os.chown(root, *ids)
    subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(root)],
        start_new_session=True,  # not in the test run's process group: it outlives a kill of the run
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return root


def cluster_root() -> tuple[Path, Path]:
    """(the PostgreSQL bin dir, a new temp dir the postgres user owns), or skip/fail saying what is missing."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        need("PostgreSQL server binaries (initdb, pg_ctl) not found", PG_HINT)
    return bin_dir, temp_root("pinhole-pg-")


def start_clusters(count: int, setup: Callable[[PgCluster], None] | None = None) -> tuple[list[PgCluster], Path]:
    """`count` running clusters (one initdb, copied), in a temp dir the caller removes.

    `setup(cluster)` runs on each before it starts (say, `require_password`)."""
    bin_dir, root = cluster_root()
    clusters: list[PgCluster] = []
    try:
        template = PgCluster(bin_dir, root, "template")
        template.init()
        for i in range(count):
            cluster = PgCluster(bin_dir, root, f"pg{i}")
            cluster.init(template=template.data)
            if setup:
                setup(cluster)
            clusters.append(cluster)
        errors: list[BaseException] = []

        def start(cluster: PgCluster) -> None:
            try:
                cluster.start()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(c,)) for c in clusters]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
    except BaseException:
        stop_clusters(clusters, root)
        raise
    return clusters, root


def stop_clusters(clusters: list[PgCluster], root: Path) -> None:
    def stop(cluster: PgCluster) -> None:
        try:
            cluster.stop("immediate")
        except Exception:  # a cluster that would not stop must not keep the others running
            pass

    threads = [threading.Thread(target=stop, args=(c,)) for c in clusters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_clusters() -> Iterator[list[PgCluster]]:
    clusters, root = start_clusters(2)
    yield clusters
    stop_clusters(clusters, root)


def split_shards(logical_shards: int, parts: int) -> list[str]:
    """Contiguous ranges, e.g. 8 shards over 2 servers -> ["0-3", "4-7"]."""
    size = logical_shards // parts
    bounds = [(i * size, (i + 1) * size - 1 if i < parts - 1 else logical_shards - 1) for i in range(parts)]
    return [f"{a}-{b}" for a, b in bounds]


ServerSettings = Callable[[Path, dict[str, Any]], dict[str, Any]]


def _database_section(clusters: list[PgCluster], dbname: str, logical_shards: int) -> dict[str, Any]:
    """`[database]` keys for `dbname` on every cluster, the logical shards split between them in order."""
    ranges = split_shards(logical_shards, len(clusters))
    return {
        "connect_timeout_seconds": 2,
        "servers": [
            {"dsn": c.dsn(dbname), "shards": r, "pool_min": 0, "pool_max": 8}
            for c, r in zip(clusters, ranges, strict=True)
        ],
    }


def _server_settings(
    clusters: list[PgCluster], template: Callable[[int], str] | None = None
) -> Iterator[ServerSettings]:
    """Settings for `[database]` over `clusters`: one fresh database per site folder, dropped after the test.
    With `template` (logical shards -> the name of a migrated database on every cluster), each is a copy of it."""
    made: dict[Path, str] = {}

    def settings(where: Path, section: dict[str, Any]) -> dict[str, Any]:
        shards = section.get("logical_shards", 8)
        if where not in made:
            name = f"t{os.getpid()}_{next(PgCluster._counter)}"
            # WAL_LOG copies a small database about 3× faster than FILE_COPY, which checkpoints twice a copy.
            copy = f" TEMPLATE {template(shards)} STRATEGY WAL_LOG" if template else ""
            with ThreadPoolExecutor() as pool:  # side by side; a failure is raised here
                list(pool.map(lambda c: c.sql(f"CREATE DATABASE {name}{copy}"), clusters))
            made[where] = name
        return _database_section(clusters, made[where], shards)

    yield settings
    for name in made.values():
        for cluster in clusters:
            cluster.drop_database(name)


@pytest.fixture
def postgres_one_server(postgres_clusters) -> Iterator[ServerSettings]:
    yield from _server_settings(postgres_clusters[:1])


@pytest.fixture
def postgres_two_servers(postgres_clusters) -> Iterator[ServerSettings]:
    yield from _server_settings(postgres_clusters[:2])


@pytest.fixture(scope="session")
def postgres_site_templates(postgres_clusters) -> Callable[[int], str]:
    """logical shards -> a database already migrated over the two clusters, made once a session (a migration of
    every shard takes a second or more; a copy of a small database, about 0.05 s)."""
    from app.backends.database.postgres import PostgresDatabase
    from app.config import DatabaseConfig, DatabaseServer

    made: dict[int, str] = {}

    def template(logical_shards: int) -> str:
        with PgCluster._template_lock:
            if logical_shards not in made:
                name = f"site_template_{logical_shards}"
                for cluster in postgres_clusters:
                    cluster.sql(f"CREATE DATABASE {name}")
                section = _database_section(postgres_clusters, name, logical_shards)
                config = DatabaseConfig(
                    backend="postgres",
                    logical_shards=logical_shards,
                    servers=[DatabaseServer(**server) for server in section["servers"]],
                )
                database = PostgresDatabase(config)
                try:
                    database.migrate()
                finally:
                    database.close()  # a template may have no connections when it is copied
                made[logical_shards] = name
        return made[logical_shards]

    return template


@pytest.fixture
def postgres_two_servers_migrated(postgres_clusters, postgres_site_templates) -> Iterator[ServerSettings]:
    """As postgres_two_servers, each site's database a copy of a migrated one (the top rung's functional tests)."""
    yield from _server_settings(postgres_clusters, postgres_site_templates)


@pytest.fixture(scope="session")
def pgbouncers(postgres_clusters) -> Iterator[list[PgBouncer]]:
    """One pgbouncer (transaction mode) in front of each session cluster."""
    root = temp_root("pinhole-pgbouncer-")
    bouncers = [PgBouncer(c, root) for c in postgres_clusters]
    try:
        for bouncer in bouncers:
            bouncer.start()
        yield bouncers
    finally:
        for bouncer in bouncers:
            bouncer.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_behind_pgbouncer(postgres_clusters, pgbouncers) -> Iterator[ServerSettings]:
    """Two servers, each reached through its pgbouncer: the databases are made on the clusters themselves."""
    direct = _server_settings(postgres_clusters[:2])
    settings = next(direct)

    def through_bouncers(where: Path, section: dict[str, Any]) -> dict[str, Any]:
        made = settings(where, section)
        for server, bouncer in zip(made["servers"], pgbouncers, strict=True):
            server["dsn"] = bouncer.dsn(dbname_of(server["dsn"]))
        return made

    yield through_bouncers
    next(direct, None)  # drops the databases


def postgres_schemas(cluster: PgCluster, dbname: str) -> set[str]:
    """The shard schemas physically present in one database of one cluster."""
    rows = cluster.sql("SELECT nspname FROM pg_namespace WHERE nspname ~ '^shard_[0-9]+$'", dbname)
    return {r[0] for r in rows}


def dbname_of(dsn: str) -> str:
    match = re.search(r"\bdbname=(\S+)", dsn)
    assert match, dsn
    return match.group(1)
