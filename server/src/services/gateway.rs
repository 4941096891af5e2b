//! API keys, usage and the request log: the gateway's administration. The gateway itself reads
//! keys from memory; every change here reloads that table before answering.
use crate::auth::token::new_id;
use crate::gateway::{keys, Gateway};
use crate::store::{
    now_ms, ApiKeyRecord, DeploymentStore, KeyStore, Store, StoreError, UsageGroup, UsageStore, UsageSum,
};
use app::error::AppError;
use app::models::apikey::{
    validate_window, ApiKeyView, ChatModel, CreatedApiKey, KeyStatus, NewApiKey, RequestLogRow, UsagePoint,
    UsageReport, UsageTotal,
};
use app::models::user::{Role, SessionUser};
use app::models::validate::shown;
use app::services::GatewayService;
use async_trait::async_trait;
use std::collections::HashMap;

#[derive(Clone)]
pub struct GatewayServiceImpl {
    store: Store,
    gateway: Gateway,
}

const DAY_MS: i64 = 24 * 3600 * 1000;

impl GatewayServiceImpl {
    pub fn new(store: Store, gateway: Gateway) -> Self {
        Self { store, gateway }
    }

    /// Admins see every user's; others their own.
    fn owner_filter(actor: &SessionUser) -> Option<&str> {
        (actor.role != Role::Admin).then_some(actor.id.as_str())
    }

    /// A key's name from the gateway's key table (every key, revoked ones too), not the database.
    fn key_label(&self, id: &str) -> String {
        match id {
            "" => "Playground".into(),
            id => self.gateway.key_name(id).unwrap_or_else(|| format!("deleted key {id}")),
        }
    }
}

fn view(k: &ApiKeyRecord, now: i64) -> ApiKeyView {
    let status = if k.revoked_at.is_some() {
        KeyStatus::Revoked
    } else if k.expires_at.is_some_and(|e| e <= now) {
        KeyStatus::Expired
    } else if k.owner_disabled {
        KeyStatus::OwnerDisabled
    } else {
        KeyStatus::Active
    };
    ApiKeyView {
        id: k.id.clone(),
        name: k.name.clone(),
        prefix: k.prefix.clone(),
        owner: k.owner.clone(),
        scope: k.scope.clone(),
        rpm: k.rpm,
        tpm: k.tpm,
        expires_at: k.expires_at,
        revoked_at: k.revoked_at,
        last_used_at: k.last_used_at,
        created_at: k.created_at,
        status,
    }
}

/// Bucket width for a window: about 60 to 90 bars whatever the window.
fn bucket_ms(hours: u32) -> i64 {
    match hours {
        0..=1 => 60_000,
        2..=24 => 15 * 60_000,
        _ => 2 * 3_600_000,
    }
}

fn total(s: UsageSum, label: String) -> UsageTotal {
    UsageTotal {
        id: s.group,
        label,
        requests: s.requests,
        errors: s.errors,
        prompt_tokens: s.prompt_tokens,
        completion_tokens: s.completion_tokens,
    }
}

#[async_trait]
impl GatewayService for GatewayServiceImpl {
    async fn list_keys(&self, actor: &SessionUser) -> Result<Vec<ApiKeyView>, AppError> {
        let now = now_ms();
        Ok(self.store.list_keys(Self::owner_filter(actor)).await?.iter().map(|k| view(k, now)).collect())
    }

    async fn create_key(&self, actor: &SessionUser, input: NewApiKey) -> Result<CreatedApiKey, AppError> {
        input.validate()?;
        for d in input.scope.iter().flatten() {
            if self.store.deployment_by_name(d).await?.is_none() {
                return Err(AppError::field("scope", format!("no deployment named {d}")));
            }
        }
        let (secret, prefix, key_hash) = keys::mint();
        let now = now_ms();
        let record = ApiKeyRecord {
            id: new_id(),
            name: input.name.trim().to_string(),
            prefix,
            key_hash,
            owner_id: actor.id.clone(),
            owner: actor.username.clone(),
            scope: input.scope.clone(),
            rpm: input.rpm,
            tpm: input.tpm,
            expires_at: input.expires_in_days.map(|d| now + i64::from(d) * DAY_MS),
            revoked_at: None,
            last_used_at: None,
            created_at: now,
            owner_disabled: false,
        };
        self.store.insert_key(&record).await?;
        self.gateway.keys_changed().await?;
        tracing::info!(key = %record.id, prefix = %record.prefix, owner = %actor.username, "API key created");
        Ok(CreatedApiKey { key: view(&record, now), secret })
    }

