"""Who may see whose posts: the one place that decides it.

Every read of another person's content (post pages, media files, profiles' grids, feeds) asks `can_view`, so
the follow graph (issue 4: approved followers of private accounts, blocks) changes this file only.
"""

from __future__ import annotations

from app.context import Context
from app.services.accounts import User


def can_view(ctx: Context, viewer: User | None, author: User) -> bool:
    """Whether `viewer` (None: not signed in) may see what `author` posts.

    The author always; anyone when the account is public; a private account's posts reach only its author
    until approved followers exist."""
    if viewer is not None and viewer.id == author.id:
        return True
    return not author.is_private
