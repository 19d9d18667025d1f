"""Photos through the embedded worker: how fast a real `main.py serve` (queue.embedded_workers = 2) turns posted
12 MP JPEGs into ready posts.

    python scaling/bench/bench_photos_worker.py      (or: make bench BENCH_ARGS=photos_worker)

In a temp data dir: starts `main.py serve` on a free port, makes a 12 MP JPEG (good/flower.jpg enlarged with
libvips, Q=90), then, in this process and on the same data dir, creates posts with `posts.create_post` exactly as
the upload page does (header checks, uploads stored, rows written, `process_post` enqueued). The server's two
embedded queue threads do the processing; this process only polls the posts table. Reported, as medians of RUNS:
- throughput: BATCH one-photo posts created back to back, photos per minute from the first create to the last
  post ready (and each post's wait from create to ready);
- the wait for one 10-photo post (one task: its photos are processed one after another);
- for scale, the pipeline alone (`process_photo`, same photo, this process, server idle).
Figures are printed and written under "## Photos through the embedded worker" in scaling/RESULTS.md.
"""

from __future__ import annotations

import datetime
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parents[1]
HEADING = "## Photos through the embedded worker"
WORKERS = 2
BATCH = 48
RUNS = 5
POLL_SECONDS = 0.02
TIMEOUT_SECONDS = 300

