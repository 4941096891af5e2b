//! Server-side work behind one trait per domain. Declared here so server fns stay thin and the
//! `app` crate never sees the database; implemented in the `server` crate.

use crate::error::AppError;
use crate::models::apikey::{ApiKeyView, ChatModel, CreatedApiKey, NewApiKey, RequestLogRow, UsageReport};
use crate::models::cluster::{ClusterDetail, ClusterView, KubeconfigContext, RegisterCluster, ReleaseReport};
use crate::models::deployment::{DeployOptions, DeploySpec, DeploymentDetail, DeploymentView};
use crate::models::policy::{
    DrillStatus, FailoverPolicy, PlacementPlan, PlacementStrategy, Policies, PolicyKind, ResourceProfile,
};
use crate::models::token::{AccessTokenView, CreatedAccessToken, NewAccessToken};
use crate::models::user::{Lockout, LockoutKind, LoginInput, NewUser, Role, SessionUser, SetPasswordInput, UserView};
use async_trait::async_trait;
use std::sync::Arc;

/// The address a request came from, put in its extensions by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::IpAddr);

/// An API call's body as it came, put in its extensions by the server: what was sent can be
/// compared with what the endpoint reads (unknown fields are refused, not ignored).
#[derive(Clone, Debug)]
pub struct RequestBody(pub std::sync::Arc<[u8]>);

pub struct LoginOutcome {
    pub user: SessionUser,
    /// The `Set-Cookie` header value that starts the session.
    pub set_cookie: String,
}

#[async_trait]
pub trait AuthService: Send + Sync {
    /// Checks the password (throttled per account and per `client` address).
    async fn login(&self, input: &LoginInput, client: Option<ClientAddr>) -> Result<LoginOutcome, AppError>;
    /// Accounts and addresses whose sign-in is refused for now.
    async fn lockouts(&self) -> Result<Vec<Lockout>, AppError>;
    /// Lets an account or address sign in again at once.
    async fn clear_lockout(&self, actor: &SessionUser, kind: LockoutKind, subject: &str) -> Result<(), AppError>;
    /// Access tokens for `/api`: yours (an admin's: everyone's).
    async fn list_tokens(&self, actor: &SessionUser) -> Result<Vec<AccessTokenView>, AppError>;
    async fn create_token(&self, actor: &SessionUser, input: NewAccessToken) -> Result<CreatedAccessToken, AppError>;
    async fn revoke_token(&self, actor: &SessionUser, id: &str) -> Result<AccessTokenView, AppError>;
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

#[async_trait]
pub trait DeploymentsService: Send + Sync {
    /// Model presets and the clusters a deployment may target.
    async fn options(&self) -> Result<DeployOptions, AppError>;
    /// Writes the deployment, then applies it to the hub. A hub that fails leaves it `failed`
    /// (retry with `redeploy`), never lost or half-propagated.
    async fn deploy(&self, actor: &SessionUser, spec: DeploySpec) -> Result<DeploymentView, AppError>;
    /// From the database: the status observer keeps it current.
    async fn list(&self) -> Result<Vec<DeploymentView>, AppError>;
    /// Live from the hub and the members.
    async fn detail(&self, name: &str) -> Result<DeploymentDetail, AppError>;
    /// Applies again, with a changed spec if given (same name); also the retry of a failed one.
    async fn redeploy(
        &self,
        actor: &SessionUser,
        name: &str,
        spec: Option<DeploySpec>,
    ) -> Result<DeploymentView, AppError>;
    /// Scales to zero (stopped) or back to the spec's replicas.
    async fn set_stopped(&self, actor: &SessionUser, name: &str, stopped: bool) -> Result<DeploymentView, AppError>;
    /// Removes the hub objects (and so the members' copies) and the row; the model cache stays
    /// unless `delete_cache` and no other deployment uses it.
    async fn delete(&self, actor: &SessionUser, name: &str, delete_cache: bool) -> Result<(), AppError>;
}

/// API keys, usage and the request log of the inference gateway. Users see and manage their own;
/// admins see everyone's.
#[async_trait]
pub trait GatewayService: Send + Sync {
    async fn list_keys(&self, actor: &SessionUser) -> Result<Vec<ApiKeyView>, AppError>;
    /// The secret is in the answer and nowhere else, ever.
    async fn create_key(&self, actor: &SessionUser, input: NewApiKey) -> Result<CreatedApiKey, AppError>;
    async fn revoke_key(&self, actor: &SessionUser, id: &str) -> Result<ApiKeyView, AppError>;
    async fn usage(&self, actor: &SessionUser, hours: u32) -> Result<UsageReport, AppError>;
    async fn requests(&self, actor: &SessionUser, limit: u32) -> Result<Vec<RequestLogRow>, AppError>;
    /// What the playground can talk to.
    async fn chat_models(&self) -> Result<Vec<ChatModel>, AppError>;
}

#[async_trait]
pub trait PoliciesService: Send + Sync {
    /// Every policy with its sync status and users, and the clusters the forms offer.
    async fn list(&self) -> Result<Policies, AppError>;
    /// Creates (`create`) or changes a policy; the hub follows at once and on every pass.
    async fn save_strategy(&self, actor: &SessionUser, p: PlacementStrategy, create: bool) -> Result<(), AppError>;
    async fn save_profile(&self, actor: &SessionUser, p: ResourceProfile, create: bool) -> Result<(), AppError>;
    async fn save_failover(&self, actor: &SessionUser, p: FailoverPolicy, create: bool) -> Result<(), AppError>;
    /// Refused while a deployment or a strategy uses it.
    async fn delete(&self, actor: &SessionUser, kind: PolicyKind, name: &str) -> Result<(), AppError>;
    /// Creates the default set; names that exist are left alone. Returns what was created.
    async fn create_defaults(&self, actor: &SessionUser) -> Result<Vec<String>, AppError>;
    /// Where a deployment would go, without applying anything.
    async fn preview(&self, spec: DeploySpec) -> Result<PlacementPlan, AppError>;
    /// Takes a simulated member down or brings it back (the failover drill).
    async fn drill(&self, actor: &SessionUser, cluster: &str, down: bool) -> Result<DrillStatus, AppError>;
    async fn drill_status(&self, cluster: &str) -> Result<DrillStatus, AppError>;
}

/// Everything server fns may call, provided to them through Leptos context.
#[derive(Clone)]
pub struct Services {
    pub auth: Arc<dyn AuthService>,
    pub users: Arc<dyn UsersService>,
    pub clusters: Arc<dyn ClustersService>,
    pub deployments: Arc<dyn DeploymentsService>,
    pub gateway: Arc<dyn GatewayService>,
    pub policies: Arc<dyn PoliciesService>,
}
