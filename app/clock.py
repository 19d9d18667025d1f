"""Wall-clock time as stored in rows: Unix milliseconds."""

import time


def now_ms() -> int:
    return int(time.time() * 1000)
