-- Posts and their photos, both on the author's shard (the shard is inside every id).
-- Portable SQL: runs as-is on SQLite and in each Postgres shard schema. Times are Unix ms.

-- A post is "processing" from the request until its queue task has stored every rendition; then "ready" (visible)
-- or "failed" (error says why, in words for the author). attempts counts how often its task was enqueued, so the
-- sweep can give up on a post whose task keeps getting lost.
CREATE TABLE posts (
    id BIGINT PRIMARY KEY,
    author_id BIGINT NOT NULL,
    caption TEXT NOT NULL DEFAULT '',
    place_name TEXT,
    place_lat DOUBLE PRECISION,
    place_lon DOUBLE PRECISION,
    sensitive INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('processing', 'ready', 'failed')),
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A profile's grid: newest first, paged by `id < cursor`.
CREATE INDEX posts_by_author ON posts (author_id, id DESC);

-- The sweep looks for posts whose processing task was lost; few rows are ever in this index.
CREATE INDEX posts_processing ON posts (updated_at) WHERE status = 'processing';

-- One row per photo. upload_key is the raw upload (deleted once processed unless [media] keep_original; the
-- rendition keys are derived from it). width/height are those of the 1080 rendition, camera is a JSON object of
-- whitelisted facts, renditions a JSON object {size: {format: blob key}}; all NULL while processing.
CREATE TABLE post_media (
    id BIGINT PRIMARY KEY,
    post_id BIGINT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    upload_key TEXT NOT NULL,
    alt_text TEXT NOT NULL DEFAULT '',
    filter_name TEXT NOT NULL DEFAULT 'normal',
    width INTEGER,
    height INTEGER,
    blurhash TEXT,
    dominant_color TEXT,
    camera TEXT,
    renditions TEXT,
    UNIQUE (post_id, position)
);
