use crate::error::AppError;
use crate::models::user::{Lockout, LockoutKind, Role, UserView};
use leptos::prelude::*;
use server_fn::codec::Json;

#[server(prefix = "/api", endpoint = "users/list", input = Json)]
pub async fn list_users() -> Result<Vec<UserView>, AppError> {
    super::ctx::ctx::<ListUsers>()?.services.users.list().await
}

/// Accounts and addresses refused sign-in for now after repeated wrong passwords.
#[server(prefix = "/api", endpoint = "users/lockouts", input = Json)]
pub async fn list_lockouts() -> Result<Vec<Lockout>, AppError> {
    super::ctx::ctx::<ListLockouts>()?.services.auth.lockouts().await
}

#[server(prefix = "/api", endpoint = "users/clear_lockout", input = Json)]
pub async fn clear_lockout(kind: LockoutKind, subject: String) -> Result<(), AppError> {
    let cx = super::ctx::ctx::<ClearLockout>()?;
    cx.services.auth.clear_lockout(cx.actor()?, kind, &subject).await
}

#[server(prefix = "/api", endpoint = "users/create", input = Json)]
pub async fn create_user(
    username: String,
    #[server(default)] display_name: String,
    role: Role,
    password: String,
) -> Result<UserView, AppError> {
    let cx = super::ctx::ctx::<CreateUser>()?;
    let input = crate::models::user::NewUser { username, display_name, role, password };
    input.validate()?;
    cx.services.users.create(cx.actor()?, input).await
}

#[server(prefix = "/api", endpoint = "users/set_role", input = Json)]
pub async fn set_user_role(id: String, role: Role) -> Result<UserView, AppError> {
    let cx = super::ctx::ctx::<SetUserRole>()?;
    cx.services.users.set_role(cx.actor()?, &id, role).await
}

#[server(prefix = "/api", endpoint = "users/set_disabled", input = Json)]
pub async fn set_user_disabled(id: String, disabled: bool) -> Result<UserView, AppError> {
    let cx = super::ctx::ctx::<SetUserDisabled>()?;
    cx.services.users.set_disabled(cx.actor()?, &id, disabled).await
}

/// Sets a user's password; with an empty `password` the server generates one and returns it once.
/// Ends that user's sessions either way.
#[server(prefix = "/api", endpoint = "users/reset_password", input = Json)]
pub async fn reset_user_password(id: String, #[server(default)] password: String) -> Result<Option<String>, AppError> {
    let cx = super::ctx::ctx::<ResetUserPassword>()?;
    let input = crate::models::user::SetPasswordInput { id, password };
    input.validate()?;
    cx.services.users.set_password(cx.actor()?, input).await
}
