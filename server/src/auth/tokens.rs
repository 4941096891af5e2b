//! Access tokens: administrators' scripts calling `/api` with `Authorization: Bearer`. Made by a
//! signed-in user for their role or less, shown once, kept as a hash, expiring and revocable.
//! They are not API keys: the gateway (`/v1`) does not take them.
use super::token::{new_id, new_token, token_hash};
use crate::store::{now_ms, Store, StoreError, TokenRecord, TokenStore};
use app::error::AppError;
use app::models::token::{AccessTokenView, CreatedAccessToken, NewAccessToken, TokenStatus, TOKEN_PREFIX};
use app::models::user::{Role, SessionUser};
use app::models::validate::shown;

const DAY_MS: i64 = 24 * 3600 * 1000;
/// Characters of a token shown in lists (the marker and the first random ones).
const SHOWN: usize = TOKEN_PREFIX.len() + 8;
/// `last_used_at` is written at most this often per token: a script's every call is not a write.
const TOUCH_EVERY_MS: i64 = 60_000;

/// The token in an `Authorization: Bearer` header, if it is one of ours (not an API key).
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ").map(str::trim).filter(|t| t.starts_with(TOKEN_PREFIX))
}

/// The user a token acts as: its owner, with the lesser of the token's and the owner's role now.
pub async fn resolve(store: &Store, secret: &str) -> Result<SessionUser, AppError> {
    let now = now_ms();
    let Some((t, u)) = store.token_user(&token_hash(secret), now).await? else {
        return Err(AppError::unauthorized("the access token is unknown, revoked or expired"));
    };
    if t.last_used_at.is_none_or(|at| now - at >= TOUCH_EVERY_MS) {
        store.touch_token(&t.id, now).await?;
    }
    let mut user = super::service::session_user(&u);
    user.role = user.role.min(t.role);
    Ok(user)
}

pub async fn create(store: &Store, actor: &SessionUser, input: NewAccessToken) -> Result<CreatedAccessToken, AppError> {
    input.validate(actor.role)?;
    let secret = format!("{TOKEN_PREFIX}{}", new_token());
    let now = now_ms();
    let record = TokenRecord {
        id: new_id(),
        name: input.name.trim().to_string(),
        prefix: secret[..SHOWN].to_string(),
        token_hash: token_hash(&secret),
        owner_id: actor.id.clone(),
        owner: actor.username.clone(),
        role: input.role.unwrap_or(actor.role),
        expires_at: now + i64::from(input.expires_in_days) * DAY_MS,
        revoked_at: None,
        last_used_at: None,
        created_at: now,
    };
    store.insert_token(&record).await?;
    tracing::info!(token = %record.id, prefix = %record.prefix, owner = %actor.username, role = record.role.as_str(), "access token created");
    Ok(CreatedAccessToken { token: view(&record, now), secret })
}

/// Admins see every user's; others their own.
pub async fn list(store: &Store, actor: &SessionUser) -> Result<Vec<AccessTokenView>, AppError> {
    let owner = (actor.role != Role::Admin).then_some(actor.id.as_str());
    let now = now_ms();
    Ok(store.list_tokens(owner).await?.iter().map(|t| view(t, now)).collect())
}

pub async fn revoke(store: &Store, actor: &SessionUser, id: &str) -> Result<AccessTokenView, AppError> {
    let missing = || AppError::not_found(format!("no access token with id {}", shown(id)));
    let t = store.token_by_id(id).await?.ok_or_else(missing)?;
    if t.owner_id != actor.id && actor.role != Role::Admin {
        return Err(missing());
    }
    let now = now_ms();
    match store.revoke_token(id, now).await {
        Ok(()) | Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    tracing::info!(token = %t.id, prefix = %t.prefix, by = %actor.username, "access token revoked");
    let t = store.token_by_id(id).await?.ok_or_else(missing)?;
    Ok(view(&t, now))
}

fn view(t: &TokenRecord, now: i64) -> AccessTokenView {
    let status = if t.revoked_at.is_some() {
        TokenStatus::Revoked
    } else if t.expires_at <= now {
        TokenStatus::Expired
    } else {
        TokenStatus::Active
    };
    AccessTokenView {
        id: t.id.clone(),
        name: t.name.clone(),
        prefix: t.prefix.clone(),
        owner: t.owner.clone(),
        role: t.role,
        expires_at: t.expires_at,
        revoked_at: t.revoked_at,
        last_used_at: t.last_used_at,
        created_at: t.created_at,
        status,
    }
}
