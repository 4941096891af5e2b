use super::{password, token, SESSION_COOKIE};
use crate::store::{now_ms, SessionStore, Store, UserRecord, UserStore};
use app::error::AppError;
use app::models::user::{LoginInput, Role, SessionUser};
use app::services::{AuthService, LoginOutcome};
use async_trait::async_trait;
use std::time::Duration;

#[derive(Clone)]
pub struct AuthServiceImpl {
    store: Store,
    session_ttl: Duration,
    secure_cookies: bool,
}

const WRONG_CREDENTIALS: &str = "wrong username or password";

impl AuthServiceImpl {
    pub fn new(store: Store, session_ttl: Duration, secure_cookies: bool) -> Self {
        Self { store, session_ttl, secure_cookies }
    }

    fn cookie(&self, value: &str, max_age: u64) -> String {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
    }

    /// The user behind the request's session cookie, if the session is valid.
    pub async fn resolve(&self, headers: &http::HeaderMap) -> Result<Option<SessionUser>, AppError> {
        let Some(t) = token::cookie_value(headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let user = self.store.session_user(&token::token_hash(t), now_ms()).await?;
        Ok(user.map(|u| session_user(&u)))
    }

    /// Creates the first admin on an empty database. Returns the generated password when none was
    /// given, for the caller to show once.
    pub async fn ensure_admin(&self, given: Option<&str>) -> Result<Option<String>, AppError> {
        if self.store.count_users().await? > 0 {
            return Ok(None);
        }
        let (pw, generated) = match given {
            Some(p) => {
                app::models::user::validate_new_password(p).map_err(|m| AppError::field("HMAS_ADMIN_PASSWORD", m))?;
                (p.to_string(), false)
            }
            None => (password::generate(), true),
        };
        let hash = hash_blocking(pw.clone()).await?;
        let now = now_ms();
        self.store
            .insert_user(&UserRecord {
                id: token::new_id(),
                username: "admin".into(),
                display_name: "Administrator".into(),
                role: Role::Admin,
                password_hash: hash,
                disabled: false,
                created_at: now,
                updated_at: now,
                last_login_at: None,
            })
            .await?;
        Ok(generated.then_some(pw))
    }
}

pub fn session_user(u: &UserRecord) -> SessionUser {
    SessionUser { id: u.id.clone(), username: u.username.clone(), display_name: u.display_name.clone(), role: u.role }
}

/// argon2 is deliberately slow: keep it off the async workers.
pub async fn hash_blocking(pw: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || password::hash(&pw)).await.map_err(|e| AppError::internal(e.to_string()))
}

#[async_trait]
impl AuthService for AuthServiceImpl {
    async fn login(&self, input: &LoginInput) -> Result<LoginOutcome, AppError> {
        let user = self.store.user_by_username(input.username.trim()).await?;
        let pw = input.password.clone();
        let ok = match user.clone() {
            Some(u) => tokio::task::spawn_blocking(move || password::verify(&pw, &u.password_hash) && !u.disabled)
                .await
                .unwrap_or(false),
            None => {
                let _ = tokio::task::spawn_blocking(move || password::verify_dummy(&pw)).await;
                false
            }
        };
        let Some(user) = user.filter(|_| ok) else {
            tracing::info!(username = %input.username, "sign-in refused");
            return Err(AppError::unauthorized(WRONG_CREDENTIALS));
        };
        let t = token::new_token();
        let now = now_ms();
        self.store
            .insert_session(&token::token_hash(&t), &user.id, now, now + self.session_ttl.as_millis() as i64)
            .await?;
        self.store.touch_login(&user.id, now).await?;
        tracing::info!(user = %user.username, "signed in");
        Ok(LoginOutcome { user: session_user(&user), set_cookie: self.cookie(&t, self.session_ttl.as_secs()) })
    }

    async fn logout(&self, headers: &http::HeaderMap) -> Result<String, AppError> {
        if let Some(t) = token::cookie_value(headers, SESSION_COOKIE) {
            self.store.delete_session(&token::token_hash(t)).await?;
        }
        Ok(self.cookie("", 0))
    }
}
