"""Made-up data for demos and benchmarks: `main.py seed --users N --posts M --follows-per-user K`.

The seeder writes the rows the services would have written, in bulk: every table a follow, a post and its fan-out
touch, on the same shards, with the counters and feeds those writes leave behind.

- Users are public, named `seed1`, `seed2`, ... (with --force-add, numbering continues after the highest one
  there), share one password (SEED_PASSWORD; its argon2 hash is computed once) and live on random shards.
- Each user follows `follows_per_user` others at random (never one of the celebrities); the first `celebrities`
  users (seed1, ...) get exactly `celebrity_followers` followers each. Edges are written on both sides, all active.
- Posts go to random authors and are ready at once; one in eight has 2 or 3 photos. A few template photos go
  through the real pipeline (`process_photo`) once and are stored as the renditions of the first seeded posts;
  every other media row names those same blob keys. The media route checks a key against the post in its path,
  so every seeded photo is served under a template post's visibility (all seeded accounts are public). Deleting
  a seeded post deletes only keys under its own id; deleting a template post takes the shared files with it.
- Home feeds hold what fan-out would have put there: each user's own posts and those of the accounts they follow,
  newest first, at most [feeds] max_items; accounts at or above [feeds] celebrity_threshold followers are listed
  in `celebrities` and left out (their posts are merged in when a feed is read).

IDs keep app/ids.py's layout (time | shard | sequence) and stay monotonic per shard: before writing, one write
transaction per shard reads its `id_sequences` row, hands out a block of ids after it, and moves the row to the
last one, so `ids.next_id` (a server running meanwhile) carries on after the block. Within a block the ids are
spread over a time window (users over the 60 to 30 days before now, posts over the last 30 days) when the
shard's sequence is older than that window, and packed right after it otherwise; either way nothing repeats.

Rows are written one transaction per shard (users, directory names, both sides of follows, posts and photos that
live there), in batches of BATCH rows; then that shard's users' feeds go through the feed store's bulk `fill` (rows
of `feed_items` on the same shard, or Redis sorted sets), about BATCH entries a call. A failure midway leaves the
shards written so far; rerun with --force-add or start from an empty data dir.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from app import ids
from app.context import Context
from app.errors import UserError
from app.media.pipeline import SIZES, process_photo
from app.services import accounts
from app.services.posts import rendition_key

SEED_PASSWORD = "pinhole seed password"
PREFIX = "seed"
PHOTO_DIR = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "images" / "good"
PHOTOS = ("flower.jpg", "hopper.jpg", "flower2.jpg", "exif_gps.jpg")
BATCH = 20_000
SQLITE_CACHE_KIB = 1024 * 1024  # 1 GiB at most, used only as the pages are touched
DAY_MS = 86_400_000
USERS_WINDOW = (60 * DAY_MS, 30 * DAY_MS)  # accounts made between 60 and 30 days ago
POSTS_WINDOW = (30 * DAY_MS, 0)  # posts over the last 30 days
MULTI_PHOTO_EVERY = 8

CAPTIONS = (
    "Golden hour by the water",
    "Sunday market colours",
    "First coffee of the day",
    "Found this on the way home",
    "Rainy streets, warm lights",
    "Weekend hike, worth every step",
    "Grandma's garden in bloom",
    "Late train, quiet city",
    "Too pretty not to share",
    "",
    "Back where it all started",
    "Small things",
)
FIRST_NAMES = ("Ana", "Ben", "Chloé", "Dev", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kemi", "Lena")

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SeedOptions:
    users: int
    posts: int
    follows_per_user: int
    celebrities: int = 0
    celebrity_followers: int = 0
    force_add: bool = False
    random_seed: int = 1

    def problem(self) -> str | None:
        """What is wrong with these numbers, in one line, or None."""
        if not 1 <= self.users <= 10_000_000:
            return f"--users must be from 1 to 10000000 (got {self.users})"
        if not 0 <= self.posts <= 100_000_000:
            return f"--posts must be from 0 to 100000000 (got {self.posts})"
        if not 0 <= self.celebrities < self.users:
            return f"--celebrities must be from 0 to --users minus 1 ({self.users - 1}); got {self.celebrities}"
        others = self.users - 1 - self.celebrities  # random follows go to accounts that are not celebrities
        if not 0 <= self.follows_per_user <= others:
            celebrities = " and the celebrities" if self.celebrities else ""
            return (
                f"--follows-per-user must be from 0 to {others} (the accounts but oneself{celebrities}); "
                f"got {self.follows_per_user}"
            )
        if not 0 <= self.celebrity_followers < self.users:
            return (
                f"--celebrity-followers must be from 0 to --users minus 1 ({self.users - 1}); "
                f"got {self.celebrity_followers}"
            )
        if bool(self.celebrities) != bool(self.celebrity_followers):
            return "--celebrities and --celebrity-followers go together: give both, or neither"
        return None


@dataclass(frozen=True)
class SeedSummary:
    users: int
    posts: int
    photos: int
    follows: int
    feed_items: int
    celebrities: int
    first_username: str
    last_username: str
    seconds: float


@dataclass(frozen=True)
class _Template:
    upload_key: str
    alt_text: str
    width: int
    height: int
    blurhash: str
    dominant_color: str
    camera: str
    renditions: str  # JSON, as process_post writes it


class _ShardIds:
    """IDs on one shard in increasing order, continuing after the shard's last (ms, seq)."""

    def __init__(self, shard: int, last_ms: int, seq: int):
        self.shard, self.ms, self.seq = shard, last_ms, seq

    def take(self, count: int, start_ms: int, end_ms: int) -> list[int]:
        """`count` ids spread evenly over [start_ms, end_ms) (ms since the ID epoch), each after the previous."""
        out: list[int] = []
        span = max(end_ms - start_ms, 0)
        shard_bits = self.shard << ids.SEQ_BITS
        ms, seq = self.ms, self.seq
        for i in range(count):
            want = start_ms + span * i // count
            if want > ms:
                ms, seq = want, 0
            elif seq < (1 << ids.SEQ_BITS) - 1:
                seq += 1
            else:
                ms, seq = ms + 1, 0
            out.append((ms << (ids.SHARD_BITS + ids.SEQ_BITS)) | shard_bits | seq)
        self.ms, self.seq = ms, seq
        return out


