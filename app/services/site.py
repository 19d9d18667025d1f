"""What the server says about itself (the client API's instance information, NodeInfo): counts over every shard,
read through the cache so a crowd of apps starting up costs one count per CACHE_SECONDS."""

from __future__ import annotations

from dataclasses import dataclass

from app.context import Context

CACHE_KEY = "site:stats:v1"
CACHE_SECONDS = 300


@dataclass(frozen=True)
class Stats:
    users: int
    posts: int


def stats(ctx: Context) -> Stats:
    """Accounts and ready posts on the site, at most CACHE_SECONDS old."""
    counted = ctx.backends.cache.get_or_fill(CACHE_KEY, lambda: _count(ctx), CACHE_SECONDS)
    return Stats(**counted)


def _count(ctx: Context) -> dict[str, int]:
    rows = ctx.db.each_shard("SELECT count(*) AS users, coalesce(sum(post_count), 0) AS posts FROM users")
    return {"users": sum(r["users"] for r in rows), "posts": sum(r["posts"] for r in rows)}
