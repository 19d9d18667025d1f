"""Everything a request, a task or a CLI command needs, built once from config."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher

from app.backends.factory import Backends, build_backends
from app.config import Config, prepare_data_dir

# argon2id above OWASP's minimum (m=19 MiB, t=2, p=1): 64 MiB, 3 passes, one lane.
PASSWORD_HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=1)


@dataclass(eq=False)
class Context:
    config: Config
    backends: Backends
    secret_key: str
    hasher: PasswordHasher = PASSWORD_HASHER

    @property
    def db(self):
        return self.backends.db

    def close(self) -> None:
        self.backends.close()


def load_secret_key(config: Config) -> str:
    """The configured key, or one generated once into <data_dir>/secret_key (owner-only)."""
    if config.server.secret_key:
        return config.server.secret_key
    path: Path = config.data_dir / "secret_key"
    if not path.exists():
        # Write a temp file, then link it into place: a racing process sees all of a key or none.
        tmp = path.with_name(f".secret_key.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made it first; use theirs
        finally:
            tmp.unlink()
    return path.read_text().strip()


def build_context(config: Config, *, register_tasks: bool = True) -> Context:
    prepare_data_dir(config)
    ctx = Context(config=config, backends=build_backends(config), secret_key=load_secret_key(config))
    if register_tasks:
        from app.tasks import register_tasks as register

        register(ctx)
    return ctx
