//! H-MAS policies in Karmada's terms, as pure functions: a placement plan with its strategy and
//! failover policy becomes a PropagationPolicy's placement and failover; a resource profile
//! becomes one OverridePolicy that every Deployment labelled with it picks up.
use super::karmada::{
    ApplicationFailoverBehavior, ClusterAffinity, ClusterFailoverBehavior, ClusterPreferences, ClusterTaint,
    ClusterTaintPolicy, ClusterTaintPolicySpec, ClusterToleration, DecisionConditions, FailoverBehavior,
    MatchCondition, ObjectReference, OverridePolicy, OverridePolicySpec, Overriders, Placement, PlaintextOverrider,
    ReplicaSchedulingStrategy, ResourceBinding, ResourceSelector, RuleWithCluster, SpreadConstraint,
    StaticClusterWeight, WorkloadRebalancer, WorkloadRebalancerSpec,
};
use super::names::{
    GPU_PRODUCT_LABEL, MANAGED_BY_LABEL, NOT_READY_TAINT, NUMA_ALIGNED_ANNOTATION, PROFILE_LABEL, ROLE_LABEL,
    SERVING_NS,
};
use app::models::cluster::ZoneClass;
use app::models::policy::{
    FailoverPolicy, PlacementPlan, PlacementStrategy, PurgeMode, QosClass, ReplicaMode, ResourceProfile, Scheduler,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::ObjectMeta;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The OverridePolicy that carries a profile.
pub fn profile_object_name(profile: &str) -> String {
    format!("profile-{profile}")
}

/// H-MAS's division as static weights: each cluster weighs the replicas it gets. Karmada without
/// a scheduler-estimator cannot count GPUs, so H-MAS divides (it knows free GPUs per node and
/// type) and the hub follows; static weights schedule whatever the template requests.
fn weights(division: &[(String, i64)]) -> ClusterPreferences {
    ClusterPreferences {
        static_weight_list: division
            .iter()
            .map(|(c, w)| StaticClusterWeight {
                target_cluster: ClusterAffinity { cluster_names: vec![c.clone()], ..Default::default() },
                weight: *w,
            })
            .collect(),
        dynamic_weight: None,
    }
}

/// Clusters and their weights: the plan's replicas where it lands, else every eligible cluster
/// evenly (nothing ready now). A cluster with no weight gets replicas only when no weighted
/// cluster is left (Karmada then weighs them all 1), which is where failover sends them.
pub fn division(plan: &PlacementPlan) -> Vec<(String, i64)> {
    let mut landing = plan.landing();
    if landing.is_empty() {
        landing = plan.clusters.iter().map(|c| (c.clone(), 1)).collect();
    }
    landing.sort();
    landing
}

/// Keeps the division `current` carries when it still fits `plan`: the same mode, every weighted
/// cluster still eligible, and all `replicas` accounted for. Otherwise the plan's own stands.
pub fn keep_division(plan: &mut PlacementPlan, current: &Placement, replicas: i64) {
    let Some(rs) = &current.replica_scheduling else { return };
    if plan.replica_mode == ReplicaMode::Duplicated || rs.replica_scheduling_type.as_deref() != Some("Divided") {
        return;
    }
    let Some(list) = rs.weight_preference.as_ref().map(|w| &w.static_weight_list) else { return };
    let kept: Vec<(String, i64)> = list
        .iter()
        .filter_map(|w| match w.target_cluster.cluster_names.as_slice() {
            [one] => Some((one.clone(), w.weight)),
            _ => None,
        })
        .collect();
    let fits = kept.len() == list.len()
        && kept.iter().map(|(_, w)| w).sum::<i64>() == replicas
        && kept.iter().all(|(c, _)| plan.clusters.contains(c));
    if fits {
        for c in plan.candidates.iter_mut() {
            c.replicas = kept.iter().find(|(k, _)| *k == c.cluster).map(|(_, w)| *w).unwrap_or(0);
        }
    }
}

fn replica_scheduling(mode: ReplicaMode, plan: &PlacementPlan) -> ReplicaSchedulingStrategy {
    match mode {
        ReplicaMode::Duplicated => {
            ReplicaSchedulingStrategy { replica_scheduling_type: Some("Duplicated".into()), ..Default::default() }
        }
        ReplicaMode::Divided | ReplicaMode::Capacity | ReplicaMode::Aggregated => ReplicaSchedulingStrategy {
            replica_scheduling_type: Some("Divided".into()),
            replica_division_preference: Some("Weighted".into()),
            weight_preference: Some(weights(&division(plan))),
        },
    }
}

/// Tolerations of the hub's NotReady NoExecute taint: for `seconds` (None: for ever). Karmada
/// sets `Ready=False` (never `Unknown`) on a member that stops answering, so the `unreachable`
/// taint never comes.
fn tolerations(seconds: Option<i64>) -> Vec<ClusterToleration> {
    vec![ClusterToleration {
        key: Some(NOT_READY_TAINT.to_string()),
        operator: Some("Exists".into()),
        effect: Some("NoExecute".into()),
        toleration_seconds: seconds,
    }]
}

/// `spec.placement`: the plan's clusters by name (labels, rules and GPU fit are resolved by
/// H-MAS), divided as the plan says, tolerating failures as the failover policy says.
pub fn placement(
    plan: &PlacementPlan,
    strategy: Option<&PlacementStrategy>,
    failover: Option<&FailoverPolicy>,
) -> Placement {
    let mut spread_constraints = vec![];
    if let Some(s) = strategy.filter(|s| s.max_clusters > 0 || s.min_clusters > 0) {
        let max = if s.max_clusters > 0 { s.max_clusters } else { (plan.clusters.len() as u32).max(s.min_clusters) };
        spread_constraints.push(SpreadConstraint {
            spread_by_field: Some("cluster".into()),
            spread_by_label: None,
            max_groups: Some(max as i32),
            min_groups: Some(s.min_clusters.max(1) as i32),
        });
    }
    let cluster_tolerations = match failover {
        Some(f) if f.enabled => tolerations(Some(f.toleration_seconds as i64)),
        // Never moved: the workload waits for its cluster.
        Some(_) => tolerations(None),
        None => vec![],
    };
    // By name: the plan's preference order moves with load, the policy must not.
    let mut clusters = plan.clusters.clone();
    clusters.sort();
    Placement {
        cluster_affinity: Some(ClusterAffinity { cluster_names: clusters, ..Default::default() }),
        cluster_tolerations,
        spread_constraints,
        replica_scheduling: Some(replica_scheduling(plan.replica_mode, plan)),
    }
}

/// `spec.failover`: the purge mode of a cluster failover, and application failover only when the
/// policy asks for it, tolerating at least `cold_start` seconds so a replica that is still
/// downloading or loading its model is never evicted for it.
pub fn failover(f: Option<&FailoverPolicy>, cold_start: u32) -> Option<FailoverBehavior> {
    let f = f.filter(|f| f.enabled || f.application)?;
    let cluster = f.enabled.then(|| ClusterFailoverBehavior {
        purge_mode: Some(if f.purge_mode == PurgeMode::Directly { "Directly" } else { "Gracefully" }.into()),
    });
    let application = f.application.then(|| ApplicationFailoverBehavior {
        decision_conditions: DecisionConditions {
            toleration_seconds: Some(f.application_toleration(cold_start) as i32),
        },
        purge_mode: Some(f.purge_mode.as_str().into()),
        grace_period_seconds: (f.purge_mode == PurgeMode::Gracefully).then_some(f.grace_period_seconds as i32),
    });
    Some(FailoverBehavior { application, cluster })
}

/// Karmada's webhook refuses application failover without `propagateDeps: true`.
pub fn propagate_deps(failover: &Option<FailoverBehavior>) -> Option<bool> {
    failover.as_ref().and_then(|f| f.application.as_ref()).map(|_| true)
}

/// Whether the hub's binding left the division its policy gives, among the division's own clusters
/// (a cluster was joined again after its replicas went to the others, and Karmada does not move
/// them back by itself), while every weighted cluster is ready and nothing is being evicted: time
/// to ask for a fresh scheduling round.
pub fn strayed_from_division(policy: &Placement, rb: &ResourceBinding, ready: &BTreeSet<String>) -> bool {
    let Some(list) = policy.replica_scheduling.as_ref().and_then(|r| r.weight_preference.as_ref()) else {
        return false;
    };
    let mut weights: Vec<(String, i64)> = list
        .static_weight_list
        .iter()
        .filter_map(|w| match w.target_cluster.cluster_names.as_slice() {
            [one] => Some((one.clone(), w.weight)),
            _ => None,
        })
        .collect();
    let replicas = rb.spec.replicas.unwrap_or(0) as i64;
    if weights.is_empty()
        || weights.iter().map(|(_, w)| w).sum::<i64>() != replicas
        || !weights.iter().all(|(c, _)| ready.contains(c))
        || !rb.spec.graceful_eviction_tasks.is_empty()
    {
        return false;
    }
    let mut placed: Vec<(String, i64)> = rb
        .spec
        .clusters
        .iter()
        .filter(|c| c.replicas.unwrap_or(0) > 0)
        .map(|c| (c.name.clone(), c.replicas.unwrap_or(0) as i64))
        .collect();
    // Only a split uneven among the division's own clusters: moving a workload back from a cluster
    // outside it (where failover put it) would leave it without a ready replica until the new one
    // starts, and Karmada itself never moves back either.
    if !placed.iter().all(|(c, _)| weights.iter().any(|(w, _)| w == c)) {
        return false;
    }
    weights.sort();
    placed.sort();
    weights != placed
}

/// A one-shot WorkloadRebalancer for a deployment, gone a minute after it finished.
pub fn rebalancer(name: &str) -> WorkloadRebalancer {
    WorkloadRebalancer {
        metadata: ObjectMeta {
            name: Some(format!("hmas-{name}")),
            labels: Some(BTreeMap::from([(MANAGED_BY_LABEL.to_string(), "hmas".to_string())])),
            ..Default::default()
        },
        spec: WorkloadRebalancerSpec {
            workloads: vec![ObjectReference {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: SERVING_NS.into(),
                name: name.into(),
                uid: None,
            }],
            ttl_seconds_after_finished: Some(60),
        },
        status: None,
    }
}

/// The OverridePolicy that makes every model server's Service a NodePort on the members, each
/// member choosing a free port itself (and keeping it while the copy lives).
pub const NODE_PORT_POLICY: &str = "hmas-node-ports";

pub fn node_port_policy() -> OverridePolicy {
    let servers = [(MANAGED_BY_LABEL, "hmas"), (ROLE_LABEL, "server")];
    serving_override(
        NODE_PORT_POLICY,
        &[(ROLE_LABEL, "node-ports")],
        ("v1", "Service"),
        &servers,
        vec![op("replace", "/spec/type".into(), Some(json!("NodePort")))],
    )
}

/// An OverridePolicy of H-MAS's in the serving namespace: `plaintext` applied on every cluster to
/// the objects of `(apiVersion, kind)` carrying `selected` labels.
fn serving_override(
    name: &str,
    labels: &[(&str, &str)],
    (api_version, kind): (&str, &str),
    selected: &[(&str, &str)],
    plaintext: Vec<PlaintextOverrider>,
) -> OverridePolicy {
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let mut own = map(labels);
    own.insert(MANAGED_BY_LABEL.to_string(), "hmas".to_string());
    OverridePolicy {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(SERVING_NS.into()),
            labels: Some(own),
            ..Default::default()
        },
        spec: OverridePolicySpec {
            resource_selectors: vec![ResourceSelector {
                api_version: api_version.into(),
                kind: kind.into(),
                namespace: Some(SERVING_NS.into()),
                name: None,
                label_selector: Some(LabelSelector { match_labels: Some(map(selected)), ..Default::default() }),
            }],
            override_rules: vec![RuleWithCluster {
                target_cluster: None,
                overriders: Overriders { plaintext, ..Default::default() },
            }],
        },
    }
}

