use crate::error::AppError;
use crate::models::token::{AccessTokenView, CreatedAccessToken, NewAccessToken};
use leptos::prelude::*;
use server_fn::codec::Json;

/// Your access tokens (an admin's: everyone's).
#[server(prefix = "/api", endpoint = "tokens/list", input = Json)]
pub async fn list_tokens() -> Result<Vec<AccessTokenView>, AppError> {
    let cx = super::ctx::ctx::<ListTokens>()?;
    cx.services.auth.list_tokens(cx.actor()?).await
}

/// A new access token for your role or a lesser one; the answer holds its secret, shown only then.
#[server(prefix = "/api", endpoint = "tokens/create", input = Json)]
pub async fn create_token(input: NewAccessToken) -> Result<CreatedAccessToken, AppError> {
    let cx = super::ctx::ctx::<CreateToken>()?;
    cx.services.auth.create_token(cx.actor()?, input).await
}

#[server(prefix = "/api", endpoint = "tokens/revoke", input = Json)]
pub async fn revoke_token(id: String) -> Result<AccessTokenView, AppError> {
    let cx = super::ctx::ctx::<RevokeToken>()?;
    cx.services.auth.revoke_token(cx.actor()?, &id).await
}
