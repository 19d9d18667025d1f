"""Accounts: sign-up, sign-in, profile and password. One function per mutation, used by the pages,
the API, the CLI and tasks alike.

Where rows live: the user row on the user's own logical shard (chosen at random at sign-up, and
inside the user's id), with the words of its display name (`name_words`, for search); `usernames`
(lowercase name -> id) on the shard hashed from the name; invites and site flags on shard 0. Each
write touches one shard; a sign-up writes the user row first and then claims the name, undoing the
row if the name was taken meanwhile.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from argon2.exceptions import InvalidHashError, VerificationError

from app import ids, metrics
from app.clock import now_ms
from app.context import Context
from app.errors import Forbidden, UserError
from app.services import page_versions

USERNAME_RULES = "1–30 characters: lowercase letters, digits, underscores and dots"
_USERNAME = re.compile(r"^[a-z0-9_.]{1,30}$")
# Names that would read as the site speaking.
RESERVED = {"admin", "administrator", "root", "pinhole", "support", "help", "system", "moderator", "staff"}
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
MAX_DISPLAY_NAME, MAX_BIO = 64, 300
MAX_NAME_WORDS = 8  # words of a display name that search finds
NAMES_INDEXED = "names_indexed"  # site flag: the names given before name_words existed are in it
STALE_CLAIM_MS = 10 * 60 * 1000


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    bio: str
    avatar_key: str | None
    avatar_upload_key: str | None
    avatar_error: str | None
    is_admin: bool
    is_private: bool
    session_epoch: int
    created_at: int
    password_hash: str = field(repr=False)
    post_count: int = 0
    follower_count: int = 0
    following_count: int = 0
    notifications_seen_id: int = 0

    @property
    def shard(self) -> int:
        return ids.shard_of(self.id)

    @property
    def name(self) -> str:
        return self.display_name or self.username


def _user(row: dict) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        bio=row["bio"],
        avatar_key=row["avatar_key"],
        avatar_upload_key=row["avatar_upload_key"],
        avatar_error=row["avatar_error"],
        is_admin=bool(row["is_admin"]),
        is_private=bool(row["is_private"]),
        session_epoch=row["session_epoch"],
        created_at=row["created_at"],
        password_hash=row["password_hash"],
        post_count=row["post_count"],
        follower_count=row["follower_count"],
        following_count=row["following_count"],
        notifications_seen_id=row["notifications_seen_id"],
    )


def canonical_username(raw: str) -> str:
    """The form a typed name is looked up by: `@Ana `, `@@ana` and `ana` all name one account."""
    return (raw or "").strip().lstrip("@").lower()


def normalize_username(raw: str) -> str:
    """The canonical (lowercase) form of a username, or a UserError saying what is wrong."""
    name = canonical_username(raw)
    if not name:
        raise UserError("Choose a username.", field="username")
    if len(name) > 30:
        raise UserError(f"That username is {len(name)} characters; the limit is 30.", field="username")
    if not _USERNAME.match(name):
        raise UserError(f"Usernames may use {USERNAME_RULES}.", field="username")
    if name.startswith(".") or name.endswith(".") or ".." in name:
        raise UserError("A username cannot start or end with a dot, or have two dots in a row.", field="username")
    return name


def check_new_password(password: str, username: str, field: str = "password") -> None:
    """`field` names the form input the message belongs to (the password page's is new_password)."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"Use at least {MIN_PASSWORD} characters for your password.", field=field)
    if len(password) > MAX_PASSWORD:
        raise UserError(f"Passwords are limited to {MAX_PASSWORD} characters.", field=field)
    if password.strip().lower() == username:
        raise UserError("Your password cannot be your username.", field=field)


def get_user(ctx: Context, user_id: int) -> User | None:
    with ctx.db.read(ids.shard_of(user_id)) as conn:
        row = conn.one("SELECT * FROM users WHERE id = ?", (user_id,))
    return _user(row) if row else None


def get_users(ctx: Context, user_ids: Iterable[int]) -> dict[int, User]:
    """Many users by id: one query per place they live on (Database.by_place), never one per user."""
    rows = ctx.db.read_in("SELECT * FROM users WHERE id IN ({})", user_ids, ids.shard_of)
    return {row["id"]: _user(row) for row in rows}


def user_id_for(ctx: Context, username: str) -> int | None:
    name = canonical_username(username)
    if not _USERNAME.match(name):
        return None
    with ctx.db.read(ctx.db.shard_for_key(name)) as conn:
        return conn.value("SELECT user_id FROM usernames WHERE username = ?", (name,))


def find_user(ctx: Context, username: str) -> User | None:
    user_id = user_id_for(ctx, username)
    return get_user(ctx, user_id) if user_id else None


def create_user(
    ctx: Context,
    username: str,
    password: str,
    *,
    invite_code: str | None = None,
    admin: bool = False,
    by_operator: bool = False,
) -> User:
    """Make an account. Sign-ups follow `accounts.registration`; the operator's CLI does not.

    The first account on a server becomes its admin.
    """
    mode = ctx.config.accounts.registration
    if not by_operator and mode == "closed":  # before the fields: there is nothing to correct
        raise Forbidden("Sign-ups are closed on this server. Ask its admin for an account.")
    name = normalize_username(username)
    check_new_password(password, name)
    if name in RESERVED or user_id_for(ctx, name) is not None:
        raise UserError("That username is taken. Try another.", field="username")
    invite_hash = None
    if not by_operator and mode == "invite":
        invite_hash = _claim_invite(ctx, invite_code or "")
    try:
        password_hash = ctx.hasher.hash(password)
        now = now_ms()
        shard = secrets.randbelow(ctx.db.logical_shards)
        with ctx.db.write(shard) as conn:
            user_id = ids.next_id(conn, shard)
            conn.run(
                "INSERT INTO users (id, username, password_hash, is_admin, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (user_id, name, password_hash, int(admin), now, now),
            )
        with ctx.db.write(ctx.db.shard_for_key(name)) as conn:
            claimed = conn.run(
                "INSERT INTO usernames (username, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING", (name, user_id)
            )
        if not claimed:
            with ctx.db.write(shard) as conn:
                conn.run("DELETE FROM users WHERE id = ?", (user_id,))
            raise UserError("That username is taken. Try another.", field="username")
    except BaseException:
        if invite_hash:
            _release_invite(ctx, invite_hash)
        raise
    if invite_hash:
        with ctx.db.write(0) as conn:
            conn.run("UPDATE invites SET used_by = ? WHERE code_hash = ?", (user_id, invite_hash))
    with ctx.db.write(0) as conn:
        first = conn.run(
            "INSERT INTO site_flags (name, value) VALUES ('first_user', ?) ON CONFLICT DO NOTHING", (str(user_id),)
        )
    if first and not admin:
        with ctx.db.write(shard) as conn:
            conn.run("UPDATE users SET is_admin = 1 WHERE id = ?", (user_id,))
    metrics.SIGNUPS.inc()
    user = get_user(ctx, user_id)
    assert user is not None
    return user


def authenticate(ctx: Context, username: str, password: str) -> User | None:
    """The user if the password is right; None for a wrong password or unknown user alike."""
    user = find_user(ctx, username)
    if user is None or len(password) > MAX_PASSWORD:
        _verify(ctx, _dummy_hash(ctx), password[:MAX_PASSWORD])
        return None
    if not _verify(ctx, user.password_hash, password):
        return None
    if ctx.hasher.check_needs_rehash(user.password_hash):
        with ctx.db.write(user.shard) as conn:
            conn.run("UPDATE users SET password_hash = ? WHERE id = ?", (ctx.hasher.hash(password), user.id))
    return user


def _verify(ctx: Context, password_hash: str, password: str) -> bool:
    try:
        return ctx.hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash(ctx: Context) -> str:
    """Checked when the username is unknown, so that answer takes as long as a wrong password."""
    return ctx.hasher.hash(secrets.token_hex(16))


def name_words(text: str) -> list[str]:
    """The words of a name as search matches them: case-folded, accents dropped ("José" finds "jose"), split at
    whatever is not a letter or digit; each once, at most MAX_NAME_WORDS."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return list(dict.fromkeys(w for w in re.split(r"[\W_]+", plain) if w))[:MAX_NAME_WORDS]


def _index_name(conn, user_id: int, display_name: str) -> None:
    """The user's name_words rows for this name (in the transaction that writes the name, on the user's shard)."""
    conn.run("DELETE FROM name_words WHERE user_id = ?", (user_id,))
    conn.run_many(
        "INSERT INTO name_words (word, user_id) VALUES (?, ?)", [(w, user_id) for w in name_words(display_name)]
    )


def index_names_once(ctx: Context) -> None:
    """Index the display names given before search could find them (migration 0008), once per site: called by
    every `main.py migrate` (and start), it does the work until one run has finished it."""
    with ctx.db.read(0) as conn:
        if conn.value("SELECT 1 FROM site_flags WHERE name = ?", (NAMES_INDEXED,)) is not None:
            return
    index_all_names(ctx)
    with ctx.db.write(0) as conn:
        conn.run("INSERT INTO site_flags (name, value) VALUES (?, '1') ON CONFLICT DO NOTHING", (NAMES_INDEXED,))


def index_all_names(ctx: Context) -> int:
    """Index every account's display name for search. Returns how many accounts have a name."""
    named = 0
    for reader, _shards in ctx.db.shard_groups():
        with reader as conn:
            rows = conn.all("SELECT id, display_name FROM users WHERE display_name <> ''")
        by_shard: dict[int, list[dict]] = {}
        for row in rows:
            by_shard.setdefault(ids.shard_of(row["id"]), []).append(row)
        for shard, users in sorted(by_shard.items()):
            with ctx.db.write(shard) as conn:
                for row in users:
                    _index_name(conn, row["id"], row["display_name"])
        named += len(rows)
    return named


