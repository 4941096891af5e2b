//! Hub objects read back as H-MAS models.
use super::karmada::Cluster;
use app::models::cluster::ClusterHealth;
use kube::ResourceExt;

fn quantity_count(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> i64 {
    q.and_then(|q| q.0.parse::<i64>().ok()).unwrap_or(0)
}

pub fn cluster_health(c: &Cluster) -> ClusterHealth {
    let status = c.status.clone().unwrap_or_default();
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    let resources = status.resource_summary.unwrap_or_default();
    let nodes = status.node_summary.unwrap_or_default();
    ClusterHealth {
        name: c.name_any(),
        reported: ready.is_some(),
        ready: ready.is_some_and(|r| r.status == "True"),
        message: ready.map(|r| r.message.clone()).unwrap_or_else(|| "no status reported yet".into()),
        kubernetes_version: status.kubernetes_version.unwrap_or_default(),
        nodes_total: nodes.total_num as i64,
        nodes_ready: nodes.ready_num as i64,
        gpus_allocatable: quantity_count(resources.allocatable.get("nvidia.com/gpu")),
        gpus_allocated: quantity_count(resources.allocated.get("nvidia.com/gpu")),
    }
}

/// A Cluster as the hub reports it.
pub struct HubCluster {
    pub health: ClusterHealth,
    pub conditions: Vec<app::models::cluster::ClusterCondition>,
}

/// Every Cluster the hub has, by name.
pub async fn clusters(
    hub: &super::KubeClient,
) -> Result<std::collections::BTreeMap<String, HubCluster>, super::HubError> {
    Ok(hub
        .list::<Cluster>(None, None)
        .await?
        .iter()
        .map(|c| (c.name_any(), HubCluster { health: cluster_health(c), conditions: super::join::conditions(c) }))
        .collect())
}
