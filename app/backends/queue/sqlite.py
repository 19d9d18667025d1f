"""Rung 0: Huey's SqliteHuey in <data_dir>/queue.sqlite3."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

from huey import SqliteHuey

from app.backends.database.sqlite import open_sqlite
from app.backends.queue.huey_queue import HueyQueue

# A claim is kept an hour: long after every consumer has checked its minute, short enough to keep the table tiny.
KEEP_CLAIMS_MINUTES = 60


class SqliteHueyQueue(HueyQueue):
    def __init__(self, path: Path, busy_timeout_ms: int):
        huey = SqliteHuey(name="pinhole", filename=str(path), results=False, timeout=max(1, busy_timeout_ms // 1000))
        super().__init__(huey, f"huey sqlite {path}")
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms

    def claim_minute(self, name: str, minute: int) -> bool:
        # Once a minute per consumer: a connection of its own, beside Huey's tables in the same file.
        with closing(open_sqlite(self.path, self.busy_timeout_ms)) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS periodic_claims (name TEXT, minute INTEGER, PRIMARY KEY (name, minute))"
            )
            conn.execute(
                "INSERT INTO periodic_claims (name, minute) VALUES (?, ?) ON CONFLICT DO NOTHING", (name, minute)
            )
            claimed = conn.changes() == 1
            conn.execute("DELETE FROM periodic_claims WHERE minute < ?", (minute - KEEP_CLAIMS_MINUTES,))
        return claimed