def update_profile(ctx: Context, user: User, display_name: str, bio: str, is_private: bool | None = None) -> User:
    display_name = " ".join((display_name or "").split())
    bio = (bio or "").replace("\r\n", "\n").strip()
    if len(display_name) > MAX_DISPLAY_NAME:
        raise UserError(f"Names are limited to {MAX_DISPLAY_NAME} characters.", field="display_name")
    if len(bio) > MAX_BIO:
        raise UserError(f"Your bio is {len(bio)} characters; the limit is {MAX_BIO}.", field="bio")
    private = user.is_private if is_private is None else is_private
    with ctx.db.write(user.shard) as conn:
        conn.run(
            "UPDATE users SET display_name = ?, bio = ?, is_private = ?, updated_at = ? WHERE id = ?",
            (display_name, bio, int(private), now_ms(), user.id),
        )
        _index_name(conn, user.id, display_name)
    page_versions.touch(ctx, user.id)  # the name on the user's own cards
    updated = get_user(ctx, user.id)
    if user.is_private and not private:
        from app.services import graph  # graph imports this module

        # Going public: nobody is left waiting for an answer that no longer matters.
        graph.approve_all_requests(ctx, updated)
        updated = get_user(ctx, user.id)
    return updated  # type: ignore[return-value]


def change_password(ctx: Context, user: User, current: str, new: str) -> User:
    """Set a new password and end every session of the account (the caller starts a fresh one)."""
    if not _verify(ctx, user.password_hash, current[:MAX_PASSWORD]):
        raise UserError("Your current password is not right.", field="current_password")
    check_new_password(new, user.username, field="new_password")
    new_hash = ctx.hasher.hash(new)
    with ctx.db.write(user.shard) as conn:
        conn.run(
            "UPDATE users SET password_hash = ?, session_epoch = session_epoch + 1, updated_at = ? WHERE id = ?",
            (new_hash, now_ms(), user.id),
        )
    return get_user(ctx, user.id)  # type: ignore[return-value]


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().encode("utf-8")).hexdigest()


