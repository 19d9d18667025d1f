"""Places: the cell directory kept by the post tasks, the radius search (nearest first, exact distance, the poles
and the antimeridian, paging), who sees what there, and /places/near over HTTP with its bad inputs."""

from __future__ import annotations

import pytest

from app import ids
from app.errors import UserError
from app.services import accounts, graph, places, posts
from app.services.places import cell_of, distance_km, near
from app.services.posts import PhotoUpload, Place, create_post, delete_post
from tests.conftest import PASSWORD, TESTDATA

PHOTO = (TESTDATA / "good" / "hopper.png").read_bytes()
EIFFEL = (48.8584, 2.2945)
LOUVRE = (48.8606, 2.3376)  # 3.2 km from the Eiffel tower
VERSAILLES = (48.8049, 2.1204)  # 14.1 km
LYON = (45.7640, 4.8357)  # 394 km


def place_post(ctx, author, name: str, point: tuple[float, float] | None, caption: str = "") -> posts.Post:
    post = create_post(
        ctx,
        author,
        [PhotoUpload(PHOTO, alt_text=f"At {name}")],
        caption=caption,
        place=Place(name, *point) if point else Place(name),
    )
    ctx.backends.queue.run_pending()
    return posts.get_post(ctx, post.id, author)


def directory(ctx) -> list[dict]:
    found = []
    for reader, _shards in ctx.db.shard_groups():
        with reader as conn:
            found.extend(dict(r) for r in conn.all("SELECT * FROM place_posts ORDER BY post_id"))
    return found


def found_ids(page) -> list[int]:
    return [item.post.id for item in page.items]


@pytest.fixture
def ana(ctx):
    return accounts.create_user(ctx, "ana", PASSWORD)


@pytest.fixture
def bob(ctx):
    return accounts.create_user(ctx, "bob", PASSWORD)


# --- cells and distances -------------------------------------------------------------------------------------------


def test_cells_are_one_degree_squares_named_by_their_south_west_corner():
    assert cell_of(48.8584, 2.2945) == "48:2"
    assert cell_of(-33.86, 151.21) == "-34:151"
    assert cell_of(-0.5, -0.5) == "-1:-1"
    assert cell_of(90, 0) == "89:0"  # the pole belongs to the cells below it
    assert cell_of(10, 180) == cell_of(10, -180) == "10:-180"  # one meridian, one cell


def test_haversine_distances():
    assert distance_km(*EIFFEL, *LOUVRE) == pytest.approx(3.16, abs=0.01)
    assert distance_km(*EIFFEL, *LYON) == pytest.approx(394, abs=1)
    assert distance_km(0, 179.9, 0, -179.9) == pytest.approx(22.2, abs=0.1)  # across the antimeridian
    assert distance_km(89.9, 0, 89.9, 180) == pytest.approx(22.2, abs=0.1)  # across the pole


# --- the directory follows the post --------------------------------------------------------------------------------


def test_a_ready_post_is_indexed_and_a_deleted_one_removed(ctx, ana):
    post = place_post(ctx, ana, "Eiffel tower", EIFFEL)
    rows = directory(ctx)
    assert [(r["cell"], r["post_id"], r["author_id"], r["lat"], r["lon"]) for r in rows] == [
        ("48:2", post.id, ana.id, *EIFFEL)
    ]
    places.index_ready_post(ctx, post.id)  # a rerun of the task adds nothing
    places.index_post(ctx, post.id, ana.id, *EIFFEL)
    assert len(directory(ctx)) == 1
    delete_post(ctx, ana, post.id)
    assert len(directory(ctx)) == 1  # until the task runs, readers skip the missing post
    assert near(ctx, ana, *EIFFEL, 5).items == []
    ctx.backends.queue.run_pending()
    assert directory(ctx) == []
    places.unindex_post(ctx, post.id, *EIFFEL)  # idempotent
    assert directory(ctx) == []


def test_posts_without_coordinates_are_not_indexed(ctx, ana):
    place_post(ctx, ana, "Somewhere nice", None)
    place_post(ctx, ana, "No place at all", None)
    assert directory(ctx) == []


