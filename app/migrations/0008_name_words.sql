-- Search by display name: each word of a user's display name, folded (app/services/accounts.py name_words), on the
-- user's own shard and written in the same transaction as the name. Search asks every place for words that start
-- with what was typed, as it asks for usernames. Names given before this migration are indexed by `main.py migrate`
-- (accounts.index_names_once).
CREATE TABLE name_words (
    word TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    PRIMARY KEY (word, user_id)
);
CREATE INDEX name_words_by_user ON name_words (user_id);
