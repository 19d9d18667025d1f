"""The logged-in home feed against the same server's trivial /hello: requests per second and latency under wrk.

    python scaling/bench/bench_feed.py        (or: make bench BENCH_ARGS=feed)

Seeds a temp site (256 logical shards; USERS accounts following FOLLOWS each, POSTS posts, so every feed is full at
[feeds] max_items), starts a real `main.py serve` on it (rung 0 defaults: one Granian worker, two embedded queue
threads idle), and signs in VIEWERS seeded accounts (sessions started as the login page does). Then wrk (WRK_THREADS
threads, CONNECTIONS connections, SECONDS a run after WARM_SECONDS of the same requests, --latency) alternates
between GET /hello and GET / (the first page of the home feed, as HTML), each request with the next viewer's session
cookie, ROUNDS times each.
Reported: medians of the rounds, the ratio of feed to hello requests per second (target ≥ 35%) and the feed's p99
(target ≤ 50 ms). Written under "## Home feed under load" in scaling/RESULTS.md with a plot (scaling/feed.svg).
"""

from __future__ import annotations

import random
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seeded import (  # noqa: E402
    SCALING,
    all_user_ids,
    bar_chart,
    command,
    free_port,
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

HEADING = "## Home feed under load"
USERS, POSTS, FOLLOWS = 2_000, 40_000, 50
VIEWERS = 50
CONNECTIONS, WRK_THREADS, SECONDS, ROUNDS = 64, 2, 10, 3
WARM_SECONDS = 3  # before each run, the same requests, not counted


def check_feed_page(base_url: str, cookie: str) -> None:
    """The cookie really signs in, and / is a feed with posts (not the welcome page)."""
    request = urllib.request.Request(f"{base_url}/", headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=10) as answer:
        body = answer.read().decode()
    if answer.status != 200 or body.count('href="/p/') < 5:
        raise RuntimeError(f"GET / for a seeded viewer is not a feed page with posts ({answer.status})")


def measure(base_url: str, cookies: list[str], wrk_timeout: int = 2) -> list[dict]:
    """ROUNDS of (hello, feed) wrk runs against one entry point, each after WARM_SECONDS of the same requests (the
    viewers' kept pages expired while the other route ran): the steady state."""
    check_feed_page(base_url, cookies[0])
    rounds = []
    for number in range(ROUNDS):
        result = {}
        for name, path in (("hello", "/hello"), ("feed", "/")):
            for seconds in (WARM_SECONDS, SECONDS):
                result[name] = wrk(
                    base_url,
                    path,
                    cookies,
                    connections=CONNECTIONS,
                    seconds=seconds,
                    threads=WRK_THREADS,
                    timeout=wrk_timeout,
                )
            time.sleep(1)
        rounds.append(result)
        print(
            f"  run {number + 1}: hello {result['hello'].requests_per_second:,.0f} req/s "
            f"(p99 {result['hello'].p99_ms:.1f} ms), feed {result['feed'].requests_per_second:,.0f} req/s "
            f"(p50 {result['feed'].p50_ms:.1f} ms, p99 {result['feed'].p99_ms:.1f} ms): "
            f"{result['feed'].requests_per_second / result['hello'].requests_per_second:.0%}",
            flush=True,
        )
    return rounds


def report(rounds: list[dict], summary, plot: Path) -> str:
    hello = median(r["hello"].requests_per_second for r in rounds)
    feed = median(r["feed"].requests_per_second for r in rounds)
    ratio = median(r["feed"].requests_per_second / r["hello"].requests_per_second for r in rounds)

    def row(name: str, key: str) -> str:
        runs = [r[key] for r in rounds]
        each = ", ".join(f"{w.requests_per_second:,.0f}" for w in runs)
        return (
            f"| {name} | **{median(w.requests_per_second for w in runs):,.0f}** | {median(w.p50_ms for w in runs):.1f} "
            f"| {median(w.p90_ms for w in runs):.1f} | **{median(w.p99_ms for w in runs):.1f}** | {each} |"
        )

    return "\n".join(
        [
            HEADING,
            "",
            f"`{command('feed')}` on {today()}; {machine()}.",
            "",
            f"A real `main.py serve` (rung 0 defaults: one Granian worker, SQLite, two embedded queue threads idle) on "
            f"a seeded site: {summary.users:,} accounts following {FOLLOWS} each, {summary.posts:,} posts, "
            f"{summary.feed_items:,} feed entries (every feed full at 800). wrk with {WRK_THREADS} threads and "
            f"{CONNECTIONS} connections, {SECONDS} s a run after {WARM_SECONDS} s of the same requests, on the same 2 "
            f"cores as the server; every request carries the session cookie of one of {VIEWERS} signed-in viewers in "
            "turn. `/` is the first page of the viewer's home feed as HTML (10 posts with their photos' srcsets, like "
            "state, counts), kept per viewer for [feeds] page_cache_seconds (5 s) and rendered again in the "
            f"background as it ages; `/hello` is a plain-text route with no app work. The two alternate, "
            f"{len(rounds)} runs each; medians.",
            "",
            "| route | requests/s | p50 ms | p90 ms | p99 ms | each run (req/s) |",
            "| --- | --- | --- | --- | --- | --- |",
            row("GET /hello", "hello"),
            row("GET / (home feed)", "feed"),
            "",
            f"Feed ÷ hello: **{ratio:.0%}** of the requests per second (target ≥ 35%; {feed:,.0f} against "
            f"{hello:,.0f}); the feed's p99 is {median(r['feed'].p99_ms for r in rounds):.1f} ms (target ≤ 50 ms at "
            f"{CONNECTIONS} connections).",
            "",
            f"![Home feed against hello]({plot.name})",
            "",
        ]
    )


def main() -> None:
    from app.seed import SeedOptions
    from scaling.bench.results import write_section

    with scratch("feed") as folder:
        folder = Path(folder)
        config = site_config(folder)
        ctx, summary = seed_site(config, SeedOptions(users=USERS, posts=POSTS, follows_per_user=FOLLOWS))
        cookies = session_cookies(ctx, random.Random(7).sample(all_user_ids(ctx), VIEWERS))
        ctx.close()
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        server = start_server(Path(config.source), port, folder)
        try:
            rounds = measure(base_url, cookies)
        finally:
            stop_server(server)
    hello = median(r["hello"].requests_per_second for r in rounds)
    feed = median(r["feed"].requests_per_second for r in rounds)
    ratio = median(r["feed"].requests_per_second / r["hello"].requests_per_second for r in rounds)
    print(f"median: feed {feed:,.0f} req/s against hello {hello:,.0f} req/s = {ratio:.0%}")
    plot = bar_chart(
        SCALING / "feed.svg",
        f"Requests per second at {CONNECTIONS} connections (rung 0, median of {len(rounds)})",
        [
            ("GET /hello", hello, f"{hello:,.0f} req/s"),
            ("GET / (home feed)", feed, f"{feed:,.0f} req/s ({ratio:.0%} of hello)"),
            ("35% of hello (target)", hello * 0.35, f"{hello * 0.35:,.0f} req/s"),
        ],
        note=f"feed p99 {median(r['feed'].p99_ms for r in rounds):.1f} ms (target ≤ 50 ms)",
    )
    written = write_section(HEADING, report(rounds, summary, plot))
    print(f"written to {written}")


if __name__ == "__main__":
    main()
