"""Instagram-style 63-bit IDs: time | logical shard | sequence.

    bit 63 (sign)   always 0, so IDs are never negative in a signed BIGINT
    bits 62..22     41 bits: milliseconds since EPOCH (2025-01-01 UTC); lasts until 2094
    bits 21..10     12 bits: logical shard of the row's owner (up to 4096 shards)
    bits  9..0      10 bits: per-shard sequence within the millisecond (1024 IDs/ms/shard)

IDs sort by creation time, so pages use `WHERE id < cursor ORDER BY id DESC`, and the owner's shard
is read straight from any ID. The sequence lives in a row on the shard itself (`id_sequences`) and is
advanced by one atomic upsert inside the caller's write transaction, as Instagram did with a
per-schema Postgres function; the same SQL runs on SQLite and Postgres, so every rung makes IDs the
same way and every process and thread shares one sequence per shard.

When the clock steps back, the row remembers the last millisecond used, and new IDs continue from
it (borrowing time) until the clock catches up: IDs never repeat and never go backwards. When 1024
IDs are taken within one millisecond, the next one moves to the following millisecond.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.backends.database.base import Connection

EPOCH_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
TIME_BITS, SHARD_BITS, SEQ_BITS = 41, 12, 10
MAX_SHARDS = 1 << SHARD_BITS
_SEQ_MASK = (1 << SEQ_BITS) - 1
_SHARD_MASK = MAX_SHARDS - 1
MAX_ID = (1 << (TIME_BITS + SHARD_BITS + SEQ_BITS)) - 1  # 2**63 - 1


def compose(ms: int, shard: int, seq: int) -> int:
    """Pack milliseconds since EPOCH, a logical shard and a sequence number into one ID."""
    if not (0 <= ms < 1 << TIME_BITS and 0 <= shard < MAX_SHARDS and 0 <= seq <= _SEQ_MASK):
        raise ValueError(f"id parts out of range: ms={ms} shard={shard} seq={seq}")
    return (ms << (SHARD_BITS + SEQ_BITS)) | (shard << SEQ_BITS) | seq


def shard_of(id_: int) -> int:
    return (id_ >> SEQ_BITS) & _SHARD_MASK


def unix_ms_of(id_: int) -> int:
    """When the ID was made, in Unix milliseconds."""
    return (id_ >> (SHARD_BITS + SEQ_BITS)) + EPOCH_MS


def parse(text: str | int | None) -> int | None:
    """An ID from a URL or form field, or None if it is not one."""
    if isinstance(text, int):
        return text if 0 < text <= MAX_ID else None
    if not text or not text.isascii() or not text.isdigit() or len(text) > 19 or text[0] == "0":
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


# Advance the shard's sequence in one atomic statement; every right-hand side reads the old row.
_NEXT_SQL = f"""
INSERT INTO id_sequences (shard, last_ms, seq) VALUES (?, ?, 0)
ON CONFLICT (shard) DO UPDATE SET
  last_ms = CASE WHEN excluded.last_ms > id_sequences.last_ms THEN excluded.last_ms
                 WHEN id_sequences.seq >= {_SEQ_MASK} THEN id_sequences.last_ms + 1
                 ELSE id_sequences.last_ms END,
  seq = CASE WHEN excluded.last_ms > id_sequences.last_ms THEN 0
             WHEN id_sequences.seq >= {_SEQ_MASK} THEN 0
             ELSE id_sequences.seq + 1 END
RETURNING last_ms, seq
"""


def next_id(conn: Connection, shard: int, clock: Callable[[], float] = time.time) -> int:
    """A new ID on `shard`; `conn` must be a write transaction on that shard."""
    now_ms = int(clock() * 1000) - EPOCH_MS
    row = conn.one(_NEXT_SQL, (shard, now_ms))
    return compose(row["last_ms"], shard, row["seq"])
