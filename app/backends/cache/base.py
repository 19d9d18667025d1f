"""The Cache seam: read-through, delete on write, one filler per hot key.

Values are JSON (never pickle: diskcache's pickle is CVE-2025-69872). A cache outage slows
Pinhole down and never breaks it: `get_or_fill` falls back to the database when the cache errs.
Keys for anything rendered for a viewer must include what that viewer may see; callers build them.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("pinhole.cache")

LEASE_SECONDS = 5
LEASE_WAIT_SECONDS = 1.0


class Cache(ABC):
    @abstractmethod
    def get(self, key: str) -> Any | None:
        """The value, or None when absent or expired."""

    @abstractmethod
    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The values present, by key."""

    @abstractmethod
    def set(self, key: str, value: Any, ttl: int) -> None: ...

    @abstractmethod
    def add(self, key: str, value: Any, ttl: int) -> bool:
        """Set only if absent; True if this call set it (used as a lease)."""

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def check(self) -> str: ...

    def close(self) -> None:
        """Release connections; the default has none."""

    def invalidate(self, *keys: str) -> None:
        """After a write: delete each key and any fill in flight for it. Never raises."""
        for key in keys:
            try:
                self.delete(key)
                self.delete(_lease_key(key))
            except Exception:
                log.warning("cache delete failed for %s; it expires by its ttl", key, exc_info=True)

    def get_or_fill(self, key: str, fill: Callable[[], Any], ttl: int) -> Any:
        """Read through the cache; on a miss one caller per key at a time runs `fill`.

        Others wait briefly for that fill, then fill for themselves without caching. A writer's
        `invalidate` removes the lease, so a fill that started before a write is not stored (short
        of the instant between the filler's lease check and its set).
        """
        try:
            value = self.get(key)
        except Exception:
            log.warning("cache unavailable; reading through", exc_info=True)
            return fill()
        if value is not None:
            return value
        lease, token = _lease_key(key), secrets.token_hex(8)
        try:
            leased = self.add(lease, token, LEASE_SECONDS)
        except Exception:
            return fill()
        if leased:
            try:
                value = fill()
                if value is not None and self.get(lease) == token:
                    self.set(key, value, ttl)
            except Exception:
                if value is None:
                    raise  # fill itself failed: the caller sees its error
                log.warning("cache fill of %s not stored", key, exc_info=True)
            finally:
                self._release(lease, token)
            return value
        deadline = time.monotonic() + LEASE_WAIT_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.02)
            try:
                value = self.get(key)
            except Exception:
                break
            if value is not None:
                return value
        return fill()

    def _release(self, lease: str, token: str) -> None:
        """Drop our lease (not a later filler's) so the next reader need not wait for it to expire."""
        try:
            if self.get(lease) == token:
                self.delete(lease)
        except Exception:
            log.warning("cache lease %s not released; it expires by itself", lease, exc_info=True)


def _lease_key(key: str) -> str:
    return f"lease:{key}"


def safe_key(key: str, limit: int = 200) -> str:
    """Keys any backend accepts: no spaces or control characters, bounded length."""
    if len(key) <= limit and key.isprintable() and " " not in key:
        return key
    return "h:" + hashlib.sha256(key.encode("utf-8")).hexdigest()
