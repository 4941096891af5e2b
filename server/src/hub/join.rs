//! Push-mode registration, as `karmadactl join` does it, over the API: an identity for Karmada on
//! the member (ServiceAccount with a token, ClusterRole and binding), then the hub's Secret and
//! Cluster. And the reverse, for release.
use super::client::KubeClient;
use super::error::HubError;
use super::karmada::{Cluster, ClusterSpec, LocalSecretReference, ResourceBinding};
use super::kubeconfig::MemberAccess;
use super::names::{KARMADA_NS, MANAGED_BY_LABEL, SERVING_NS, ZONE_CLASS_LABEL};
use app::models::cluster::{ClusterCondition, ClusterEvent, NodeInfo, ZoneClass};
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::ByteString;
use kube::api::ObjectMeta;
use kube::ResourceExt;
use std::collections::BTreeMap;
use std::time::Duration;

fn meta(name: &str, ns: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: ns.map(String::from),
        labels: Some(BTreeMap::from([(MANAGED_BY_LABEL.to_string(), "hmas".to_string())])),
        ..Default::default()
    }
}

fn identity(cluster: &str) -> String {
    format!("karmada-{cluster}")
}

fn role_name(cluster: &str) -> String {
    format!("karmada-controller-manager:karmada-{cluster}")
}

