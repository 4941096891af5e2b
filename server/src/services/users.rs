use crate::auth::password;
use crate::auth::service::hash_blocking;
use crate::auth::token::new_id;
use crate::gateway::Gateway;
use crate::store::{now_ms, SessionStore, Store, StoreError, UserRecord, UserStore};
use app::error::{AppError, ErrorCode};
use app::models::user::{NewUser, Role, SessionUser, SetPasswordInput, UserView};
use app::models::validate::shown;
use app::services::UsersService;
use async_trait::async_trait;

#[derive(Clone)]
pub struct UsersServiceImpl {
    store: Store,
    /// Told when an account's state changes: its keys answer accordingly from the next call.
    gateway: Gateway,
}

impl UsersServiceImpl {
    pub fn new(store: Store, gateway: Gateway) -> Self {
        Self { store, gateway }
    }

    async fn get(&self, id: &str) -> Result<UserRecord, AppError> {
        self.store.user_by_id(id).await?.ok_or_else(|| AppError::not_found(format!("no user with id {}", shown(id))))
    }

    async fn update_access(&self, id: &str, role: Role, disabled: bool) -> Result<UserView, AppError> {
        let u = self.store.update_access(id, role, disabled, now_ms()).await.map_err(|e| match e {
            StoreError::NotFound => AppError::not_found(format!("no user with id {}", shown(id))),
            other => other.into(),
        })?;
        if disabled {
            self.store.delete_user_sessions(id).await?;
        }
        self.gateway.keys_changed().await?;
        Ok(u.view())
    }
}

#[async_trait]
impl UsersService for UsersServiceImpl {
    async fn list(&self) -> Result<Vec<UserView>, AppError> {
        Ok(self.store.list_users().await?.iter().map(UserRecord::view).collect())
    }

    async fn create(&self, actor: &SessionUser, input: NewUser) -> Result<UserView, AppError> {
        input.validate()?;
        let now = now_ms();
        let rec = UserRecord {
            id: new_id(),
            username: input.username.trim().to_string(),
            display_name: input.display_name.trim().to_string(),
            role: input.role,
            password_hash: hash_blocking(input.password).await?,
            disabled: false,
            created_at: now,
            updated_at: now,
            last_login_at: None,
        };
        self.store.insert_user(&rec).await.map_err(|e| match e {
            StoreError::Conflict(m) => AppError { code: ErrorCode::Conflict, ..AppError::field("username", m) },
            other => other.into(),
        })?;
        tracing::info!(by = %actor.username, user = %rec.username, role = rec.role.as_str(), "user created");
        Ok(rec.view())
    }

    async fn set_role(&self, actor: &SessionUser, id: &str, role: Role) -> Result<UserView, AppError> {
        if actor.id == id {
            return Err(AppError::conflict("you cannot change your own role"));
        }
        let u = self.get(id).await?;
        let v = self.update_access(id, role, u.disabled).await?;
        tracing::info!(by = %actor.username, user = %u.username, role = role.as_str(), "role changed");
        Ok(v)
    }

    async fn set_disabled(&self, actor: &SessionUser, id: &str, disabled: bool) -> Result<UserView, AppError> {
        if actor.id == id && disabled {
            return Err(AppError::conflict("you cannot disable yourself"));
        }
        let u = self.get(id).await?;
        let v = self.update_access(id, u.role, disabled).await?;
        tracing::info!(by = %actor.username, user = %u.username, disabled, "access changed");
        Ok(v)
    }

    async fn set_password(&self, actor: &SessionUser, input: SetPasswordInput) -> Result<Option<String>, AppError> {
        input.validate()?;
        let u = self.get(&input.id).await?;
        let (pw, generated) =
            if input.password.is_empty() { (password::generate(), true) } else { (input.password, false) };
        self.store.set_password_hash(&u.id, &hash_blocking(pw.clone()).await?, now_ms()).await?;
        self.store.delete_user_sessions(&u.id).await?;
        tracing::info!(by = %actor.username, user = %u.username, "password reset");
        Ok(generated.then_some(pw))
    }
}
