"""Hashtags and @mentions: finding them in text, checking them, linking them safely, and the tag directory.

Where rows live (migration 0004): `post_tags` (a post's own tags) on the post's shard; `tag_posts` (tag -> posts)
and `tags` (its count and last use) on the shard hashed from the tag, so a tag page asks one shard. Tags are kept in
one form (NFC, lowercase): `#Sunset` and `#sunset` are one tag.

`index_post` makes the directory say what the post's caption says now, whatever it said before (a post turning
ready, an edit, or a rerun of either), so it is idempotent; `unindex_post` takes a deleted post out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from markupsafe import Markup, escape

from app import ids
from app.clock import now_ms
from app.context import Context
from app.errors import UserError
from app.services import notifications
from app.services.accounts import User, canonical_username, get_users
from app.services.visibility import can_view

MAX_TAG = 100
MAX_TAGS = 30  # per caption, as Instagram allows: enough to describe a photo, too few to spam every tag
MAX_MENTIONS = 20
MAX_USERNAME = 30
TAG_RULES = "letters, digits and underscores"
# Directory reads per tag page when most posts are hidden from the viewer; the page then links on from there.
_MAX_ROUNDS = 10
_MIN_BATCH = 20  # directory rows read per round, at least

# A tag: `#` then Unicode letters, digits and underscores, not inside a word or a URL (`page#top`, `/#top`),
# nor in an HTML entity someone typed (`&#39;`).
_TAG = r"(?<![\w&/#])#(?P<tag>\w+)"
# A mention: `@` then a username (letters, digits, underscores, single dots inside), not inside an e-mail address or
# a URL path (`ana@example.com`, `site/@ana`), and not run on into other letters (`@anaé` names nobody).
_MENTION = r"(?<![\w@/.])@(?P<name>[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)(?!\w)"
_TAG_RE = re.compile(_TAG)
_MENTION_RE = re.compile(_MENTION)
_TOKEN_RE = re.compile(f"{_TAG}|{_MENTION}")
_WORD = re.compile(r"\w+")


def normalize_tag(text: str) -> str:
    """The stored form of a tag (`#Été` -> `été`)."""
    return unicodedata.normalize("NFC", text).lower()


def parse_tag(text: str) -> str:
    """A tag from an address or a search box (`Sunset`, `#sunset`), or a UserError saying what is wrong."""
    tag = normalize_tag((text or "").strip().removeprefix("#"))
    if not tag:
        raise UserError("Give a tag, like #sunset.", field="tag")
    if len(tag) > MAX_TAG:
        raise UserError(f"That tag is {len(tag)} characters; tags are limited to {MAX_TAG}.", field="tag")
    if not _WORD.fullmatch(tag):
        raise UserError(f"Tags are made of {TAG_RULES} only, like #sunset or #été_2025.", field="tag")
    return tag


def extract_tags(text: str) -> list[str]:
    """The distinct tags in `text`, in order of first appearance, in their stored form (unchecked length)."""
    return list(dict.fromkeys(normalize_tag(m["tag"]) for m in _TAG_RE.finditer(text or "")))


def extract_mentions(text: str) -> list[str]:
    """The distinct usernames mentioned in `text`, lowercase, in order of first appearance (unchecked)."""
    return list(dict.fromkeys(canonical_username(m["name"]) for m in _MENTION_RE.finditer(text or "")))


def _short(text: str) -> str:
    return text if len(text) <= 24 else text[:20] + "…"


def check_text(ctx: Context, text: str, field: str = "caption") -> tuple[list[str], dict[str, User]]:
    """The tags and the mentioned accounts (by lowercase username) of a caption or comment, or a UserError for
    a tag too long, too many tags or mentions, or a mention of an account that doesn't exist."""
    tags = extract_tags(text)
    for tag in tags:
        if len(tag) > MAX_TAG:
            raise UserError(
                f"The tag #{_short(tag)} is {len(tag)} characters; tags are limited to {MAX_TAG}.", field=field
            )
    if len(tags) > MAX_TAGS:
        raise UserError(f"Use up to {MAX_TAGS} hashtags; this has {len(tags)}.", field=field)
    names = extract_mentions(text)
    if len(names) > MAX_MENTIONS:
        raise UserError(f"Mention up to {MAX_MENTIONS} people; this mentions {len(names)}.", field=field)
    found = users_named(ctx, names)
    for name in names:
        if name not in found:
            raise UserError(f"There's no account called @{_short(name)}.", field=field)
    return tags, found


