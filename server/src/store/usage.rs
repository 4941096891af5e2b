use super::{Result, Store};
use async_trait::async_trait;
use sqlx::Row;

/// Counts to add to one (minute, key, user, deployment) row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageDelta {
    pub minute: i64,
    pub key_id: String,
    pub user_id: String,
    pub deployment: String,
    pub requests: i64,
    pub errors: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogRecord {
    pub id: String,
    pub at: i64,
    pub key_id: String,
    pub user_id: String,
    pub deployment: String,
    pub model: String,
    pub path: String,
    pub status: u16,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub stream: bool,
    pub outcome: String,
}

/// Sums over a bucket (`t` is the bucket's start) or over a group (`t` is 0, `group` names it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageSum {
    pub t: i64,
    pub group: String,
    pub requests: i64,
    pub errors: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageGroup {
    Time { bucket_ms: i64 },
    Key,
    Deployment,
}

#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Adds usage and appends log rows, in one transaction.
    async fn record_usage(&self, usage: &[UsageDelta], log: &[LogRecord]) -> Result<()>;
    /// Usage in `[from, to)`, of one user's keys and playground if `user_id` is given.
    async fn usage(&self, from: i64, to: i64, user_id: Option<&str>, group: UsageGroup) -> Result<Vec<UsageSum>>;
    /// The newest log rows, of one user's if given.
    async fn request_log(&self, user_id: Option<&str>, limit: i64) -> Result<Vec<LogRecord>>;
    /// Drops log rows and usage older than `before`.
    async fn prune_usage(&self, before: i64) -> Result<u64>;
}

/// Rows per INSERT of the request log. PostgreSQL: 14 columns × 64 rows stays under its parameter
/// limit. SQLite looks each of a statement's parameters up by a linear scan of them all, so a
/// statement's binding grows with the square of its parameters: 8 rows (112) cost a sixth per row
/// of what 64 do (measured: 9 % of the gateway's CPU at 64).
fn log_rows_per_insert(backend: super::Backend) -> usize {
    match backend {
        super::Backend::Postgres => 64,
        super::Backend::Sqlite => 8,
    }
}

const SUMS: &str = "CAST(SUM(requests) AS BIGINT) AS requests, CAST(SUM(errors) AS BIGINT) AS errors, \
                    CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens, \
                    CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens";

#[async_trait]
impl UsageStore for Store {
    async fn record_usage(&self, usage: &[UsageDelta], log: &[LogRecord]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for u in usage {
            sqlx::query(
                "INSERT INTO usage_minutes (minute, key_id, user_id, deployment, requests, errors, prompt_tokens, completion_tokens) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (minute, key_id, user_id, deployment) DO UPDATE SET \
                 requests = usage_minutes.requests + excluded.requests, errors = usage_minutes.errors + excluded.errors, \
                 prompt_tokens = usage_minutes.prompt_tokens + excluded.prompt_tokens, \
                 completion_tokens = usage_minutes.completion_tokens + excluded.completion_tokens",
            )
            .bind(u.minute)
            .bind(&u.key_id)
            .bind(&u.user_id)
            .bind(&u.deployment)
            .bind(u.requests)
            .bind(u.errors)
            .bind(u.prompt_tokens)
            .bind(u.completion_tokens)
            .execute(&mut *tx)
            .await?;
        }
        // Many rows per statement: at thousands of requests a second, one statement each costs
        // more than the requests themselves.
        for chunk in log.chunks(log_rows_per_insert(self.backend())) {
            let values = (0..chunk.len())
                .map(|r| {
                    let p: Vec<String> = (1..=14).map(|c| format!("${}", r * 14 + c)).collect();
                    format!("({})", p.join(", "))
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO request_log (id, at, key_id, user_id, deployment, model, path, status, latency_ms, ttft_ms, \
                 prompt_tokens, completion_tokens, stream, outcome) VALUES {values}"
            );
            let mut q = sqlx::query(&sql);
            for l in chunk {
                q = q
                    .bind(&l.id)
                    .bind(l.at)
                    .bind(&l.key_id)
                    .bind(&l.user_id)
                    .bind(&l.deployment)
                    .bind(&l.model)
                    .bind(&l.path)
                    .bind(i64::from(l.status))
                    .bind(l.latency_ms)
                    .bind(l.ttft_ms)
                    .bind(l.prompt_tokens)
                    .bind(l.completion_tokens)
                    .bind(i64::from(l.stream))
                    .bind(&l.outcome);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn usage(&self, from: i64, to: i64, user_id: Option<&str>, group: UsageGroup) -> Result<Vec<UsageSum>> {
        // Grouping expressions are built from integers and fixed column names only.
        let (key, order) = match group {
            UsageGroup::Time { bucket_ms } => (format!("(minute / {0}) * {0}", bucket_ms.max(60_000)), "g"),
            UsageGroup::Key => ("key_id".to_string(), "requests DESC"),
            UsageGroup::Deployment => ("deployment".to_string(), "requests DESC"),
        };
        let filter = if user_id.is_some() { " AND user_id = $3" } else { "" };
        let sql = format!(
            "SELECT {key} AS g, {SUMS} FROM usage_minutes WHERE minute >= $1 AND minute < $2{filter} \
             GROUP BY {key} ORDER BY {order}"
        );
        let mut q = sqlx::query(&sql).bind(from).bind(to);
        if let Some(u) = user_id {
            q = q.bind(u);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let (t, g) = match group {
                    UsageGroup::Time { .. } => (r.try_get::<i64, _>("g")?, String::new()),
                    _ => (0, r.try_get::<String, _>("g")?),
                };
                Ok(UsageSum {
                    t,
                    group: g,
                    requests: r.try_get("requests")?,
                    errors: r.try_get("errors")?,
                    prompt_tokens: r.try_get("prompt_tokens")?,
                    completion_tokens: r.try_get("completion_tokens")?,
                })
            })
            .collect()
    }

    async fn request_log(&self, user_id: Option<&str>, limit: i64) -> Result<Vec<LogRecord>> {
        let filter = if user_id.is_some() { "WHERE user_id = $2" } else { "" };
        let sql = format!(
            "SELECT id, at, key_id, user_id, deployment, model, path, status, latency_ms, ttft_ms, prompt_tokens, \
             completion_tokens, stream, outcome FROM request_log {filter} ORDER BY at DESC LIMIT $1"
        );
        let mut q = sqlx::query(&sql).bind(limit);
        if let Some(u) = user_id {
            q = q.bind(u);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(LogRecord {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    key_id: r.try_get("key_id")?,
                    user_id: r.try_get("user_id")?,
                    deployment: r.try_get("deployment")?,
                    model: r.try_get("model")?,
                    path: r.try_get("path")?,
                    status: r.try_get::<i64, _>("status")? as u16,
                    latency_ms: r.try_get("latency_ms")?,
                    ttft_ms: r.try_get("ttft_ms")?,
                    prompt_tokens: r.try_get("prompt_tokens")?,
                    completion_tokens: r.try_get("completion_tokens")?,
                    stream: r.try_get::<i64, _>("stream")? != 0,
                    outcome: r.try_get("outcome")?,
                })
            })
            .collect()
    }

    async fn prune_usage(&self, before: i64) -> Result<u64> {
        let a = sqlx::query("DELETE FROM request_log WHERE at < $1").bind(before).execute(&self.pool).await?;
        let b = sqlx::query("DELETE FROM usage_minutes WHERE minute < $1").bind(before).execute(&self.pool).await?;
        Ok(a.rows_affected() + b.rows_affected())
    }
}
