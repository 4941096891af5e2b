//! Server-side work behind one trait per domain. Declared here so server fns stay thin and the
//! `app` crate never sees the database; implemented in the `server` crate.

use crate::error::AppError;
use crate::models::cluster::{ClusterDetail, ClusterView, KubeconfigContext, RegisterCluster, ReleaseReport};
use crate::models::user::{LoginInput, NewUser, Role, SessionUser, SetPasswordInput, UserView};
use async_trait::async_trait;
use std::sync::Arc;

pub struct LoginOutcome {
    pub user: SessionUser,
    /// The `Set-Cookie` header value that starts the session.
    pub set_cookie: String,
}

#[async_trait]
pub trait AuthService: Send + Sync {
    async fn login(&self, input: &LoginInput) -> Result<LoginOutcome, AppError>;
    /// Ends the session named by the request's cookie; returns the `Set-Cookie` that clears it.
    async fn logout(&self, headers: &http::HeaderMap) -> Result<String, AppError>;
}

#[async_trait]
pub trait UsersService: Send + Sync {
    async fn list(&self) -> Result<Vec<UserView>, AppError>;
    async fn create(&self, actor: &SessionUser, input: NewUser) -> Result<UserView, AppError>;
    async fn set_role(&self, actor: &SessionUser, id: &str, role: Role) -> Result<UserView, AppError>;
    async fn set_disabled(&self, actor: &SessionUser, id: &str, disabled: bool) -> Result<UserView, AppError>;
    /// Returns the new password when the server generated it (shown once).
    async fn set_password(&self, actor: &SessionUser, input: SetPasswordInput) -> Result<Option<String>, AppError>;
}

#[async_trait]
pub trait ClustersService: Send + Sync {
    /// The contexts of a kubeconfig, for the operator to choose one.
    async fn inspect_kubeconfig(&self, kubeconfig: &str) -> Result<Vec<KubeconfigContext>, AppError>;
    /// Tests the access, provisions the member, registers it in the hub. Registering a cluster
    /// of the same name again updates it.
    async fn register(&self, actor: &SessionUser, input: RegisterCluster) -> Result<ClusterView, AppError>;
    async fn list(&self) -> Result<Vec<ClusterView>, AppError>;
    async fn detail(&self, name: &str) -> Result<ClusterDetail, AppError>;
    /// Removes the cluster from the hub and H-MAS; refused while workloads run there unless `force`.
    async fn release(&self, actor: &SessionUser, name: &str, force: bool) -> Result<ReleaseReport, AppError>;
}

/// Everything server fns may call, provided to them through Leptos context.
#[derive(Clone)]
pub struct Services {
    pub auth: Arc<dyn AuthService>,
    pub users: Arc<dyn UsersService>,
    pub clusters: Arc<dyn ClustersService>,
}
