"""Who may see whose posts: the one place that decides it.

Every read of another person's content (post pages, media files, profiles' grids, feeds, explore, tags, places,
search, Atom, notifications) asks here. The owner sees everything; a block either way hides each from the other
entirely; a public account's posts reach everyone else; a private account's only its approved followers.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.context import Context
from app.services import graph
from app.services.accounts import User


def can_view(ctx: Context, viewer: User | None, author: User) -> bool:
    """Whether `viewer` (None: not signed in) may see what `author` posts."""
    return author.id in visible_authors(ctx, viewer, [author])


def visible_authors(ctx: Context, viewer: User | None, authors: Iterable[User]) -> set[int]:
    """The ids of the authors whose posts `viewer` may see: one batch of queries on the viewer's shard."""
    authors = list(authors)
    if viewer is None:
        return {a.id for a in authors if not a.is_private}
    others = graph.relations(ctx, viewer, [a.id for a in authors if a.id != viewer.id])
    visible = set()
    for author in authors:
        if author.id == viewer.id:
            visible.add(author.id)
            continue
        rel = others[author.id]
        if rel.blocked:
            continue
        if not author.is_private or rel.following == "active":
            visible.add(author.id)
    return visible


def can_see_profile(ctx: Context, viewer: User | None, user: User) -> bool:
    """A profile's header (name, bio, counts) shows to anyone but someone with a block either way with it."""
    return viewer is None or viewer.id == user.id or not graph.relation(ctx, viewer, user.id).blocked
