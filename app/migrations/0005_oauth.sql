-- OAuth 2 for the client API (app/services/oauth.py). Portable SQL (SQLite and each Postgres shard schema); times
-- are Unix ms. Secrets (client secrets, codes, access and refresh tokens) are stored as their SHA-256 only: a copy of
-- the database lets nobody act as an app or a user. Each table's shard is said above it.

-- Apps registered with POST /api/v1/apps: on the shard hashed from client_id (the only way they are looked up).
-- redirect_uris one per line; scopes space-separated.
CREATE TABLE oauth_apps (
    client_id TEXT PRIMARY KEY,
    id BIGINT NOT NULL,
    secret_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    website TEXT NOT NULL DEFAULT '',
    redirect_uris TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Authorization codes: on the shard hashed from the code's hash. Single use (deleted when exchanged), short-lived.
-- code_challenge is the PKCE S256 challenge, NULL when the app sent none.
CREATE TABLE oauth_codes (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scopes TEXT NOT NULL,
    code_challenge TEXT,
    expires_at BIGINT NOT NULL
);

-- Access tokens: on the shard hashed from the token's hash, so every API request finds its token with one read.
-- user_id is NULL for a client_credentials token (the app acting for itself). session_epoch is the user's at
-- issue: a password change (which bumps it) ends the account's tokens with its sessions.
CREATE TABLE oauth_tokens (
    token_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    user_id BIGINT,
    scopes TEXT NOT NULL,
    session_epoch INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Refresh tokens: on the shard hashed from their hash; each names the access token it replaces.
CREATE TABLE oauth_refresh_tokens (
    refresh_hash TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- The user's side of every token they granted, on the user's shard: Settings -> Apps lists these and revokes an
-- app's tokens from them. Written before the token itself, so no working token is ever missing from the list.
CREATE TABLE oauth_grants (
    user_id BIGINT NOT NULL,
    token_hash TEXT NOT NULL,
    refresh_hash TEXT,
    client_id TEXT NOT NULL,
    app_name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, token_hash)
);
CREATE INDEX oauth_grants_by_app ON oauth_grants (user_id, client_id);
