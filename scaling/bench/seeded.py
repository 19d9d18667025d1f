"""Shared by the feed benchmarks: a seeded site in a temp dir, a real server on it, wrk, and a small SVG bar chart.

Sizes: the issue's full sizes take minutes to seed, so `make bench` runs a quick size by default; the full size runs
with `BENCH_FULL=1 make bench BENCH_ARGS=...` or `python scaling/bench/bench_<name>.py --full`.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from html import escape
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parents[1]
SCALING = BENCH_DIR.parent

for path in (REPO_ROOT, BENCH_DIR):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench_photos_worker import free_port, start_server, stop_server  # noqa: E402

__all__ = ["free_port", "start_server", "stop_server"]


def full_size() -> bool:
    return "--full" in sys.argv[1:] or os.environ.get("BENCH_FULL") == "1"


def command(name: str) -> str:
    size = " --full" if full_size() else ""
    return f"python scaling/bench/bench_{name}.py{size}"


def today() -> str:
    return datetime.date.today().isoformat()


def machine() -> str:
    import apsw

    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return (
        f"{os.cpu_count()} cores, {memory_kb / 1024 / 1024:.0f} GiB RAM, {platform.platform()}; "
        f"Python {platform.python_version()}, SQLite {apsw.sqlite_lib_version()}; load average "
        f"{os.getloadavg()[0]:.1f} when written (the machine is shared)"
    )


def scratch(prefix: str) -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix=f"pinhole-{prefix}-")


def site_config(folder: Path, **sections):
    """Rung 0 as installed (256 logical shards, embedded queue workers), quiet logs, data in folder/data."""
    from tests.backends import make_config

    sections.setdefault("database", {"logical_shards": 256})
    sections.setdefault("log", {"level": "warning"})
    return make_config(folder, **sections)


def seed_site(config, options, *, register_tasks: bool = True):
    """Migrate and seed; returns (ctx, summary). Prints one line per seeding phase."""
    from app.context import build_context
    from app.seed import seed

    ctx = build_context(config, register_tasks=register_tasks)
    ctx.db.migrate()
    started, seen = time.perf_counter(), set()

    def progress(label: str, done: int, total: int) -> None:
        if label not in seen:  # phases take turns shard by shard: say each once
            print(f"  seeding: {label} ({time.perf_counter() - started:.0f} s in)", flush=True)
            seen.add(label)

    summary = seed(ctx, options, progress)
    print(
        f"  seeded {summary.users:,} accounts, {summary.follows:,} follows, {summary.posts:,} posts, "
        f"{summary.feed_items:,} feed entries in {summary.seconds:.0f} s",
        flush=True,
    )
    return ctx, summary


def all_user_ids(ctx) -> list[int]:
    found = []
    for reader, _shards in ctx.db.shard_groups():
        with reader as conn:
            found.extend(r["id"] for r in conn.all("SELECT id FROM users"))
    return sorted(found)


def session_cookies(ctx, user_ids: list[int]) -> list[str]:
    """A signed-in session per user, as the login page would start it, and the CSRF cookie that a browser has from
    its first page (without it, every answer would make and set a new one): `Cookie` header values."""
    from litestar.middleware.csrf import generate_csrf_token

    from app.services import sessions
    from app.services.accounts import get_users

    users = get_users(ctx, user_ids)
    return [
        f"{sessions.COOKIE}={sessions.start_session(ctx, users[i])}; pinhole_csrf={generate_csrf_token(ctx.secret_key)}"
        for i in user_ids
    ]


@dataclass(frozen=True)
class Wrk:
    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    requests: int


_LUA = """
local cookies = {%s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", %s, {["Cookie"] = cookies[(n %% #cookies) + 1]})
end
"""


def wrk(
    base_url: str, path: str, cookies: list[str], *, connections: int, seconds: int, threads: int = 2, timeout: int = 2
) -> Wrk:
    """`wrk --latency` against one path, each request with the next cookie of the list; refuses to report a run
    with errors or non-2xx answers. A request that takes more than `timeout` seconds (wrk's default: 2) counts as
    an error."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA % (", ".join(_lua_string(c) for c in cookies), _lua_string(path)))
    try:
        result = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                f"--timeout={timeout}s",
                "--latency",
                "-s",
                script.name,
                base_url,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + timeout + 60,
        )
    finally:
        os.unlink(script.name)
    out = result.stdout
    if "Non-2xx or 3xx responses" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors on {path}:\n{out}")
    latency = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    if len(latency) != 3:
        raise RuntimeError(f"no latency distribution in wrk's output:\n{out}")
    return Wrk(
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        p50_ms=_ms(latency["50"]),
        p90_ms=_ms(latency["90"]),
        p99_ms=_ms(latency["99"]),
        requests=int(re.search(r"(\d+) requests in", out).group(1)),
    )


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def median(values) -> float:
    return statistics.median(list(values))


def bar_chart(path: Path, title: str, bars: list[tuple[str, float, str]], note: str = "") -> Path:
    """A horizontal bar chart as a standalone SVG: bars of (label, value, value text). No plotting library needed."""
    width, label_w, bar_w, row_h, top = 760, 300, 340, 34, 48
    height = top + row_h * len(bars) + (40 if note else 16)
    largest = max((value for _, value, _ in bars), default=1) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="system-ui, sans-serif" font-size="14">',
        f'<rect width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="16" y="28" font-size="16" font-weight="600">{escape(title)}</text>',
    ]
    palette = ("#4f6bed", "#e0794c", "#3fa37a", "#b05cc4", "#c9a227", "#5aa9c9")
    for row, (label, value, text) in enumerate(bars):
        y = top + row * row_h
        length = max(1.0, bar_w * value / largest)
        parts += [
            f'<text x="{label_w - 10}" y="{y + 20}" text-anchor="end">{escape(label)}</text>',
            f'<rect x="{label_w}" y="{y + 5}" width="{length:.1f}" height="22" rx="3" '
            f'fill="{palette[row % len(palette)]}"/>',
            f'<text x="{label_w + length + 8:.1f}" y="{y + 20}">{escape(text)}</text>',
        ]
    if note:
        parts.append(f'<text x="16" y="{height - 14}" font-size="12" fill="#555">{escape(note)}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")
    return path
