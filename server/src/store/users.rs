use super::{conflict_on_unique, Result, Store, StoreError};
use app::models::user::{Role, UserView};
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

/// A user as stored: the only place the password hash lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
}

impl UserRecord {
    pub fn view(&self) -> UserView {
        UserView {
            id: self.id.clone(),
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            role: self.role,
            disabled: self.disabled,
            created_at: self.created_at,
            last_login_at: self.last_login_at,
        }
    }
}

#[async_trait]
pub trait UserStore: Send + Sync {
    async fn insert_user(&self, u: &UserRecord) -> Result<()>;
    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>>;
    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>>;
    async fn list_users(&self) -> Result<Vec<UserRecord>>;
    async fn count_users(&self) -> Result<i64>;
    /// Changes role, or enables/disables. Refused with `Conflict` when it would leave no active admin.
    async fn update_access(&self, id: &str, role: Role, disabled: bool, now: i64) -> Result<UserRecord>;
    async fn set_password_hash(&self, id: &str, hash: &str, now: i64) -> Result<()>;
    async fn touch_login(&self, id: &str, now: i64) -> Result<()>;
}

pub(super) const USER_COLUMNS: &str =
    "u.id, u.username, u.display_name, u.role, u.password_hash, u.disabled, u.created_at, u.updated_at, u.last_login_at";

pub(super) fn user_from_row(r: &AnyRow) -> Result<UserRecord> {
    let role: String = r.try_get("role")?;
    Ok(UserRecord {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        display_name: r.try_get("display_name")?,
        role: Role::parse(&role).map_err(|e| StoreError::Db(sqlx::Error::Decode(e.into())))?,
        password_hash: r.try_get("password_hash")?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        last_login_at: r.try_get("last_login_at")?,
    })
}

#[async_trait]
impl UserStore for Store {
    async fn insert_user(&self, u: &UserRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO users (id, username, display_name, role, password_hash, disabled, created_at, updated_at, last_login_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&u.id)
        .bind(&u.username)
        .bind(&u.display_name)
        .bind(u.role.as_str())
        .bind(&u.password_hash)
        .bind(u.disabled as i64)
        .bind(u.created_at)
        .bind(u.updated_at)
        .bind(u.last_login_at)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_on_unique(e, || format!("a user named {} already exists", u.username)))?;
        Ok(())
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
        sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?.as_ref().map(user_from_row).transpose()
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.username = $1");
        sqlx::query(&sql).bind(username).fetch_optional(&self.pool).await?.as_ref().map(user_from_row).transpose()
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.username");
        sqlx::query(&sql).fetch_all(&self.pool).await?.iter().map(user_from_row).collect()
    }

    async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM users").fetch_one(&self.pool).await?.try_get("n")?)
    }

    async fn update_access(&self, id: &str, role: Role, disabled: bool, now: i64) -> Result<UserRecord> {
        // One statement, so the "someone must stay an active admin" rule holds without a race
        // between the check and the write.
        let done = sqlx::query(
            "UPDATE users SET role = $1, disabled = $2, updated_at = $3 WHERE id = $4 AND ( \
                 ($1 = 'admin' AND $2 = 0) \
                 OR (SELECT COUNT(*) FROM users o WHERE o.role = 'admin' AND o.disabled = 0 AND o.id <> $4) > 0)",
        )
        .bind(role.as_str())
        .bind(disabled as i64)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return match self.user_by_id(id).await? {
                None => Err(StoreError::NotFound),
                Some(_) => Err(StoreError::Conflict("at least one active admin must remain".into())),
            };
        }
        self.user_by_id(id).await?.ok_or(StoreError::NotFound)
    }

    async fn set_password_hash(&self, id: &str, hash: &str, now: i64) -> Result<()> {
        let done = sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(hash)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn touch_login(&self, id: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2").bind(now).bind(id).execute(&self.pool).await?;
        Ok(())
    }
}
