-- API keys for the inference gateway. Only the SHA-256 of a key is kept; `prefix` is the part
-- shown in lists so owners can tell keys apart. `scope` is a JSON list of deployment names, or
-- NULL for every deployment.
CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    owner_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    scope         TEXT,
    rpm           BIGINT,
    tpm           BIGINT,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    last_used_at  BIGINT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX api_keys_owner ON api_keys (owner_id);

-- Usage per minute, key and deployment. `key_id` is '' for the playground (a signed-in user
-- rather than a key); `user_id` says whose.
CREATE TABLE usage_minutes (
    minute            BIGINT NOT NULL,
    key_id            TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    deployment        TEXT NOT NULL,
    requests          BIGINT NOT NULL DEFAULT 0,
    errors            BIGINT NOT NULL DEFAULT 0,
    prompt_tokens     BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, key_id, user_id, deployment)
);
CREATE INDEX usage_minutes_key ON usage_minutes (key_id, minute);

-- One row per gateway request; no prompt or answer bodies.
CREATE TABLE request_log (
    id                TEXT PRIMARY KEY,
    at                BIGINT NOT NULL,
    key_id            TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    deployment        TEXT NOT NULL,
    model             TEXT NOT NULL,
    path              TEXT NOT NULL,
    status            BIGINT NOT NULL,
    latency_ms        BIGINT NOT NULL,
    ttft_ms           BIGINT,
    prompt_tokens     BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    stream            BIGINT NOT NULL DEFAULT 0,
    outcome           TEXT NOT NULL
);
CREATE INDEX request_log_at ON request_log (at);
CREATE INDEX request_log_key ON request_log (key_id, at);