    async fn revoke_key(&self, actor: &SessionUser, id: &str) -> Result<ApiKeyView, AppError> {
        let missing = || AppError::not_found(format!("no API key with id {}", shown(id)));
        let k = self.store.key_by_id(id).await?.ok_or_else(missing)?;
        // Someone else's key is not there, as far as a non-admin can tell.
        if actor.role != Role::Admin && k.owner_id != actor.id {
            return Err(missing());
        }
        if k.revoked_at.is_none() {
            match self.store.revoke_key(id, now_ms()).await {
                Ok(()) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.gateway.keys_changed().await?;
        tracing::info!(key = %id, by = %actor.username, "API key revoked");
        let k = self.store.key_by_id(id).await?.ok_or_else(missing)?;
        Ok(view(&k, now_ms()))
    }

    async fn usage(&self, actor: &SessionUser, hours: u32) -> Result<UsageReport, AppError> {
        validate_window(hours)?;
        let bucket = bucket_ms(hours);
        let now = now_ms();
        let to = now - now.rem_euclid(bucket) + bucket;
        let from = to - i64::from(hours) * 3_600_000;
        let who = Self::owner_filter(actor);
        let sums = self.store.usage(from, to, who, UsageGroup::Time { bucket_ms: bucket }).await?;
        let by_t: HashMap<i64, UsageSum> = sums.into_iter().map(|s| (s.t, s)).collect();
        let points = (0..(to - from) / bucket)
            .map(|i| {
                let t = from + i * bucket;
                let s = by_t.get(&t).cloned().unwrap_or_default();
                UsagePoint {
                    t,
                    requests: s.requests,
                    errors: s.errors,
                    prompt_tokens: s.prompt_tokens,
                    completion_tokens: s.completion_tokens,
                }
            })
            .collect();
        let by_key = self
            .store
            .usage(from, to, who, UsageGroup::Key)
            .await?
            .into_iter()
            .map(|s| {
                let label = self.key_label(&s.group);
                total(s, label)
            })
            .collect();
        let by_deployment = self
            .store
            .usage(from, to, who, UsageGroup::Deployment)
            .await?
            .into_iter()
            .map(|s| {
                let label = if s.group.is_empty() { "(no deployment)".to_string() } else { s.group.clone() };
                total(s, label)
            })
            .collect();
        Ok(UsageReport { from, to, bucket_ms: bucket, points, by_key, by_deployment })
    }

    async fn requests(&self, actor: &SessionUser, limit: u32) -> Result<Vec<RequestLogRow>, AppError> {
        if !(1..=500).contains(&limit) {
            return Err(AppError::field("limit", "must be between 1 and 500"));
        }
        let rows = self.store.request_log(Self::owner_filter(actor), i64::from(limit)).await?;
        Ok(rows
            .into_iter()
            .map(|r| RequestLogRow {
                key_name: self.key_label(&r.key_id),
                at: r.at,
                key_id: r.key_id,
                deployment: r.deployment,
                model: r.model,
                path: r.path,
                status: r.status,
                latency_ms: r.latency_ms,
                ttft_ms: r.ttft_ms,
                prompt_tokens: r.prompt_tokens,
                completion_tokens: r.completion_tokens,
                stream: r.stream,
                outcome: r.outcome,
            })
            .collect())
    }

    async fn chat_models(&self) -> Result<Vec<ChatModel>, AppError> {
        Ok(self.gateway.models())
    }
}
