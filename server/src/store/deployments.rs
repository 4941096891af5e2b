use super::{conflict_on_unique, touched, Result, Store, StoreError};
use app::models::deployment::{DeploySpec, ObservedStatus};
use app::models::runtime::RuntimeKind;
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

/// Where applying a deployment to the hub stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyState {
    /// The row is written; the hub objects are being (or must be) applied.
    Applying,
    Applied,
    /// Applying failed; nothing retries until the operator redeploys.
    Failed,
    /// The hub objects are being (or must be) removed; the row goes last.
    Deleting,
}

impl ApplyState {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyState::Applying => "applying",
            ApplyState::Applied => "applied",
            ApplyState::Failed => "failed",
            ApplyState::Deleting => "deleting",
        }
    }
    fn parse(s: &str) -> ApplyState {
        match s {
            "applied" => ApplyState::Applied,
            "failed" => ApplyState::Failed,
            "deleting" => ApplyState::Deleting,
            _ => ApplyState::Applying,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct DeploymentRecord {
    pub id: String,
    pub name: String,
    pub spec: DeploySpec,
    pub state: ApplyState,
    pub state_message: String,
    pub stopped: bool,
    pub observed: ObservedStatus,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub applied_at: i64,
    /// Bumped by every change of the spec and by deletion (see migration 0007).
    pub generation: i64,
    /// A deletion that also removes the model cache when no other deployment uses it.
    pub delete_cache: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CacheRecord {
    pub name: String,
    pub runtime: RuntimeKind,
    pub model: String,
    pub clusters: Vec<String>,
    pub size_gi: i64,
    pub storage_class: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[async_trait]
pub trait DeploymentStore: Send + Sync {
    async fn insert_deployment(&self, d: &DeploymentRecord) -> Result<()>;
    async fn deployment_by_name(&self, name: &str) -> Result<Option<DeploymentRecord>>;
    async fn list_deployments(&self) -> Result<Vec<DeploymentRecord>>;
    /// Replaces spec and stop flag (redeploy, stop, start) and sets the apply state.
    async fn update_deployment_spec(&self, name: &str, spec: &DeploySpec, stopped: bool, now: i64) -> Result<()>;
    async fn set_deployment_state(&self, name: &str, state: ApplyState, message: &str, now: i64) -> Result<()>;
    /// Records the outcome of applying (or failing to delete) the row as it was at `generation`;
    /// false, and nothing written, when the row changed since.
    async fn record_outcome(
        &self,
        name: &str,
        generation: i64,
        state: ApplyState,
        message: &str,
        now: i64,
    ) -> Result<bool>;
    /// Marks the row for deletion (a new generation), remembering whether its cache goes too.
    async fn mark_deleting(&self, name: &str, delete_cache: bool, message: &str, now: i64) -> Result<()>;
    /// Stores what the observer saw; only when it changed, so an idle system does not write.
    async fn set_deployment_observed(&self, name: &str, observed: &ObservedStatus, now: i64) -> Result<()>;
    async fn delete_deployment(&self, name: &str) -> Result<bool>;

    async fn cache_for(&self, runtime: RuntimeKind, model: &str) -> Result<Option<CacheRecord>>;
    async fn list_caches(&self) -> Result<Vec<CacheRecord>>;
    async fn upsert_cache(&self, c: &CacheRecord) -> Result<()>;
    async fn delete_cache(&self, name: &str) -> Result<bool>;
}

const COLUMNS: &str =
    "id, name, spec, state, state_message, stopped, observed, created_by, created_at, updated_at, applied_at, \
     generation, delete_cache";

fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Db(sqlx::Error::Decode(e.into())))
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
}

fn from_row(r: &AnyRow) -> Result<DeploymentRecord> {
    let observed: String = r.try_get("observed")?;
    Ok(DeploymentRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        spec: decode(&r.try_get::<String, _>("spec")?)?,
        state: ApplyState::parse(&r.try_get::<String, _>("state")?),
        state_message: r.try_get("state_message")?,
        stopped: r.try_get::<i64, _>("stopped")? != 0,
        observed: serde_json::from_str(&observed).unwrap_or_default(),
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        applied_at: r.try_get("applied_at")?,
        generation: r.try_get("generation")?,
        delete_cache: r.try_get::<i64, _>("delete_cache")? != 0,
    })
}

fn cache_from_row(r: &AnyRow) -> Result<CacheRecord> {
    let runtime: String = r.try_get("runtime")?;
    Ok(CacheRecord {
        name: r.try_get("name")?,
        runtime: RuntimeKind::parse(&runtime)
            .ok_or_else(|| StoreError::Db(sqlx::Error::Decode(format!("unknown runtime {runtime}").into())))?,
        model: r.try_get("model")?,
        clusters: decode(&r.try_get::<String, _>("clusters")?)?,
        size_gi: r.try_get("size_gi")?,
        storage_class: r.try_get("storage_class")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

#[async_trait]
impl DeploymentStore for Store {
    async fn insert_deployment(&self, d: &DeploymentRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO deployments (id, name, model, runtime, spec, state, state_message, stopped, observed, created_by, created_at, updated_at, applied_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&d.id)
        .bind(&d.name)
        .bind(&d.spec.model)
        .bind(d.spec.runtime.as_str())
        .bind(json(&d.spec))
        .bind(d.state.as_str())
        .bind(&d.state_message)
        .bind(d.stopped as i64)
        .bind(json(&d.observed))
        .bind(&d.created_by)
        .bind(d.created_at)
        .bind(d.updated_at)
        .bind(d.applied_at)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_on_unique(e, || format!("a deployment named {} already exists", d.name)))?;
        Ok(())
    }

    async fn deployment_by_name(&self, name: &str) -> Result<Option<DeploymentRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM deployments WHERE name = $1");
        sqlx::query(&sql).bind(name).fetch_optional(&self.pool).await?.as_ref().map(from_row).transpose()
    }

    async fn list_deployments(&self) -> Result<Vec<DeploymentRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM deployments ORDER BY created_at DESC, name");
        sqlx::query(&sql).fetch_all(&self.pool).await?.iter().map(from_row).collect()
    }

    async fn update_deployment_spec(&self, name: &str, spec: &DeploySpec, stopped: bool, now: i64) -> Result<()> {
        touched(
            sqlx::query(
                "UPDATE deployments SET spec = $1, model = $2, runtime = $3, stopped = $4, state = 'applying', state_message = '', \
                 updated_at = $5, generation = generation + 1 WHERE name = $6 AND state <> 'deleting'",
            )
            .bind(json(spec))
            .bind(&spec.model)
            .bind(spec.runtime.as_str())
            .bind(stopped as i64)
            .bind(now)
            .bind(name)
            .execute(&self.pool)
            .await?,
        )
    }

    async fn set_deployment_state(&self, name: &str, state: ApplyState, message: &str, now: i64) -> Result<()> {
        let applied_at = if state == ApplyState::Applied { now } else { 0 };
        touched(
            sqlx::query(
                "UPDATE deployments SET state = $1, state_message = $2, updated_at = $3, \
                 applied_at = CASE WHEN $4 > 0 THEN $4 ELSE applied_at END WHERE name = $5",
            )
            .bind(state.as_str())
            .bind(message)
            .bind(now)
            .bind(applied_at)
            .bind(name)
            .execute(&self.pool)
            .await?,
        )
    }

    async fn record_outcome(
        &self,
        name: &str,
        generation: i64,
        state: ApplyState,
        message: &str,
        now: i64,
    ) -> Result<bool> {
        let applied_at = if state == ApplyState::Applied { now } else { 0 };
        let done = sqlx::query(
            "UPDATE deployments SET state = $1, state_message = $2, updated_at = $3, \
             applied_at = CASE WHEN $4 > 0 THEN $4 ELSE applied_at END WHERE name = $5 AND generation = $6",
        )
        .bind(state.as_str())
        .bind(message)
        .bind(now)
        .bind(applied_at)
        .bind(name)
        .bind(generation)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn mark_deleting(&self, name: &str, delete_cache: bool, message: &str, now: i64) -> Result<()> {
        touched(
            sqlx::query(
                "UPDATE deployments SET state = 'deleting', state_message = $1, updated_at = $2, \
                 generation = generation + 1, delete_cache = CASE WHEN $3 > 0 THEN 1 ELSE delete_cache END WHERE name = $4",
            )
            .bind(message)
            .bind(now)
            .bind(delete_cache as i64)
            .bind(name)
            .execute(&self.pool)
            .await?,
        )
    }

    async fn set_deployment_observed(&self, name: &str, observed: &ObservedStatus, now: i64) -> Result<()> {
        sqlx::query("UPDATE deployments SET observed = $1, updated_at = $2 WHERE name = $3 AND observed <> $1")
            .bind(json(observed))
            .bind(now)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_deployment(&self, name: &str) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM deployments WHERE name = $1").bind(name).execute(&self.pool).await?.rows_affected()
            > 0)
    }

    async fn cache_for(&self, runtime: RuntimeKind, model: &str) -> Result<Option<CacheRecord>> {
        sqlx::query("SELECT * FROM model_caches WHERE runtime = $1 AND model = $2")
            .bind(runtime.as_str())
            .bind(model)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(cache_from_row)
            .transpose()
    }

    async fn list_caches(&self) -> Result<Vec<CacheRecord>> {
        sqlx::query("SELECT * FROM model_caches ORDER BY name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(cache_from_row)
            .collect()
    }

    async fn upsert_cache(&self, c: &CacheRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO model_caches (name, runtime, model, clusters, size_gi, storage_class, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (name) DO UPDATE SET clusters = excluded.clusters, size_gi = excluded.size_gi, \
               storage_class = excluded.storage_class, updated_at = excluded.updated_at",
        )
        .bind(&c.name)
        .bind(c.runtime.as_str())
        .bind(&c.model)
        .bind(json(&c.clusters))
        .bind(c.size_gi)
        .bind(&c.storage_class)
        .bind(c.created_at)
        .bind(c.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_cache(&self, name: &str) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM model_caches WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?
            .rows_affected()
            > 0)
    }
}
