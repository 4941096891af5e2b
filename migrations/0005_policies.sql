-- Placement strategies, resource profiles and failover policies. `spec` is the policy as the
-- operator wrote it (JSON); the sync columns say whether the hub holds what it implies.
CREATE TABLE policies (
    kind         TEXT NOT NULL CHECK (kind IN ('strategy', 'profile', 'failover')),
    name         TEXT NOT NULL,
    spec         TEXT NOT NULL,
    sync_state   TEXT NOT NULL DEFAULT 'pending' CHECK (sync_state IN ('pending', 'in_sync', 'error')),
    sync_message TEXT NOT NULL DEFAULT '',
    synced_at    BIGINT NOT NULL DEFAULT 0,
    created_by   TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);
