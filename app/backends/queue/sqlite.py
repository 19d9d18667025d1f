"""Rung 0: Huey's SqliteHuey in <data_dir>/queue.sqlite3."""

from __future__ import annotations

from pathlib import Path

from huey import SqliteHuey

from app.backends.queue.huey_queue import HueyQueue


def sqlite_queue(path: Path, busy_timeout_ms: int) -> HueyQueue:
    huey = SqliteHuey(
        name="pinhole",
        filename=str(path),
        results=False,
        timeout=max(1, busy_timeout_ms // 1000),
    )
    return HueyQueue(huey, f"huey sqlite {path}")
