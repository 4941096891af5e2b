//! The hub-wide policies H-MAS keeps in step with its database: one OverridePolicy per resource
//! profile, the OverridePolicy that makes model servers NodePorts on the members, and the
//! ClusterTaintPolicy without which Karmada does not move workloads off a NotReady cluster.
use super::client::KubeClient;
use super::error::HubError;
use super::karmada::{Cluster, ClusterTaintPolicy, OverridePolicy};
use super::names::{MANAGED_BY_LABEL, NOT_READY_TAINT, PROFILE_LABEL, ROLE_LABEL, SERVING_NS};
use super::policy::{
    holds, moves_not_ready, node_port_policy, override_policy, profile_object_name, taint_policy, NODE_PORT_POLICY,
    TAINT_POLICY,
};
use super::render::serving_namespace;
use app::models::policy::ResourceProfile;
use kube::ResourceExt;

fn same_spec<T: serde::Serialize>(current: &T, desired: &T) -> bool {
    holds(&serde_json::to_value(current).unwrap_or_default(), &serde_json::to_value(desired).unwrap_or_default())
}

/// Puts back the NodePort OverridePolicy when it was changed or lost.
pub async fn sync_node_ports(hub: &KubeClient) -> Result<(), HubError> {
    let desired = node_port_policy();
    let current = hub.get::<OverridePolicy>(Some(SERVING_NS), NODE_PORT_POLICY).await?;
    if !current.is_some_and(|c| same_spec(&c.spec, &desired.spec)) {
        tracing::info!(
            policy = NODE_PORT_POLICY,
            "NodePort OverridePolicy differs from what H-MAS writes; applying again"
        );
        // A hub that lost everything has lost the namespace too.
        hub.apply(&serving_namespace()).await?;
        hub.apply(&desired).await?;
    }
    Ok(())
}

/// Applies each profile's OverridePolicy where it differs and removes those of profiles that are
/// gone. Per profile: what was done, or why it could not be.
pub async fn sync_profiles(
    hub: &KubeClient,
    profiles: &[ResourceProfile],
    gpu_products: &[String],
) -> Result<Vec<(String, Result<String, String>)>, HubError> {
    let selector = format!("{MANAGED_BY_LABEL}=hmas,{ROLE_LABEL}=resource-profile");
    let existing = hub.list::<OverridePolicy>(Some(SERVING_NS), Some(&selector)).await?;
    if !profiles.is_empty() && existing.is_empty() {
        hub.apply(&serving_namespace()).await?;
    }
    let mut out = Vec::new();
    for p in profiles {
        let desired = override_policy(p, gpu_products);
        let name = profile_object_name(&p.name);
        let current = existing.iter().find(|o| o.name_any() == name);
        let result = if current.is_some_and(|c| same_spec(&c.spec, &desired.spec)) {
            Ok(format!("OverridePolicy {name} in step"))
        } else {
            if current.is_some() {
                tracing::info!(profile = %p.name, "OverridePolicy differs from the database; applying again");
            }
            match hub.apply(&desired).await {
                Ok(_) => Ok(format!("OverridePolicy {name} applied")),
                Err(e) => Err(format!("could not apply OverridePolicy {name}: {e}")),
            }
        };
        out.push((p.name.clone(), result));
    }
    for o in existing {
        let owner = o.labels().get(PROFILE_LABEL).cloned().unwrap_or_default();
        if !profiles.iter().any(|p| p.name == owner) {
            tracing::info!(object = %o.name_any(), "removing OverridePolicy of a deleted profile");
            hub.delete::<OverridePolicy>(Some(SERVING_NS), &o.name_any()).await?;
        }
    }
    Ok(out)
}

/// Why the hub would not move workloads off a NotReady cluster: no ClusterTaintPolicy adds the
/// NoExecute taint (with `install`, H-MAS tries to add one; the refusal is the reason), or a
/// cluster has been NotReady for 30 s without the taint (the controller manager runs without its
/// `Failover` gate).
pub async fn failover_problem(hub: &KubeClient, install: bool) -> Result<Option<String>, HubError> {
    let taint_policies = hub.list::<ClusterTaintPolicy>(None, None).await?;
    if !moves_not_ready(&taint_policies) {
        if !install {
            return Ok(Some(format!("the hub has no ClusterTaintPolicy that taints a NotReady cluster NoExecute ({TAINT_POLICY} is installed with the first enabled failover policy)")));
        }
        match hub.apply(&taint_policy()).await {
            Ok(_) => tracing::info!(policy = TAINT_POLICY, "installed the hub's NotReady NoExecute taint policy"),
            Err(e) => {
                return Ok(Some(format!(
                    "the hub does not move workloads off a NotReady cluster: it refused ClusterTaintPolicy {TAINT_POLICY} ({e}); see docs/install.md"
                )))
            }
        }
    }
    let now = jiff::Timestamp::now();
    for c in hub.list::<Cluster>(None, None).await? {
        let since = c.status.as_ref().and_then(|s| {
            s.conditions.iter().find(|x| x.type_ == "Ready" && x.status == "False").map(|x| x.last_transition_time.0)
        });
        let tainted = c.spec.taints.iter().any(|t| t.key == NOT_READY_TAINT && t.effect == "NoExecute");
        if since.is_some_and(|t| now.as_second() - t.as_second() > 30) && !tainted {
            return Ok(Some(format!(
                "cluster {} is NotReady but the hub has not tainted it NoExecute, so its workloads are not moved: run karmada-controller-manager with --feature-gates=Failover=true --enable-no-execute-taint-eviction=true (docs/install.md)",
                c.name_any()
            )));
        }
    }
    Ok(None)
}
