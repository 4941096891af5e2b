use super::{conflict_on_unique, touched, Result, Store};
use app::models::policy::{PolicyKind, SyncState, SyncStatus};
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

/// A policy as stored: its kind, name and JSON spec (decoded by the caller, who knows the type).
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyRecord {
    pub kind: PolicyKind,
    pub name: String,
    pub spec: String,
    pub sync: SyncStatus,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// Inserts; a policy of the same kind and name is a conflict.
    async fn insert_policy(&self, p: &PolicyRecord) -> Result<()>;
    /// Replaces the spec (sync goes back to pending).
    async fn update_policy(&self, kind: PolicyKind, name: &str, spec: &str, now: i64) -> Result<()>;
    async fn list_policies(&self) -> Result<Vec<PolicyRecord>>;
    async fn delete_policy(&self, kind: PolicyKind, name: &str) -> Result<bool>;
    async fn set_policy_sync(&self, kind: PolicyKind, name: &str, sync: &SyncStatus) -> Result<()>;
}

fn from_row(r: &AnyRow) -> Result<PolicyRecord> {
    let kind: String = r.try_get("kind")?;
    let state: String = r.try_get("sync_state")?;
    Ok(PolicyRecord {
        kind: PolicyKind::parse(&kind).unwrap_or(PolicyKind::Strategy),
        name: r.try_get("name")?,
        spec: r.try_get("spec")?,
        sync: SyncStatus {
            state: SyncState::parse(&state),
            message: r.try_get("sync_message")?,
            at: r.try_get("synced_at")?,
        },
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

#[async_trait]
impl PolicyStore for Store {
    async fn insert_policy(&self, p: &PolicyRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO policies (kind, name, spec, sync_state, sync_message, synced_at, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(p.kind.as_str())
        .bind(&p.name)
        .bind(&p.spec)
        .bind(p.sync.state.as_str())
        .bind(&p.sync.message)
        .bind(p.sync.at)
        .bind(&p.created_by)
        .bind(p.created_at)
        .bind(p.updated_at)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_on_unique(e, || format!("a {} named {} already exists", p.kind.label(), p.name)))?;
        Ok(())
    }

    async fn update_policy(&self, kind: PolicyKind, name: &str, spec: &str, now: i64) -> Result<()> {
        let done = sqlx::query(
            "UPDATE policies SET spec = $1, sync_state = 'pending', sync_message = '', updated_at = $2 \
             WHERE kind = $3 AND name = $4",
        )
        .bind(spec)
        .bind(now)
        .bind(kind.as_str())
        .bind(name)
        .execute(&self.pool)
        .await?;
        touched(done)
    }

    async fn list_policies(&self) -> Result<Vec<PolicyRecord>> {
        let rows = sqlx::query(
            "SELECT kind, name, spec, sync_state, sync_message, synced_at, created_by, created_at, updated_at \
             FROM policies ORDER BY kind, name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    async fn delete_policy(&self, kind: PolicyKind, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM policies WHERE kind = $1 AND name = $2")
            .bind(kind.as_str())
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_policy_sync(&self, kind: PolicyKind, name: &str, sync: &SyncStatus) -> Result<()> {
        sqlx::query(
            "UPDATE policies SET sync_state = $1, sync_message = $2, synced_at = $3 WHERE kind = $4 AND name = $5",
        )
        .bind(sync.state.as_str())
        .bind(&sync.message)
        .bind(sync.at)
        .bind(kind.as_str())
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
