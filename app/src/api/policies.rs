use crate::error::AppError;
use crate::models::deployment::DeploySpec;
use crate::models::policy::{
    DrillStatus, FailoverPolicy, PlacementPlan, PlacementStrategy, Policies, PolicyKind, ResourceProfile,
};
use leptos::prelude::*;
use server_fn::codec::Json;

#[server(prefix = "/api", endpoint = "policies/list", input = Json)]
pub async fn list_policies() -> Result<Policies, AppError> {
    super::ctx::ctx::<ListPolicies>()?.services.policies.list().await
}

/// Creates (`create: true`) or changes a placement strategy.
#[server(prefix = "/api", endpoint = "policies/strategy/save", input = Json)]
pub async fn save_strategy(strategy: PlacementStrategy, #[server(default)] create: bool) -> Result<(), AppError> {
    let cx = super::ctx::ctx::<SaveStrategy>()?;
    cx.services.policies.save_strategy(cx.actor()?, strategy, create).await
}

#[server(prefix = "/api", endpoint = "policies/profile/save", input = Json)]
pub async fn save_profile(profile: ResourceProfile, #[server(default)] create: bool) -> Result<(), AppError> {
    let cx = super::ctx::ctx::<SaveProfile>()?;
    cx.services.policies.save_profile(cx.actor()?, profile, create).await
}

#[server(prefix = "/api", endpoint = "policies/failover/save", input = Json)]
pub async fn save_failover(failover: FailoverPolicy, #[server(default)] create: bool) -> Result<(), AppError> {
    let cx = super::ctx::ctx::<SaveFailover>()?;
    cx.services.policies.save_failover(cx.actor()?, failover, create).await
}

#[server(prefix = "/api", endpoint = "policies/delete", input = Json)]
pub async fn delete_policy(kind: PolicyKind, name: String) -> Result<(), AppError> {
    let cx = super::ctx::ctx::<DeletePolicy>()?;
    cx.services.policies.delete(cx.actor()?, kind, &name).await
}

#[server(prefix = "/api", endpoint = "policies/defaults", input = Json)]
pub async fn create_default_policies() -> Result<Vec<String>, AppError> {
    let cx = super::ctx::ctx::<CreateDefaultPolicies>()?;
    cx.services.policies.create_defaults(cx.actor()?).await
}

/// Where a deployment would go under its strategy, before anything is applied.
#[server(prefix = "/api", endpoint = "deployments/preview", input = Json)]
pub async fn preview_placement(spec: DeploySpec) -> Result<PlacementPlan, AppError> {
    super::ctx::ctx::<PreviewPlacement>()?.services.policies.preview(spec).await
}

#[server(prefix = "/api", endpoint = "clusters/drill", input = Json)]
pub async fn run_drill(name: String, down: bool) -> Result<DrillStatus, AppError> {
    let cx = super::ctx::ctx::<RunDrill>()?;
    cx.services.policies.drill(cx.actor()?, &name, down).await
}

#[server(name = DrillStatusFn, prefix = "/api", endpoint = "clusters/drill-status", input = Json)]
pub async fn drill_status(name: String) -> Result<DrillStatus, AppError> {
    super::ctx::ctx::<DrillStatusFn>()?.services.policies.drill_status(&name).await
}
