use super::users::{user_from_row, UserRecord, USER_COLUMNS};
use super::{Result, Store};
use async_trait::async_trait;

/// Sessions are stored by the hash of their token: a copy of the database does not sign anyone in.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, token_hash: &str, user_id: &str, now: i64, expires_at: i64) -> Result<()>;
    /// The session's user, if the session exists, has not expired and the user is enabled.
    async fn session_user(&self, token_hash: &str, now: i64) -> Result<Option<UserRecord>>;
    async fn delete_session(&self, token_hash: &str) -> Result<()>;
    async fn delete_user_sessions(&self, user_id: &str) -> Result<u64>;
    async fn purge_expired_sessions(&self, now: i64) -> Result<u64>;
}

#[async_trait]
impl SessionStore for Store {
    async fn insert_session(&self, token_hash: &str, user_id: &str, now: i64, expires_at: i64) -> Result<()> {
        sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash)
            .bind(user_id)
            .bind(now)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn session_user(&self, token_hash: &str, now: i64) -> Result<Option<UserRecord>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled = 0"
        );
        sqlx::query(&sql)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(&self.pool).await?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user_id: &str) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn purge_expired_sessions(&self, now: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
