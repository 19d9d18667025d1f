-- Photos uploaded before their post exists (the client API's POST /api/v2/media, then POST /api/v1/statuses with
-- media_ids), on the uploader's shard, ids made there. The queue task makes the renditions as it does for a post's
-- photos (status processing -> ready | failed, attempts for the sweep); renditions is a JSON object
-- {size: {format: blob key}} under attachments/<id>/. Posting moves the row into post_media with the same id, so an
-- app sees the same MediaAttachment id before and after; uploads never posted are deleted after a day.
CREATE TABLE media_attachments (
    id BIGINT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    upload_key TEXT NOT NULL,
    alt_text TEXT NOT NULL DEFAULT '',
    focus TEXT,
    status TEXT NOT NULL CHECK (status IN ('processing', 'ready', 'failed')),
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    width INTEGER,
    height INTEGER,
    blurhash TEXT,
    dominant_color TEXT,
    camera TEXT,
    renditions TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX media_attachments_by_user ON media_attachments (user_id, id);
CREATE INDEX media_attachments_by_time ON media_attachments (updated_at);

-- A photo's focal point, "x,y" from -1 to 1 (Mastodon's meta.focus): where apps crop its thumbnails around.
ALTER TABLE post_media ADD COLUMN focus TEXT;
