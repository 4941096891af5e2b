//! Server fns: the dashboard's API and the documented admin API (docs/api.md). Every endpoint is
//! explicit (`/api/<domain>/<verb>`) and takes JSON. Bodies are thin: authorize, call the service.
pub mod auth;
pub mod clusters;
pub mod deployments;
pub mod keys;
pub mod policies;
pub mod tokens;
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

    pub fn ctx<S>() -> Result<Ctx, AppError>
    where
        S: server_fn::ServerFn + serde::Serialize + serde::de::DeserializeOwned,
    {
        let services = use_context::<Services>().ok_or_else(|| AppError::internal("services are not configured"))?;
        let parts = use_context::<http::request::Parts>();
        let user = parts.as_ref().and_then(|p| p.extensions.get::<SessionUser>().cloned());
        let access = access_for(S::PATH);
        if !allows(access, user.as_ref().map(|u| u.role)) {
            return Err(match user {
                None => AppError::unauthorized("sign in first"),
                Some(_) => AppError::forbidden("your role does not allow this"),
            });
        }
        if let Some(body) = parts.as_ref().and_then(|p| p.extensions.get::<crate::services::RequestBody>()) {
            refuse_unknown_fields::<S>(&body.0)?;
        }
        Ok(Ctx { services, user })
    }

    /// Every field of the body must be one the endpoint reads: a misspelt `replcias` is an error
    /// naming it, not a silent default. What the endpoint reads is the body decoded and written
    /// back; a key that does not come back was not read.
    fn refuse_unknown_fields<S: serde::Serialize + serde::de::DeserializeOwned>(body: &[u8]) -> Result<(), AppError> {
        let (Ok(sent), Ok(args)) =
            (serde_json::from_slice::<serde_json::Value>(body), serde_json::from_slice::<S>(body))
        else {
            return Ok(());
        };
        let Ok(read) = serde_json::to_value(args) else { return Ok(()) };
        let mut unknown = Vec::new();
        crate::models::validate::unknown_keys(&sent, &read, "", &mut unknown);
        let mut f = crate::error::FieldErrors::new();
        for k in unknown.iter().take(20) {
            f.check(k, Err("unknown field".into()));
        }
        f.into_result()
    }
}