def count_users(ctx: Context) -> int:
    total = 0
    for reader, _shards in ctx.db.shard_groups():
        with reader as conn:
            total += conn.value("SELECT count(*) FROM users")
    return total


def check_site(ctx: Context, options: SeedOptions) -> None:
    """UserError unless the site is empty or options.force_add."""
    existing = count_users(ctx)
    if existing and not options.force_add:
        raise UserError(
            f"{ctx.config.data_dir} already has {existing} account(s); seed fills an empty site "
            "(add --force-add to add made-up accounts to this one)"
        )


def seed(ctx: Context, options: SeedOptions, progress: Progress | None = None) -> SeedSummary:
    """Fill the site; see the module docstring. Raises UserError when the site has users and not force_add."""
    started = time.perf_counter()
    progress = progress or (lambda label, done, total: None)
    problem = options.problem()
    if problem:
        raise ValueError(problem)
    check_site(ctx, options)
    plan = _Plan(ctx, options)
    progress("photos", 0, len(PHOTOS))
    plan.reserve_ids()
    templates = _make_templates(ctx, plan, progress)
    plan.write(templates, progress)
    return SeedSummary(
        users=options.users,
        posts=options.posts,
        photos=plan.photo_count,
        follows=plan.follow_count,
        feed_items=plan.feed_items,
        celebrities=len(plan.celebrities),
        first_username=plan.names[0],
        last_username=plan.names[-1],
        seconds=time.perf_counter() - started,
    )


