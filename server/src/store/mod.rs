//! The database: the source of truth for everything H-MAS owns. One trait per domain over H-MAS
//! models, one sqlx implementation over `AnyPool` with portable SQL, so SQLite (embedded default)
//! and PostgreSQL share every query. See docs/architecture.md for why.

mod clusters;
mod deployments;
mod keys;
mod limits;
mod maintenance;
mod policies;
mod sessions;
mod tokens;
mod usage;
mod users;

pub use clusters::{ClusterRecord, ClusterState, ClusterStore};
pub use deployments::{ApplyState, CacheRecord, DeploymentRecord, DeploymentStore};
pub use keys::{ApiKeyRecord, KeyStore};
pub use limits::{Lease, LimitStore};
pub use policies::{PolicyRecord, PolicyStore};
pub use sessions::SessionStore;
pub use tokens::{TokenRecord, TokenStore};
pub use usage::{LogRecord, UsageDelta, UsageGroup, UsageStore, UsageSum};
pub use users::{UserRecord, UserStore};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

impl Store {
    /// Connects to `sqlite://…` or `postgres://…`; a SQLite file is created if missing.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Db(sqlx::Error::Configuration(
                "database URL must start with sqlite: or postgres:".into(),
            )));
        };
        let url = if backend == Backend::Sqlite && !url.contains("mode=") {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        } else {
            url.to_string()
        };
        let opts = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 10 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers proceed during a write; foreign keys are on by default in sqlx.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        if backend == Backend::Sqlite {
            restrict_sqlite_files(&url);
        }
        Ok(Store { pool, backend })
    }

    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// For readiness: can we run a query right now.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// A statement without parameters or results (administration: tests, maintenance).
    pub async fn execute_raw(&self, sql: &str) -> Result<()> {
        self.pool.execute(sql).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The rows of `select` (a query without WHERE over a table aliased `t` with `owner_id` and
    /// `created_at`) for one owner or all, newest first: how keys and tokens are listed to their
    /// owner or an admin.
    pub(crate) async fn owned_rows(
        &self,
        select: &str,
        t: &str,
        owner: Option<&str>,
    ) -> Result<Vec<sqlx::any::AnyRow>> {
        Ok(match owner {
            Some(o) => {
                sqlx::query(&format!("{select} WHERE {t}.owner_id = $1 ORDER BY {t}.created_at DESC"))
                    .bind(o)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => sqlx::query(&format!("{select} ORDER BY {t}.created_at DESC")).fetch_all(&self.pool).await?,
        })
    }

    /// The row of `select` (a query without WHERE) whose `id_col` is `id`.
    pub(crate) async fn row_by_id(&self, select: &str, id_col: &str, id: &str) -> Result<Option<sqlx::any::AnyRow>> {
        Ok(sqlx::query(&format!("{select} WHERE {id_col} = $1")).bind(id).fetch_optional(&self.pool).await?)
    }

    /// `NOTIFY channel, payload` (PostgreSQL).
    pub(crate) async fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)").bind(channel).bind(payload).execute(&self.pool).await?;
        Ok(())
    }

    /// Marks row `id` of `table` revoked at `at`; `NotFound` when no such row is still unrevoked.
    pub(crate) async fn revoke_row(&self, table: &str, id: &str, at: i64) -> Result<()> {
        touched(
            sqlx::query(&format!("UPDATE {table} SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL"))
                .bind(at)
                .bind(id)
                .execute(&self.pool)
                .await?,
        )
    }
}

/// A database created before files were made private (or under a lax umask) is made so now:
/// the file, its WAL and shared-memory index.
fn restrict_sqlite_files(url: &str) {
    let Some(path) = sqlite_file(url) else { return };
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = crate::secrets::make_private(std::path::Path::new(&p));
    }
}

/// The file of a `sqlite:` URL; `None` for an in-memory database or another kind of URL.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let path = url.strip_prefix("sqlite:")?;
    let path = path.trim_start_matches("//").split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

/// Maps a unique-constraint violation to `Conflict` with a message for humans.
pub(crate) fn conflict_on_unique(e: sqlx::Error, message: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(message()),
        _ => StoreError::Db(e),
    }
}

/// An update that matched no row means the row is not there.
pub(crate) fn touched(done: sqlx::any::AnyQueryResult) -> Result<()> {
    if done.rows_affected() == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
