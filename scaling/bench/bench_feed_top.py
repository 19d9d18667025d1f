"""The logged-in home feed on the top rung against the same entry point's /hello, with one app node and with two
behind nginx: requests per second and latency under wrk.

    python scaling/bench/bench_feed_top.py     (or: make bench BENCH_ARGS=feed_top)

Starts the top rung's servers (scaling/bench/top_rung.py: PostgreSQL ×2 holding the 256 logical shards, Redis for
sessions, feeds, the queue and live events, memcached ×2, SeaweedFS) and seeds bench_feed.py's site (USERS accounts
following FOLLOWS each, POSTS posts, every feed full at [feeds] max_items, here as Redis sorted sets). Starts two
`main.py serve` app nodes on it (one Granian worker each, as bench_feed.py's rung-0 server) and signs in VIEWERS
seeded accounts (sessions in Redis, started as the login page does; the CSRF cookie a browser keeps). Then, for each
entry point: node A directly, nginx (scaling/nginx.conf as tests/server_nginx.py runs it) in front of node A alone,
and nginx in front of both nodes, bench_feed.measure: wrk (WRK_THREADS threads, CONNECTIONS connections, SECONDS a
run after WARM_SECONDS of the same requests, --latency) alternates between GET /hello and GET / (the first page of
the home feed), ROUNDS times each. Reported:
medians of the rounds and the feed ÷ hello ratio per entry point. Written under "## Home feed under load on the top
rung" in scaling/RESULTS.md.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_feed import (  # noqa: E402
    CONNECTIONS,
    FOLLOWS,
    POSTS,
    ROUNDS,
    SECONDS,
    USERS,
    VIEWERS,
    WARM_SECONDS,
    WRK_THREADS,
    measure,
)
from seeded import all_user_ids, command, machine, median, scratch, seed_site, session_cookies, today  # noqa: E402
from top_rung import top_rung  # noqa: E402

HEADING = "## Home feed under load on the top rung"
# A feed page here takes tens of ms of the app's CPU (one transaction per shard it reads, on Postgres), so at 64
# connections some wait longer than wrk's default 2 s: they are counted, not reported as errors.
WRK_TIMEOUT = 10


def report(results: dict[str, list[dict]], summary, versions: str) -> str:
    def rps(rounds: list[dict], key: str) -> float:
        return median(r[key].requests_per_second for r in rounds)

    lines = [
        HEADING,
        "",
        f"`{command('feed_top')}` on {today()}; {machine()}. Servers: {versions}.",
        "",
        "The top rung on this one machine (scaling/bench/top_rung.py: the test suite's servers on loopback; "
        "PostgreSQL with fsync off and 32 MB shared buffers): 256 logical shards over two PostgreSQL servers, "
        "sessions, feeds, the queue and live events in one Redis, memcached ×2 as the cache, photos in SeaweedFS (S3; "
        f"wrk fetches the pages only). bench_feed.py's site: {summary.users:,} accounts following {FOLLOWS} "
        f"each, {summary.posts:,} posts, {summary.feed_items:,} feed entries (every feed full at 800, in Redis). "
        "Two `main.py serve` app nodes of one Granian worker each, no queue threads; the entry points are node A "
        "itself, scaling/nginx.conf (one worker process) in front of node A alone, and the same in front of both "
        f"nodes (least_conn). wrk with {WRK_THREADS} threads and {CONNECTIONS} connections, {SECONDS} s a run after "
        f"{WARM_SECONDS} s of the same requests; every "
        f"request carries the session cookie of one of {VIEWERS} signed-in viewers in turn (wrk's timeout raised to "
        f"{WRK_TIMEOUT} s; no run had an error or a timeout). Everything (wrk, nginx, "
        "both nodes, PostgreSQL ×2, Redis, memcached) shares the same 2 cores. /hello and / alternate against each "
        f"entry point, {ROUNDS} runs each; medians.",
        "",
        "| entry point | hello req/s | hello p99 ms | feed req/s | feed p50 ms | feed p90 ms | feed p99 ms | "
        "feed ÷ hello | each run, feed (req/s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, rounds in results.items():
        feeds = [r["feed"] for r in rounds]
        ratio = median(r["feed"].requests_per_second / r["hello"].requests_per_second for r in rounds)
        lines.append(
            f"| {name} | {rps(rounds, 'hello'):,.0f} | {median(r['hello'].p99_ms for r in rounds):.1f} | "
            f"**{rps(rounds, 'feed'):,.0f}** | {median(w.p50_ms for w in feeds):.1f} | "
            f"{median(w.p90_ms for w in feeds):.1f} | **{median(w.p99_ms for w in feeds):.1f}** | **{ratio:.0%}** | "
            f"{', '.join(f'{w.requests_per_second:,.0f}' for w in feeds)} |"
        )
    one, behind, two = (results[name] for name in results)
    lines += [
        "",
        f"Two nodes behind nginx ÷ one node behind nginx: **{rps(two, 'feed') / rps(behind, 'feed'):.2f}×** the "
        f"feed's requests per second ({rps(two, 'hello') / rps(behind, 'hello'):.2f}× for /hello); nginx in front of "
        f"one node ÷ that node directly: {rps(behind, 'feed') / rps(one, 'feed'):.2f}× for the feed.",
        "",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    from app.seed import SeedOptions
    from scaling.bench.results import write_section
    from tests.procs import Procs
    from tests.server_nginx import Nginx

    with top_rung() as rung, scratch("feed-top") as folder:
        folder = Path(folder)
        versions = rung.versions()
        config = rung.site_config(folder, server={"workers": 1})
        ctx, summary = seed_site(config, SeedOptions(users=USERS, posts=POSTS, follows_per_user=FOLLOWS))
        cookies = session_cookies(ctx, random.Random(7).sample(all_user_ids(ctx), VIEWERS))
        ctx.close()
        procs = Procs(folder / "logs")
        proxies: list[Nginx] = []
        try:
            node_a, node_b = procs.serve(config.source), procs.serve(config.source)
            proxies += [Nginx([node_a.url]), Nginx([node_a.url, node_b.url])]
            entry_points = {
                "one app node, directly": node_a.url,
                "one app node behind nginx": proxies[0].url,
                "two app nodes behind nginx": proxies[1].url,
            }
            results = {}
            for name, url in entry_points.items():
                print(f"{name}: {url}", flush=True)
                results[name] = measure(url, cookies, wrk_timeout=WRK_TIMEOUT)
        finally:
            for proxy in proxies:
                proxy.stop()
            procs.close()
    for name, rounds in results.items():
        feed = median(r["feed"].requests_per_second for r in rounds)
        hello = median(r["hello"].requests_per_second for r in rounds)
        print(f"{name}: feed {feed:,.0f} req/s against hello {hello:,.0f} req/s = {feed / hello:.0%}")
    written = write_section(HEADING, report(results, summary, versions))
    print(f"written to {written}")


if __name__ == "__main__":
    main()
