//! Operations on the database as a whole: consistent backups and re-encrypting credentials.
use super::{Backend, Result, Store, StoreError};
use sqlx::Row;
use std::path::Path;

impl Store {
    /// A consistent copy of the SQLite database at `to`, taken while H-MAS runs (`VACUUM INTO`
    /// reads one snapshot). PostgreSQL has its own tools (pg_dump); this refuses it.
    pub async fn backup_to(&self, to: &Path) -> Result<()> {
        if self.backend() != Backend::Sqlite {
            return Err(StoreError::Conflict(
                "the database is PostgreSQL: back it up with pg_dump (docs/operations.md)".into(),
            ));
        }
        if to.exists() {
            return Err(StoreError::Conflict(format!("{} exists; choose a new file", to.display())));
        }
        sqlx::query("VACUUM INTO $1").bind(to.display().to_string()).execute(&self.pool).await?;
        // A backup holds everything the database does: private whatever the caller's umask.
        crate::secrets::make_private(to).map_err(|e| StoreError::Conflict(format!("{}: {e}", to.display())))?;
        Ok(())
    }

    /// Replaces every cluster's sealed credentials with `reseal(old)`, all or nothing: one value
    /// that cannot be re-sealed (e.g. the current key is wrong) leaves every row as it was.
    pub async fn reseal_credentials(&self, reseal: impl Fn(&str, &str) -> Result<String, String>) -> Result<usize> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query("SELECT name, credentials FROM clusters ORDER BY name").fetch_all(&mut *tx).await?;
        for r in &rows {
            let name: String = r.try_get("name")?;
            let sealed: String = r.try_get("credentials")?;
            let new = reseal(&name, &sealed).map_err(|e| StoreError::Conflict(format!("cluster {name}: {e}")))?;
            sqlx::query("UPDATE clusters SET credentials = $1 WHERE name = $2")
                .bind(new)
                .bind(&name)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }
}
