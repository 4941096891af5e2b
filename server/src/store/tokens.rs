use super::users::{UserRecord, UserStore};
use super::{Result, Store, StoreError};
use app::models::user::Role;
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

/// An access token as stored: the hash of the secret, never the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub token_hash: String,
    pub owner_id: String,
    /// Owner's username, filled by reads.
    pub owner: String,
    pub role: Role,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub created_at: i64,
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn insert_token(&self, t: &TokenRecord) -> Result<()>;
    /// Every token (with `owner_id`, only that user's), newest first.
    async fn list_tokens(&self, owner_id: Option<&str>) -> Result<Vec<TokenRecord>>;
    async fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>>;
    /// The token with this hash and its owner, if it is neither revoked nor expired and the
    /// owner is enabled.
    async fn token_user(&self, token_hash: &str, now: i64) -> Result<Option<(TokenRecord, UserRecord)>>;
    async fn revoke_token(&self, id: &str, at: i64) -> Result<()>;
    async fn touch_token(&self, id: &str, at: i64) -> Result<()>;
}

const COLUMNS: &str = "t.id, t.name, t.prefix, t.token_hash, t.owner_id, u.username AS owner_name, t.role, \
                       t.expires_at, t.revoked_at, t.last_used_at, t.created_at";
const FROM: &str = "FROM access_tokens t JOIN users u ON u.id = t.owner_id";

fn from_row(r: &AnyRow) -> Result<TokenRecord> {
    let role: String = r.try_get("role")?;
    Ok(TokenRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        token_hash: r.try_get("token_hash")?,
        owner_id: r.try_get("owner_id")?,
        owner: r.try_get("owner_name")?,
        role: Role::parse(&role).map_err(|e| StoreError::Db(sqlx::Error::Decode(e.into())))?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        last_used_at: r.try_get("last_used_at")?,
        created_at: r.try_get("created_at")?,
    })
}

#[async_trait]
impl TokenStore for Store {
    async fn insert_token(&self, t: &TokenRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO access_tokens (id, name, prefix, token_hash, owner_id, role, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&t.id)
        .bind(&t.name)
        .bind(&t.prefix)
        .bind(&t.token_hash)
        .bind(&t.owner_id)
        .bind(t.role.as_str())
        .bind(t.expires_at)
        .bind(t.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_tokens(&self, owner_id: Option<&str>) -> Result<Vec<TokenRecord>> {
        self.owned_rows(&format!("SELECT {COLUMNS} {FROM}"), "t", owner_id).await?.iter().map(from_row).collect()
    }

    async fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>> {
        self.row_by_id(&format!("SELECT {COLUMNS} {FROM}"), "t.id", id).await?.as_ref().map(from_row).transpose()
    }

    async fn token_user(&self, token_hash: &str, now: i64) -> Result<Option<(TokenRecord, UserRecord)>> {
        let sql = format!(
            "SELECT {COLUMNS} {FROM} WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > $2 \
             AND u.disabled = 0"
        );
        let Some(row) = sqlx::query(&sql).bind(token_hash).bind(now).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let token = from_row(&row)?;
        let user = self.user_by_id(&token.owner_id).await?.filter(|u| !u.disabled);
        Ok(user.map(|u| (token, u)))
    }

    async fn revoke_token(&self, id: &str, at: i64) -> Result<()> {
        self.revoke_row("access_tokens", id, at).await
    }

    async fn touch_token(&self, id: &str, at: i64) -> Result<()> {
        sqlx::query("UPDATE access_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
