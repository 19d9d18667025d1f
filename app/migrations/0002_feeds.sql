-- The SQL FeedStore: each user's home feed, on that user's shard. Post ids sort by time.
CREATE TABLE feed_items (
    user_id BIGINT NOT NULL,
    post_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, post_id)
);