def test_moving_a_post_re_indexes_it(ctx, ana):
    """What editing a post's place does: unindex the old point, index the new one."""
    post = place_post(ctx, ana, "Eiffel tower", EIFFEL)
    places.unindex_post(ctx, post.id, *EIFFEL)
    places.index_post(ctx, post.id, ana.id, *LYON)
    assert [(r["cell"], r["post_id"]) for r in directory(ctx)] == [("45:4", post.id)]
    assert found_ids(near(ctx, None, *LYON, 1)) == [post.id]
    assert near(ctx, None, *EIFFEL, 50).items == []
    places.index_post(ctx, post.id, ana.id, 45.9, 4.9)  # moved within the cell: the row follows
    assert [(r["lat"], r["lon"]) for r in directory(ctx)] == [(45.9, 4.9)]


# --- the search ----------------------------------------------------------------------------------------------------


def test_nearest_first_within_the_radius_with_distances(ctx, ana, bob):
    louvre = place_post(ctx, ana, "Louvre", LOUVRE)
    eiffel = place_post(ctx, bob, "Eiffel tower", EIFFEL)
    versailles = place_post(ctx, ana, "Versailles", VERSAILLES)
    place_post(ctx, ana, "Lyon", LYON)
    page = near(ctx, None, *EIFFEL, 20)
    assert found_ids(page) == [eiffel.id, louvre.id, versailles.id]
    assert [round(item.km, 1) for item in page.items] == [0.0, 3.2, 14.1]
    assert page.next_cursor is None
    assert found_ids(near(ctx, None, *EIFFEL, 10)) == [eiffel.id, louvre.id]  # Versailles is 14.1 km away
    # The bounding box's corners are farther than the radius: the exact distance decides.
    corner = place_post(ctx, bob, "Box corner", (EIFFEL[0] + 0.04, EIFFEL[1] + 0.06))
    assert distance_km(*EIFFEL, 48.8984, 2.3545) > 5
    assert corner.id not in found_ids(near(ctx, None, *EIFFEL, 5))


def test_the_search_crosses_cell_edges_the_antimeridian_and_the_poles(ctx, ana):
    west = place_post(ctx, ana, "Taveuni east", (-16.8, 179.95))
    east = place_post(ctx, ana, "Taveuni west", (-16.8, -179.95))
    edge = place_post(ctx, ana, "On the meridian", (-16.8, 180.0))
    assert set(found_ids(near(ctx, None, -16.8, -179.99, 20))) == {west.id, east.id, edge.id}
    assert set(found_ids(near(ctx, None, -16.8, 179.99, 20))) == {west.id, east.id, edge.id}
    north = place_post(ctx, ana, "Near the pole", (89.95, 100.0))
    other_side = place_post(ctx, ana, "Other side", (89.95, -80.0))
    # Both 5.6 km from the pole: equally near, so the newer first.
    assert found_ids(near(ctx, None, 90, 0, 10)) == [other_side.id, north.id]
    assert found_ids(near(ctx, None, 89.9, 100, 8)) == [north.id]  # 11 km to the other one, across the pole
    assert set(found_ids(near(ctx, None, 89.9, 100, 20))) == {north.id, other_side.id}
    south = place_post(ctx, ana, "South pole", (-90.0, 0.0))
    assert found_ids(near(ctx, None, -89.5, 45, 100)) == [south.id]


def test_pages_continue_nearest_first_without_repeats(ctx, ana):
    made = [place_post(ctx, ana, f"Spot {i}", (48.85 + i * 0.01, 2.29)) for i in range(5)]
    first = near(ctx, None, 48.85, 2.29, 10, limit=2)
    assert found_ids(first) == [made[0].id, made[1].id] and first.next_cursor
    second = near(ctx, None, 48.85, 2.29, 10, limit=2, before=first.next_cursor)
    assert found_ids(second) == [made[2].id, made[3].id]
    third = near(ctx, None, 48.85, 2.29, 10, limit=2, before=second.next_cursor)
    assert found_ids(third) == [made[4].id] and third.next_cursor is None


def test_two_posts_at_one_spot_both_appear_newest_first(ctx, ana):
    older = place_post(ctx, ana, "Same spot", EIFFEL)
    newer = place_post(ctx, ana, "Same spot", EIFFEL)
    first = near(ctx, None, *EIFFEL, 1, limit=1)
    assert found_ids(first) == [newer.id]
    assert found_ids(near(ctx, None, *EIFFEL, 1, limit=1, before=first.next_cursor)) == [older.id]


# --- who sees what -------------------------------------------------------------------------------------------------