/// On the member: the ServiceAccount Karmada acts as, with cluster-wide rights, and its token.
pub async fn provision_member(member: &KubeClient, cluster: &str) -> Result<String, HubError> {
    let sa = identity(cluster);
    member.apply(&Namespace { metadata: meta(KARMADA_NS, None), ..Default::default() }).await?;
    member.apply(&ServiceAccount { metadata: meta(&sa, Some(KARMADA_NS)), ..Default::default() }).await?;
    let rules = vec![
        PolicyRule {
            api_groups: Some(vec!["*".into()]),
            resources: Some(vec!["*".into()]),
            verbs: vec!["*".into()],
            ..Default::default()
        },
        PolicyRule { non_resource_urls: Some(vec!["*".into()]), verbs: vec!["get".into()], ..Default::default() },
    ];
    member
        .apply(&ClusterRole { metadata: meta(&role_name(cluster), None), rules: Some(rules), ..Default::default() })
        .await?;
    member
        .apply(&ClusterRoleBinding {
            metadata: meta(&role_name(cluster), None),
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "ClusterRole".into(),
                name: role_name(cluster),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: sa.clone(),
                namespace: Some(KARMADA_NS.into()),
                ..Default::default()
            }]),
        })
        .await?;
    let mut secret_meta = meta(&sa, Some(KARMADA_NS));
    secret_meta.annotations = Some(BTreeMap::from([("kubernetes.io/service-account.name".to_string(), sa.clone())]));
    member
        .apply(&Secret {
            metadata: secret_meta,
            type_: Some("kubernetes.io/service-account-token".into()),
            ..Default::default()
        })
        .await?;
    // The token controller fills the token in shortly after.
    for _ in 0..100 {
        let s: Option<Secret> = member.get(Some(KARMADA_NS), &sa).await?;
        if let Some(t) = s.and_then(|s| s.data).and_then(|d| d.get("token").cloned()) {
            return String::from_utf8(t.0).map_err(|_| HubError::Other("the member's token is not text".into()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(HubError::Unavailable("the member did not issue a token for Karmada's ServiceAccount within 10 s".into()))
}

/// Removes what `provision_member` made. Best effort: returns what could not be removed.
pub async fn clean_member(member: &KubeClient, cluster: &str) -> Vec<String> {
    let sa = identity(cluster);
    let mut left = Vec::new();
    let mut note = |what: String, r: Result<bool, HubError>| {
        if let Err(e) = r {
            left.push(format!("{what}: {e}"));
        }
    };
    note(
        format!("ClusterRoleBinding {}", role_name(cluster)),
        member.delete::<ClusterRoleBinding>(None, &role_name(cluster)).await,
    );
    note(format!("ClusterRole {}", role_name(cluster)), member.delete::<ClusterRole>(None, &role_name(cluster)).await);
    note(format!("Secret {KARMADA_NS}/{sa}"), member.delete::<Secret>(Some(KARMADA_NS), &sa).await);
    note(format!("ServiceAccount {KARMADA_NS}/{sa}"), member.delete::<ServiceAccount>(Some(KARMADA_NS), &sa).await);
    left
}

/// The labels a member's hub Cluster carries (what placement strategies select on).
pub fn cluster_labels(zone_class: ZoneClass, region: &str, zone: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([(ZONE_CLASS_LABEL.to_string(), zone_class.as_str().to_string())]);
    if !region.is_empty() {
        labels.insert("topology.kubernetes.io/region".into(), region.into());
    }
    if !zone.is_empty() {
        labels.insert("topology.kubernetes.io/zone".into(), zone.into());
    }
    labels
}

pub struct HubRegistration<'a> {
    pub name: &'a str,
    pub server: &'a str,
    pub ca_pem: &'a str,
    pub token: &'a str,
    pub zone_class: ZoneClass,
    pub region: &'a str,
    pub zone: &'a str,
}

/// On the hub: the Secret with the member's token and CA, and the Cluster pointing at both.
pub async fn register_in_hub(hub: &KubeClient, r: &HubRegistration<'_>) -> Result<(), HubError> {
    hub.apply(&Namespace { metadata: meta(KARMADA_NS, None), ..Default::default() }).await?;
    let mut data = BTreeMap::from([("token".to_string(), ByteString(r.token.as_bytes().to_vec()))]);
    if !r.ca_pem.is_empty() {
        data.insert("caBundle".into(), ByteString(r.ca_pem.as_bytes().to_vec()));
    }
    hub.apply(&Secret {
        metadata: meta(r.name, Some(KARMADA_NS)),
        data: Some(data),
        type_: Some("Opaque".into()),
        ..Default::default()
    })
    .await?;
    let mut m = meta(r.name, None);
    m.labels.get_or_insert_with(BTreeMap::new).extend(cluster_labels(r.zone_class, r.region, r.zone));
    let spec = ClusterSpec {
        sync_mode: "Push".into(),
        api_endpoint: Some(r.server.into()),
        secret_ref: Some(LocalSecretReference { namespace: KARMADA_NS.into(), name: r.name.into() }),
        insecure_skip_tls_verification: r.ca_pem.is_empty().then_some(true),
        region: (!r.region.is_empty()).then(|| r.region.into()),
        zone: (!r.zone.is_empty()).then(|| r.zone.into()),
        ..Default::default()
    };
    hub.apply(&Cluster { metadata: m, spec, status: None }).await?;
    Ok(())
}

/// Deletes the Cluster and waits up to `wait` for Karmada to let it go — it withdraws the works'
/// copies from the member first, through the Cluster's Secret — then deletes the Secret. Deleting
/// the Secret sooner leaves the copies on the member for good. `false`: the Cluster was still
/// there when the wait ran out. Missing objects are fine (a retry after a crash).
pub async fn unregister_from_hub(hub: &KubeClient, name: &str, wait: Duration) -> Result<bool, HubError> {
    hub.delete::<Cluster>(None, name).await?;
    let start = std::time::Instant::now();
    let gone = loop {
        if hub.get::<Cluster>(None, name).await?.is_none() {
            break true;
        }
        if start.elapsed() >= wait {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    hub.delete::<Secret>(Some(KARMADA_NS), name).await?;
    Ok(gone)
}

/// GPUs the pods on each node ask for, by node name: what the member's scheduler counts as taken.
pub async fn gpus_in_use(member: &KubeClient) -> Result<BTreeMap<String, i64>, HubError> {
    let pods: Vec<k8s_openapi::api::core::v1::Pod> = member.list(None, None).await?;
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for p in pods {
        let (Some(spec), phase) = (p.spec, p.status.and_then(|s| s.phase)) else { continue };
        if matches!(phase.as_deref(), Some("Succeeded" | "Failed")) {
            continue;
        }
        let Some(node) = spec.node_name else { continue };
        let gpus: i64 = spec
            .containers
            .iter()
            .filter_map(|c| {
                let r = c.resources.as_ref()?;
                let q = r.requests.as_ref().and_then(|m| m.get(GPU)).or_else(|| r.limits.as_ref()?.get(GPU))?;
                q.0.parse::<i64>().ok()
            })
            .sum();
        *out.entry(node).or_default() += gpus;
    }
    Ok(out)
}

const GPU: &str = "nvidia.com/gpu";

/// What of H-MAS's workloads is still on a member: the serving namespace and the hub's copies in
/// it. Empty when nothing is left (or the member cannot be read, said as such).
pub async fn member_leftovers(member: &KubeClient) -> Vec<String> {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::batch::v1::Job;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
    let ns = SERVING_NS;
    let managed = Some("karmada.io/managed=true");
    let mut left = Vec::new();
    let read = async {
        if member.get::<Namespace>(None, ns).await?.is_some() {
            left.push(format!("Namespace {ns}"));
        }
        for d in member.list::<Deployment>(Some(ns), managed).await? {
            left.push(format!("Deployment {ns}/{}", d.name_any()));
        }
        for s in member.list::<Service>(Some(ns), managed).await? {
            left.push(format!("Service {ns}/{}", s.name_any()));
        }
        for p in member.list::<PersistentVolumeClaim>(Some(ns), managed).await? {
            left.push(format!("PersistentVolumeClaim {ns}/{}", p.name_any()));
        }
        for j in member.list::<Job>(Some(ns), managed).await? {
            left.push(format!("Job {ns}/{}", j.name_any()));
        }
        Ok::<_, HubError>(())
    };
    if let Err(e) = read.await {
        left.push(format!("could not check the member for leftovers: {e}"));
    }
    left
}

/// Hub workloads (bindings) placed on each cluster.
pub async fn workloads_by_cluster(hub: &KubeClient) -> Result<BTreeMap<String, Vec<String>>, HubError> {
    let rbs: Vec<ResourceBinding> = hub.list(None, None).await?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rb in rbs {
        let what = format!("{}/{} ({})", rb.spec.resource.namespace, rb.spec.resource.name, rb.spec.resource.kind);
        for c in &rb.spec.clusters {
            out.entry(c.name.clone()).or_default().push(what.clone());
        }
    }
    Ok(out)
}

fn quantity(node: &Node, key: &str) -> String {
    node.status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref())
        .and_then(|a| a.get(key))
        .map(|q| q.0.clone())
        .unwrap_or_default()
}

/// Nodes with their GPUs, read from NVIDIA's feature-discovery labels and allocatable resources.
pub fn node_info(n: &Node) -> NodeInfo {
    let labels = n.labels();
    let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
    let ready = n
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let mig_resources = n
        .status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref())
        .is_some_and(|a| a.keys().any(|k| k.starts_with("nvidia.com/mig-")));
    NodeInfo {
        name: n.name_any(),
        ready,
        cpu: quantity(n, "cpu"),
        memory: quantity(n, "memory"),
        gpu_product: label("nvidia.com/gpu.product"),
        gpus: quantity(n, "nvidia.com/gpu").parse().unwrap_or(0),
        gpu_memory_mib: label("nvidia.com/gpu.memory").parse().unwrap_or(0),
        nvlink: label("nvidia.com/gpu.nvlink") == "true",
        mig_capable: label("nvidia.com/mig.capable") == "true" || mig_resources,
        instance_type: label("node.kubernetes.io/instance-type"),
    }
}

pub async fn nodes(member: &KubeClient) -> Result<Vec<NodeInfo>, HubError> {
    let mut v: Vec<NodeInfo> = member.nodes().await?.iter().map(node_info).collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(v)
}

/// The member's most recent events, newest first.
pub async fn recent_events(member: &KubeClient, limit: usize) -> Result<Vec<ClusterEvent>, HubError> {
    let evs: Vec<Event> = member.list(None, None).await?;
    let mut v = newest_first(evs.iter());
    v.truncate(limit);
    Ok(v)
}

/// Events newest first. Timestamps have whole seconds, so several events often share one; the
/// resource version (increasing on every API server H-MAS meets) keeps them in the order they happened.
pub fn newest_first<'a>(evs: impl Iterator<Item = &'a Event>) -> Vec<ClusterEvent> {
    let version = |e: &Event| e.metadata.resource_version.as_deref().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let mut v: Vec<(ClusterEvent, u64)> = evs.map(|e| (event_view(e), version(e))).collect();
    v.sort_by(|(a, ra), (b, rb)| (&b.time, rb).cmp(&(&a.time, ra)));
    v.into_iter().map(|(e, _)| e).collect()
}

pub fn event_view(e: &Event) -> ClusterEvent {
    ClusterEvent {
        time: e
            .last_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
            .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
            .unwrap_or_default(),
        kind: e.type_.clone().unwrap_or_default(),
        reason: e.reason.clone().unwrap_or_default(),
        object: format!(
            "{}/{}",
            e.involved_object.kind.clone().unwrap_or_default().to_lowercase(),
            e.involved_object.name.clone().unwrap_or_default()
        ),
        message: e.message.clone().unwrap_or_default(),
    }
}

pub fn conditions(c: &Cluster) -> Vec<ClusterCondition> {
    c.status
        .as_ref()
        .map(|s| {
            s.conditions
                .iter()
                .map(|k| ClusterCondition {
                    kind: k.type_.clone(),
                    status: k.status.clone(),
                    reason: k.reason.clone(),
                    message: k.message.clone(),
                    since: k.last_transition_time.0.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A kube client for a member from stored access.
pub async fn member_client(name: &str, access: &MemberAccess) -> Result<KubeClient, HubError> {
    KubeClient::from_kubeconfig(&access.to_kubeconfig(name), None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(reason: &str, time: &str, version: &str) -> Event {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": reason, "resourceVersion": version},
            "involvedObject": {"kind": "Pod", "name": "p"},
            "reason": reason, "lastTimestamp": time,
        }))
        .unwrap()
    }

    #[test]
    fn events_of_one_second_keep_the_order_they_happened_in() {
        let evs = [
            ev("Started", "2026-11-25T09:18:58Z", "12"),
            ev("Scheduled", "2026-11-25T09:18:54Z", "40"),
            ev("Pulled", "2026-11-25T09:18:58Z", "9"),
            ev("DownloadingModel", "2026-11-25T09:18:58Z", "101"),
        ];
        let order: Vec<String> = newest_first(evs.iter()).into_iter().map(|e| e.reason).collect();
        assert_eq!(order, ["DownloadingModel", "Started", "Pulled", "Scheduled"]);
    }
}
