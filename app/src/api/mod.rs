//! Server fns: the dashboard's API and the documented admin API (docs/api.md). Every endpoint is
//! explicit (`/api/<domain>/<verb>`) and takes JSON. Bodies are thin: authorize, call the service.
pub mod auth;
pub mod clusters;
pub mod deployments;
pub mod keys;
pub mod policies;
pub mod users;

#[cfg(feature = "ssr")]
pub(crate) mod ctx {
    use crate::access::{access_for, allows};
    use crate::error::AppError;
    use crate::models::user::SessionUser;
    use crate::services::Services;
    use leptos::prelude::use_context;

    /// What a server fn needs: the services and who is calling. Checks the caller against the
    /// access table for the fn's own path, so in-process SSR calls are held to the same rules as
    /// HTTP ones.
    pub struct Ctx {
        pub services: Services,
        pub user: Option<SessionUser>,
    }

    impl Ctx {
        pub fn actor(&self) -> Result<&SessionUser, AppError> {
            self.user.as_ref().ok_or_else(|| AppError::unauthorized("sign in first"))
        }
    }

    pub fn ctx<S: server_fn::ServerFn>() -> Result<Ctx, AppError> {
        let services = use_context::<Services>().ok_or_else(|| AppError::internal("services are not configured"))?;
        let user = use_context::<http::request::Parts>().and_then(|p| p.extensions.get::<SessionUser>().cloned());
        let access = access_for(S::PATH);
        if !allows(access, user.as_ref().map(|u| u.role)) {
            return Err(match user {
                None => AppError::unauthorized("sign in first"),
                Some(_) => AppError::forbidden("your role does not allow this"),
            });
        }
        Ok(Ctx { services, user })
    }
}