class _Plan:
    """Who is who, who follows whom and who posted what, decided in memory before anything is written."""

    def __init__(self, ctx: Context, options: SeedOptions):
        self.ctx = ctx
        self.options = options
        rng = self.rng = random.Random(options.random_seed)
        n = options.users
        shards = ctx.db.logical_shards
        first = _next_seed_number(ctx) if options.force_add else 1
        self.names = [f"{PREFIX}{first + i}" for i in range(n)]
        self.display_names = [f"{FIRST_NAMES[u % len(FIRST_NAMES)]} {first + u}" for u in range(n)]
        self.shard = [rng.randrange(shards) for _ in range(n)]
        # Follows: K distinct others each among the accounts that are not celebrities (users C.. n-1), so that
        # each celebrity (users 0..C-1) has exactly its F sampled followers.
        c_count = options.celebrities
        following: list[set[int]] = []
        for u in range(n):
            own = 1 if u >= c_count else 0
            picked = rng.sample(range(n - c_count - own), options.follows_per_user)
            following.append({c_count + t + (1 if own and c_count + t >= u else 0) for t in picked})
        for c in range(options.celebrities):
            for f in rng.sample(range(n - 1), options.celebrity_followers):
                following[f if f < c else f + 1].add(c)
        self.following = following
        followers: list[list[int]] = [[] for _ in range(n)]
        for u, targets in enumerate(following):
            for t in targets:
                followers[t].append(u)
        self.followers = followers
        self.follow_count = sum(len(t) for t in following)
        threshold = ctx.config.feeds.celebrity_threshold
        self.celebrities = {u for u in range(n) if len(followers[u]) >= threshold}
        # Posts: a random author each; one in MULTI_PHOTO_EVERY has 2 or 3 photos.
        self.post_author = [rng.randrange(n) for _ in range(options.posts)]
        self.post_photos = bytes(
            rng.choice((2, 3)) if rng.randrange(MULTI_PHOTO_EVERY) == 0 else 1 for _ in range(options.posts)
        )
        self.photo_count = sum(self.post_photos)
        self.user_ids: list[int] = [0] * n
        self.post_ids: list[int] = [0] * options.posts
        self.media_ids: list[list[int]] = [[] for _ in range(options.posts)]
        self.feed_items = 0

    def reserve_ids(self) -> None:
        """Per shard, one write transaction: read its sequence row, take a block after it, store the block's end."""
        n_shards = self.ctx.db.logical_shards
        users_on: list[list[int]] = [[] for _ in range(n_shards)]
        for u, s in enumerate(self.shard):
            users_on[s].append(u)
        posts_on: list[list[int]] = [[] for _ in range(n_shards)]
        for p, author in enumerate(self.post_author):
            posts_on[self.shard[author]].append(p)
        now = int(time.time() * 1000) - ids.EPOCH_MS
        for s in range(n_shards):
            if not users_on[s] and not posts_on[s]:
                continue
            with self.ctx.db.write(s) as conn:
                row = conn.one("SELECT last_ms, seq FROM id_sequences WHERE shard = ?", (s,))
                alloc = _ShardIds(s, row["last_ms"], row["seq"]) if row else _ShardIds(s, -1, 0)
                for u, user_id in zip(
                    users_on[s], alloc.take(len(users_on[s]), now - USERS_WINDOW[0], now - USERS_WINDOW[1]), strict=True
                ):
                    self.user_ids[u] = user_id
                slots = sum(1 + self.post_photos[p] for p in posts_on[s])
                block = iter(alloc.take(slots, now - POSTS_WINDOW[0], now - POSTS_WINDOW[1]))
                for p in posts_on[s]:
                    self.post_ids[p] = next(block)
                    self.media_ids[p] = [next(block) for _ in range(self.post_photos[p])]
                conn.run(
                    "INSERT INTO id_sequences (shard, last_ms, seq) VALUES (?, ?, ?)"
                    " ON CONFLICT (shard) DO UPDATE SET last_ms = excluded.last_ms, seq = excluded.seq",
                    (s, alloc.ms, alloc.seq),
                )

    def write(self, templates: list[_Template], progress: Progress) -> None:
        ctx, o = self.ctx, self.options
        n = o.users
        password_hash = ctx.hasher.hash(SEED_PASSWORD)
        max_items = ctx.config.feeds.max_items
        rng = self.rng
        # Each author's post ids, newest first, as many as a feed can hold.
        posts_of: list[list[int]] = [[] for _ in range(n)]
        for p, author in enumerate(self.post_author):
            posts_of[author].append(self.post_ids[p])
        post_count = [len(x) for x in posts_of]
        for lst in posts_of:
            lst.sort(reverse=True)
        newest = [lst[:max_items] for lst in posts_of]
        by_shard: dict[int, dict[str, list]] = {}

        def bucket(shard: int) -> dict[str, list]:
            return by_shard.setdefault(shard, {"users": [], "names": [], "posts": []})

        for u in range(n):
            bucket(self.shard[u])["users"].append(u)
            bucket(ctx.db.shard_for_key(self.names[u]))["names"].append(u)
        for p, author in enumerate(self.post_author):
            bucket(self.shard[author])["posts"].append(p)
        celebrity_rows = [(self.user_ids[c], len(self.followers[c])) for c in sorted(self.celebrities)]
        if celebrity_rows:
            bucket(0)
        name_words = sum(len(accounts.name_words(name)) for name in self.display_names)
        total = n * 2 + name_words + self.follow_count * 2 + o.posts + self.photo_count + len(celebrity_rows)
        total += self._estimate_feed_items(post_count, max_items)
        done = 0
        template_of = {p: templates[p] for p in range(min(len(templates), o.posts))}
        user_ids = self.user_ids

        made = [ids.unix_ms_of(i) for i in user_ids]

        def edge_time(a: int, b: int) -> int:
            # The same on both sides of an edge, without storing it: within a day after the later account was made.
            return max(made[a], made[b]) + (a * 7919 + b) % DAY_MS

        if ctx.db.dialect == "sqlite":
            # Rung 0 only: a bigger page cache for this process's writer keeps the indexes' pages in memory.
            with ctx.db.write(0) as conn:
                conn.run(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        for shard in sorted(by_shard):
            group = by_shard[shard]
            users = sorted(group["users"], key=user_ids.__getitem__)
            with ctx.db.write(shard) as conn:

                def put(label: str, sql: str, rows: Iterable[tuple]) -> None:
                    nonlocal done
                    for chunk in _chunks(rows, BATCH):
                        conn.run_many(sql, chunk)
                        done += len(chunk)
                        progress(label, done, total)

                put(
                    "accounts",
                    "INSERT INTO users (id, username, display_name, password_hash, created_at, updated_at,"
                    " post_count, follower_count, following_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        (
                            user_ids[u],
                            self.names[u],
                            self.display_names[u],
                            password_hash,
                            ids.unix_ms_of(user_ids[u]),
                            ids.unix_ms_of(user_ids[u]),
                            post_count[u],
                            len(self.followers[u]),
                            len(self.following[u]),
                        )
                        for u in users
                    ),
                )
                put(
                    "accounts",
                    "INSERT INTO usernames (username, user_id) VALUES (?, ?)",
                    ((self.names[u], user_ids[u]) for u in group["names"]),
                )
                put(
                    "accounts",
                    "INSERT INTO name_words (word, user_id) VALUES (?, ?)",
                    ((word, user_ids[u]) for u in users for word in accounts.name_words(self.display_names[u])),
                )
                put(
                    "follows",
                    "INSERT INTO following (user_id, target_id, state, created_at) VALUES (?, ?, 'active', ?)",
                    (
                        (user_ids[u], user_ids[t], edge_time(u, t))
                        for u in users
                        for t in sorted(self.following[u], key=user_ids.__getitem__)
                    ),
                )
                put(
                    "follows",
                    "INSERT INTO followers (user_id, follower_id, state, created_at) VALUES (?, ?, 'active', ?)",
                    (
                        (user_ids[t], user_ids[f], edge_time(f, t))
                        for t in users
                        for f in sorted(self.followers[t], key=user_ids.__getitem__)
                    ),
                )
                posts = sorted(group["posts"], key=self.post_ids.__getitem__)
                put(
                    "posts",
                    "INSERT INTO posts (id, author_id, caption, status, attempts, created_at, updated_at)"
                    " VALUES (?, ?, ?, 'ready', 1, ?, ?)",
                    (
                        (
                            self.post_ids[p],
                            user_ids[self.post_author[p]],
                            CAPTIONS[p % len(CAPTIONS)],
                            ids.unix_ms_of(self.post_ids[p]),
                            ids.unix_ms_of(self.post_ids[p]),
                        )
                        for p in posts
                    ),
                )
                put(
                    "photos",
                    "INSERT INTO post_media (id, post_id, position, upload_key, alt_text, width, height, blurhash,"
                    " dominant_color, camera, renditions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        (
                            media_id,
                            self.post_ids[p],
                            position,
                            t.upload_key,
                            t.alt_text,
                            t.width,
                            t.height,
                            t.blurhash,
                            t.dominant_color,
                            t.camera,
                            t.renditions,
                        )
                        for p in posts
                        for position, media_id in enumerate(self.media_ids[p], start=1)
                        for t in (template_of.get(p) or templates[rng.randrange(len(templates))],)
                    ),
                )
                if shard == 0 and celebrity_rows:
                    put(
                        "celebrities", "INSERT INTO celebrities (user_id, follower_count) VALUES (?, ?)", celebrity_rows
                    )
            # Through the feed store, whichever it is (SQL rows on these shards, Redis sorted sets): its own
            # transactions, after this shard's.
            for batch in self._feeds(users, newest):
                ctx.backends.feeds.fill(batch)
                done += sum(len(items) for _user_id, items in batch)
                progress("feeds", done, total)
        ctx.backends.cache.invalidate("feeds:celebrities")  # app.services.feed.CELEBRITIES_KEY
        progress("done", total, total)

    def _feeds(self, users: list[int], newest: list[list[int]]) -> Iterator[list[tuple[int, list[int]]]]:
        """What fan-out would have left in each feed (own and followed non-celebrities' posts, newest max_items), as
        (user id, post ids), in batches of about BATCH posts."""
        max_items = self.ctx.config.feeds.max_items
        celebrities = self.celebrities
        batch: list[tuple[int, list[int]]] = []
        size = 0
        for u in users:
            # Sorting the concatenated runs is a C-speed merge; far quicker here than heapq in Python.
            items = sorted(itertools.chain(newest[u], *(newest[t] for t in self.following[u] if t not in celebrities)))
            del items[:-max_items]
            self.feed_items += len(items)
            batch.append((self.user_ids[u], items))
            size += len(items)
            if size >= BATCH:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch

    def _estimate_feed_items(self, post_count: list[int], max_items: int) -> int:
        """For the progress bar's total: each feed's size without merging (cheap, exact)."""
        celebrities = self.celebrities
        total = 0
        for u, targets in enumerate(self.following):
            size = post_count[u] + sum(post_count[t] for t in targets if t not in celebrities)
            total += min(size, max_items)
        return total


