//! The per-key token buckets every replica shares on PostgreSQL (migration 0008).
use super::{Result, Store};
use async_trait::async_trait;
use sqlx::Row;

/// What a lease got: `granted` units taken from the bucket, and the level left after.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lease {
    pub granted: f64,
    pub left: f64,
}

#[async_trait]
pub trait LimitStore: Send + Sync {
    /// Takes up to `want` whole units from the bucket of `key_id`/`what` (refilled first at
    /// `limit` per minute, capped at `limit`; a new bucket starts full). PostgreSQL only.
    async fn lease(&self, key_id: &str, what: &str, limit: u32, want: f64) -> Result<Lease>;
}

// The row is locked while it is refilled and taken from, by the database's clock, so replicas
// on skewed clocks agree and concurrent leases queue on the row instead of overdrawing it.
const LEASE: &str = "WITH now AS (SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT AS ms), \
    cur AS (SELECT b.key_id, b.what, \
              LEAST($3::float8, b.level + GREATEST(0, now.ms - b.at) * $3::float8 / 60000.0) AS lvl, now.ms \
            FROM rate_buckets b, now WHERE b.key_id = $1 AND b.what = $2 FOR UPDATE OF b), \
    g AS (SELECT cur.*, LEAST($4::float8, GREATEST(0, FLOOR(cur.lvl))) AS granted FROM cur) \
    UPDATE rate_buckets r SET level = g.lvl - g.granted, at = g.ms FROM g \
    WHERE r.key_id = g.key_id AND r.what = g.what RETURNING g.granted, r.level";

#[async_trait]
impl LimitStore for Store {
    async fn lease(&self, key_id: &str, what: &str, limit: u32, want: f64) -> Result<Lease> {
        let limit = f64::from(limit);
        for _ in 0..2 {
            let row =
                sqlx::query(LEASE).bind(key_id).bind(what).bind(limit).bind(want).fetch_optional(&self.pool).await?;
            if let Some(row) = row {
                return Ok(Lease { granted: row.try_get("granted")?, left: row.try_get("level")? });
            }
            sqlx::query(
                "INSERT INTO rate_buckets (key_id, what, level, at) \
                 VALUES ($1, $2, $3, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT) ON CONFLICT DO NOTHING",
            )
            .bind(key_id)
            .bind(what)
            .bind(limit)
            .execute(&self.pool)
            .await?;
        }
        Err(super::StoreError::NotFound)
    }
}