/// The ClusterTaintPolicy that makes a NotReady cluster's workloads move: the NoExecute
/// `not-ready` taint while Ready is not True, gone when it is. Karmada's cluster controller only
/// adds a NoSchedule taint; without this policy (and the hub's failover switched on) nothing is
/// ever evicted.
pub const TAINT_POLICY: &str = "hmas-not-ready-noexecute";

pub fn taint_policy() -> ClusterTaintPolicy {
    let ready = |operator: &str| MatchCondition {
        condition_type: "Ready".into(),
        operator: operator.into(),
        status_values: vec!["True".into()],
    };
    ClusterTaintPolicy {
        metadata: ObjectMeta {
            name: Some(TAINT_POLICY.into()),
            labels: Some(BTreeMap::from([(MANAGED_BY_LABEL.to_string(), "hmas".to_string())])),
            ..Default::default()
        },
        spec: ClusterTaintPolicySpec {
            add_on_conditions: vec![ready("NotIn")],
            remove_on_conditions: vec![ready("In")],
            taints: vec![ClusterTaint {
                key: NOT_READY_TAINT.into(),
                value: None,
                effect: "NoExecute".into(),
                time_added: None,
            }],
        },
    }
}

/// Whether one of the hub's ClusterTaintPolicies puts the NoExecute `not-ready` taint on every
/// NotReady cluster.
pub fn moves_not_ready(policies: &[ClusterTaintPolicy]) -> bool {
    policies.iter().any(|p| {
        p.spec.taints.iter().any(|t| t.key == NOT_READY_TAINT && t.effect == "NoExecute")
            && p.spec.add_on_conditions.iter().any(|c| c.condition_type == "Ready")
    })
}