def users_named(ctx: Context, names: Iterable[str]) -> dict[str, User]:
    """The accounts with these (lowercase) usernames: one query per place of their directory shards, then the users
    by place."""
    wanted = (name for name in names if len(name) <= MAX_USERNAME)
    rows = ctx.db.read_in(
        "SELECT username, user_id FROM usernames WHERE username IN ({})", wanted, ctx.db.shard_for_key
    )
    user_ids = {r["username"]: r["user_id"] for r in rows}
    users = get_users(ctx, user_ids.values())
    return {name: users[user_id] for name, user_id in user_ids.items() if user_id in users}


# --- Rendering -----------------------------------------------------------------------------------------------------


def tag_url(tag: str) -> str:
    return "/tags/" + quote(normalize_tag(tag), safe="")


def render_caption(text: str | None) -> Markup:
    """`text` as HTML: tags linked to /tags/{tag}, mentions to /@name, everything else escaped. Registered as the
    Jinja filter `caption`; the template keeps line breaks with CSS (white-space: pre-line)."""
    text = text or ""
    out: list[str] = []
    done = 0
    for match in _TOKEN_RE.finditer(text):
        out.append(escape(text[done : match.start()]))
        if match["tag"] is not None and len(match["tag"]) <= MAX_TAG:
            out.append(Markup('<a class="tag" href="{}">#{}</a>').format(tag_url(match["tag"]), match["tag"]))
        elif match["name"] is not None and len(match["name"]) <= MAX_USERNAME:
            name = canonical_username(match["name"])
            out.append(Markup('<a class="mention" href="/@{}">@{}</a>').format(name, match["name"]))
        else:
            out.append(escape(match.group(0)))
        done = match.end()
    out.append(escape(text[done:]))
    return Markup("").join(out)


# --- The directory -------------------------------------------------------------------------------------------------


def index_post(ctx: Context, post_id: int) -> None:
    """Make the tag directory and the mention notifications match the post's caption now. Called by the
    post_ready task and by edits; a post that is not ready (or gone) is left alone (or taken out)."""
    shard = ids.shard_of(post_id)
    with ctx.db.write(shard) as conn:
        row = conn.one("SELECT author_id, caption FROM posts WHERE id = ? AND status = 'ready'", (post_id,))
        if row is None:
            return
        wanted = [t for t in extract_tags(row["caption"]) if len(t) <= MAX_TAG][:MAX_TAGS]
        had = {r["tag"] for r in conn.all("SELECT tag FROM post_tags WHERE post_id = ?", (post_id,))}
        conn.run_many(
            "INSERT INTO post_tags (post_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [(post_id, t) for t in wanted if t not in had],
        )
        gone = sorted(had - set(wanted))
        conn.run_many("DELETE FROM post_tags WHERE post_id = ? AND tag = ?", [(post_id, t) for t in gone])
    author_id = row["author_id"]
    for tag in wanted:
        _add_to_directory(ctx, tag, post_id, author_id)
    for tag in gone:
        _remove_from_directory(ctx, tag, post_id)
    with ctx.db.read(shard) as conn:
        still_there = conn.value("SELECT 1 FROM posts WHERE id = ?", (post_id,))
    if not still_there:
        # Deleted while we wrote: its post_deleted task may have run already, so take out what we added.
        unindex_post(ctx, post_id, wanted)
        return
    _notify_mentions(ctx, post_id, author_id, row["caption"])


def _add_to_directory(ctx: Context, tag: str, post_id: int, author_id: int) -> None:
    with ctx.db.write(ctx.db.shard_for_key(tag)) as conn:
        added = conn.run(
            "INSERT INTO tag_posts (tag, post_id, author_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (tag, post_id, author_id),
        )
        if added:
            conn.run(
                "INSERT INTO tags (tag, post_count, last_used_at) VALUES (?, 1, ?) ON CONFLICT (tag) DO UPDATE"
                " SET post_count = tags.post_count + 1, last_used_at = excluded.last_used_at",
                (tag, now_ms()),
            )


