"""Rung 0: Huey's SqliteHuey in <data_dir>/queue.sqlite3."""

from __future__ import annotations

from pathlib import Path

from huey import SqliteHuey

from app.backends.queue.huey_queue import HueyQueue

# A claim is kept an hour: long after every consumer has checked its minute, short enough to keep the table tiny.
KEEP_CLAIMS_MINUTES = 60


class SqliteHueyQueue(HueyQueue):
    def __init__(self, path: Path, busy_timeout_ms: int):
        huey = SqliteHuey(name="pinhole", filename=str(path), results=False, timeout=max(1, busy_timeout_ms // 1000))
        super().__init__(huey, f"huey sqlite {path}")

    def claim_minute(self, name: str, minute: int) -> bool:
        # Through Huey's own connection (Python's sqlite3): a connection of apsw's, a second copy of SQLite in the
        # same process, on the same file breaks SQLite's file locks and corrupts it (sqlite.org/howtocorrupt.html).
        with self.huey.storage.db(commit=True) as cursor:
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS periodic_claims (name TEXT, minute INTEGER, PRIMARY KEY (name, minute))"
            )
            cursor.execute(
                "INSERT INTO periodic_claims (name, minute) VALUES (?, ?) ON CONFLICT DO NOTHING", (name, minute)
            )
            claimed = cursor.rowcount == 1
            cursor.execute("DELETE FROM periodic_claims WHERE minute < ?", (minute - KEEP_CLAIMS_MINUTES,))
        return claimed
