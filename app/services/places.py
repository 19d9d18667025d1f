"""Places: which posts were taken near a point, nearest first.

Where rows live (migration 0004): `place_posts` is a directory keyed by 1-degree grid cell ("lat:lon" of the
cell's south-west corner), each cell on the shard hashed from its key. A radius search asks only the cells its
bounding box overlaps (at most a few hundred, near a pole), with one query per shard group, filters exactly by
great-circle distance here, and hands the ids to posts.get_posts, which applies who may see what. A row may
outlive its post for a moment (the post_deleted task removes it); get_posts skips those ids.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from app import ids
from app.context import Context
from app.errors import UserError

# graph before posts: importing posts first runs into the posts -> visibility -> graph -> feed -> posts cycle.
from app.services import graph, posts  # noqa: F401
from app.services.accounts import User, get_users
from app.services.visibility import visible_authors

EARTH_RADIUS_KM = 6371.0088
KM_PER_DEGREE = math.pi * EARTH_RADIUS_KM / 180  # along a meridian
MIN_KM, MAX_KM = 0.1, 100.0
DEFAULT_LIMIT = 30
# Ids handed to get_posts per round while filling a page (some may be gone or not ready).
_CHUNK = 60
# Authors looked up per batch (keeps each IN (...) list well under every database's parameter limit).
_AUTHOR_BATCH = 500
BAD_CURSOR = "That page link is broken. Go back to the first page of the results."


@dataclass(frozen=True)
class Nearby:
    post: posts.Post
    km: float  # great-circle distance from the searched point


@dataclass(frozen=True)
class NearPage:
    items: list[Nearby]
    next_cursor: str | None  # pass as `before` for the next page; None on the last one


# --- Input ---------------------------------------------------------------------------------------------------------


def parse_point(lat: object, lon: object, km: object) -> tuple[float, float, float]:
    """Query-string values as numbers in range, or a UserError saying which one is wrong and why."""
    lat_ = _number(lat, "latitude (lat)")
    lon_ = _number(lon, "longitude (lon)")
    km_ = _number(km, "distance (km)")
    if not -90 <= lat_ <= 90:
        raise UserError(f"The latitude must be between -90 and 90; {lat_:g} is not.", field="lat")
    if not -180 <= lon_ <= 180:
        raise UserError(f"The longitude must be between -180 and 180; {lon_:g} is not.", field="lon")
    if not MIN_KM <= km_ <= MAX_KM:
        raise UserError(f"The distance must be between {MIN_KM:g} and {MAX_KM:g} km; {km_:g} is not.", field="km")
    return lat_, lon_, km_


def _number(value: object, name: str) -> float:
    field = name.rsplit("(", 1)[-1].rstrip(")")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise UserError(f"Give the {name}.", field=field)
    if isinstance(value, bool):
        raise UserError(f"The {name} must be a number, like 48.8584.", field=field)
    try:
        number = float(value.strip()[:40] if isinstance(value, str) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UserError(f"The {name} must be a number, like 48.8584.", field=field) from None
    if not math.isfinite(number):
        raise UserError(f"The {name} must be a number, like 48.8584.", field=field)
    return number


# --- Cells ---------------------------------------------------------------------------------------------------------


def cell_of(lat: float, lon: float) -> str:
    """The 1-degree cell holding the point: "48:2" for Paris, "-34:151" for Sydney. The north pole belongs to the
    cells just below it, and longitude 180 is longitude -180."""
    row = min(math.floor(lat), 89)
    col = math.floor(lon)
    if col >= 180:
        col -= 360
    return f"{row}:{col}"


@dataclass(frozen=True)
class _Box:
    lat_min: float
    lat_max: float
    lon_ranges: list[tuple[float, float]]  # [] means every longitude (the box reaches a pole)
    cells: list[str]


def _box(lat: float, lon: float, km: float) -> _Box:
    """The bounding box of the circle and the cells it overlaps, split at the antimeridian."""
    dlat = km / KM_PER_DEGREE
    lat_min, lat_max = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    rows = range(min(math.floor(lat_min), 89), min(math.floor(lat_max), 89) + 1)
    widest = max(abs(lat_min), abs(lat_max))
    cos = math.cos(math.radians(widest))
    dlon = 360.0 if widest >= 90 or cos <= 0 else dlat / cos
    if dlon >= 180:
        # The circle reaches (or nearly reaches) a pole: every meridian crosses it.
        return _Box(lat_min, lat_max, [], [f"{r}:{c}" for r in rows for c in range(-180, 180)])
    west, east = lon - dlon, lon + dlon
    if west < -180:
        ranges = [(west + 360, 180.0), (-180.0, east)]
    elif east > 180:
        ranges = [(west, 180.0), (-180.0, east - 360)]
    else:
        ranges = [(west, east)]
    cols: set[int] = set()
    for a, b in ranges:
        cols.update(range(math.floor(a), min(math.floor(b), 179) + 1))
        if b >= 180:
            cols.add(-180)  # points at exactly 180 live in the -180 cells
    return _Box(lat_min, lat_max, ranges, [f"{r}:{c}" for r in rows for c in sorted(cols)])


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance by the haversine formula."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


# --- Writing (called by tasks and by editing a post) ---------------------------------------------------------------


def _has_point(lat: float | None, lon: float | None) -> bool:
    return (
        isinstance(lat, (int, float))
        and isinstance(lon, (int, float))
        and math.isfinite(lat)
        and math.isfinite(lon)
        and -90 <= lat <= 90
        and -180 <= lon <= 180
    )


def index_post(ctx: Context, post_id: int, author_id: int, lat: float | None, lon: float | None) -> None:
    """Put the post in its cell's directory. Idempotent: a rerun (or the same cell with moved coordinates)
    leaves one row with these coordinates. No coordinates: nothing to index."""
    if not _has_point(lat, lon):
        return
    cell = cell_of(lat, lon)  # type: ignore[arg-type]
    with ctx.db.write(ctx.db.shard_for_key(cell)) as conn:
        conn.run(
            "INSERT INTO place_posts (cell, post_id, author_id, lat, lon) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (cell, post_id) DO UPDATE SET lat = excluded.lat, lon = excluded.lon,"
            " author_id = excluded.author_id",
            (cell, post_id, author_id, float(lat), float(lon)),  # type: ignore[arg-type]
        )


def unindex_post(ctx: Context, post_id: int, lat: float | None, lon: float | None) -> None:
    """Take the post out of the cell of (lat, lon). Idempotent; no coordinates: nothing to do."""
    if not _has_point(lat, lon):
        return
    cell = cell_of(lat, lon)  # type: ignore[arg-type]
    with ctx.db.write(ctx.db.shard_for_key(cell)) as conn:
        conn.run("DELETE FROM place_posts WHERE cell = ? AND post_id = ?", (cell, post_id))


def index_ready_post(ctx: Context, post_id: int) -> None:
    """The post_ready hook: index the post by the place stored on its row (if it has coordinates)."""
    with ctx.db.read(ids.shard_of(post_id)) as conn:
        row = conn.one(
            "SELECT author_id, place_lat, place_lon FROM posts WHERE id = ? AND status = 'ready'", (post_id,)
        )
    if row is not None:
        index_post(ctx, post_id, row["author_id"], row["place_lat"], row["place_lon"])


# --- Reading -------------------------------------------------------------------------------------------------------


def _candidates(ctx: Context, lat: float, lon: float, km: float) -> list[tuple[float, int, int]]:
    """(distance, post id, author id) of every indexed post within `km`: one query per shard group."""
    box = _box(lat, lon, km)
    by_shard: dict[int, list[str]] = {}
    for cell in box.cells:
        by_shard.setdefault(ctx.db.shard_for_key(cell), []).append(cell)
    lon_sql = " OR ".join("lon BETWEEN ? AND ?" for _ in box.lon_ranges)
    lon_params = [v for pair in box.lon_ranges for v in pair]
    found: dict[int, tuple[float, int, int]] = {}
    for reader, shards in ctx.db.shard_groups():
        cells = [cell for shard in shards for cell in by_shard.get(shard, [])]
        if not cells:
            continue
        sql = (
            f"SELECT post_id, author_id, lat, lon FROM place_posts WHERE cell IN ({', '.join('?' * len(cells))})"
            " AND lat BETWEEN ? AND ?" + (f" AND ({lon_sql})" if lon_sql else "")
        )
        with reader as conn:
            rows = conn.all(sql, [*cells, box.lat_min, box.lat_max, *lon_params])
        for row in rows:
            d = distance_km(lat, lon, row["lat"], row["lon"])
            if d <= km:
                found[row["post_id"]] = (d, row["post_id"], row["author_id"])
    return list(found.values())


def _sort_key(distance: float, post_id: int) -> tuple[int, int]:
    """Nearest first (to the millimetre), newest first among equals; also what a cursor says."""
    return round(distance * 1_000_000), -post_id


def _cursor(key: tuple[int, int]) -> str:
    return f"{key[0]}-{-key[1]}"


def parse_cursor(text: str | None) -> tuple[int, int] | None:
    """A `before` cursor from a link, or a UserError; empty means the first page."""
    if not text:
        return None
    mm, _, post_id = text.partition("-")
    parsed = ids.parse(post_id)
    if not (mm.isascii() and mm.isdigit() and len(mm) <= 12) or parsed is None:
        raise UserError(BAD_CURSOR, field="before")
    return int(mm), -parsed


def near(
    ctx: Context,
    viewer: User | None,
    lat: float,
    lon: float,
    km: float,
    limit: int = DEFAULT_LIMIT,
    before: str | None = None,
) -> NearPage:
    """The ready posts `viewer` may see within `km` of (lat, lon), nearest first, `limit` a page; `before` is the
    previous page's next_cursor. Bad coordinates, distance or cursor: UserError."""
    lat, lon, km = parse_point(lat, lon, km)
    after = parse_cursor(before)
    ranked = sorted(
        (_sort_key(d, post_id), d, post_id, author_id) for d, post_id, author_id in _candidates(ctx, lat, lon, km)
    )
    if after is not None:
        ranked = [r for r in ranked if r[0] > after]
    # Drop the authors the viewer may not see before loading any post (one batch per few hundred authors).
    author_ids = sorted({r[3] for r in ranked})
    allowed: set[int] = set()
    for start in range(0, len(author_ids), _AUTHOR_BATCH):
        authors = get_users(ctx, author_ids[start : start + _AUTHOR_BATCH])
        allowed |= visible_authors(ctx, viewer, authors.values())
    ranked = [r for r in ranked if r[3] in allowed]
    items: list[Nearby] = []
    last_key = None
    for start in range(0, len(ranked), _CHUNK):
        chunk = ranked[start : start + _CHUNK]
        loaded = {p.id: p for p in posts.get_posts(ctx, [r[2] for r in chunk], viewer)}
        for key, d, post_id, _author in chunk:
            if post_id in loaded:
                if len(items) == limit:
                    return NearPage(items, _cursor(last_key))  # type: ignore[arg-type]
                items.append(Nearby(loaded[post_id], d))
                last_key = key
    return NearPage(items, None)
