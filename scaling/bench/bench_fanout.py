"""Fan-out on write: how long a new post takes to reach every follower's home feed, on rung 0.

    python scaling/bench/bench_fanout.py [--full]     (or: make bench BENCH_ARGS=fanout; BENCH_FULL=1 for --full)

Seeds a temp site (256 logical shards) with an account followed by FOLLOWERS others (100,000 with --full, 10,000
by default) and [feeds] celebrity_threshold above that, so its posts are fanned out, not merged at read time. Every
follower also follows 10 others and has some posts, so feeds are not empty. Then starts a real `main.py serve`
(queue.embedded_workers = 2) on it and, RUNS times, posts a small photo as that account with `posts.create_post`
from this process, as the upload page does. The server's queue threads make the renditions, flip the post to ready
and run the `fanout_post` chain ([feeds] fanout_chunk followers a task). Timed until the post row says the chain is
done (`fanout_after` back to NULL), then checked: the post is in exactly FOLLOWERS + 1 feeds. Reported: medians of
create → ready, ready → in every feed, create → in every feed. Written under "## Fan-out" in scaling/RESULTS.md
with a plot (scaling/fanout.svg).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seeded import (  # noqa: E402
    SCALING,
    bar_chart,
    command,
    free_port,
    full_size,
    machine,
    median,
    scratch,
    seed_site,
    site_config,
    start_server,
    stop_server,
    today,
)

HEADING = "## Fan-out"
RUNS = 5
POLL_SECONDS = 0.01
TIMEOUT_SECONDS = 300
PHOTO = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "images" / "good" / "hopper.jpg"


def scenarios() -> list[dict]:
    """(1) many followers with the small feeds seeding gives them; (2) fewer followers whose feeds are full, so
    every add lands in a feed at [feeds] max_items (the trim's worst case)."""
    many = 100_000 if full_size() else 10_000
    full = 10_000 if full_size() else 2_000
    follows = 100 if full_size() else 50
    return [
        {"name": "small feeds", "followers": many, "users": many + 1, "posts": 2 * many, "follows_per_user": 10},
        {
            "name": "full feeds",
            "followers": full,
            "users": full + 1,
            "posts": full * (1600 // follows),  # 1,600 candidates a feed for 800 places
            "follows_per_user": follows,
        },
    ]


def fan_out_once(ctx, author, data: bytes, followers: int) -> dict:
    post_id, timings = time_fan_out(ctx, author, data)
    reached = 0
    for reader, _shards in ctx.db.shard_groups():
        with reader as conn:
            reached += conn.value("SELECT count(*) FROM feed_items WHERE post_id = ?", (post_id,))
    if reached != followers + 1:
        raise RuntimeError(f"post {post_id} reached {reached} feeds, not {followers + 1}")
    return timings


def time_fan_out(ctx, author, data: bytes) -> tuple[int, dict]:
    """Post a photo as `author`; (its id, seconds create → ready, ready → fan-out chain done, create → done)."""
    from app import ids
    from app.services.posts import PhotoUpload, create_post

    started = time.perf_counter()
    post = create_post(ctx, author, [PhotoUpload(data)])
    ready_at = None
    deadline = started + TIMEOUT_SECONDS
    while True:
        with ctx.db.read(ids.shard_of(post.id)) as conn:
            row = conn.one("SELECT status, fanout_after FROM posts WHERE id = ?", (post.id,))
        now = time.perf_counter()
        if row["status"] == "failed":
            raise RuntimeError(f"post {post.id} failed")
        if row["status"] == "ready" and ready_at is None:
            ready_at = now
        if row["status"] == "ready" and row["fanout_after"] is None:
            break
        if now > deadline:
            raise RuntimeError(f"post {post.id} not in every feed after {TIMEOUT_SECONDS} s: {row}")
        time.sleep(POLL_SECONDS)
    done_at = time.perf_counter()
    return post.id, {"ready": ready_at - started, "fanout": done_at - ready_at, "total": done_at - started}


def report(results: list[dict], chunk: int, plot: Path) -> str:
    lines = [
        HEADING,
        "",
        f"`{command('fanout')}` on {today()}; {machine()}.",
        "",
        "A real `main.py serve` (rung 0: one SQLite file, 256 logical shards, Huey on SQLite, 2 embedded queue "
        "threads) on a seeded site where one account has many followers and [feeds] celebrity_threshold is above "
        f"that, so its posts are fanned out ({chunk:,} followers a task, chained). Each run posts a small photo as "
        "that account with `posts.create_post` from another process, as the upload page does; the time ends when "
        "the post row says the chain is done, and the post is then found in exactly followers + 1 feeds. Two "
        "sites: many followers with the small feeds seeding leaves them (about 25 entries), and fewer followers "
        "whose feeds are all full at 800 (every add is followed, now and then, by a trim of a full feed). "
        f"Medians of {RUNS} runs each.",
        "",
        "| site | followers | create → ready | ready → in every feed | create → in every feed | per follower | "
        "each run, create → every feed (s) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        runs, summary = r["runs"], r["summary"]
        total = median(x["total"] for x in runs)
        fanout = median(x["fanout"] for x in runs)
        lines.append(
            f"| {r['name']}: {summary.users:,} accounts, {summary.follows:,} follows, {summary.feed_items:,} feed "
            f"entries | {r['followers']:,} | {median(x['ready'] for x in runs):.2f} s | {fanout:.2f} s | "
            f"**{total:.2f} s** | {fanout / r['followers'] * 1e6:.0f} µs | "
            f"{', '.join(format(x['total'], '.2f') for x in runs)} |"
        )
    many = results[0]
    lines += [
        "",
        f"Target: ≤ 3 s for a post to reach 100,000 followers' feeds on rung 0; here {many['followers']:,} took "
        f"**{median(x['total'] for x in many['runs']):.2f} s** from create (the fan-out itself "
        f"{median(x['fanout'] for x in many['runs']):.2f} s).",
        "",
        f"![Fan-out time]({plot.name})",
        "",
    ]
    return "\n".join(lines)


def run_scenario(scenario: dict, data: bytes) -> dict:
    from app.seed import SeedOptions
    from app.services import accounts

    followers = scenario["followers"]
    options = SeedOptions(
        users=scenario["users"],
        posts=scenario["posts"],
        follows_per_user=scenario["follows_per_user"],
        celebrities=1,
        celebrity_followers=followers,
    )
    print(f"{scenario['name']}: {followers:,} followers", flush=True)
    with scratch("fanout") as folder:
        folder = Path(folder)
        config = site_config(folder, feeds={"celebrity_threshold": followers * 10}, queue={"embedded_workers": 2})
        ctx, summary = seed_site(config, options)
        author = accounts.find_user(ctx, summary.first_username)
        assert author is not None and author.follower_count == followers
        server = start_server(Path(config.source), free_port(), folder)
        try:
            fan_out_once(ctx, author, data, followers)  # warm-up: libvips loaded, pages cached
            runs = []
            for run in range(RUNS):
                result = fan_out_once(ctx, author, data, followers)
                runs.append(result)
                print(
                    f"  run {run + 1}: ready in {result['ready']:.2f} s, then in {followers:,} feeds in "
                    f"{result['fanout']:.2f} s; {result['total']:.2f} s in all",
                    flush=True,
                )
        finally:
            stop_server(server)
            ctx.close()
    return {**scenario, "runs": runs, "summary": summary, "chunk": config.feeds.fanout_chunk}


def main() -> None:
    from scaling.bench.results import write_section

    data = PHOTO.read_bytes()
    results = [run_scenario(scenario, data) for scenario in scenarios()]
    bars = []
    for r in results:
        total = median(x["total"] for x in r["runs"])
        print(f"{r['name']}: median {total:.2f} s create → every feed for {r['followers']:,} followers")
        bars.append((f"{r['followers']:,} followers, {r['name']}", total, f"{total:.2f} s"))
    bars.append(("target (100,000 followers)", 3.0, "3 s"))
    plot = bar_chart(
        SCALING / "fanout.svg", f"A new post reaching every follower's feed (rung 0, median of {RUNS})", bars
    )
    written = write_section(HEADING, report(results, results[0]["chunk"], plot))
    print(f"written to {written}")


if __name__ == "__main__":
    main()
