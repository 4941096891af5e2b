-- Per-key limits shared by every replica on PostgreSQL: one token bucket per key and limit
-- ("requests", "tokens"), refilled continuously at limit/60 per second. Replicas take small
-- leases from it; the level is in units of the limit and `at` is the database's clock in ms.
CREATE TABLE rate_buckets (
    key_id  TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    what    TEXT NOT NULL,
    level   DOUBLE PRECISION NOT NULL,
    at      BIGINT NOT NULL,
    PRIMARY KEY (key_id, what)
);
