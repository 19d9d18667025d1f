"""Rung 0: sessions and rate-limit counters in their own SQLite file beside the database."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from app.backends.database.sqlite import open_sqlite
from app.backends.kv.base import KeyValueStore

_INCR = """
INSERT INTO kv (key, value, expires_at) VALUES (?1, '1', ?2 + ?3)
ON CONFLICT (key) DO UPDATE SET
  value = CASE WHEN kv.expires_at <= ?2 THEN '1' ELSE CAST(CAST(kv.value AS INTEGER) + 1 AS TEXT) END,
  expires_at = CASE WHEN kv.expires_at <= ?2 THEN ?2 + ?3 ELSE kv.expires_at END
RETURNING value
"""


def _now_ms() -> int:
    return int(time.time() * 1000)


class SqliteKeyValueStore(KeyValueStore):
    def __init__(self, path: Path, busy_timeout_ms: int = 5000):
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._conns: list = []
        self._lock = threading.Lock()
        self._conn().execute(
            "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at INTEGER NOT NULL)"
        )

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = open_sqlite(self.path, self.busy_timeout_ms)
            with self._lock:
                self._conns.append(conn)
        return conn

    def get(self, key: str) -> Any | None:
        rows = list(self._conn().execute("SELECT value FROM kv WHERE key = ? AND expires_at > ?", (key, _now_ms())))
        return json.loads(rows[0]["value"]) if rows else None

    def set(self, key: str, value: Any, ttl: int) -> None:
        self._conn().execute(
            "INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
            (key, json.dumps(value), _now_ms() + ttl * 1000),
        )

    def delete(self, key: str) -> None:
        self._conn().execute("DELETE FROM kv WHERE key = ?", (key,))

    def incr(self, key: str, ttl: int) -> int:
        rows = list(self._conn().execute(_INCR, (key, _now_ms(), ttl * 1000)))
        return int(rows[0]["value"])

    def purge_expired(self) -> int:
        conn = self._conn()
        conn.execute("DELETE FROM kv WHERE expires_at <= ?", (_now_ms(),))
        return conn.changes()

    def check(self) -> str:
        count = list(self._conn().execute("SELECT count(*) AS n FROM kv"))[0]["n"]
        return f"sqlite {self.path} ({count} entries)"

    def close(self) -> None:
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
        self._local = threading.local()