def test_private_posts_only_to_approved_followers_and_blocks_hide_both_ways(ctx, ana, bob):
    shy = accounts.update_profile(ctx, accounts.create_user(ctx, "shy", PASSWORD), "", "", is_private=True)
    follower = accounts.create_user(ctx, "follower", PASSWORD)
    pending = accounts.create_user(ctx, "pending", PASSWORD)
    graph.follow(ctx, follower, shy)
    graph.approve_request(ctx, shy, follower.id)
    graph.follow(ctx, pending, shy)
    public = place_post(ctx, ana, "Louvre", LOUVRE)
    private = place_post(ctx, shy, "Eiffel tower", EIFFEL)
    assert found_ids(near(ctx, None, *EIFFEL, 10)) == [public.id]
    assert found_ids(near(ctx, bob, *EIFFEL, 10)) == [public.id]
    assert found_ids(near(ctx, pending, *EIFFEL, 10)) == [public.id]
    assert found_ids(near(ctx, follower, *EIFFEL, 10)) == [private.id, public.id]
    assert found_ids(near(ctx, shy, *EIFFEL, 10)) == [private.id, public.id]
    graph.block(ctx, ana, bob)
    assert found_ids(near(ctx, bob, *EIFFEL, 10)) == []  # the blocked see nothing of the blocker
    assert found_ids(near(ctx, ana, *EIFFEL, 10)) == [public.id]
    graph.block(ctx, follower, ana)
    assert found_ids(near(ctx, follower, *EIFFEL, 10)) == [private.id]  # nor the blocker of the blocked


def test_a_private_page_full_of_hidden_posts_still_fills_from_farther_ones(ctx, ana):
    shy = accounts.update_profile(ctx, accounts.create_user(ctx, "shy", PASSWORD), "", "", is_private=True)
    for i in range(3):
        place_post(ctx, shy, f"Hidden {i}", (EIFFEL[0], EIFFEL[1] + i * 0.001))
    far = place_post(ctx, ana, "Versailles", VERSAILLES)
    page = near(ctx, None, *EIFFEL, 20, limit=1)
    assert found_ids(page) == [far.id] and page.next_cursor is None


# --- bad input -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lat", "lon", "km", "message"),
    [
        ("", "2.29", "5", "Give the latitude"),
        (None, "2.29", "5", "Give the latitude"),
        ("48.85", "", "5", "Give the longitude"),
        ("48.85", "2.29", "", "Give the distance"),
        ("north", "2.29", "5", "latitude (lat) must be a number"),
        ("48.85", "0x10", "5", "longitude (lon) must be a number"),
        ("nan", "2.29", "5", "latitude (lat) must be a number"),
        ("48.85", "inf", "5", "longitude (lon) must be a number"),
        ("48.85", "2.29", "1e999", "distance (km) must be a number"),
        ("90.5", "2.29", "5", "latitude must be between -90 and 90"),
        ("-91", "2.29", "5", "latitude must be between -90 and 90"),
        ("48.85", "180.01", "5", "longitude must be between -180 and 180"),
        ("48.85", "-200", "5", "longitude must be between -180 and 180"),
        ("48.85", "2.29", "0", "distance must be between 0.1 and 100 km"),
        ("48.85", "2.29", "100.5", "distance must be between 0.1 and 100 km"),
        ("48.85", "2.29", "-3", "distance must be between 0.1 and 100 km"),
    ],
)
def test_bad_coordinates_and_distances_are_refused_with_a_reason(ctx, lat, lon, km, message):
    with pytest.raises(UserError) as caught:
        near(ctx, None, lat, lon, km)
    assert message in caught.value.message and caught.value.status == 400


@pytest.mark.parametrize("cursor", ["abc", "12", "-5", "12-0", "12-abc", "1" * 30 + "-5", "5-" + "9" * 25])
def test_a_cursor_that_is_not_ours_is_refused(ctx, cursor):
    with pytest.raises(UserError) as caught:
        near(ctx, None, *EIFFEL, 5, before=cursor)
    assert caught.value.message == places.BAD_CURSOR


def test_out_of_range_points_are_never_indexed(ctx):
    places.index_post(ctx, ids.MAX_ID, 1, 91.0, 0.0)
    places.index_post(ctx, ids.MAX_ID, 1, 0.0, float("nan"))
    places.index_post(ctx, ids.MAX_ID, 1, None, None)
    assert directory(ctx) == []


# --- /places/near over HTTP ----------------------------------------------------------------------------------------


