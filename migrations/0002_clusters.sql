-- Member clusters H-MAS registered in the hub. Credentials are encrypted (see server/src/secrets.rs);
-- nodes and GPUs are JSON as last read from the member.
CREATE TABLE clusters (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    display_name       TEXT NOT NULL,
    api_endpoint       TEXT NOT NULL,
    zone_class         TEXT NOT NULL CHECK (zone_class IN ('a', 'b')),
    region             TEXT NOT NULL DEFAULT '',
    zone               TEXT NOT NULL DEFAULT '',
    credentials        TEXT NOT NULL,
    kubernetes_version TEXT NOT NULL DEFAULT '',
    nodes              TEXT NOT NULL DEFAULT '[]',
    state              TEXT NOT NULL CHECK (state IN ('registering', 'registered', 'failed')),
    state_message      TEXT NOT NULL DEFAULT '',
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
