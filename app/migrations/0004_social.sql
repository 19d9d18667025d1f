-- The social graph and what people do with posts. Portable SQL (SQLite and each Postgres shard schema); times are
-- Unix ms. Where each table lives is said above it: edges are written on both sides, so every page asks one shard
-- per person ("which of these do I follow / like") and nothing joins across shards.

-- Counters, denormalized on the owner's row and changed in the same transaction as the rows they count.
ALTER TABLE users ADD COLUMN post_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN follower_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN following_count INTEGER NOT NULL DEFAULT 0;
-- Notifications with a larger id are unread.
ALTER TABLE users ADD COLUMN notifications_seen_id BIGINT NOT NULL DEFAULT 0;

ALTER TABLE posts ADD COLUMN like_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE posts ADD COLUMN comment_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE posts ADD COLUMN comments_off INTEGER NOT NULL DEFAULT 0;
-- Fan-out progress: the last follower id whose feed has the post; NULL once every chunk is done (or none needed).
ALTER TABLE posts ADD COLUMN fanout_after BIGINT;
CREATE INDEX posts_fanout_pending ON posts (updated_at) WHERE fanout_after IS NOT NULL;

-- "user_id follows target_id": on the follower's shard. state is 'pending' until a private account approves.
CREATE TABLE following (
    user_id BIGINT NOT NULL,
    target_id BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'pending')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, target_id)
);
CREATE INDEX following_by_time ON following (user_id, state, created_at);

-- The same edge on the followed account's shard. Fan-out pages through it by follower_id.
CREATE TABLE followers (
    user_id BIGINT NOT NULL,
    follower_id BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'pending')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, follower_id)
);
CREATE INDEX followers_by_state ON followers (user_id, state, follower_id);
CREATE INDEX followers_by_time ON followers (user_id, state, created_at);

-- "user_id blocks target_id" on the blocker's shard, and the same edge on the blocked user's shard, so either
-- person's shard answers "is there a block between us" alone.
CREATE TABLE blocks (
    user_id BIGINT NOT NULL,
    target_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, target_id)
);
CREATE TABLE blocked_by (
    user_id BIGINT NOT NULL,
    blocker_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, blocker_id)
);

-- "user_id mutes target_id": on the muter's shard only (the muted account never learns of it).
CREATE TABLE mutes (
    user_id BIGINT NOT NULL,
    target_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, target_id)
);

-- Accounts at or above [feeds] celebrity_threshold followers (their posts are merged in at read time): shard 0.
CREATE TABLE celebrities (
    user_id BIGINT PRIMARY KEY,
    follower_count INTEGER NOT NULL
);

-- "user_id likes post_id": on the post's shard (who liked it) and on the liker's shard (what they liked).
CREATE TABLE likes (
    post_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (post_id, user_id)
);
CREATE TABLE liked (
    user_id BIGINT NOT NULL,
    post_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, post_id)
);

-- Comments live with their post (ids made on the post's shard, so an id finds its row).
CREATE TABLE comments (
    id BIGINT PRIMARY KEY,
    post_id BIGINT NOT NULL,
    author_id BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX comments_by_post ON comments (post_id, id);

-- Hashtags: the post's own list on its shard; the directory tag -> posts on the shard hashed from the tag.
CREATE TABLE post_tags (
    post_id BIGINT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (post_id, tag)
);
CREATE TABLE tag_posts (
    tag TEXT NOT NULL,
    post_id BIGINT NOT NULL,
    author_id BIGINT NOT NULL,
    PRIMARY KEY (tag, post_id)
);
CREATE TABLE tags (
    tag TEXT PRIMARY KEY,
    post_count INTEGER NOT NULL DEFAULT 0,
    last_used_at BIGINT NOT NULL
);

-- Places: posts by 1-degree grid cell ("lat:lon" of the cell's south-west corner), on the shard hashed from the
-- cell, so a radius search asks the few cells it overlaps.
CREATE TABLE place_posts (
    cell TEXT NOT NULL,
    post_id BIGINT NOT NULL,
    author_id BIGINT NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    lon DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (cell, post_id)
);

-- Notifications on the recipient's shard, ids made there. dedup_key makes a repeated action (like, unlike, like)
-- notify once.
CREATE TABLE notifications (
    id BIGINT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('like', 'comment', 'follow', 'follow_request', 'mention')),
    actor_id BIGINT NOT NULL,
    post_id BIGINT,
    comment_id BIGINT,
    dedup_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (user_id, dedup_key)
);
CREATE INDEX notifications_by_user ON notifications (user_id, id);