def _remove_from_directory(ctx: Context, tag: str, post_id: int) -> None:
    with ctx.db.write(ctx.db.shard_for_key(tag)) as conn:
        removed = conn.run("DELETE FROM tag_posts WHERE tag = ? AND post_id = ?", (tag, post_id))
        if removed:
            conn.run("UPDATE tags SET post_count = post_count - 1 WHERE tag = ? AND post_count > 0", (tag,))


def unindex_post(ctx: Context, post_id: int, tags: Iterable[str]) -> None:
    """Take a deleted post out of these tags' directories (the post_deleted task). Idempotent."""
    for tag in dict.fromkeys(tags):
        _remove_from_directory(ctx, tag, post_id)


def _notify_mentions(ctx: Context, post_id: int, author_id: int, caption: str) -> None:
    """Tell each account the caption mentions, if they may see the post; one notification per person and post
    however often this runs (notifications deduplicate)."""
    mentioned = users_named(ctx, extract_mentions(caption)[:MAX_MENTIONS])
    author = get_users(ctx, [author_id]).get(author_id)
    if author is None:
        return
    for user in mentioned.values():
        if user.id != author_id and can_view(ctx, user, author):
            notifications.notify(ctx, user.id, "mention", author_id, post_id=post_id)


def withdraw_mentions(ctx: Context, post_id: int, author_id: int, names: Iterable[str]) -> None:
    """An edit took these names out of the caption: take back their mention notifications."""
    for user in users_named(ctx, names).values():
        notifications.withdraw(ctx, user.id, "mention", author_id, post_id=post_id)


def withdraw_post_mentions(ctx: Context, post_id: int, names: Iterable[str]) -> None:
    """The post is gone: so is every notification of it that its caption's or comments' mentions made."""
    for user in users_named(ctx, names).values():
        notifications.withdraw_post(ctx, user.id, post_id)


# --- The tag page --------------------------------------------------------------------------------------------------


def trending(ctx: Context, limit: int, days: int = 7) -> list[tuple[str, int]]:
    """Tags used in the last `days`, most used first, as (tag, post count): one query on every shard."""
    since = now_ms() - days * 86_400_000
    rows = ctx.db.each_shard(
        "SELECT tag, post_count FROM tags WHERE last_used_at >= ? AND post_count > 0 ORDER BY post_count DESC, tag"
        " LIMIT ?",
        (since, limit),
    )
    rows.sort(key=lambda r: (-r["post_count"], r["tag"]))
    return [(r["tag"], r["post_count"]) for r in rows[:limit]]


@dataclass(frozen=True)
class TagPage:
    tag: str
    post_count: int  # posts indexed under the tag (0 when the viewer sees none on the first page)
    posts: list  # of posts.Post, newest first
    before: int | None  # the cursor for the next page; None on the last one


def tag_page(ctx: Context, viewer: User | None, tag: str, before: int | None, limit: int) -> TagPage:
    """The posts under `tag` that `viewer` may see, newest first, older than `before` (a post id). Posts the viewer
    may not see are skipped, reading further until the page is full or the tag has no more."""
    from app.services import posts  # posts imports this module for its caption check

    tag = parse_tag(tag)
    shard = ctx.db.shard_for_key(tag)
    cursor = before if before is not None else ids.MAX_ID
    found: list = []
    batch = max(limit * 2, _MIN_BATCH)
    for _round in range(_MAX_ROUNDS):
        with ctx.db.read(shard) as conn:
            rows = conn.all(
                "SELECT post_id FROM tag_posts WHERE tag = ? AND post_id < ? ORDER BY post_id DESC LIMIT ?",
                (tag, cursor, batch),
            )
        if rows:
            found.extend(posts.get_posts(ctx, [r["post_id"] for r in rows], viewer))
        if len(rows) < batch:
            cursor = None  # the tag has no more
            break
        cursor = rows[-1]["post_id"]
        if len(found) > limit:
            break
    page = found[:limit]
    # More after this page: a post beyond it, or rows not read yet (many hidden posts in a row).
    next_before = page[-1].id if len(found) > limit else cursor
    count = 0
    if page:
        # A tag whose posts the viewer may not see reads exactly like a tag never used.
        with ctx.db.read(shard) as conn:
            count = conn.value("SELECT post_count FROM tags WHERE tag = ?", (tag,)) or 0
    return TagPage(tag, count, page, next_before)
