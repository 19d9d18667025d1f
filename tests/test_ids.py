"""63-bit IDs: layout properties, strict parsing, and generation through a real database (SQLite, and a
Postgres shard schema: the same SQL makes IDs on every rung)."""

from __future__ import annotations

import multiprocessing
import struct
import threading
import time
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import ids
from app.backends.database.sqlite import SqliteDatabase
from app.config import DatabaseConfig, DatabaseServer

SHARDS = 64
PG_SHARDS = 16  # the tests use shards 1-9; fewer schemas to migrate

ms_parts = st.integers(0, (1 << ids.TIME_BITS) - 1)
shard_parts = st.integers(0, ids.MAX_SHARDS - 1)
seq_parts = st.integers(0, (1 << ids.SEQ_BITS) - 1)
valid_ids = st.integers(1, ids.MAX_ID)


# --- layout ---------------------------------------------------------------------------------------


@given(ms_parts, shard_parts, seq_parts)
def test_parts_round_trip(ms, shard, seq):
    id_ = ids.compose(ms, shard, seq)
    assert ids.shard_of(id_) == shard
    assert ids.unix_ms_of(id_) == ids.EPOCH_MS + ms
    assert id_ & ((1 << ids.SEQ_BITS) - 1) == seq
    assert ids.compose(ms, shard, seq) == id_


@given(ms_parts, shard_parts, seq_parts)
def test_every_id_fits_a_signed_bigint_and_is_positive(ms, shard, seq):
    id_ = ids.compose(ms, shard, seq)
    assert 0 <= id_ <= ids.MAX_ID == 2**63 - 1
    assert struct.unpack(">q", struct.pack(">q", id_))[0] == id_  # never negative as signed 64-bit
    if (ms, shard, seq) != (0, 0, 0):
        assert id_ >= 1


@given(ms_parts, ms_parts, shard_parts, shard_parts, seq_parts, seq_parts)
def test_ids_sort_by_time_first(ms1, ms2, shard1, shard2, seq1, seq2):
    a, b = ids.compose(ms1, shard1, seq1), ids.compose(ms2, shard2, seq2)
    if ms1 != ms2:
        assert (a < b) == (ms1 < ms2)
    assert (a < b) == ((ms1, shard1, seq1) < (ms2, shard2, seq2))


def test_the_layout_lasts_until_2094():
    last = ids.compose((1 << ids.TIME_BITS) - 1, ids.MAX_SHARDS - 1, (1 << ids.SEQ_BITS) - 1)
    assert last == ids.MAX_ID
    assert time.gmtime(ids.unix_ms_of(last) / 1000).tm_year == 2094
    assert time.gmtime(ids.EPOCH_MS / 1000)[:3] == (2025, 1, 1)


@pytest.mark.parametrize(
    ("ms", "shard", "seq"),
    [
        (-1, 0, 0),
        (1 << ids.TIME_BITS, 0, 0),
        (0, -1, 0),
        (0, ids.MAX_SHARDS, 0),
        (0, 0, -1),
        (0, 0, 1 << ids.SEQ_BITS),
    ],
)
def test_compose_rejects_out_of_range_parts(ms, shard, seq):
    with pytest.raises(ValueError):
        ids.compose(ms, shard, seq)


@given(
    st.one_of(
        st.integers(max_value=-1),
        st.integers(min_value=1 << ids.TIME_BITS),
    ),
    shard_parts,
    seq_parts,
)
def test_compose_rejects_any_time_out_of_range(ms, shard, seq):
    with pytest.raises(ValueError):
        ids.compose(ms, shard, seq)


# --- parsing --------------------------------------------------------------------------------------


@given(valid_ids)
def test_parse_accepts_every_valid_id(id_):
    assert ids.parse(str(id_)) == id_
    assert ids.parse(id_) == id_


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "-1",
        "+1",
        "1e3",
        "1.0",
        "0x10",
        " 1",
        "1 ",
        "1\n",
        "\u0663",  # ARABIC-INDIC DIGIT THREE
        "\uff11",  # FULLWIDTH DIGIT ONE
        "\u00b2",  # SUPERSCRIPT TWO
        "1_000",
        "00",
        "007",
        "01",
        str(ids.MAX_ID + 1),
        "9" * 19,
        "1" + "0" * 19,  # 20 digits
        "0" * 19 + "1",  # 20 digits, small value
        "12345678901234567890",
        None,
    ],
)
def test_parse_rejects_anything_but_a_canonical_positive_decimal(text):
    assert ids.parse(text) is None


@pytest.mark.parametrize("value", [0, -1, ids.MAX_ID + 1, -(2**63)])
def test_parse_rejects_out_of_range_integers(value):
    assert ids.parse(value) is None


@given(
    st.one_of(
        st.text(max_size=25),
        st.from_regex(r"[+-]?[0-9]{1,21}", fullmatch=True),
        st.integers(0, ids.MAX_ID).map(lambda n: f"{n:020d}"[-19:]),
    )
)
def test_parse_accepts_only_what_it_would_print(text):
    value = ids.parse(text)
    if value is not None:
        assert 1 <= value <= ids.MAX_ID
        assert str(value) == text, "one id, one spelling (no leading zeros, no other digits)"


# --- generation -----------------------------------------------------------------------------------


def _open(spec):
    """A database from what a test process can hand another: a SQLite path or a Postgres config."""
    if isinstance(spec, DatabaseConfig):
        from app.backends.database.postgres import PostgresDatabase

        return PostgresDatabase(spec)
    return SqliteDatabase(Path(spec), SHARDS)


