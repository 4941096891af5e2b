use crate::error::AppError;
use crate::models::apikey::{ApiKeyView, ChatModel, CreatedApiKey, NewApiKey, RequestLogRow, UsageReport};
use leptos::prelude::*;
use server_fn::codec::Json;

/// Your keys (an admin's: everyone's).
#[server(prefix = "/api", endpoint = "keys/list", input = Json)]
pub async fn list_keys() -> Result<Vec<ApiKeyView>, AppError> {
    let cx = super::ctx::ctx::<ListKeys>()?;
    cx.services.gateway.list_keys(cx.actor()?).await
}

/// A new key; the answer holds its secret, which is never shown again.
#[server(prefix = "/api", endpoint = "keys/create", input = Json)]
pub async fn create_key(input: NewApiKey) -> Result<CreatedApiKey, AppError> {
    let cx = super::ctx::ctx::<CreateKey>()?;
    cx.services.gateway.create_key(cx.actor()?, input).await
}

#[server(prefix = "/api", endpoint = "keys/revoke", input = Json)]
pub async fn revoke_key(id: String) -> Result<ApiKeyView, AppError> {
    let cx = super::ctx::ctx::<RevokeKey>()?;
    cx.services.gateway.revoke_key(cx.actor()?, &id).await
}

/// Usage over the last `hours` (1, 24 or 168), per bucket, key and deployment.
#[server(prefix = "/api", endpoint = "keys/usage", input = Json)]
pub async fn key_usage(hours: u32) -> Result<UsageReport, AppError> {
    let cx = super::ctx::ctx::<KeyUsage>()?;
    cx.services.gateway.usage(cx.actor()?, hours).await
}

/// The newest gateway requests (at most 500).
#[server(prefix = "/api", endpoint = "keys/requests", input = Json)]
pub async fn key_requests(#[server(default)] limit: Option<u32>) -> Result<Vec<RequestLogRow>, AppError> {
    let cx = super::ctx::ctx::<KeyRequests>()?;
    cx.services.gateway.requests(cx.actor()?, limit.unwrap_or(50)).await
}

/// Models the playground can chat with.
#[server(prefix = "/api", endpoint = "playground/models", input = Json)]
pub async fn chat_models() -> Result<Vec<ChatModel>, AppError> {
    super::ctx::ctx::<ChatModels>()?.services.gateway.chat_models().await
}
