use crate::error::AppError;
use crate::models::user::SessionUser;
use leptos::prelude::*;
use server_fn::codec::Json;

#[server(prefix = "/api", endpoint = "auth/login", input = Json)]
pub async fn login(username: String, password: String) -> Result<SessionUser, AppError> {
    let cx = super::ctx::ctx::<Login>()?;
    let input = crate::models::user::LoginInput { username, password };
    input.validate()?;
    let client =
        use_context::<http::request::Parts>().and_then(|p| p.extensions.get::<crate::services::ClientAddr>().copied());
    let out = cx.services.auth.login(&input, client).await?;
    let opts = expect_context::<leptos_axum::ResponseOptions>();
    if let Ok(v) = http::HeaderValue::from_str(&out.set_cookie) {
        opts.append_header(http::header::SET_COOKIE, v);
    }
    Ok(out.user)
}

#[server(prefix = "/api", endpoint = "auth/logout", input = Json)]
pub async fn logout() -> Result<(), AppError> {
    let cx = super::ctx::ctx::<Logout>()?;
    let parts = expect_context::<http::request::Parts>();
    let clear = cx.services.auth.logout(&parts.headers).await?;
    if let Ok(v) = http::HeaderValue::from_str(&clear) {
        expect_context::<leptos_axum::ResponseOptions>().append_header(http::header::SET_COOKIE, v);
    }
    Ok(())
}

/// The signed-in user, or null.
#[server(prefix = "/api", endpoint = "auth/me", input = Json)]
pub async fn me() -> Result<Option<SessionUser>, AppError> {
    Ok(super::ctx::ctx::<Me>()?.user)
}
