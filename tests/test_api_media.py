"""Photos uploaded through the API before their post: the row, not the queue, is the truth. A lost task is found by
the sweep, a photo that cannot be decoded fails with its reason, and uploads never posted are deleted after a day,
files and all."""

from __future__ import annotations

import pytest

from app.backends.database.base import DatabaseUnavailable
from app.clock import now_ms
from app.services import attachments
from tests.apitools import Api
from tests.conftest import TESTDATA, FailingBlobs, all_rows

FLOWER = TESTDATA / "good" / "flower.jpg"


@pytest.fixture
def ana(ctx, client) -> Api:
    return Api(ctx, client, "ana")


def upload_only(api: Api, photo=FLOWER) -> dict:
    response = api.post("/api/v2/media", files={"file": ("p.jpg", photo.read_bytes(), "image/jpeg")})
    assert response.status_code == 202, response.text
    return response.json()


def age(ctx, media_id: str, **columns_ms_ago: int) -> None:
    sets = ", ".join(f"{column} = ?" for column in columns_ms_ago)
    with ctx.db.write(attachments.ids.shard_of(int(media_id))) as conn:
        conn.run(
            f"UPDATE media_attachments SET {sets} WHERE id = ?",
            [now_ms() - ago for ago in columns_ms_ago.values()] + [int(media_id)],
        )


def stored_files(ctx) -> list[str]:
    """Every stored file, named as on local disk (media/<key>), whichever blob store the site uses."""
    return sorted(f"media/{key}" for key in ctx.backends.blobs.keys())


def test_an_upload_whose_row_cannot_be_written_leaves_no_file(ctx, ana, monkeypatch, caplog):
    # The photo is stored, then its database server goes away, and so does S3 before the file can be deleted.
    def database_down(conn, shard):
        raise DatabaseUnavailable(f"shard {shard}'s server is down (test)")

    failing = FailingBlobs(ctx.backends.blobs, fail_from=2, deletes_fail=True)
    monkeypatch.setattr(ctx.backends, "blobs", failing)
    monkeypatch.setattr(attachments.ids, "next_id", database_down)
    response = ana.post("/api/v2/media", files={"file": ("p.jpg", FLOWER.read_bytes(), "image/jpeg")})
    assert response.status_code == 503
    assert "database unavailable: shard" in caplog.text, "the answer is about the database that failed, not S3"
    assert all_rows(ctx, "media_attachments") == []
    [left] = stored_files(ctx)
    assert left.removeprefix("media/") in caplog.text, "the log names the file left behind"
    failing.deletes_fail = False  # S3 is back: the delete_blobs task removes it
    assert ctx.backends.queue.run_pending() == 1
    assert stored_files(ctx) == []


def test_the_sweep_finds_an_upload_whose_task_never_ran(ctx, ana, monkeypatch):
    def queue_down(*args):
        raise ConnectionError("queue down")

    monkeypatch.setattr(ctx.backends.queue, "enqueue", queue_down)
    media = upload_only(ana)  # saved all the same: refusing would only make the app upload it twice
    monkeypatch.undo()
    assert ctx.backends.queue.pending() == 0
    assert attachments.sweep(ctx) == 0  # not yet: its task may still be on its way
    age(ctx, media["id"], updated_at=ctx.config.media.processing_timeout_seconds * 1000 + 1000)
    assert attachments.sweep(ctx) == 1
    [row] = all_rows(ctx, "media_attachments")
    assert row["attempts"] == 2 and row["status"] == "processing"
    ctx.backends.queue.run_pending()
    assert ana.ok("GET", f"/api/v1/media/{media['id']}")["url"]


def test_after_the_last_attempt_the_upload_fails_and_says_so(ctx, ana):
    media = upload_only(ana)
    for _ in range(attachments.MAX_ATTEMPTS):
        age(ctx, media["id"], updated_at=ctx.config.media.processing_timeout_seconds * 1000 + 1000)
        attachments.sweep(ctx)
    response = ana.get(f"/api/v1/media/{media['id']}")
    assert response.status_code == 422 and "could not be prepared" in response.json()["error"]
    refused = ana.post("/api/v1/statuses", data={"media_ids[]": [media["id"]]})
    assert refused.status_code == 422 and "could not be prepared" in refused.json()["error"]


def test_an_upload_lost_before_processing_fails_with_its_reason_and_leaves_no_files(ctx, ana):
    media = upload_only(ana)
    [row] = all_rows(ctx, "media_attachments")
    ctx.backends.blobs.delete(row["upload_key"])  # a storage mishap between the request and the task
    ctx.backends.queue.run_pending()
    response = ana.get(f"/api/v1/media/{media['id']}")
    assert response.status_code == 422 and "upload was lost" in response.json()["error"]
    assert stored_files(ctx) == []
    refused = ana.post("/api/v1/statuses", data={"media_ids[]": [media["id"]]})
    assert refused.status_code == 422 and all_rows(ctx, "posts") == []


def test_uploads_never_posted_are_deleted_after_a_day_with_their_files(ctx, ana):
    media = ana.upload(FLOWER)
    posted = ana.post_status([FLOWER])
    assert any(name.startswith("media/attachments/") for name in stored_files(ctx))
    a_day = attachments.UNPOSTED_MS + 60_000
    age(ctx, media["id"], created_at=a_day, updated_at=a_day)
    assert attachments.sweep(ctx) == 1
    assert all_rows(ctx, "media_attachments") == []
    remaining = stored_files(ctx)
    assert not any(f"attachments/{media['id']}/" in name for name in remaining)
    # The posted one keeps its files.
    assert any(f"attachments/{posted['media_attachments'][0]['id']}/" in name for name in remaining)
    assert ana.get(f"/api/v1/media/{media['id']}").status_code == 404
