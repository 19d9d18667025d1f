-- Accounts, the username directory, invites and the ID sequences.
-- Portable SQL: runs as-is on SQLite and in each Postgres shard schema. Times are Unix ms.

-- One row per logical shard: the last millisecond and sequence number handed out (see app/ids.py).
CREATE TABLE id_sequences (
    shard INTEGER PRIMARY KEY,
    last_ms BIGINT NOT NULL,
    seq INTEGER NOT NULL
);

-- On the owner's shard (the shard is inside the id).
CREATE TABLE users (
    id BIGINT PRIMARY KEY,
    username TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    bio TEXT NOT NULL DEFAULT '',
    avatar_key TEXT,
    avatar_upload_key TEXT,
    avatar_error TEXT,
    password_hash TEXT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0,
    is_private INTEGER NOT NULL DEFAULT 0,
    -- Bumped to end every session of the account at once (password change).
    session_epoch INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Sweeps look for avatars whose processing task was lost.
CREATE INDEX users_avatar_pending ON users (updated_at) WHERE avatar_upload_key IS NOT NULL;

-- Directory: lowercase username -> user id, on the shard chosen by a hash of the username.
CREATE TABLE usernames (
    username TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL
);

-- Site-wide rows live on shard 0.
CREATE TABLE invites (
    code_hash TEXT PRIMARY KEY,
    created_by BIGINT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_by BIGINT,
    used_at BIGINT
);

CREATE TABLE site_flags (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
