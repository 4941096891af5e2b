use super::{conflict_on_unique, touched, Result, Store, StoreError};
use app::models::cluster::{NodeInfo, ZoneClass};
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterState {
    Registering,
    Registered,
    Failed,
}

impl ClusterState {
    fn as_str(self) -> &'static str {
        match self {
            ClusterState::Registering => "registering",
            ClusterState::Registered => "registered",
            ClusterState::Failed => "failed",
        }
    }
    fn parse(s: &str) -> ClusterState {
        match s {
            "registered" => ClusterState::Registered,
            "failed" => ClusterState::Failed,
            _ => ClusterState::Registering,
        }
    }
}

/// A registered cluster as stored. `credentials` is sealed (see `secrets`).
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterRecord {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub api_endpoint: String,
    pub zone_class: ZoneClass,
    pub region: String,
    pub zone: String,
    pub credentials: String,
    pub kubernetes_version: String,
    pub nodes: Vec<NodeInfo>,
    pub state: ClusterState,
    pub state_message: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[async_trait]
pub trait ClusterStore: Send + Sync {
    /// Inserts, or updates the row with the same name (registering again is an upsert).
    async fn upsert_cluster(&self, c: &ClusterRecord) -> Result<ClusterRecord>;
    async fn cluster_by_name(&self, name: &str) -> Result<Option<ClusterRecord>>;
    async fn list_clusters(&self) -> Result<Vec<ClusterRecord>>;
    async fn set_cluster_state(&self, name: &str, state: ClusterState, message: &str, now: i64) -> Result<()>;
    async fn delete_cluster(&self, name: &str) -> Result<bool>;
}

const COLUMNS: &str = "id, name, display_name, api_endpoint, zone_class, region, zone, credentials, kubernetes_version, nodes, state, state_message, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<ClusterRecord> {
    let zc: String = r.try_get("zone_class")?;
    let nodes: String = r.try_get("nodes")?;
    let state: String = r.try_get("state")?;
    Ok(ClusterRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        display_name: r.try_get("display_name")?,
        api_endpoint: r.try_get("api_endpoint")?,
        zone_class: ZoneClass::parse(&zc).map_err(|e| StoreError::Db(sqlx::Error::Decode(e.into())))?,
        region: r.try_get("region")?,
        zone: r.try_get("zone")?,
        credentials: r.try_get("credentials")?,
        kubernetes_version: r.try_get("kubernetes_version")?,
        nodes: serde_json::from_str(&nodes).map_err(|e| StoreError::Db(sqlx::Error::Decode(e.into())))?,
        state: ClusterState::parse(&state),
        state_message: r.try_get("state_message")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

#[async_trait]
impl ClusterStore for Store {
    async fn upsert_cluster(&self, c: &ClusterRecord) -> Result<ClusterRecord> {
        let nodes = serde_json::to_string(&c.nodes).unwrap_or_else(|_| "[]".into());
        // Portable upsert: both SQLite and PostgreSQL accept ON CONFLICT … DO UPDATE. The id and
        // creation time of an existing row are kept.
        sqlx::query(
            "INSERT INTO clusters (id, name, display_name, api_endpoint, zone_class, region, zone, credentials, kubernetes_version, nodes, state, state_message, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (name) DO UPDATE SET display_name = excluded.display_name, api_endpoint = excluded.api_endpoint, \
               zone_class = excluded.zone_class, region = excluded.region, zone = excluded.zone, credentials = excluded.credentials, \
               kubernetes_version = excluded.kubernetes_version, nodes = excluded.nodes, state = excluded.state, \
               state_message = excluded.state_message, updated_at = excluded.updated_at",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.display_name)
        .bind(&c.api_endpoint)
        .bind(c.zone_class.as_str())
        .bind(&c.region)
        .bind(&c.zone)
        .bind(&c.credentials)
        .bind(&c.kubernetes_version)
        .bind(nodes)
        .bind(c.state.as_str())
        .bind(&c.state_message)
        .bind(c.created_at)
        .bind(c.updated_at)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_on_unique(e, || format!("a cluster named {} already exists", c.name)))?;
        self.cluster_by_name(&c.name).await?.ok_or(StoreError::NotFound)
    }

    async fn cluster_by_name(&self, name: &str) -> Result<Option<ClusterRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM clusters WHERE name = $1");
        sqlx::query(&sql).bind(name).fetch_optional(&self.pool).await?.as_ref().map(from_row).transpose()
    }

    async fn list_clusters(&self) -> Result<Vec<ClusterRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM clusters ORDER BY name");
        sqlx::query(&sql).fetch_all(&self.pool).await?.iter().map(from_row).collect()
    }

    async fn set_cluster_state(&self, name: &str, state: ClusterState, message: &str, now: i64) -> Result<()> {
        touched(
            sqlx::query("UPDATE clusters SET state = $1, state_message = $2, updated_at = $3 WHERE name = $4")
                .bind(state.as_str())
                .bind(message)
                .bind(now)
                .bind(name)
                .execute(&self.pool)
                .await?,
        )
    }

    async fn delete_cluster(&self, name: &str) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM clusters WHERE name = $1").bind(name).execute(&self.pool).await?.rows_affected()
            > 0)
    }
}
