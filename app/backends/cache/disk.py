"""Rung 0: diskcache in an owner-only directory, values stored as JSON."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import diskcache

from app.backends.cache.base import Cache, safe_key


class DiskCache(Cache):
    def __init__(self, directory: Path, size_limit_bytes: int):
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        self.directory = directory
        self._cache = diskcache.Cache(
            str(directory),
            disk=diskcache.JSONDisk,
            size_limit=size_limit_bytes,
            eviction_policy="least-recently-stored",
        )

    def get(self, key: str) -> Any | None:
        return self._cache.get(safe_key(key))

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        found = {}
        for key in keys:
            value = self._cache.get(safe_key(key))
            if value is not None:
                found[key] = value
        return found

    def set(self, key: str, value: Any, ttl: int) -> None:
        if value is None:
            raise ValueError("None cannot be cached: it means a miss")
        self._cache.set(safe_key(key), value, expire=ttl)

    def add(self, key: str, value: Any, ttl: int) -> bool:
        return self._cache.add(safe_key(key), value, expire=ttl)

    def delete(self, key: str) -> None:
        self._cache.delete(safe_key(key))

    def check(self) -> str:
        probe = "doctor:probe"
        self._cache.set(probe, 1, expire=5)
        if self._cache.get(probe) != 1:
            raise OSError(f"diskcache at {self.directory} did not return what was stored")
        return f"diskcache {self.directory} ({self._cache.volume() // 1024} KiB used)"

    def close(self) -> None:
        self._cache.close()
