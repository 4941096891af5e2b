use crate::error::AppError;
use crate::models::cluster::{ClusterAccess, ClusterDetail, ClusterView, KubeconfigContext, ReleaseReport, ZoneClass};
use leptos::prelude::*;
use server_fn::codec::Json;

#[server(prefix = "/api", endpoint = "clusters/list", input = Json)]
pub async fn list_clusters() -> Result<Vec<ClusterView>, AppError> {
    super::ctx::ctx::<ListClusters>()?.services.clusters.list().await
}

#[server(prefix = "/api", endpoint = "clusters/get", input = Json)]
pub async fn get_cluster(name: String) -> Result<ClusterDetail, AppError> {
    super::ctx::ctx::<GetCluster>()?.services.clusters.detail(&name).await
}

/// The contexts in a kubeconfig, so the operator can pick one before registering.
#[server(prefix = "/api", endpoint = "clusters/inspect_kubeconfig", input = Json)]
pub async fn inspect_kubeconfig(kubeconfig: String) -> Result<Vec<KubeconfigContext>, AppError> {
    super::ctx::ctx::<InspectKubeconfig>()?.services.clusters.inspect_kubeconfig(&kubeconfig).await
}

#[server(prefix = "/api", endpoint = "clusters/register", input = Json)]
pub async fn register_cluster(
    name: String,
    #[server(default)] display_name: String,
    zone_class: ZoneClass,
    #[server(default)] region: String,
    #[server(default)] zone: String,
    access: ClusterAccess,
) -> Result<ClusterView, AppError> {
    let cx = super::ctx::ctx::<RegisterCluster>()?;
    let input = crate::models::cluster::RegisterCluster { name, display_name, zone_class, region, zone, access };
    input.validate()?;
    cx.services.clusters.register(cx.actor()?, input).await
}

#[server(prefix = "/api", endpoint = "clusters/release", input = Json)]
pub async fn release_cluster(name: String, #[server(default)] force: bool) -> Result<ReleaseReport, AppError> {
    let cx = super::ctx::ctx::<ReleaseCluster>()?;
    cx.services.clusters.release(cx.actor()?, &name, force).await
}