def create_invite(ctx: Context, created_by: int | None) -> str:
    """A single-use invite code, valid for `accounts.invite_days`."""
    code = secrets.token_urlsafe(12)
    now = now_ms()
    with ctx.db.write(0) as conn:
        conn.run(
            "INSERT INTO invites (code_hash, created_by, created_at, expires_at) VALUES (?, ?, ?, ?)",
            (_hash_code(code), created_by, now, now + ctx.config.accounts.invite_days * 86_400_000),
        )
    return code


def _claim_invite(ctx: Context, code: str) -> str:
    if not code.strip():
        raise UserError("This server is invite-only: enter the invite code you were given.", field="invite")
    code_hash = _hash_code(code)
    with ctx.db.write(0) as conn:
        # used_by = 0 marks a claim in progress; the new user's id replaces it. A claim left behind by a
        # crash mid-sign-up is taken over once it is older than any sign-up could take.
        now = now_ms()
        claimed = conn.run(
            "UPDATE invites SET used_by = 0, used_at = ? WHERE code_hash = ? AND expires_at > ?"
            " AND (used_by IS NULL OR (used_by = 0 AND used_at < ?))",
            (now, code_hash, now, now - STALE_CLAIM_MS),
        )
    if not claimed:
        raise UserError("That invite code is not valid: it may be mistyped, used or expired.", field="invite")
    return code_hash


def _release_invite(ctx: Context, code_hash: str) -> None:
    with ctx.db.write(0) as conn:
        conn.run("UPDATE invites SET used_by = NULL, used_at = NULL WHERE code_hash = ? AND used_by = 0", (code_hash,))
