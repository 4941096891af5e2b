-- Access tokens for scripts calling /api (Authorization: Bearer). Only the SHA-256 of a token is
-- kept; `prefix` is the part shown in lists. `role` is at most the owner's role when made, and
-- the owner's current role caps it again on every use.
CREATE TABLE access_tokens (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    owner_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role          TEXT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    last_used_at  BIGINT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX access_tokens_owner ON access_tokens (owner_id);