for path in (REPO_ROOT, BENCH_DIR):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(config_path: Path, port: int, log_dir: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINHOLE_")}
    log = (log_dir / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "main.py"), "serve", "--port", str(port), "--config", str(config_path)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=config_path.parent,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"main.py serve exited: {(log_dir / 'serve.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            pass
        time.sleep(0.05)
    stop_server(server)
    raise RuntimeError("main.py serve was not healthy within 30 s")


def stop_server(server: subprocess.Popen) -> None:
    """SIGTERM the server's process group (Granian and its workers), SIGKILL if it lingers."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=5)
    except ProcessLookupError:
        pass


def wait_ready(ctx, post_ids: list[int]) -> dict[int, dict]:
    """Poll the posts table until every post is ready; its rows (status, created_at, updated_at)."""
    from app import ids

    deadline = time.monotonic() + TIMEOUT_SECONDS
    marks = ",".join("?" * len(post_ids))
    shard = ids.shard_of(post_ids[0])
    while True:
        with ctx.db.read(shard) as conn:
            rows = conn.all(
                f"SELECT id, status, error, created_at, updated_at FROM posts WHERE id IN ({marks})", post_ids
            )
        failed = [row for row in rows if row["status"] == "failed"]
        if failed:
            raise RuntimeError(f"post {failed[0]['id']} failed: {failed[0]['error']}")
        if all(row["status"] == "ready" for row in rows):
            return {row["id"]: row for row in rows}
        if time.monotonic() > deadline:
            raise RuntimeError(f"posts not ready after {TIMEOUT_SECONDS} s")
        time.sleep(POLL_SECONDS)


def throughput_run(ctx, author, data: bytes) -> dict:
    from app.services.posts import PhotoUpload, create_post

    started = time.perf_counter()
    post_ids = [create_post(ctx, author, [PhotoUpload(data)]).id for _ in range(BATCH)]
    created = time.perf_counter()
    rows = wait_ready(ctx, post_ids)
    finished = time.perf_counter()
    waits = [(row["updated_at"] - row["created_at"]) / 1000 for row in rows.values()]
    return {
        "seconds": finished - started,
        "create_seconds": created - started,
        "per_minute": BATCH / (finished - started) * 60,
        "median_wait": statistics.median(waits),
        "max_wait": max(waits),
    }


def warm_up(ctx, author, data: bytes) -> int:
    """One post first, so the server's libvips is loaded before timing."""
    from app.services.posts import PhotoUpload, create_post

    return create_post(ctx, author, [PhotoUpload(data)]).id


def ten_photo_wait(ctx, author, data: bytes) -> float:
    from app.services.posts import MAX_PHOTOS, PhotoUpload, create_post

    started = time.perf_counter()
    post = create_post(ctx, author, [PhotoUpload(data)] * MAX_PHOTOS)
    wait_ready(ctx, [post.id])
    return time.perf_counter() - started


def pipeline_alone(data: bytes) -> float:
    import pyvips

    from app.media.pipeline import process_photo

    pyvips.cache_set_max(0)
    process_photo(data)  # warm-up
    times = []
    for _ in range(5):
        started = time.perf_counter()
        process_photo(data)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def report(runs: list[dict], ten: list[float], alone: float, megabytes: float, command: str) -> str:
    from bench_renditions import machine

    def each(key: str, fmt: str) -> str:
        return ", ".join(format(r[key], fmt) for r in runs)

    def median(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    per_minute = median("per_minute")
    lines = [
        HEADING,
        "",
        f"`{command}` on {datetime.date.today().isoformat()}; {machine()}.",
        "",
        f"A real `main.py serve` (rung 0: SQLite, local files, Huey on SQLite) with `queue.embedded_workers = "
        f"{WORKERS}`; posts made with `posts.create_post` from another process on the same data dir, as the upload "
        f"page does; the photo is good/flower.jpg enlarged to 12 MP, JPEG Q=90 ({megabytes:.1f} MB). Each photo "
        "becomes WebP + JPEG at 1080, 640, 320 and a 150 square, BlurHash and dominant colour; its upload is "
        f"deleted. Medians of {RUNS} runs.",
        "",
        "| measure | median | each run |",
        "| --- | --- | --- |",
        f"| photos per minute: {BATCH} one-photo posts created back to back, first create → last ready | "
        f"**{per_minute:.0f}** | {each('per_minute', '.0f')} |",
        f"| time to create the {BATCH} posts (checks, uploads stored, rows, enqueue) | "
        f"{median('create_seconds'):.2f} s | {each('create_seconds', '.2f')} |",
        f"| a post's wait in that batch, create → ready: median | {median('median_wait'):.1f} s | "
        f"{each('median_wait', '.1f')} |",
        f"| the same: the longest | {median('max_wait'):.1f} s | {each('max_wait', '.1f')} |",
        f"| a 10-photo post alone, create → ready | {statistics.median(ten):.1f} s | "
        f"{', '.join(format(t, '.1f') for t in ten)} |",
        f"| the pipeline alone (`process_photo`, benchmark process, server idle) | {alone * 1000:.0f} ms "
        f"= {60 / alone:.0f} photos/min | median of 5 |",
        "",
        f"Through the worker: {per_minute * alone / 60:.2f}× the rate of the pipeline alone. Two queue threads "
        "overlap one photo's single-threaded stretches (JPEG decode, the encoders) with another's, while each photo "
        "also pays for storing 8 renditions (an fsync each), its rows and the queue round trip. A 10-photo post is "
        "one task, so its photos take turns on one thread: its wait is about ten times the pipeline's.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    from bench_renditions import make_photo

    from app.context import build_context
    from app.services import accounts
    from scaling.bench.results import write_section
    from tests.backends import make_config

    with tempfile.TemporaryDirectory(prefix="pinhole-photos-worker-") as scratch:
        folder = Path(scratch)
        config = make_config(folder, queue={"embedded_workers": WORKERS}, log={"level": "warning"})
        photo = make_photo(folder, 12)
        data = photo.read_bytes()
        server = start_server(Path(config.source), free_port(), folder)
        ctx = build_context(config)
        try:
            author = accounts.create_user(ctx, "bench", "bench password 123", by_operator=True)
            wait_ready(ctx, [warm_up(ctx, author, data)])
            runs, ten = [], []
            for run in range(RUNS):
                result = throughput_run(ctx, author, data)
                runs.append(result)
                ten.append(ten_photo_wait(ctx, author, data))
                print(
                    f"run {run + 1}: {BATCH} photos in {result['seconds']:.1f} s = {result['per_minute']:.0f}/min "
                    f"(creating them took {result['create_seconds']:.2f} s; wait median {result['median_wait']:.1f} s, "
                    f"worst {result['max_wait']:.1f} s); a 10-photo post ready in {ten[-1]:.1f} s",
                    flush=True,
                )
        finally:
            ctx.close()
            stop_server(server)
        alone = pipeline_alone(data)
        print(f"pipeline alone: {alone * 1000:.0f} ms a photo = {60 / alone:.0f}/min")
        megabytes = len(data) / 1e6
    per_minute = statistics.median(r["per_minute"] for r in runs)
    print(
        f"median: {per_minute:.0f} photos/min through the embedded worker; 10-photo post {statistics.median(ten):.1f} s"
    )
    written = write_section(HEADING, report(runs, ten, alone, megabytes, "make bench BENCH_ARGS=photos_worker"))
    print(f"written to {written.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