def _chunks(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _next_seed_number(ctx: Context) -> int:
    """One more than the highest `seed<number>` already taken (the directory, every shard)."""
    highest = 0
    for reader, _shards in ctx.db.shard_groups():
        with reader as conn:
            rows = conn.all(
                "SELECT username FROM usernames WHERE username >= ? AND username < ?",
                (PREFIX, PREFIX[:-1] + chr(ord(PREFIX[-1]) + 1)),
            )
        for row in rows:
            suffix = row["username"].removeprefix(PREFIX)
            if suffix.isdigit():
                highest = max(highest, int(suffix))
    return highest + 1


def _make_templates(ctx: Context, plan: _Plan, progress: Progress) -> list[_Template]:
    """Run the real pipeline on a few photos once; store them as the first seeded posts' renditions."""
    photos = _template_photos()
    templates = []
    for number, (name, data) in enumerate(photos):
        post_id = plan.post_ids[number] if number < len(plan.post_ids) else None
        upload_key = f"uploads/seed-{name.split('.')[0]}.bin"
        photo = process_photo(data)
        keys: dict[str, dict[str, str]] = {}
        for rendition in photo.renditions:
            if post_id is None:
                break  # fewer posts than templates: nothing will show this photo
            key = rendition_key(post_id, upload_key, rendition.name, rendition.format)
            ctx.backends.blobs.put(key, rendition.data, rendition.content_type)
            keys.setdefault(rendition.name, {})[rendition.format] = key
        largest = next(r for r in photo.renditions if r.name == SIZES[0].name)
        templates.append(
            _Template(
                upload_key=upload_key,
                alt_text=f"A made-up post's photo ({name.split('.')[0]})",
                width=largest.width,
                height=largest.height,
                blurhash=photo.blurhash,
                dominant_color=photo.dominant_color,
                camera=json.dumps(photo.camera, sort_keys=True),
                renditions=json.dumps(keys, sort_keys=True),
            )
        )
        progress("photos", number + 1, len(photos))
    return templates


def _template_photos() -> list[tuple[str, bytes]]:
    """The test photos beside the checkout when there, else made here (Perlin noise, coloured)."""
    if all((PHOTO_DIR / name).is_file() for name in PHOTOS):
        return [(name, (PHOTO_DIR / name).read_bytes()) for name in PHOTOS]
    import pyvips

    made = []
    for number, tint in enumerate(((255, 140, 60), (60, 140, 255), (90, 200, 120), (200, 90, 180))):
        noise = (pyvips.Image.perlin(900, 600, cell_size=64 + 32 * number, seed=number) + 1) * 0.5
        image = (noise * list(tint)).cast("uchar").copy(interpretation="srgb")
        made.append((f"made{number}.jpg", image.jpegsave_buffer(Q=85)))
    return made
