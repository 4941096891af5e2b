-- Any replica stores a change; only the leader's reconciler applies it. `generation` counts the
-- changes to a row's spec (and its deletion), so the reconciler records an outcome only for the
-- change it applied: one stored meanwhile stays "applying" for the next pass instead of being
-- marked applied unseen. `delete_cache` is what the operator asked of a deletion, kept for
-- whichever replica finishes it.
ALTER TABLE deployments ADD COLUMN generation BIGINT NOT NULL DEFAULT 1;
ALTER TABLE deployments ADD COLUMN delete_cache BIGINT NOT NULL DEFAULT 0;
