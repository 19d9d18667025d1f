"""The session and rate-limit store: small JSON values with an expiry, and atomic counters."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class KeyValueStore(ABC):
    @abstractmethod
    def get(self, key: str) -> Any | None:
        """The value, or None when absent or expired."""

    @abstractmethod
    def set(self, key: str, value: Any, ttl: int) -> None: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def incr(self, key: str, ttl: int) -> int:
        """Add one and return the count; a new or expired counter starts at 1 and lives `ttl` s."""

    @abstractmethod
    def purge_expired(self) -> int:
        """Drop expired entries (backends without native expiry); return how many."""

    @abstractmethod
    def check(self) -> str: ...

    def close(self) -> None:
        """Release connections; the default has none."""
