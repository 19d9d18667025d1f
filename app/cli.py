"""`python main.py <command>`: the one command-line entry.

Exit codes: 0 done; 1 the command ran but failed (a bad username, a backend down in `doctor`);
2 the configuration or the command line is wrong (one line on stderr names the key).
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
from pathlib import Path

from app.config import ConfigError, as_toml, load_config, prepare_data_dir
from app.errors import UserError

# Which config section chooses each backend, for messages that name the key to fix.
SECTION_OF = {
    "db": "database",
    "cache": "cache",
    "blobs": "media",
    "feeds": "feeds",
    "queue": "queue",
    "kv": "sessions",
    "events": "events",
}


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="config file (default: $PINHOLE_CONFIG or ./config.toml)",
    )
    parser = argparse.ArgumentParser(
        prog="main.py", description="Pinhole: a self-hosted photo-sharing server.", parents=[common]
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser("serve", parents=[common], help="run the web server (and embedded queue workers)")
    serve.add_argument("--host", help="address to listen on (default: [server] host)")
    serve.add_argument("--port", type=int, help="port to listen on (default: [server] port)")
    serve.set_defaults(run=cmd_serve)

    worker = commands.add_parser("worker", parents=[common], help="run queue workers only (a worker node)")
    worker.add_argument("--threads", type=int, default=4, help="worker threads (default: 4)")
    worker.set_defaults(run=cmd_worker)

    commands.add_parser("migrate", parents=[common], help="apply pending database migrations").set_defaults(
        run=cmd_migrate
    )

    user = commands.add_parser("user", parents=[common], help="manage accounts")
    user_commands = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    create = user_commands.add_parser("create", parents=[common], help="make an account (any registration mode)")
    create.add_argument("name", help="username: lowercase letters, digits, _ and .")
    create.add_argument("--admin", action="store_true", help="make the account an admin")
    create.add_argument(
        "--password-stdin", action="store_true", required=True, help="read the password from standard input"
    )
    create.set_defaults(run=cmd_user_create)

    invite = commands.add_parser("invite", parents=[common], help="manage invite codes")
    invite_commands = invite.add_subparsers(dest="invite_command", metavar="ACTION", required=True)
    invite_commands.add_parser("create", parents=[common], help="print a new single-use invite code").set_defaults(
        run=cmd_invite_create
    )

    commands.add_parser("doctor", parents=[common], help="check each configured backend").set_defaults(run=cmd_doctor)

    config = commands.add_parser("config", parents=[common], help="inspect the configuration")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    config_commands.add_parser(
        "show", parents=[common], help="print the effective configuration, secrets masked"
    ).set_defaults(run=cmd_config_show)

    backup = commands.add_parser("backup", parents=[common], help="write a consistent backup archive while running")
    backup.add_argument("path", type=Path, help="archive to create (e.g. pinhole-2026-11-21.tar)")
    backup.set_defaults(run=cmd_backup)

    restore = commands.add_parser("restore", parents=[common], help="restore an archive into an empty data dir")
    restore.add_argument("path", type=Path, help="archive made by `backup`")
    restore.set_defaults(run=cmd_restore)

    migrate_up = commands.add_parser(
        "migrate-up", parents=[common], help="copy this install's data onto the backends of another config"
    )
    migrate_up.add_argument(
        "--to", required=True, type=Path, metavar="NEW_CONFIG", help="the config of the new backends (read as written)"
    )
    migrate_up.set_defaults(run=cmd_migrate_up)

    shards = commands.add_parser("shards", parents=[common], help="logical shards on Postgres servers")
    shards_commands = shards.add_subparsers(dest="shards_command", metavar="ACTION", required=True)
    move = shards_commands.add_parser(
        "move", parents=[common], help="move a logical shard to another server while the site runs"
    )
    move.add_argument("shard", type=int, metavar="LOGICAL_SHARD", help="the logical shard to move")
    move.add_argument(
        "--to",
        required=True,
        metavar="SERVER",
        help="its new server: a number in [[database.servers]] (0 is the first) or host:port/dbname",
    )
    move.set_defaults(run=cmd_shards_move)

    seed = commands.add_parser(
        "seed", parents=[common], help="fill a site with made-up accounts, follows, posts and feeds (demos, benchmarks)"
    )
    seed.add_argument("--users", type=int, required=True, metavar="N", help="accounts to make (seed1, seed2, ...)")
    seed.add_argument("--posts", type=int, required=True, metavar="M", help="posts in all, by random authors")
    seed.add_argument("--follows-per-user", type=int, required=True, metavar="K", help="accounts each one follows")
    seed.add_argument("--celebrities", type=int, default=0, metavar="C", help="accounts with many followers")
    seed.add_argument("--celebrity-followers", type=int, default=0, metavar="F", help="followers of each of those")
    seed.add_argument("--random-seed", type=int, default=1, help="the same number makes the same data (default: 1)")
    seed.add_argument("--force-add", action="store_true", help="add to a site that already has accounts")
    seed.set_defaults(run=cmd_seed)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except UserError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _config(args: argparse.Namespace):
    return load_config(getattr(args, "config", None))


def _context(args: argparse.Namespace, *, check_backends: bool = True, register_tasks: bool = True):
    from app.context import build_context

    config = _config(args)
    ctx = build_context(config, register_tasks=register_tasks)
    if check_backends:
        _check_backends(ctx)
    return ctx


def _check_backends(ctx) -> None:
    """Every backend answers, or one line naming the section that chooses the broken one."""
    checks = ctx.backends.checks()
    if checks["db"][0] and ctx.db.schema_version() == 0:
        # Not a broken backend: the tables were never made (the feeds check would fail on them).
        ctx.close()
        raise UserError("the database has no tables yet: run `python main.py migrate` first")
    for name, (ok, detail) in checks.items():
        if not ok:
            ctx.close()
            raise ConfigError(f"{ctx.config.source}: [{SECTION_OF[name]}] backend is not usable: {detail}")


def _migrate(ctx) -> list[str]:
    from app.backends.database.base import DatabaseUnavailable
    from app.services import accounts

    try:
        applied = ctx.db.migrate()
    except ValueError as exc:  # logical_shards changed after install
        raise ConfigError(f"{ctx.config.source}: {exc}") from None
    except DatabaseUnavailable as exc:
        raise ConfigError(f"{ctx.config.source}: [database] {exc}") from None
    accounts.index_names_once(ctx)
    return applied


def cmd_serve(args: argparse.Namespace) -> int:
    from granian import Granian
    from granian.constants import Interfaces

    from app.logs import setup_logging

    if args.port is not None and not 1 <= args.port <= 65535:
        raise ConfigError(f"--port must be a port number from 1 to 65535 (got {args.port})")
    # Overrides travel as environment so every server process reads the same settings.
    if args.host:
        os.environ["PINHOLE_SERVER__HOST"] = args.host
    if args.port is not None:
        os.environ["PINHOLE_SERVER__PORT"] = str(args.port)
    config = _config(args)
    os.environ["PINHOLE_CONFIG"] = str(Path(config.source).resolve())
    setup_logging(config.log.level, config.log.format)
    _check_port_free(config)
    ctx = _context(args, check_backends=False, register_tasks=False)
    if config.server.migrate_on_start:
        applied = _migrate(ctx)
        if applied:
            print(f"migrated: {', '.join(applied)}", file=sys.stderr)
    _check_backends(ctx)
    ctx.close()
    if config.server.workers > 1:
        metrics_dir = config.data_dir / "run" / "metrics"
        metrics_dir.mkdir(parents=True, exist_ok=True)
        for stale in metrics_dir.glob("*.db"):
            stale.unlink()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    print(f"Pinhole is running at {config.public_url}/ (Ctrl+C to stop)", flush=True)
    Granian(
        "app.web.app:create_app",
        factory=True,
        interface=Interfaces.ASGI,
        address=config.server.host,
        port=config.server.port,
        workers=config.server.workers,
        log_access=False,
        respawn_failed_workers=True,
    ).serve()
    return 0


def _check_port_free(config) -> None:
    host, port = config.server.host, config.server.port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As the server binds: connections left in FIN-WAIT/TIME-WAIT by a crashed server do not
        # hold the port, while a listening socket still does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"{config.source}: [server] port {port} on {host} is already in use "
                    "(another Pinhole or another server); stop it or choose another port with --port"
                ) from None
            raise ConfigError(f"{config.source}: [server] host {host!r} cannot be used: {exc.strerror}") from None


def cmd_worker(args: argparse.Namespace) -> int:
    from app.logs import setup_logging

    config = _config(args)
    setup_logging(config.log.level, config.log.format)
    ctx = _context(args)
    if config.events.backend == "local":
        print(
            "note: [events] backend = 'local' cannot reach the web server from a separate worker; "
            "live updates from tasks need a shared events backend",
            file=sys.stderr,
        )
    print(f"Pinhole worker: {args.threads} threads on {ctx.backends.queue.check()}", flush=True)
    try:
        ctx.backends.queue.run_consumer(args.threads)
    finally:
        ctx.close()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    ctx = _context(args, check_backends=False, register_tasks=False)
    try:
        applied = _migrate(ctx)
        version = ctx.db.schema_version()
    finally:
        ctx.close()
    if applied:
        print(f"applied {len(applied)} migration(s): {', '.join(applied)}; schema is now v{version}")
    else:
        print(f"nothing to do; schema is v{version}")
    return 0


def cmd_user_create(args: argparse.Namespace) -> int:
    from app.services import accounts

    password = sys.stdin.readline().rstrip("\r\n")
    ctx = _context(args, register_tasks=False)
    try:
        user = accounts.create_user(ctx, args.name, password, admin=args.admin, by_operator=True)
    finally:
        ctx.close()
    role = "admin" if user.is_admin else "user"
    print(f"created {role} {user.username} (id {user.id})")
    return 0


def cmd_invite_create(args: argparse.Namespace) -> int:
    from app.services import accounts

    ctx = _context(args, register_tasks=False)
    try:
        code = accounts.create_invite(ctx, created_by=None)
        url = f"{ctx.config.public_url}/signup?invite={code}"
        days = ctx.config.accounts.invite_days
        mode = ctx.config.accounts.registration
    finally:
        ctx.close()
    print(code)
    print(f"single use, valid {days} days: {url}", file=sys.stderr)
    if mode != "invite":
        print(f'note: [accounts] registration = "{mode}", so sign-ups do not need a code', file=sys.stderr)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    import pyvips

    from app.backends.database.base import load_migrations
    from app.media.images import harden_vips

    config = _config(args)
    print(f"config: {Path(config.source).resolve()}")
    prepare_data_dir(config)
    print(f"data dir: {config.data_dir} (writable)")
    ctx = _context(args, check_backends=False, register_tasks=False)
    failures = 0
    try:
        for name, (ok, detail) in ctx.backends.checks().items():
            failures += not ok
            print(f"{'ok ' if ok else 'FAIL'} [{SECTION_OF[name]}] {detail}")
        if ctx.backends.checks()["db"][0]:
            latest = load_migrations(ctx.db.dialect)[-1].version
            current = ctx.db.schema_version()
            pending = "up to date" if current >= latest else f"{latest - current} pending: run `main.py migrate`"
            print(f"{'ok ' if current >= latest else 'FAIL'} schema v{current} ({pending})")
            failures += current < latest
    finally:
        ctx.close()
    harden_vips()
    print(f"ok  libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)} (untrusted loaders blocked)")
    stat = os.statvfs(config.data_dir)
    print(f"ok  {stat.f_bavail * stat.f_frsize // 2**20} MiB free in the data dir")
    print("all good" if not failures else f"{failures} problem(s) found")
    return 1 if failures else 0


def cmd_config_show(args: argparse.Namespace) -> int:
    config = _config(args)
    print(f"# effective configuration from {config.source} and the environment; secrets masked")
    print(as_toml(config))
    return 0


def _progress():
    from rich.progress import Progress

    progress = Progress(transient=True)
    task = progress.add_task("media", total=None)

    def update(label: str, done: int, total: int) -> None:
        progress.update(task, description=label, completed=done, total=total)

    return progress, update


def cmd_backup(args: argparse.Namespace) -> int:
    from app.backup import backup

    ctx = _context(args, register_tasks=False)
    progress, update = _progress()
    try:
        with progress:
            summary = backup(ctx, args.path, update)
    finally:
        ctx.close()
    skipped = f", {summary.skipped} deleted while copying" if summary.skipped else ""
    print(
        f"backup written to {args.path}: database (schema v{summary.schema_version}) and "
        f"{summary.files} media files{skipped}, {summary.bytes / 2**20:.1f} MiB"
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from app.backup import restore

    # No backend check: an empty data dir has no tables yet, and opening the database would create it.
    ctx = _context(args, check_backends=False, register_tasks=False)
    progress, update = _progress()
    try:
        with progress:
            summary = restore(ctx, args.path, update)
    finally:
        ctx.close()
    print(
        f"restored {args.path} into {ctx.config.data_dir}: database (schema v{summary.schema_version}, "
        f"integrity ok) and {summary.files} media files"
    )
    return 0


def cmd_migrate_up(args: argparse.Namespace) -> int:
    from app.migrate_up import migrate_up, print_report

    source = _config(args)
    # The PINHOLE_* environment is the running install's; the new config is taken as its file says.
    target = load_config(args.to, environ={})
    progress, update = _progress()
    try:
        with progress:
            report = migrate_up(source, target, update)
    except KeyboardInterrupt:
        print("interrupted: what was copied is kept; run the same command again to continue", file=sys.stderr)
        return 130
    print_report(report, target.source)
    return 0 if report.ok else 1


def cmd_shards_move(args: argparse.Namespace) -> int:
    from app.shard_move import move_shard

    config = _config(args)
    progress, update = _progress()
    with progress:
        report = move_shard(config, args.shard, args.to, update)
    if report.finished_earlier_move:
        print(f"logical shard {report.shard} had already moved to {report.target}; finished the config and clean-up")
    else:
        print(
            f"moved logical shard {report.shard} from {report.source} to {report.target}: {report.rows:,} rows "
            f"copied, {report.caught_up:,} written meanwhile caught up, its writes paused {report.pause_ms:.0f} ms; "
            f"row counts of {len(report.counts)} tables verified"
        )
    for line in report.config_lines:
        print(f"changed {line}")
    print(
        "Copy this config.toml to every app and worker node. Running processes follow the move by themselves; "
        "a node started with the old file is refused until it has the new one."
    )
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from app.seed import SEED_PASSWORD, SeedOptions, check_site, seed

    options = SeedOptions(
        users=args.users,
        posts=args.posts,
        follows_per_user=args.follows_per_user,
        celebrities=args.celebrities,
        celebrity_followers=args.celebrity_followers,
        force_add=args.force_add,
        random_seed=args.random_seed,
    )
    problem = options.problem()
    if problem:
        raise ConfigError(problem)
    ctx = _context(args, register_tasks=False)
    progress, update = _progress()
    try:
        check_site(ctx, options)  # before the progress bar starts drawing
        with progress:
            summary = seed(ctx, options, update)
    finally:
        ctx.close()
    print(
        f"seeded {summary.users:,} accounts ({summary.first_username} to {summary.last_username}, password "
        f"{SEED_PASSWORD!r}), {summary.follows:,} follows, {summary.posts:,} posts with {summary.photos:,} photos "
        f"and {summary.feed_items:,} feed entries in {summary.seconds:.1f} s"
        + (f"; {summary.celebrities} celebrity account(s)" if summary.celebrities else "")
    )
    return 0
