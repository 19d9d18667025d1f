"""Search on the top rung: how long one search of accounts and tags takes with 256 logical shards over two
PostgreSQL servers, against one read of one account in the same run.

    python scaling/bench/bench_search_top.py [--full]     (or: make bench BENCH_ARGS=search_top; BENCH_FULL=1)

Starts the top rung's servers (scaling/bench/top_rung.py) and seeds USERS accounts (100,000 with --full; usernames
seed1, seed2, ..., display names such as "Chloé 42"; the seed makes no tags). Then, in this process
with the site's own context, `discover.search(ctx, viewer, query)` for each of QUERIES (what the search box sends
as someone types: every keystroke is a search), ROUNDS times each after one warm-up, against
`accounts.get_user(ctx, id)` (one transaction on one shard) as the unit. A search reads the username and tag
directories and the name index on every logical shard (`Database.each_shard`), then the matching accounts by place
(`Database.read_all`). Reported: the median of each, and each query's median as a multiple of one read. Written
under "## Search on the top rung" in scaling/RESULTS.md.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seeded import all_user_ids, command, full_size, machine, median, scratch, seed_site, today  # noqa: E402
from top_rung import LOGICAL_SHARDS, top_rung  # noqa: E402

HEADING = "## Search on the top rung"
USERS = 100_000 if full_size() else 10_000
POSTS, FOLLOWS = USERS, 5
ROUNDS = 30
# One letter (matches every username), a longer prefix, a word of display names, tags only, and a miss.
QUERIES = ("s", "seed12", "chlo", "#sun", "zq")


def timed(call, rounds: int) -> float:
    """The median seconds of `rounds` calls, after one warm-up."""
    call()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return median(times)


def report(results: dict, one_read: float, summary, versions: str) -> str:
    rows = "\n".join(
        f"| `{query}` | {found} | {seconds * 1000:.1f} ms | {seconds / one_read:.0f}× |"
        for query, (seconds, found) in results.items()
    )
    return "\n".join(
        [
            HEADING,
            "",
            f"`{command('search_top')}` on {today()}; {machine()}. Servers: {versions}.",
            "",
            f"{LOGICAL_SHARDS} logical shards over two PostgreSQL servers (scaling/bench/top_rung.py), "
            f"{summary.users:,} seeded accounts. In-process: `discover.search` (what each keystroke in the search box "
            f"asks), median of {ROUNDS} after a warm-up, against one `accounts.get_user` (one transaction on one "
            f"shard): **{one_read * 1000:.2f} ms**.",
            "",
            "| query | accounts + tags found | median | × one read |",
            "|---|---|---|---|",
            rows,
            "",
            "A search reads three directories on every logical shard. Each read of every shard is one read-only "
            "transaction per server, sent as one statement list (`Database.each_shard`); the accounts found are then "
            "read by place in one more (`Database.read_all`). Before these, each shard was a transaction of its "
            "own: about 770 transactions a search, each two round trips.",
            "",
        ]
    )


def main() -> None:
    from app.seed import SeedOptions
    from app.services import accounts, discover
    from scaling.bench.results import write_section

    with top_rung() as rung, scratch("search-top") as tmp:
        versions = rung.versions()
        config = rung.site_config(Path(tmp))
        ctx, summary = seed_site(config, SeedOptions(users=USERS, posts=POSTS, follows_per_user=FOLLOWS))
        try:
            some = random.Random(1).sample(all_user_ids(ctx), 50)
            one_read = timed(lambda: [accounts.get_user(ctx, i) for i in some], ROUNDS) / len(some)
            print(f"one read: {one_read * 1000:.2f} ms", flush=True)
            viewer = accounts.get_user(ctx, some[0])
            results = {}
            for query in QUERIES:
                found = discover.search(ctx, viewer, query)
                seconds = timed(lambda q=query: discover.search(ctx, viewer, q), ROUNDS)
                results[query] = (seconds, len(found.accounts) + len(found.tags))
                print(f"search {query!r}: {seconds * 1000:.1f} ms ({seconds / one_read:.0f}× one read)", flush=True)
        finally:
            ctx.close()
    written = write_section(HEADING, report(results, one_read, summary, versions))
    print(f"written to {written}")


if __name__ == "__main__":
    main()