/// A JSON pointer segment: `/` and `~` escaped.
fn seg(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

const CONTAINER: &str = "/spec/template/spec/containers/0";

fn op(operator: &str, path: String, value: Option<Value>) -> PlaintextOverrider {
    PlaintextOverrider { path, operator: operator.into(), value }
}

fn resource_path(section: &str, name: &str) -> String {
    format!("{CONTAINER}/resources/{section}/{}", seg(name))
}

fn cores(cpu: f64) -> String {
    if cpu.fract() == 0.0 {
        format!("{}", cpu as i64)
    } else {
        format!("{}m", (cpu * 1000.0).round() as i64)
    }
}

/// The profile's changes to a model server's Deployment, in the order they apply.
pub fn overriders(p: &ResourceProfile, gpu_products: &[String]) -> Vec<PlaintextOverrider> {
    let mut out = Vec::new();
    let batch = p.scheduler == Scheduler::Koordinator && p.qos == QosClass::Be;
    // Overcommit: ask for half, allow the whole.
    let share = if p.overcommit { 0.5 } else { 1.0 };
    if p.cpu > 0.0 {
        if batch {
            // Koordinator runs BE pods on reclaimed capacity, accounted as batch resources.
            out.push(op("remove", resource_path("requests", "cpu"), None));
            let milli = (p.cpu * 1000.0 * share).round() as i64;
            out.push(op("add", resource_path("requests", "kubernetes.io/batch-cpu"), Some(json!(milli.to_string()))));
            out.push(op(
                "add",
                resource_path("limits", "kubernetes.io/batch-cpu"),
                Some(json!(((p.cpu * 1000.0).round() as i64).to_string())),
            ));
        } else {
            out.push(op("replace", resource_path("requests", "cpu"), Some(json!(cores(p.cpu * share)))));
            out.push(op("add", resource_path("limits", "cpu"), Some(json!(cores(p.cpu)))));
        }
    }
    if p.memory_gi > 0 {
        let req = ((p.memory_gi as f64) * share * 1024.0).round() as i64;
        if batch {
            out.push(op("remove", resource_path("requests", "memory"), None));
            out.push(op(
                "add",
                resource_path("requests", "kubernetes.io/batch-memory"),
                Some(json!(format!("{req}Mi"))),
            ));
            out.push(op(
                "add",
                resource_path("limits", "kubernetes.io/batch-memory"),
                Some(json!(format!("{}Gi", p.memory_gi))),
            ));
        } else {
            out.push(op("replace", resource_path("requests", "memory"), Some(json!(format!("{req}Mi")))));
            out.push(op("replace", resource_path("limits", "memory"), Some(json!(format!("{}Gi", p.memory_gi)))));
        }
    }
    if p.scheduler != Scheduler::Default {
        out.push(op("add", "/spec/template/spec/schedulerName".into(), Some(json!(p.scheduler.scheduler_name()))));
    }
    // A MIG slice or a shared GPU replaces the whole-GPU resource.
    let whole_gpu = |section: &str| resource_path(section, "nvidia.com/gpu");
    if !p.mig_profile.is_empty() {
        let mig = format!("nvidia.com/mig-{}", p.mig_profile);
        for section in ["requests", "limits"] {
            out.push(op("remove", whole_gpu(section), None));
            out.push(op("add", resource_path(section, &mig), Some(json!("1"))));
        }
    } else if p.gpu_sharing {
        let extra: Vec<(&str, String)> = match p.scheduler {
            Scheduler::Koordinator => vec![
                ("koordinator.sh/gpu-shared", p.gpus.max(1).to_string()),
                ("koordinator.sh/gpu-core", "50".into()),
                ("koordinator.sh/gpu-memory-ratio", "50".into()),
            ],
            _ => vec![("volcano.sh/vgpu-number", p.gpus.max(1).to_string())],
        };
        for section in ["requests", "limits"] {
            out.push(op("remove", whole_gpu(section), None));
            for (k, v) in &extra {
                out.push(op("add", resource_path(section, k), Some(json!(v))));
            }
        }
    }
    let mut node_labels: Vec<Value> = Vec::new();
    if !p.gpu_type.trim().is_empty() {
        let want = p.gpu_type.trim().to_ascii_lowercase();
        let mut values: Vec<String> =
            gpu_products.iter().filter(|g| g.to_ascii_lowercase().contains(&want)).cloned().collect();
        values.sort();
        values.dedup();
        if values.is_empty() {
            values.push(p.gpu_type.trim().to_string());
        }
        node_labels.push(json!({"key": GPU_PRODUCT_LABEL, "operator": "In", "values": values}));
    }
    if p.zone == ZoneClass::A && p.nvlink {
        node_labels.push(json!({"key": "nvidia.com/gpu.nvlink", "operator": "In", "values": ["true"]}));
    }
    if !node_labels.is_empty() {
        out.push(op(
            "add",
            "/spec/template/spec/affinity".into(),
            Some(json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": node_labels}]}}})),
        ));
    }
    let pod_label = |k: &str, v: &str| op("add", format!("/spec/template/metadata/labels/{}", seg(k)), Some(json!(v)));
    let pod_annotation =
        |k: &str, v: &str| op("add", format!("/spec/template/metadata/annotations/{}", seg(k)), Some(json!(v)));
    out.push(pod_label(PROFILE_LABEL, &p.name));
    if p.qos != QosClass::None {
        out.push(pod_label("koordinator.sh/qosClass", p.qos.as_str()));
    }
    if p.numa_aligned {
        match p.scheduler {
            Scheduler::Koordinator => out.push(pod_annotation(
                "scheduling.koordinator.sh/numa-topology-spec",
                r#"{"numaTopologyPolicy":"SingleNUMANode"}"#,
            )),
            Scheduler::Volcano => out.push(pod_annotation("volcano.sh/numa-topology-policy", "single-numa-node")),
            Scheduler::Default => out.push(pod_annotation(NUMA_ALIGNED_ANNOTATION, "true")),
        }
    }
    if p.gang {
        let group = format!("hmas-{}", p.name);
        match p.scheduler {
            Scheduler::Koordinator => {
                out.push(pod_annotation("gang.scheduling.koordinator.sh/name", &group));
                out.push(pod_annotation("gang.scheduling.koordinator.sh/min-available", "1"));
            }
            _ => out.push(pod_annotation("scheduling.k8s.io/group-name", &group)),
        }
    }
    out
}

/// The profile's OverridePolicy in the serving namespace.
pub fn override_policy(p: &ResourceProfile, gpu_products: &[String]) -> OverridePolicy {
    serving_override(
        &profile_object_name(&p.name),
        &[(ROLE_LABEL, "resource-profile"), (PROFILE_LABEL, &p.name)],
        ("apps/v1", "Deployment"),
        &[(PROFILE_LABEL, &p.name)],
        overriders(p, gpu_products),
    )
}

/// Whether `actual` holds everything `desired` says: the hub may add defaults, but nothing
/// H-MAS set may differ. Arrays must match element for element.
pub fn holds(actual: &Value, desired: &Value) -> bool {
    match (actual, desired) {
        (_, Value::Null) => true,
        (Value::Object(a), Value::Object(d)) => d.iter().all(|(k, v)| holds(a.get(k).unwrap_or(&Value::Null), v)),
        (Value::Array(a), Value::Array(d)) => a.len() == d.len() && a.iter().zip(d).all(|(x, y)| holds(x, y)),
        (a, d) => a == d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::models::policy::{default_set, Candidate, PlacementMode, TargetKind};
    use serde_json::to_value;

    fn plan(clusters: &[&str], mode: ReplicaMode) -> PlacementPlan {
        PlacementPlan {
            clusters: clusters.iter().map(|c| c.to_string()).collect(),
            candidates: clusters
                .iter()
                .map(|c| Candidate { cluster: c.to_string(), eligible: true, reasons: vec![], replicas: 1 })
                .collect(),
            replica_mode: mode,
            ..Default::default()
        }
    }

    fn strategy(mode: ReplicaMode, min: u32, max: u32) -> PlacementStrategy {
        PlacementStrategy {
            name: "s".into(),
            mode: PlacementMode::Manual,
            target: TargetKind::All,
            replica_mode: mode,
            min_clusters: min,
            max_clusters: max,
            ..Default::default()
        }
    }

    #[test]
    fn placement_table() {
        let f = FailoverPolicy { name: "f".into(), toleration_seconds: 30, ..Default::default() };
        let off = FailoverPolicy { enabled: false, ..f.clone() };
        let mut two_on_a = plan(&["a", "b", "c"], ReplicaMode::Capacity);
        two_on_a.candidates[0].replicas = 2;
        two_on_a.candidates[2].replicas = 0;
        let cases = vec![
            (
                "divided evenly, failover after 30 s",
                plan(&["b", "a"], ReplicaMode::Divided),
                None,
                Some(&f),
                json!({"clusterAffinity": {"clusterNames": ["a", "b"]},
                       "clusterTolerations": [
                           {"key": NOT_READY_TAINT, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}],
                       "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
                           "weightPreference": {"staticWeightList": [
                               {"targetCluster": {"clusterNames": ["a"]}, "weight": 1},
                               {"targetCluster": {"clusterNames": ["b"]}, "weight": 1}]}}}),
            ),
            (
                "by capacity as the plan divided it, spread 2..3, failover disabled tolerates for ever",
                two_on_a,
                Some(strategy(ReplicaMode::Capacity, 2, 3)),
                Some(&off),
                json!({"clusterAffinity": {"clusterNames": ["a", "b", "c"]},
                       "clusterTolerations": [
                           {"key": NOT_READY_TAINT, "operator": "Exists", "effect": "NoExecute"}],
                       "spreadConstraints": [{"spreadByField": "cluster", "maxGroups": 3, "minGroups": 2}],
                       "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
                           "weightPreference": {"staticWeightList": [
                               {"targetCluster": {"clusterNames": ["a"]}, "weight": 2},
                               {"targetCluster": {"clusterNames": ["b"]}, "weight": 1}]}}}),
            ),
            (
                "aggregated, minimum only: maximum is every eligible cluster; the hub's estimate is not used",
                plan(&["a", "b"], ReplicaMode::Aggregated),
                Some(strategy(ReplicaMode::Aggregated, 2, 0)),
                None,
                json!({"clusterAffinity": {"clusterNames": ["a", "b"]},
                       "spreadConstraints": [{"spreadByField": "cluster", "maxGroups": 2, "minGroups": 2}],
                       "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
                           "weightPreference": {"staticWeightList": [
                               {"targetCluster": {"clusterNames": ["a"]}, "weight": 1},
                               {"targetCluster": {"clusterNames": ["b"]}, "weight": 1}]}}}),
            ),
            (
                "duplicated",
                plan(&["a"], ReplicaMode::Duplicated),
                None,
                None,
                json!({"clusterAffinity": {"clusterNames": ["a"]}, "replicaScheduling": {"replicaSchedulingType": "Duplicated"}}),
            ),
        ];
        for (what, p, s, f, want) in cases {
            assert_eq!(to_value(placement(&p, s.as_ref(), f)).unwrap(), want, "{what}");
        }
    }

    #[test]
    fn a_split_that_strayed_among_its_own_clusters_is_rebalanced() {
        let p = placement(&plan(&["a", "b"], ReplicaMode::Divided), None, None);
        let rb = |clusters: &[(&str, i32)]| {
            let mut rb = ResourceBinding::new("x", Default::default());
            rb.spec.replicas = Some(2);
            rb.spec.clusters = clusters
                .iter()
                .map(|(n, r)| super::super::karmada::TargetCluster { name: n.to_string(), replicas: Some(*r) })
                .collect();
            rb
        };
        let ready: BTreeSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert!(strayed_from_division(&p, &rb(&[("a", 2)]), &ready));
        assert!(!strayed_from_division(&p, &rb(&[("a", 1), ("b", 1)]), &ready));
        // Moved off to c by failover: left there, as Karmada leaves it.
        assert!(!strayed_from_division(&p, &rb(&[("a", 1), ("c", 1)]), &ready));
        let only_a: BTreeSet<String> = ["a".to_string()].into();
        assert!(!strayed_from_division(&p, &rb(&[("a", 2)]), &only_a), "b is not back yet");
    }

    #[test]
    fn failover_table() {
        let base = FailoverPolicy { name: "f".into(), toleration_seconds: 120, ..Default::default() };
        let cases = vec![
            (base.clone(), json!({"cluster": {"purgeMode": "Gracefully"}})),
            (
                FailoverPolicy { purge_mode: PurgeMode::Directly, grace_period_seconds: 0, ..base.clone() },
                json!({"cluster": {"purgeMode": "Directly"}}),
            ),
            (
                // Application failover waits for the model's start (400 s here), never less.
                FailoverPolicy { application: true, ..base.clone() },
                json!({"application": {"decisionConditions": {"tolerationSeconds": 400}, "purgeMode": "Gracefully", "gracePeriodSeconds": 600},
                       "cluster": {"purgeMode": "Gracefully"}}),
            ),
            (
                FailoverPolicy {
                    enabled: false,
                    application: true,
                    purge_mode: PurgeMode::Never,
                    grace_period_seconds: 0,
                    ..base.clone()
                },
                json!({"application": {"decisionConditions": {"tolerationSeconds": 400}, "purgeMode": "Never"}}),
            ),
            (FailoverPolicy { enabled: false, ..base.clone() }, Value::Null),
        ];
        for (f, want) in cases {
            let rendered = failover(Some(&f), 400);
            assert_eq!(propagate_deps(&rendered), f.application.then_some(true), "{f:?}");
            assert_eq!(to_value(rendered).unwrap(), want, "{f:?}");
        }
        assert!(failover(None, 400).is_none());
    }

    fn ops(p: &ResourceProfile) -> Vec<(String, String, Value)> {
        overriders(p, &["NVIDIA-A100-SXM4-80GB".into(), "NVIDIA-H100-80GB-HBM3".into(), "Tesla-T4".into()])
            .into_iter()
            .map(|o| (o.operator, o.path, o.value.unwrap_or(Value::Null)))
            .collect()
    }

    fn has(ops: &[(String, String, Value)], operator: &str, path: &str, value: Value) -> bool {
        ops.iter().any(|(o, p, v)| o == operator && p == path && *v == value)
    }

    #[test]
    fn profile_overriders_table() {
        let (_, profiles, _) = default_set();
        let a100 = ops(&profiles[0]);
        let c = CONTAINER;
        assert!(has(&a100, "replace", &format!("{c}/resources/requests/cpu"), json!("16")));
        assert!(has(&a100, "add", &format!("{c}/resources/limits/cpu"), json!("16")));
        assert!(has(&a100, "replace", &format!("{c}/resources/requests/memory"), json!("131072Mi")));
        assert!(has(&a100, "replace", &format!("{c}/resources/limits/memory"), json!("128Gi")));
        assert!(has(&a100, "add", "/spec/template/metadata/annotations/hmas.io~1numa-aligned", json!("true")));
        let affinity = a100.iter().find(|(_, p, _)| p == "/spec/template/spec/affinity").unwrap();
        let exprs = &affinity.2["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            [0]["matchExpressions"];
        assert_eq!(exprs[0], json!({"key": GPU_PRODUCT_LABEL, "operator": "In", "values": ["NVIDIA-A100-SXM4-80GB"]}));
        assert_eq!(exprs[1]["key"], "nvidia.com/gpu.nvlink");
        assert!(has(
            &a100,
            "add",
            "/spec/template/metadata/labels/hmas.io~1resource-profile",
            json!("a100-nvlink-4gpu")
        ));
        assert!(!a100.iter().any(|(_, p, _)| p.ends_with("schedulerName")));

        // Koordinator BE with GPU sharing and overcommit: batch resources at half, shared GPU.
        let be = ops(&profiles[2]);
        assert!(has(&be, "remove", &format!("{c}/resources/requests/cpu"), Value::Null));
        assert!(has(&be, "add", &format!("{c}/resources/requests/kubernetes.io~1batch-cpu"), json!("1000")));
        assert!(has(&be, "add", &format!("{c}/resources/limits/kubernetes.io~1batch-cpu"), json!("2000")));
        assert!(has(&be, "add", &format!("{c}/resources/requests/kubernetes.io~1batch-memory"), json!("4096Mi")));
        assert!(has(&be, "add", "/spec/template/spec/schedulerName", json!("koord-scheduler")));
        assert!(has(&be, "remove", &format!("{c}/resources/limits/nvidia.com~1gpu"), Value::Null));
        assert!(has(&be, "add", &format!("{c}/resources/limits/koordinator.sh~1gpu-shared"), json!("1")));
        assert!(has(&be, "add", "/spec/template/metadata/labels/koordinator.sh~1qosClass", json!("BE")));

        // MIG slice, Volcano gang, fractional CPU.
        let mig = ResourceProfile {
            name: "mig".into(),
            zone: ZoneClass::A,
            gpus: 1,
            cpu: 2.5,
            memory_gi: 0,
            mig_profile: "1g.10gb".into(),
            scheduler: Scheduler::Volcano,
            ..Default::default()
        };
        let m = ops(&mig);
        assert!(has(&m, "replace", &format!("{c}/resources/requests/cpu"), json!("2500m")));
        assert!(has(&m, "add", &format!("{c}/resources/requests/nvidia.com~1mig-1g.10gb"), json!("1")));
        assert!(has(&m, "add", "/spec/template/spec/schedulerName", json!("volcano")));
        assert!(!m.iter().any(|(_, p, _)| p.contains("memory")));
        let gang =
            ResourceProfile { name: "g".into(), gang: true, scheduler: Scheduler::Volcano, ..Default::default() };
        assert!(has(
            &ops(&gang),
            "add",
            "/spec/template/metadata/annotations/scheduling.k8s.io~1group-name",
            json!("hmas-g")
        ));
        let ls = ResourceProfile {
            name: "ls".into(),
            scheduler: Scheduler::Koordinator,
            qos: QosClass::Ls,
            overcommit: true,
            cpu: 4.0,
            memory_gi: 8,
            ..Default::default()
        };
        let l = ops(&ls);
        assert!(has(&l, "replace", &format!("{c}/resources/requests/cpu"), json!("2")));
        assert!(has(&l, "add", &format!("{c}/resources/limits/cpu"), json!("4")));
        assert!(has(&l, "replace", &format!("{c}/resources/requests/memory"), json!("4096Mi")));
    }

    #[test]
    fn override_policy_selects_deployments_by_profile() {
        let p = &default_set().1[1];
        let op = to_value(override_policy(p, &[])).unwrap();
        assert_eq!(op["metadata"]["name"], "profile-general-1gpu");
        assert_eq!(op["metadata"]["namespace"], SERVING_NS);
        assert_eq!(
            op["spec"]["resourceSelectors"][0],
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "namespace": SERVING_NS,
                   "labelSelector": {"matchLabels": {PROFILE_LABEL: "general-1gpu"}}})
        );
        assert!(op["spec"]["overrideRules"][0].get("targetCluster").is_none());
    }

    #[test]
    fn holds_ignores_added_defaults_only() {
        let desired = json!({"a": 1, "b": {"c": [1, {"d": 2}]}});
        assert!(holds(&json!({"a": 1, "x": 9, "b": {"c": [1, {"d": 2, "e": 3}]}}), &desired));
        assert!(!holds(&json!({"a": 2, "b": {"c": [1, {"d": 2}]}}), &desired));
        assert!(!holds(&json!({"a": 1, "b": {"c": [1]}}), &desired));
        assert!(!holds(&json!({"b": {"c": [1, {"d": 2}]}}), &desired));
    }
}
