-- Bookmarks (the client API's "save for later"): "user_id bookmarked post_id", on the user's shard only. Nobody else
-- ever reads it (the author is not told), so there is no second side. id is made on the user's shard when the
-- bookmark is added: the list pages by it, newest bookmark first.
CREATE TABLE bookmarks (
    user_id BIGINT NOT NULL,
    post_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, post_id)
);
CREATE INDEX bookmarks_by_time ON bookmarks (user_id, id);