def test_distances_read_as_precisely_as_useful():
    from app.web.routes.discover import distance_label

    assert [distance_label(km) for km in (0.004, 0.0149, 0.349, 3.16, 14.1, 99.6)] == [
        "Right here",
        "10 m away",
        "350 m away",
        "3.2 km away",
        "14 km away",
        "100 km away",
    ]


def test_the_page_without_a_point_is_the_form(client):
    response = client.get("/places/near")
    assert response.status_code == 200
    assert 'action="/places/near"' in response.text and 'name="lat"' in response.text and 'value="5"' in response.text
    assert "places.js" in response.text  # "Use my location", hidden until the script finds geolocation


def test_anonymous_visitors_get_posts_nearest_first_with_distance_and_place(ctx, client, ana):
    louvre = place_post(ctx, ana, "Musée du Louvre", LOUVRE)
    eiffel = place_post(ctx, ana, "Tour Eiffel", EIFFEL)
    response = client.get(f"/places/near?lat={EIFFEL[0]}&lon={EIFFEL[1]}&km=5")
    assert response.status_code == 200
    text = response.text
    assert text.index(f"/p/{eiffel.id}") < text.index(f"/p/{louvre.id}")
    assert "Tour Eiffel" in text and "Musée du Louvre" in text
    assert "Right here" in text and "3.2 km away" in text and 'alt="At Tour Eiffel"' in text


def test_farther_posts_on_the_next_page(ctx, client, ana, monkeypatch):
    from app.web.routes import discover as discover_routes

    monkeypatch.setattr(discover_routes, "PLACES_PAGE", 1)
    near_one = place_post(ctx, ana, "Tour Eiffel", EIFFEL)
    far_one = place_post(ctx, ana, "Louvre", LOUVRE)
    first = client.get(f"/places/near?lat={EIFFEL[0]}&lon={EIFFEL[1]}&km=5")
    assert f"/p/{near_one.id}" in first.text and f"/p/{far_one.id}" not in first.text
    cursor = places.near(ctx, None, *EIFFEL, 5, limit=1).next_cursor
    assert f"before={cursor}" in first.text and "Farther away" in first.text
    second = client.get(f"/places/near?lat={EIFFEL[0]}&lon={EIFFEL[1]}&km=5&before={cursor}")
    assert f"/p/{far_one.id}" in second.text and f"/p/{near_one.id}" not in second.text
    assert "Farther away" not in second.text


def test_private_posts_on_the_page_only_for_those_allowed(ctx, client, ana):
    from app.services import sessions

    shy = accounts.update_profile(ctx, accounts.create_user(ctx, "shy", PASSWORD), "", "", is_private=True)
    graph.follow(ctx, ana, shy)
    secret = place_post(ctx, shy, "Secret garden", EIFFEL)
    url = f"/places/near?lat={EIFFEL[0]}&lon={EIFFEL[1]}&km=5"
    assert f"/p/{secret.id}" not in client.get(url).text and "No photos here yet" in client.get(url).text
    client.cookies.set(sessions.COOKIE, sessions.start_session(ctx, ana))
    assert f"/p/{secret.id}" not in client.get(url).text  # a request is not approval
    graph.approve_request(ctx, shy, ana.id)
    assert f"/p/{secret.id}" in client.get(url).text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("lat=&lon=2.29&km=5", "Give the latitude (lat)."),
        ("lat=48.85&km=5", "Give the longitude (lon)."),
        ("lat=48.85&lon=2.29", "Give the distance (km)."),
        ("lat=abc&lon=2.29&km=5", "The latitude (lat) must be a number, like 48.8584."),
        ("lat=95&lon=2.29&km=5", "The latitude must be between -90 and 90; 95 is not."),
        ("lat=48.85&lon=-181&km=5", "The longitude must be between -180 and 180; -181 is not."),
        ("lat=48.85&lon=2.29&km=500", "The distance must be between 0.1 and 100 km; 500 is not."),
        ("lat=48.85&lon=2.29&km=0.01", "The distance must be between 0.1 and 100 km; 0.01 is not."),
        ("lat=48.85&lon=2.29&km=5&before=nope", places.BAD_CURSOR),
        ("before=nope", "Give the latitude (lat)."),
    ],
)
def test_bad_input_is_a_clear_400_on_the_form(client, query, message):
    response = client.get(f"/places/near?{query}")
    assert response.status_code == 400
    assert message in response.text and 'action="/places/near"' in response.text  # the form, to correct it
    api = client.get(f"/places/near?{query}", headers={"Accept": "application/json"})
    assert api.status_code == 400 and api.json() == {"error": message}
