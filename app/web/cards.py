"""Home feed cards rendered once and shared by every viewer who may see the post, kept in the cache seam.

A card is three cached parts around two slots filled on every request: the time ago (it moves with the clock) and
the like button (the viewer's like state and their CSRF token). The cached parts are rendered from the post alone:
their template gets no viewer, no request and no session, so nothing viewer-specific can be in them, and who may
see the post was decided before a card is asked for (posts.get_posts checks visibility), never by the cache.

The key is a digest of everything the parts are rendered from: the post's fields (caption, place, photos, comment
count...), its author's name and avatar, whether its first photo loads eagerly, and the text of the card's
templates. So whatever write changes what a card shows (an edit, a comment, a deletion of a comment, a new avatar,
a new template on deploy) changes the key, and the next page renders and stores the new card: the version is the
row that this request has just read, which no writer can forget to bump. Old versions expire by CARD_TTL. A deleted
post is never loaded, so its card is never asked for. The like count sits in the like button, so a like renders
no card again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import secrets
from collections.abc import Callable

from jinja2 import Environment
from markupsafe import Markup

from app.context import Context
from app.services.posts import Post

log = logging.getLogger("pinhole.cards")

CARD_TEMPLATE = "posts/_card.html"
# Templates whose text goes into every key (the card and what it imports). Bump CARD_FORMAT when the Python that
# feeds the card (srcsets, captions) changes what it outputs: the cache seam outlives a restart.
CARD_TEMPLATES = (CARD_TEMPLATE, "posts/_photos.html", "posts/_icons.html")
CARD_FORMAT = 1
CARD_TTL = 24 * 3600
# Each process also keeps this many cards in memory in front of the cache seam (a read there costs about as much as
# rendering the card's caption). Safe for the same reason: a key names one version of one card, which never changes.
MEMO_SIZE = 2048


class CardRenderer:
    """card_parts(post, first) -> [before the time, between the time and the like button, after it]."""

    def __init__(self, ctx: Context, env: Environment, helpers: dict[str, Callable]):
        self.ctx = ctx
        self.env = env
        self.helpers = helpers  # srcset, card_caption, iso_time: pure functions of the post
        digest = hashlib.blake2b(str(CARD_FORMAT).encode(), digest_size=16)
        for name in CARD_TEMPLATES:
            digest.update(env.loader.get_source(env, name)[0].encode())
        self.templates_digest = digest.hexdigest()
        self.avatar_url = env.globals["avatar_url"]
        self._memo: dict[str, list[Markup]] = {}

    def key(self, post: Post, first: bool) -> str:
        author = post.author
        shown = (
            self.templates_digest,
            first,
            author.id,
            author.username,
            author.display_name,
            self.avatar_url(author),
            # Every field of the post but the author (above) and the like count (in the like button, per request).
            dataclasses.replace(post, author=None, like_count=0),
        )
        return f"card:{post.id}:{hashlib.blake2b(repr(shown).encode(), digest_size=16).hexdigest()}"

    def parts(self, posts: list[Post], first_id: int | None) -> dict[int, list[Markup]]:
        """Each post's card parts: from this process's memory, else one read of the cache seam for the rest of the
        page, else rendered and stored in both. A cache outage only means rendering."""
        keys = {post.id: self.key(post, post.id == first_id) for post in posts}
        memo = self._memo  # another thread may clear it meanwhile: one lookup per key
        out = {post_id: found for post_id, key in keys.items() if (found := memo.get(key)) is not None}
        missing = [post for post in posts if post.id not in out]
        if not missing:
            return out
        cache = self.ctx.backends.cache
        try:
            found = cache.get_many([keys[post.id] for post in missing])
        except Exception:
            log.warning("cache unavailable; rendering cards", exc_info=True)
            found, cache = {}, None
        if len(self._memo) + len(missing) > MEMO_SIZE:
            self._memo.clear()
        for post in missing:
            key = keys[post.id]
            stored = found.get(key)
            if stored is None:
                stored = self.render(post, post.id == first_id)
                if cache is not None:
                    try:
                        cache.set(key, stored, CARD_TTL)
                    except Exception:
                        log.warning("card %s not cached", post.id, exc_info=True)
            out[post.id] = self._memo[key] = [Markup(part) for part in stored]
        return out

    def render(self, post: Post, first: bool) -> list[str]:
        """The card with a one-off marker where each slot goes, cut there. Escaped text cannot hold a marker."""
        slot = f"<!--slot-{secrets.token_hex(8)}-->"
        module = self.env.get_template(CARD_TEMPLATE).make_module(self.helpers)
        parts = str(module.card(post, first, Markup(slot))).split(slot)
        if len(parts) != 3:
            raise RuntimeError(f"{CARD_TEMPLATE} must place its slot exactly twice (found {len(parts) - 1})")
        return parts
