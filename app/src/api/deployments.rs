use crate::error::AppError;
use crate::models::deployment::{DeployOptions, DeploySpec, DeploymentDetail, DeploymentView};
use leptos::prelude::*;
use server_fn::codec::Json;

#[server(name = DeployOptionsFn, prefix = "/api", endpoint = "deployments/options", input = Json)]
pub async fn deploy_options() -> Result<DeployOptions, AppError> {
    super::ctx::ctx::<DeployOptionsFn>()?.services.deployments.options().await
}

#[server(prefix = "/api", endpoint = "deployments/list", input = Json)]
pub async fn list_deployments() -> Result<Vec<DeploymentView>, AppError> {
    super::ctx::ctx::<ListDeployments>()?.services.deployments.list().await
}

#[server(prefix = "/api", endpoint = "deployments/get", input = Json)]
pub async fn get_deployment(name: String) -> Result<DeploymentDetail, AppError> {
    super::ctx::ctx::<GetDeployment>()?.services.deployments.detail(&name).await
}

#[server(prefix = "/api", endpoint = "deployments/create", input = Json)]
pub async fn create_deployment(spec: DeploySpec) -> Result<DeploymentView, AppError> {
    let cx = super::ctx::ctx::<CreateDeployment>()?;
    cx.services.deployments.deploy(cx.actor()?, spec).await
}

/// Applies again: the stored spec (a retry) or a changed one.
#[server(prefix = "/api", endpoint = "deployments/redeploy", input = Json)]
pub async fn redeploy_deployment(
    name: String,
    #[server(default)] spec: Option<DeploySpec>,
) -> Result<DeploymentView, AppError> {
    let cx = super::ctx::ctx::<RedeployDeployment>()?;
    cx.services.deployments.redeploy(cx.actor()?, &name, spec).await
}

#[server(prefix = "/api", endpoint = "deployments/stop", input = Json)]
pub async fn stop_deployment(name: String) -> Result<DeploymentView, AppError> {
    let cx = super::ctx::ctx::<StopDeployment>()?;
    cx.services.deployments.set_stopped(cx.actor()?, &name, true).await
}

#[server(prefix = "/api", endpoint = "deployments/start", input = Json)]
pub async fn start_deployment(name: String) -> Result<DeploymentView, AppError> {
    let cx = super::ctx::ctx::<StartDeployment>()?;
    cx.services.deployments.set_stopped(cx.actor()?, &name, false).await
}

#[server(prefix = "/api", endpoint = "deployments/delete", input = Json)]
pub async fn delete_deployment(name: String, #[server(default)] delete_cache: bool) -> Result<(), AppError> {
    let cx = super::ctx::ctx::<DeleteDeployment>()?;
    cx.services.deployments.delete(cx.actor()?, &name, delete_cache).await
}
