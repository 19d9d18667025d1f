"""The BlobStore seam: photos and avatars by server-made key.

Keys are made here from 128 random bits (never from a user's filename) and checked on every call,
so no path is ever built from user input.
"""

from __future__ import annotations

import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterator

_KEY = re.compile(r"^[a-z0-9]+(?:/[a-z0-9][a-z0-9_\-]*)*(?:\.[a-z0-9]{1,8})?$")


class BlobNotFound(KeyError):
    pass


def new_key(prefix: str, extension: str) -> str:
    """A fresh random key such as `avatars/3f9c...e1.webp`."""
    return check_key(f"{prefix}/{secrets.token_hex(16)}.{extension}")


def check_key(key: str) -> str:
    if not isinstance(key, str) or len(key) > 255 or not _KEY.fullmatch(key):
        raise ValueError(f"not a blob key: {key!r}")
    return key


class BlobStore(ABC):
    @abstractmethod
    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store atomically: readers see the whole blob or none of it."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The bytes, or BlobNotFound."""

    @abstractmethod
    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes start..end inclusive (an HTTP Range), or BlobNotFound."""

    @abstractmethod
    def size(self, key: str) -> int:
        """Length in bytes, or BlobNotFound."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove; deleting a missing key is not an error."""

    @abstractmethod
    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every stored key under `prefix` (backups and moving up the ladder)."""

    @abstractmethod
    def url(self, key: str) -> str | None:
        """A direct URL (CDN, presigned) or None when the app serves the blob itself."""

    @abstractmethod
    def check(self) -> str: ...

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except BlobNotFound:
            return False
        return True
