"""Discovery: Explore (popular recent public posts) and search (accounts and tags by prefix).

Explore is ranked by a periodic task, never per request: every shard group's ready posts of public accounts from
the last RANK_DAYS days, scored by engagement with time decay, the best RANK_KEEP ids kept in the cache under
EXPLORE_KEY. Pages read that snapshot through `get_or_fill`, so a cold, expired or failing cache ranks afresh
instead of breaking, and filter it per viewer (visibility, blocks either way, mutes) through posts.get_posts. The
cached list is the same for everyone; nothing rendered for one viewer is cached.

Search reads directories only, never scans: `usernames` and `tags` are each spread over the shards by a hash of
their key, so a prefix is one range query on every shard (`each_shard`: one round trip per server), merged here.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass

from app import ids
from app.clock import now_ms
from app.context import Context
from app.errors import UserError

# graph before posts: importing posts first runs into the posts -> visibility -> graph -> feed -> posts cycle.
from app.services import accounts, graph, posts
from app.services.accounts import User, get_users

log = logging.getLogger("pinhole.discover")

EXPLORE_KEY = "explore:v1"
EXPLORE_TTL = 30 * 60  # seconds; the task refreshes it every RANK_EVERY_MINUTES, well within
RANK_EVERY_MINUTES = 5
RANK_DAYS = 7
RANK_KEEP = 300
# Age windows (hours) ranked separately, so a burst of old popular posts cannot crowd out a fresh one.
_WINDOWS = (0, 1, 3, 6, 12, 24, 48, 96, RANK_DAYS * 24)
EXPLORE_PAGE = 30  # ten rows of three tiles
_CHUNK = 60  # ids loaded per round while filling a page
_PUBLIC_ROUNDS = 5  # reads of the public timeline per page when most posts are hidden from the viewer
BAD_AFTER = "That page link is broken. Start again from the top of Explore."

MAX_QUERY = 100  # also bounds a tag (tags themselves allow 100 characters)
SEARCH_LIMIT = 12
# At most this many accounts are read back for the query's longest word (from the places in turn) and matched word
# by word: a short, common word shows some of the accounts it matches, not all.
NAME_CANDIDATES = 200
_USERNAME_CHARS = re.compile(r"^[a-z0-9_.]*$")
_TAG_CHARS = re.compile(r"^\w*$")


# --- Ranking -------------------------------------------------------------------------------------------------------


def score(likes: int, comments: int, age_hours: float) -> float:
    """Engagement with time decay: a comment counts twice a like, and a post's pull halves and halves again as
    it ages (Hacker News' gravity). The +1 lets a fresh post with no likes yet be found at all."""
    return (likes + 2 * comments + 1) / (max(age_hours, 0.0) + 2) ** 1.5


def rank_explore(ctx: Context, now: int | None = None) -> dict:
    """The ranked snapshot: {"ids": best first, "ranked_at": ms}. Reads every shard; within one, a post and its
    author's row live together, so joining them is local."""
    now = now_ms() if now is None else now
    cutoff = now - RANK_DAYS * 86_400_000
    scored: dict[int, float] = {}
    for newer, older in zip(_WINDOWS, _WINDOWS[1:], strict=False):
        # By id range first (ids start with their time), so each window reads only its slice of posts.
        rows = ctx.db.each_shard(
            "SELECT p.id, p.like_count, p.comment_count, p.created_at FROM posts p"
            " JOIN users u ON u.id = p.author_id"
            " WHERE p.id >= ? AND p.id < ? AND p.created_at >= ? AND p.status = 'ready' AND u.is_private = 0"
            " ORDER BY p.like_count + 2 * p.comment_count DESC, p.id DESC LIMIT ?",
            (_id_at(now - older * 3_600_000), _id_at(now - newer * 3_600_000 + 1), cutoff, RANK_KEEP),
        )
        for row in rows:
            age_hours = (now - row["created_at"]) / 3_600_000
            scored[row["id"]] = score(row["like_count"], row["comment_count"], age_hours)
    best = sorted(scored, key=lambda post_id: (-scored[post_id], -post_id))[:RANK_KEEP]
    return {"ids": best, "ranked_at": now}


def _id_at(unix_ms: int) -> int:
    """The smallest id made at `unix_ms` (clamped to the id range)."""
    ms = min(max(unix_ms - ids.EPOCH_MS, 0), (1 << ids.TIME_BITS) - 1)
    return ids.compose(ms, 0, 0)


def refresh_explore(ctx: Context) -> list[int]:
    """The periodic task: rank now and replace the cached snapshot. A cache that fails is logged; pages then rank
    for themselves through get_or_fill."""
    ranked = rank_explore(ctx)
    try:
        ctx.backends.cache.set(EXPLORE_KEY, ranked, EXPLORE_TTL)
    except Exception:
        log.warning("could not store the explore ranking; pages will rank on demand", exc_info=True)
    return ranked["ids"]


def explore_ids(ctx: Context) -> list[int]:
    """The ranked ids, best first, from the cache (or ranked now if it is cold or down)."""
    snapshot = ctx.backends.cache.get_or_fill(EXPLORE_KEY, lambda: rank_explore(ctx), EXPLORE_TTL)
    return [i for i in snapshot.get("ids", []) if isinstance(i, int)] if isinstance(snapshot, dict) else []


@dataclass(frozen=True)
class ExplorePage:
    posts: list[posts.Post]
    next_after: int | None  # the position to continue from; None on the last page


def parse_after(text: str | None) -> int:
    """A position in the ranked list from a link, or a UserError; empty is the top."""
    if not text:
        return 0
    if not (text.isascii() and text.isdigit() and len(text) <= 6):
        raise UserError(BAD_AFTER, field="after")
    return int(text)


def explore_page(ctx: Context, viewer: User | None, after: str | None = None, limit: int = EXPLORE_PAGE) -> ExplorePage:
    """The viewer's page of Explore from position `after`: posts they may see, from public accounts (one gone
    private since the ranking drops out), none by accounts they mute or have a block with either way."""
    start = parse_after(after)
    ranked = explore_ids(ctx)
    muted = graph.muted_ids(ctx, viewer.id) if viewer is not None else set()
    shown: list[posts.Post] = []
    position = start
    while position < len(ranked):
        chunk = ranked[position : position + _CHUNK]
        loaded = {p.id: p for p in posts.get_posts(ctx, chunk, viewer)}  # visibility and blocks, both ways
        for post_id in chunk:
            post = loaded.get(post_id)
            if post is None or post.author.is_private or post.author.id in muted:
                position += 1
                continue
            if len(shown) == limit:
                return ExplorePage(shown, position)
            shown.append(post)
            position += 1
    return ExplorePage(shown, None)


# --- The public timeline -------------------------------------------------------------------------------------------


def recent_public_posts(
    ctx: Context, viewer: User | None, before: int | None, limit: int
) -> tuple[list[posts.Post], int | None]:
    """The site's newest posts of public accounts, ids below `before`, newest first, without accounts the viewer
    mutes or has a block with (the client API's public timeline), and the cursor of the next page (None at the
    end). One query per shard group per round; a round reads limit + a margin of ids, and further rounds (at most
    _PUBLIC_ROUNDS) only when many were hidden from the viewer."""
    muted = graph.muted_ids(ctx, viewer.id) if viewer is not None else set()
    cursor = before if before is not None else ids.MAX_ID
    batch = max(limit * 2, _CHUNK)
    found: list[posts.Post] = []
    for _round in range(_PUBLIC_ROUNDS):
        rows = ctx.db.each_shard(
            "SELECT p.id FROM posts p JOIN users u ON u.id = p.author_id"
            " WHERE p.id < ? AND p.status = 'ready' AND u.is_private = 0 ORDER BY p.id DESC LIMIT ?",
            (cursor, batch),
        )
        candidates = sorted((r["id"] for r in rows), reverse=True)[:batch]
        found.extend(
            p for p in posts.get_posts(ctx, candidates, viewer) if not p.author.is_private and p.author.id not in muted
        )
        if len(candidates) < batch:
            page = found[:limit]
            return page, (page[-1].id if len(found) > limit else None)
        cursor = candidates[-1]
        if len(found) > limit:
            break
    page = found[:limit]
    return page, (page[-1].id if len(found) > limit else cursor)


# --- Search --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagHit:
    tag: str
    post_count: int


@dataclass(frozen=True)
class SearchResults:
    query: str  # as typed, trimmed
    scope: str  # "all", "accounts" (a leading @) or "tags" (a leading #)
    accounts: list[User]
    tags: list[TagHit]

    @property
    def empty(self) -> bool:
        return not self.accounts and not self.tags


def search(ctx: Context, viewer: User | None, query: str, limit: int = SEARCH_LIMIT) -> SearchResults:
    """Accounts whose username or a word of whose display name starts with the query, and tags that do,
    case-insensitively (accents aside, for names). `@ana` looks for accounts only, `#sun` for tags only. Accounts
    with a block either way with the viewer are left out. A query over MAX_QUERY characters (a 500-character tag
    among them): UserError."""
    query = unicodedata.normalize("NFC", (query or "").strip())
    if len(query) > MAX_QUERY:
        raise UserError(f"Searches are limited to {MAX_QUERY} characters; that one has {len(query)}.", field="q")
    scope = {"@": "accounts", "#": "tags"}.get(query[:1], "all")
    term = query[1:].strip() if scope != "all" else query
    term = term.lower()
    found_accounts = _accounts(ctx, viewer, term, limit) if scope != "tags" else []
    found_tags = _tags(ctx, term, limit) if scope != "accounts" else []
    return SearchResults(query, scope, found_accounts, found_tags)


def _upper_bound(prefix: str) -> str:
    """The least string above every string starting with `prefix` (code point order, as the directories sort)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _accounts(ctx: Context, viewer: User | None, query: str, limit: int) -> list[User]:
    """Accounts whose username starts with the query, then those with a word of their display name starting with
    each word of it ("ana li" finds "Ana Lima"), without those with a block either way with the viewer."""
    hidden = graph.blocked_ids(ctx, viewer.id) if viewer is not None else set()
    # Fetch enough that the hidden ones cannot leave the page short.
    wanted = limit + len(hidden)
    found = [i for i in _username_matches(ctx, query, wanted) if i not in hidden][:limit]
    if len(found) < limit:
        found += [i for i in _name_matches(ctx, query, wanted + len(found)) if i not in hidden and i not in found]
    users = get_users(ctx, found[:limit])
    return [users[i] for i in found[:limit] if i in users]


def _username_matches(ctx: Context, prefix: str, limit: int) -> list[int]:
    if not prefix or not _USERNAME_CHARS.match(prefix):
        return []  # no username has other characters
    rows = ctx.db.each_shard(
        "SELECT username, user_id FROM usernames WHERE username >= ? AND username < ? ORDER BY username LIMIT ?",
        (prefix, _upper_bound(prefix), limit),
    )
    rows.sort(key=lambda r: r["username"])
    return [r["user_id"] for r in rows[:limit]]


def _name_matches(ctx: Context, query: str, limit: int) -> list[int]:
    """Ids of accounts whose display name has, for each word of the query, a word starting with it; ordered by
    display name. The index is asked for the query's longest word; the names read back decide."""
    words = accounts.name_words(query)
    if not words:
        return []
    longest = max(words, key=len)
    # Accounts are spread evenly over the shards by id, so a few per place add up to NAME_CANDIDATES for a common
    # word, and to all of them for a rare one, without reading NAME_CANDIDATES from each of 256 shards.
    places = len(ctx.db.groups_for(range(ctx.db.logical_shards)))
    per_place = min(NAME_CANDIDATES, max(8, 4 * NAME_CANDIDATES // places))
    rows = ctx.db.each_shard(
        "SELECT DISTINCT user_id FROM name_words WHERE word >= ? AND word < ? ORDER BY user_id LIMIT ?",
        (longest, _upper_bound(longest), per_place),
    )
    ids_found = sorted(r["user_id"] for r in rows)[:NAME_CANDIDATES]  # a word as common as one letter: enough
    named = sorted(
        (accounts.name_words(user.display_name), user.username, user.id) for user in get_users(ctx, ids_found).values()
    )
    matching = [user_id for name, _, user_id in named if all(any(w.startswith(q) for w in name) for q in words)]
    return matching[:limit]


def _tags(ctx: Context, prefix: str, limit: int) -> list[TagHit]:
    if not prefix or not _TAG_CHARS.match(prefix):
        return []  # tags are letters, digits and underscores only
    rows = ctx.db.each_shard(
        "SELECT tag, post_count FROM tags WHERE tag >= ? AND tag < ? AND post_count > 0"
        " ORDER BY post_count DESC, tag LIMIT ?",
        (prefix, _upper_bound(prefix), limit),
    )
    with ctx.db.read(ctx.db.shard_for_key(prefix)) as conn:
        # The exact tag, however little used, even when more popular ones fill the page.
        rows.extend(conn.all("SELECT tag, post_count FROM tags WHERE tag = ? AND post_count > 0", (prefix,)))
    rows = list({r["tag"]: r for r in rows}.values())
    # The exact tag first, then the most used.
    rows.sort(key=lambda r: (r["tag"] != prefix, -r["post_count"], r["tag"]))
    return [TagHit(r["tag"], r["post_count"]) for r in rows[:limit]]
