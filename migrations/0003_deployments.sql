-- Model deployments. `spec` is what the operator asked for (JSON); `state` is where applying it to
-- the hub stands; `observed` is the last status read back from the hub and members (JSON).
CREATE TABLE deployments (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    model         TEXT NOT NULL,
    runtime       TEXT NOT NULL,
    spec          TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('applying', 'applied', 'failed', 'deleting')),
    state_message TEXT NOT NULL DEFAULT '',
    stopped       BIGINT NOT NULL DEFAULT 0,
    observed      TEXT NOT NULL DEFAULT '{}',
    created_by    TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    applied_at    BIGINT NOT NULL DEFAULT 0
);

-- Model cache volumes: one hub PersistentVolumeClaim per (runtime, model), propagated to every
-- cluster that has run it, kept when deployments go so the next start skips the download.
CREATE TABLE model_caches (
    name          TEXT PRIMARY KEY,
    runtime       TEXT NOT NULL,
    model         TEXT NOT NULL,
    clusters      TEXT NOT NULL DEFAULT '[]',
    size_gi       BIGINT NOT NULL,
    storage_class TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (runtime, model)
);