def _spec_of(db):
    return db.config if db.dialect == "postgres" else str(db.path)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def db(request, tmp_path_factory):
    """One database for the module: each test takes its own shards, as each user has their own."""
    if request.param == "sqlite":
        database = _open(str(tmp_path_factory.mktemp("ids") / "pinhole.sqlite3"))
        cleanup = None
    else:
        cluster = request.getfixturevalue("postgres_clusters")[0]
        name = cluster.create_database()
        server = DatabaseServer(dsn=cluster.dsn(name), shards=f"0-{PG_SHARDS - 1}", pool_min=0, pool_max=10)
        database = _open(DatabaseConfig(backend="postgres", logical_shards=PG_SHARDS, servers=[server]))
        cleanup = lambda: cluster.drop_database(name)  # noqa: E731
    database.migrate()
    yield database
    database.close()
    if cleanup:
        cleanup()


def _make(db, shard: int, n: int, clock=time.time) -> list[int]:
    with db.write(shard) as conn:
        return [ids.next_id(conn, shard, clock) for _ in range(n)]


def test_next_id_is_increasing_time_ordered_and_carries_its_shard(db):
    before = int(time.time() * 1000)
    made = []
    for _ in range(50):
        made += _make(db, 1, 20)  # many transactions, many ids each
    after = int(time.time() * 1000)
    assert all(a < b for a, b in pairwise(made))
    assert {ids.shard_of(i) for i in made} == {1}
    assert all(before <= ids.unix_ms_of(i) <= after + 2 for i in made)
    assert all(ids.parse(str(i)) == i for i in made)


def test_shards_keep_separate_sequences(db):
    a, b = _make(db, 2, 5), _make(db, 3, 5)
    assert {ids.shard_of(i) for i in a} == {2} and {ids.shard_of(i) for i in b} == {3}
    assert not set(a) & set(b)


def test_next_id_is_unique_across_threads(db):
    per_thread, threads_n = 150, 8
    results: list[list[int]] = [[] for _ in range(threads_n)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads_n)

    def worker(t):
        try:
            barrier.wait()
            for _ in range(per_thread):
                results[t] += _make(db, 4 + t % 2, 1)  # threads share two shards
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    every = [i for r in results for i in r]
    assert len(every) == len(set(every)) == per_thread * threads_n
    for r in results:  # each thread saw its own ids increase
        assert r == sorted(r)


def _ids_in_another_process(spec, shard: int, n: int, start, out) -> None:
    database = _open(spec)
    try:
        start.wait(30)
        made = []
        for _ in range(n):
            with database.write(shard) as conn:
                made.append(ids.next_id(conn, shard))
        out.put(made)
    finally:
        database.close()


def test_next_id_is_unique_across_processes(db):
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_ids_in_another_process, args=(_spec_of(db), 6, 250, start, out)) for _ in range(4)]
    for p in procs:
        p.start()
    start.set()
    try:
        results = [out.get(timeout=60) for _ in procs]
    finally:
        for p in procs:
            p.join(30)
    assert [p.exitcode for p in procs] == [0] * 4
    every = [i for r in results for i in r]
    assert len(every) == len(set(every)) == 1000
    for r in results:
        assert r == sorted(r)
    assert {ids.shard_of(i) for i in every} == {6}
    # This process continues after them, never reusing one.
    assert _make(db, 6, 1)[0] > max(every)


class SteppingClock:
    def __init__(self, times: list[float]):
        self.times = list(times)

    def __call__(self) -> float:
        return self.times.pop(0) if len(self.times) > 1 else self.times[0]


def test_a_clock_stepping_back_never_repeats_or_reverses(db):
    now = time.time()
    clock = SteppingClock([now, now + 0.001, now - 30, now - 30, now - 29.5, now - 3600, now + 0.002, now + 5])
    made = _make(db, 7, 8, clock)
    assert all(a < b for a, b in pairwise(made))
    assert len(set(made)) == 8
    assert {ids.shard_of(i) for i in made} == {7}
    # While the clock is behind, IDs borrow time from the last one; once it passes, they follow it.
    assert ids.unix_ms_of(made[-2]) - ids.unix_ms_of(made[0]) <= 10
    assert ids.unix_ms_of(made[-1]) == int((now + 5) * 1000)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(-120_000, 120_000), min_size=1, max_size=40))
def test_any_clock_gives_strictly_increasing_ids(db, offsets_ms):
    base = time.time()
    times = [base + off / 1000 for off in offsets_ms]
    clock = SteppingClock(times)
    with db.write(8) as conn:
        row = conn.one("SELECT last_ms, seq FROM id_sequences WHERE shard = 8")
        prior = -1 if row is None else ids.compose(row["last_ms"], 8, row["seq"])
        made = [ids.next_id(conn, 8, clock) for _ in times]
    assert all(a < b for a, b in pairwise([prior] + made)), "an id repeated or went backwards"
    for id_, t in zip(made, times, strict=True):
        assert ids.unix_ms_of(id_) >= int(t * 1000), "an id is older than the clock said"


def test_ids_beyond_1024_in_one_millisecond_roll_into_the_next(db):
    frozen = time.time() + 10  # ahead of anything this shard has seen
    made = _make(db, 9, 1500, lambda: frozen)
    assert all(a < b for a, b in pairwise(made))
    assert len(set(made)) == 1500
    stamps = [ids.unix_ms_of(i) for i in made]
    ms = int(frozen * 1000)
    assert stamps.count(ms) == 1024 and stamps.count(ms + 1) == 476
    assert {ids.shard_of(i) for i in made} == {9}
