"""Home feed read time as the site grows, and what merging a celebrity's posts in at read time costs.

    python scaling/bench/bench_feed_scale.py [--full]   (or: make bench BENCH_ARGS=feed_scale; BENCH_FULL=1)

Seeds two temp sites (256 logical shards) with the same accounts and follow graph (same random seed) and different
post counts: SMALL_POSTS and LARGE_POSTS (10,000 against 1,000,000 with --full; 10,000 against 100,000 by default).
In both, one account is followed by half the others and [feeds] celebrity_threshold is below that, so it is a
celebrity: its posts are not fanned out but merged into its followers' feeds when they are read.

On each site, with a real `main.py serve` running on it:
- the home feed's first page over HTTP: wrk with one connection (no queueing, so its p50 is the time of one
  request), each request with the next of VIEWERS viewers' session cookies; viewers who do not follow the
  celebrity, then viewers who do; alternated ROUNDS times, SECONDS each;
- the same page's data in this process: `feed.home_feed(ctx, viewer, None, 10)` for every viewer, REPEATS times.

Reported: (b) the p50 at LARGE_POSTS over the p50 at SMALL_POSTS for viewers without a celebrity (target ≤ 1.2×),
and (d) the p50 of viewers whose feed merges the celebrity's posts in over those whose feed does not. Written under
"## Home feed read time by site size" in scaling/RESULTS.md with a plot (scaling/feed_scale.svg).
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seeded import (  # noqa: E402
    SCALING,
    all_user_ids,
    bar_chart,
    command,
    free_port,
    full_size,
    machine,
    median,
    scratch,
    seed_site,
    session_cookies,
    site_config,
    start_server,
    stop_server,
    today,
    wrk,
)

HEADING = "## Home feed read time by site size"
VIEWERS = 40
ROUNDS, SECONDS, REPEATS = 3, 8, 5
FEED_PAGE = 10


def sizes() -> dict:
    if full_size():
        return {"users": 10_000, "follows": 100, "small": 10_000, "large": 1_000_000}
    return {"users": 2_000, "follows": 50, "small": 10_000, "large": 100_000}


def measure_site(folder: Path, posts: int, size: dict) -> dict:
    from app.seed import SeedOptions
    from app.services import feed
    from app.services.accounts import find_user, get_users

    users = size["users"]
    config = site_config(folder, feeds={"celebrity_threshold": users // 4})
    options = SeedOptions(
        users=users,
        posts=posts,
        follows_per_user=size["follows"],
        celebrities=1,
        celebrity_followers=users // 2,
    )
    ctx, summary = seed_site(config, options)
    try:
        celebrity = find_user(ctx, summary.first_username)
        with ctx.db.read(celebrity.shard) as conn:
            rows = conn.all("SELECT follower_id FROM followers WHERE user_id = ?", (celebrity.id,))
        fans = {r["follower_id"] for r in rows}
        everyone = [u for u in all_user_ids(ctx) if u != celebrity.id]
        pick = random.Random(11)
        groups = {
            "plain": pick.sample([u for u in everyone if u not in fans], VIEWERS),
            "merged": pick.sample([u for u in everyone if u in fans], VIEWERS),
        }
        # In this process: the feed service alone.
        service = {}
        for name, viewer_ids in groups.items():
            viewers = list(get_users(ctx, viewer_ids).values())
            for viewer in viewers:
                feed.home_feed(ctx, viewer, None, FEED_PAGE)  # warm-up
            times = []
            for _ in range(REPEATS):
                for viewer in viewers:
                    started = time.perf_counter()
                    shown, _ = feed.home_feed(ctx, viewer, None, FEED_PAGE)
                    times.append(time.perf_counter() - started)
                    if len(shown) != FEED_PAGE:
                        raise RuntimeError(f"a seeded feed showed {len(shown)} posts, not {FEED_PAGE}")
            service[name] = statistics.median(times) * 1000
        cookies = {name: session_cookies(ctx, viewer_ids) for name, viewer_ids in groups.items()}
    finally:
        ctx.close()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = start_server(Path(config.source), port, folder)
    http: dict[str, list] = {"plain": [], "merged": []}
    try:
        for name in http:
            wrk(base_url, "/", cookies[name], connections=1, threads=1, seconds=2)  # warm-up
        for _ in range(ROUNDS):
            for name in http:
                http[name].append(wrk(base_url, "/", cookies[name], connections=1, threads=1, seconds=SECONDS))
    finally:
        stop_server(server)
    result = {
        "summary": summary,
        "service": service,
        "http_p50": {name: median(w.p50_ms for w in runs) for name, runs in http.items()},
        "http_rps": {name: median(w.requests_per_second for w in runs) for name, runs in http.items()},
    }
    print(
        f"  {posts:,} posts: HTTP p50 {result['http_p50']['plain']:.2f} ms without a celebrity, "
        f"{result['http_p50']['merged']:.2f} ms merging one; feed.home_feed {service['plain']:.2f} / "
        f"{service['merged']:.2f} ms",
        flush=True,
    )
    return result


def report(small: dict, large: dict, size: dict, plot: Path) -> str:
    def p50(site: dict, name: str) -> str:
        return f"{site['http_p50'][name]:.2f} ms"

    def svc(site: dict, name: str) -> str:
        return f"{site['service'][name]:.2f} ms"

    growth = large["http_p50"]["plain"] / small["http_p50"]["plain"]
    growth_service = large["service"]["plain"] / small["service"]["plain"]
    merge = large["http_p50"]["merged"] / large["http_p50"]["plain"]
    merge_service = large["service"]["merged"] / large["service"]["plain"]
    s, big = small["summary"], large["summary"]
    return "\n".join(
        [
            HEADING,
            "",
            f"`{command('feed_scale')}` on {today()}; {machine()}.",
            "",
            f"Two seeded sites with the same {s.users:,} accounts and the same follow graph ({size['follows']} "
            f"follows each, plus one account followed by half the others), {s.posts:,} posts against "
            f"{big.posts:,} ({s.feed_items:,} against {big.feed_items:,} feed entries; feeds hold at most 800). "
            "The much-followed account is above [feeds] celebrity_threshold, so its posts are merged into its "
            "followers' feeds when they are read. HTTP: a real `main.py serve`, wrk with one connection (no "
            f"queueing: its p50 is one request's time), GET / (the first {FEED_PAGE} posts: mostly a kept page, "
            "sent after its check reads the session, the page version and the head of the feed, where the "
            "celebrity's newest posts are merged in; see app/web/home_pages.py) with the "
            f"session cookies of {VIEWERS} viewers in turn, medians of {ROUNDS} runs of {SECONDS} s. Service: "
            f"`feed.home_feed(ctx, viewer, None, {FEED_PAGE})` in the benchmark process, median of "
            f"{REPEATS} × {VIEWERS} calls.",
            "",
            "| viewers | HTTP p50, small | HTTP p50, large | large ÷ small | home_feed, small | home_feed, large |",
            "| --- | --- | --- | --- | --- | --- |",
            f"| follow no celebrity | {p50(small, 'plain')} | {p50(large, 'plain')} | **{growth:.2f}×** | "
            f"{svc(small, 'plain')} | {svc(large, 'plain')} |",
            f"| follow the celebrity (merged at read) | {p50(small, 'merged')} | {p50(large, 'merged')} | "
            f"{large['http_p50']['merged'] / small['http_p50']['merged']:.2f}× | {svc(small, 'merged')} | "
            f"{svc(large, 'merged')} |",
            "",
            f"- Feed p50 at {big.posts:,} posts against {s.posts:,}: **{growth:.2f}×** over HTTP "
            f"({growth_service:.2f}× for home_feed alone); target ≤ 1.2×.",
            f"- Merging a celebrity's posts in at read time, at {big.posts:,} posts: **{merge:.2f}×** the p50 of a "
            f"feed without one over HTTP ({merge_service:.2f}× for home_feed alone: "
            f"+{large['service']['merged'] - large['service']['plain']:.2f} ms).",
            "",
            f"![Feed read time by site size]({plot.name})",
            "",
        ]
    )


def main() -> None:
    from scaling.bench.results import write_section

    size = sizes()
    results = {}
    for label in ("small", "large"):
        print(f"site with {size[label]:,} posts", flush=True)
        with scratch(f"feed-scale-{label}") as folder:
            results[label] = measure_site(Path(folder), size[label], size)
    small, large = results["small"], results["large"]
    growth = large["http_p50"]["plain"] / small["http_p50"]["plain"]
    print(
        f"feed p50 at {size['large']:,} posts ÷ at {size['small']:,}: {growth:.2f}x; merging a celebrity: "
        f"{large['http_p50']['merged'] / large['http_p50']['plain']:.2f}x"
    )
    bars = []
    for site in (small, large):
        posts = f"{site['summary'].posts:,} posts"
        bars.append((f"{posts}, no celebrity", site["http_p50"]["plain"], f"{site['http_p50']['plain']:.2f} ms"))
        bars.append((f"{posts}, celebrity merged", site["http_p50"]["merged"], f"{site['http_p50']['merged']:.2f} ms"))
    plot = bar_chart(
        SCALING / "feed_scale.svg",
        "Home feed p50 over HTTP, one connection (rung 0)",
        bars,
        note=f"{size['large']:,} ÷ {size['small']:,} posts: {growth:.2f}× (target ≤ 1.2×)",
    )
    written = write_section(HEADING, report(small, large, size, plot))
    print(f"written to {written}")


if __name__ == "__main__":
    main()
