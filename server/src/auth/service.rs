use super::throttle::{Refused, SignInGuard, ThrottlePolicy};
use super::{password, token, SESSION_COOKIE};
use crate::store::{now_ms, SessionStore, Store, UserRecord, UserStore};
use app::error::AppError;
use app::models::token::{AccessTokenView, CreatedAccessToken, NewAccessToken};
use app::models::user::{Lockout, LockoutKind, LoginInput, Role, SessionUser};
use app::services::{AuthService, ClientAddr, LoginOutcome};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct AuthServiceImpl {
    store: Store,
    session_ttl: Duration,
    secure_cookies: bool,
    guard: Arc<SignInGuard>,
}

const WRONG_CREDENTIALS: &str = "wrong username or password";

impl AuthServiceImpl {
    pub fn new(store: Store, session_ttl: Duration, secure_cookies: bool) -> Self {
        Self::with_throttle(store, session_ttl, secure_cookies, ThrottlePolicy::default())
    }

    pub fn with_throttle(store: Store, session_ttl: Duration, secure_cookies: bool, policy: ThrottlePolicy) -> Self {
        Self { store, session_ttl, secure_cookies, guard: Arc::new(SignInGuard::new(policy)) }
    }

    fn cookie(&self, value: &str, max_age: u64) -> String {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
    }

    /// The user behind the request's session cookie or access token (`Authorization: Bearer
    /// hmas-at-…`), if it is valid. A token that is not is an error, so a script hears why.
    pub async fn resolve(&self, headers: &http::HeaderMap) -> Result<Option<SessionUser>, AppError> {
        let Some(t) = token::cookie_value(headers, SESSION_COOKIE) else {
            return match super::tokens::bearer(headers) {
                Some(secret) => super::tokens::resolve(&self.store, secret).await.map(Some),
                None => Ok(None),
            };
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

/// argon2 is deliberately slow and large: on the hashing threads, never the async workers.
pub async fn hash_blocking(pw: String) -> Result<String, AppError> {
    password::on_hasher(move |m| password::hash_in(&pw, m)).await.ok_or_else(|| AppError::internal("no hashing thread"))
}

fn too_many(r: Refused) -> AppError {
    AppError::too_many_requests(
        format!("too many sign-in attempts for {}: try again in {} s", r.why, r.retry_after),
        r.retry_after,
    )
}

#[async_trait]
impl AuthService for AuthServiceImpl {
    async fn login(&self, input: &LoginInput, client: Option<ClientAddr>) -> Result<LoginOutcome, AppError> {
        let addr = client.map(|c| c.0);
        let username = input.username.trim();
        // A locked account or address costs no hashing at all.
        if let Err(r) = self.guard.check(username, addr) {
            tracing::info!(username = ?username, client = ?addr, retry_after = r.retry_after, "sign-in throttled");
            return Err(too_many(r));
        }
        self.guard.hash_turn().map_err(too_many)?;
        let user = self.store.user_by_username(username).await?;
        let pw = input.password.clone();
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let ok = password::on_hasher(move |m| match hash {
            Some(h) => password::verify_in(&pw, &h, m),
            None => {
                password::verify_dummy_in(&pw, m);
                false
            }
        })
        .await
        .unwrap_or(false);
        let Some(user) = user.filter(|u| ok && !u.disabled) else {
            self.guard.failed(username, addr);
            tracing::info!(username = ?username, client = ?addr, "sign-in refused");
            return Err(AppError::unauthorized(WRONG_CREDENTIALS));
        };
        self.guard.succeeded(username);
        let t = token::new_token();
        let now = now_ms();
        self.store
            .insert_session(&token::token_hash(&t), &user.id, now, now + self.session_ttl.as_millis() as i64)
            .await?;
        self.store.touch_login(&user.id, now).await?;
        tracing::info!(user = %user.username, "signed in");
        Ok(LoginOutcome { user: session_user(&user), set_cookie: self.cookie(&t, self.session_ttl.as_secs()) })
    }

    async fn lockouts(&self) -> Result<Vec<Lockout>, AppError> {
        Ok(self.guard.lockouts(now_ms()))
    }

    async fn clear_lockout(&self, actor: &SessionUser, kind: LockoutKind, subject: &str) -> Result<(), AppError> {
        if !self.guard.clear(kind, subject) {
            let what = kind.label().to_lowercase();
            return Err(AppError::not_found(format!(
                "no {what} lockout for {}",
                app::models::validate::shown(subject)
            )));
        }
        tracing::info!(by = %actor.username, kind = kind.label(), subject = ?subject, "sign-in lockout cleared");
        Ok(())
    }

    async fn list_tokens(&self, actor: &SessionUser) -> Result<Vec<AccessTokenView>, AppError> {
        super::tokens::list(&self.store, actor).await
    }

    async fn create_token(&self, actor: &SessionUser, input: NewAccessToken) -> Result<CreatedAccessToken, AppError> {
        super::tokens::create(&self.store, actor, input).await
    }

    async fn revoke_token(&self, actor: &SessionUser, id: &str) -> Result<AccessTokenView, AppError> {
        super::tokens::revoke(&self.store, actor, id).await
    }

    async fn logout(&self, headers: &http::HeaderMap) -> Result<String, AppError> {
        if let Some(t) = token::cookie_value(headers, SESSION_COOKIE) {
            self.store.delete_session(&token::token_hash(t)).await?;
        }
        Ok(self.cookie("", 0))
    }
}
