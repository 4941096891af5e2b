use super::{Result, Store, StoreError};
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

/// An API key as stored: the hash of the secret, never the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub owner_id: String,
    /// Owner's username, filled by reads.
    pub owner: String,
    pub scope: Option<Vec<String>>,
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub created_at: i64,
    /// Whether the owner's account is disabled, filled by reads.
    pub owner_disabled: bool,
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn insert_key(&self, k: &ApiKeyRecord) -> Result<()>;
    /// Every key (with `owner_id`, only that user's), newest first.
    async fn list_keys(&self, owner_id: Option<&str>) -> Result<Vec<ApiKeyRecord>>;
    async fn key_by_id(&self, id: &str) -> Result<Option<ApiKeyRecord>>;
    async fn revoke_key(&self, id: &str, at: i64) -> Result<()>;
    /// Records when keys were last used (one statement per key, batched by the caller).
    async fn touch_keys(&self, used: &[(String, i64)]) -> Result<()>;
}

const COLUMNS: &str = "k.id, k.name, k.prefix, k.key_hash, k.owner_id, u.username, k.scope, k.rpm, k.tpm, \
                       k.expires_at, k.revoked_at, k.last_used_at, k.created_at, u.disabled";

fn from_row(r: &AnyRow) -> Result<ApiKeyRecord> {
    let scope: Option<String> = r.try_get("scope")?;
    let scope = match scope {
        Some(s) => Some(serde_json::from_str(&s).map_err(|e| StoreError::Db(sqlx::Error::Decode(e.into())))?),
        None => None,
    };
    let limit = |c: &str| -> Result<Option<u32>> { Ok(r.try_get::<Option<i64>, _>(c)?.map(|v| v as u32)) };
    Ok(ApiKeyRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        key_hash: r.try_get("key_hash")?,
        owner_id: r.try_get("owner_id")?,
        owner: r.try_get("username")?,
        scope,
        rpm: limit("rpm")?,
        tpm: limit("tpm")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        last_used_at: r.try_get("last_used_at")?,
        created_at: r.try_get("created_at")?,
        owner_disabled: r.try_get::<i64, _>("disabled")? != 0,
    })
}

#[async_trait]
impl KeyStore for Store {
    async fn insert_key(&self, k: &ApiKeyRecord) -> Result<()> {
        let scope = k.scope.as_ref().map(|s| serde_json::to_string(s).unwrap_or_default());
        sqlx::query(
            "INSERT INTO api_keys (id, name, prefix, key_hash, owner_id, scope, rpm, tpm, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&k.id)
        .bind(&k.name)
        .bind(&k.prefix)
        .bind(&k.key_hash)
        .bind(&k.owner_id)
        .bind(scope)
        .bind(k.rpm.map(i64::from))
        .bind(k.tpm.map(i64::from))
        .bind(k.expires_at)
        .bind(k.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_keys(&self, owner_id: Option<&str>) -> Result<Vec<ApiKeyRecord>> {
        let select = format!("SELECT {COLUMNS} FROM api_keys k JOIN users u ON u.id = k.owner_id");
        self.owned_rows(&select, "k", owner_id).await?.iter().map(from_row).collect()
    }

    async fn key_by_id(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        let select = format!("SELECT {COLUMNS} FROM api_keys k JOIN users u ON u.id = k.owner_id");
        self.row_by_id(&select, "k.id", id).await?.as_ref().map(from_row).transpose()
    }

    async fn revoke_key(&self, id: &str, at: i64) -> Result<()> {
        self.revoke_row("api_keys", id, at).await
    }

    async fn touch_keys(&self, used: &[(String, i64)]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for (id, at) in used {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                .bind(*at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
