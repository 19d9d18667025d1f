"""What phone apps ask for when they start, beyond Pinhole's features: the user's posting preferences, and the
lists of features Pinhole does not have (lists, filters, announcements, followed hashtags, conversations, markers),
answered as truly empty rather than 404, which some apps take for a broken server."""

from __future__ import annotations

from typing import Any

from litestar.di import NamedDependency

from app.api.base import Caller, endpoint

CallerDep = NamedDependency[Caller]


@endpoint("GET", "/api/v1/preferences", scope="read:accounts")
def preferences(caller: CallerDep) -> dict[str, Any]:
    """How the user posts and reads by default: posts go to everyone, or to followers on a private account."""
    return {
        "posting:default:visibility": "private" if caller.me.is_private else "public",
        "posting:default:sensitive": False,
        "posting:default:language": None,
        "reading:expand:media": "default",
        "reading:expand:spoilers": False,
    }


def _none(scope: str, path: str, empty: Any):
    @endpoint("GET", path, scope=scope, name=path)
    def nothing(caller: CallerDep) -> Any:
        """Pinhole has none of these."""
        return empty

    return nothing


ROUTES = [
    preferences,
    _none("read:lists", "/api/v1/lists", []),
    _none("read:filters", "/api/v2/filters", []),
    _none("read:accounts", "/api/v1/announcements", []),
    _none("read:follows", "/api/v1/followed_tags", []),
    _none("read:statuses", "/api/v1/conversations", []),
    _none("read:statuses", "/api/v1/markers", {}),
]
