//! Karmada's control plane on the simulated hub: cluster status from the members (through the
//! credentials in each Cluster's secret), PropagationPolicy → ResourceBinding scheduling, copies
//! on the chosen members with OverridePolicies applied, status aggregated back, and failover of
//! workloads from clusters that stay NotReady past their toleration.
use super::cluster::Cluster;
use super::config::SimConfig;
use super::member::{pod_requests, Member};
use super::overrides;
use super::resources::ResourceType;
use super::selectors::{labels_of, Selector};
use super::store::{name_of, now_rfc3339, ns_of};
use base64::Engine;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

fn rt(kind: &str) -> &'static ResourceType {
    ResourceType::of_kind(kind).expect("known kind")
}

pub const MANAGED_LABEL: &str = "karmada.io/managed";
pub const BINDING_NAME: &str = "resourcebinding.karmada.io/name";
pub const BINDING_NS: &str = "resourcebinding.karmada.io/namespace";
pub const POLICY_LABEL: &str = "propagationpolicy.karmada.io/name";
pub const POLICY_FINALIZER: &str = "karmada.io/propagation-policy-controller";
pub const CLUSTER_FINALIZER: &str = "karmada.io/cluster-controller";
pub const NOT_READY_TAINT: &str = "cluster.karmada.io/not-ready";
const DEFAULT_GRACE_SECONDS: f64 = 600.0;

/// Kinds a policy may propagate.
const PROPAGATABLE: &[&str] = &[
    "Deployment",
    "Service",
    "ConfigMap",
    "Secret",
    "PersistentVolumeClaim",
    "Job",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "NetworkPolicy",
];

pub struct Karmada {
    pub hub: Arc<Cluster>,
    pub members: Arc<RwLock<Vec<Arc<Member>>>>,
    cfg: Arc<SimConfig>,
    /// Since when each member has not answered.
    unreachable_since: Mutex<HashMap<String, Instant>>,
    /// When each NoExecute taint (cluster, key) appeared: the taint manager counts from there.
    no_execute_since: Mutex<HashMap<(String, String), Instant>>,
    /// Since when a binding's copy on a cluster (ns, binding, cluster) has been Unhealthy.
    unhealthy_since: Mutex<HashMap<(String, String, String), Instant>>,
}

/// A hub Cluster object together with the member it points at, when reachable.
struct Target {
    obj: Value,
    member: Option<Arc<Member>>,
    /// The Cluster's `Ready` condition (a member that stopped answering stays Ready until the
    /// failure threshold passes).
    ready: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Karmada {
    pub fn new(hub: Arc<Cluster>, members: Arc<RwLock<Vec<Arc<Member>>>>, cfg: Arc<SimConfig>) -> Karmada {
        Karmada {
            hub,
            members,
            cfg,
            unreachable_since: Mutex::default(),
            no_execute_since: Mutex::default(),
            unhealthy_since: Mutex::default(),
        }
    }

    /// An Event on the hub about one of its objects, as Karmada's controllers record them.
    fn event(&self, involved: &Value, kind: &str, reason: &str, message: &str) {
        self.hub.event("karmada-scheduler", involved, kind, reason, message);
    }

    fn failover_on(&self) -> bool {
        self.hub.failover.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn tick(&self) {
        if self.hub.is_down() {
            return;
        }
        let targets = self.cluster_status();
        self.policies();
        self.rebalancers();
        self.schedule(&targets);
        self.sync(&targets);
    }

    fn member_at(&self, endpoint: &str) -> Option<Arc<Member>> {
        self.members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|m| m.cluster.url() == endpoint.trim_end_matches('/'))
            .cloned()
    }

    /// Whether the hub can reach the member with the token in the Cluster's secret, as Karmada
    /// does in push mode.
    fn reach(&self, c: &Value) -> Option<Arc<Member>> {
        let member = self.member_at(c.pointer("/spec/apiEndpoint").and_then(Value::as_str)?)?;
        if member.cluster.is_down() {
            return None;
        }
        let sns = c.pointer("/spec/secretRef/namespace").and_then(Value::as_str)?;
        let sname = c.pointer("/spec/secretRef/name").and_then(Value::as_str)?;
        let secret = self.hub.store.try_get(rt("Secret"), sns, sname)?;
        let token = secret.pointer("/data/token").and_then(Value::as_str)?;
        let token = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(token).ok()?).ok()?;
        member.cluster.tokens.authenticate(&member.cluster.store, Some(&format!("Bearer {token}")), None).ok()?;
        Some(member)
    }

    /// The cluster's taints after this round: the cluster controller's `not-ready:NoSchedule`
    /// (it adds no NoExecute taint since v1.14), then — only with failover switched on, when the
    /// taint controller runs — what the ClusterTaintPolicies add or remove on its conditions.
    fn taints(&self, c: &Value, ready: bool, policies: &[Value]) -> Vec<Value> {
        let name = name_of(c).to_string();
        let now = now_rfc3339();
        let mut taints = c.pointer("/spec/taints").and_then(Value::as_array).cloned().unwrap_or_default();
        let same = |t: &Value, key: &str, effect: &str| t["key"] == key && t["effect"] == effect;
        let add = |taints: &mut Vec<Value>, t: &Value| {
            let (key, effect) = (t["key"].as_str().unwrap_or(""), t["effect"].as_str().unwrap_or(""));
            if !taints.iter().any(|x| same(x, key, effect)) {
                let mut t = t.clone();
                t["timeAdded"] = json!(now);
                taints.push(t);
            }
        };
        if ready {
            taints.retain(|t| !same(t, NOT_READY_TAINT, "NoSchedule"));
        } else {
            add(&mut taints, &json!({"key": NOT_READY_TAINT, "effect": "NoSchedule"}));
        }
        if self.failover_on() {
            let ready_status = if ready { "True" } else { "False" };
            let holds = |conds: Option<&Value>| {
                let conds = conds.and_then(Value::as_array).cloned().unwrap_or_default();
                !conds.is_empty()
                    && conds.iter().all(|m| {
                        // Only Ready is modelled; another condition type is absent, so never matches.
                        if m["conditionType"] != "Ready" {
                            return false;
                        }
                        let listed = m["statusValues"].as_array().is_some_and(|v| v.iter().any(|s| s == ready_status));
                        if m["operator"] == "NotIn" {
                            !listed
                        } else {
                            listed
                        }
                    })
            };
            for p in policies {
                let target = p.pointer("/spec/targetClusters").cloned().unwrap_or(Value::Null);
                if !target.is_null() && !fits_placement(&json!({"clusterAffinity": target}), c) {
                    continue;
                }
                let policy_taints = p.pointer("/spec/taints").and_then(Value::as_array).cloned().unwrap_or_default();
                if holds(p.pointer("/spec/addOnConditions")) {
                    for t in &policy_taints {
                        add(&mut taints, t);
                    }
                } else if holds(p.pointer("/spec/removeOnConditions")) {
                    taints.retain(|x| {
                        !policy_taints
                            .iter()
                            .any(|t| same(x, t["key"].as_str().unwrap_or(""), t["effect"].as_str().unwrap_or("")))
                    });
                }
            }
        }
        let mut since = lock(&self.no_execute_since);
        since.retain(|(cluster, key), _| {
            *cluster != name || taints.iter().any(|t| t["key"] == key.as_str() && t["effect"] == "NoExecute")
        });
        for t in taints.iter().filter(|t| t["effect"] == "NoExecute") {
            since.entry((name.clone(), t["key"].as_str().unwrap_or("").to_string())).or_insert_with(Instant::now);
        }
        taints
    }

    fn cluster_status(&self) -> Vec<Target> {
        let store = &self.hub.store;
        let (clusters, _) = store.list(rt("Cluster"), None);
        let (taint_policies, _) = store.list(rt("ClusterTaintPolicy"), None);
        let threshold = self.cfg.scaled(self.cfg.cluster_failure_seconds);
        let mut out = Vec::new();
        for c in clusters {
            let name = name_of(&c).to_string();
            if c.pointer("/metadata/deletionTimestamp").is_some() {
                self.withdraw(&c);
                continue;
            }
            let has_finalizer = c
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| f.iter().any(|x| x == CLUSTER_FINALIZER));
            if !has_finalizer {
                let _ = store.mutate(rt("Cluster"), "", &name, false, |o| {
                    let mut f = o["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
                    f.push(json!(CLUSTER_FINALIZER));
                    o["metadata"]["finalizers"] = json!(f);
                });
            }
            let member = self.reach(&c);
            let was_ready = c
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|x| x["type"] == "Ready"))
                .is_some_and(|x| x["status"] == "True");
            let ready = {
                let mut since = lock(&self.unreachable_since);
                if member.is_some() {
                    since.remove(&name);
                    true
                } else {
                    // Karmada keeps a cluster Ready until it has failed for the threshold.
                    let first = *since.entry(name.clone()).or_insert_with(Instant::now);
                    was_ready && first.elapsed() < threshold
                }
            };
            let taints = self.taints(&c, ready, &taint_policies);
            if c.pointer("/spec/taints").and_then(Value::as_array).cloned().unwrap_or_default() != taints {
                let _ = store.mutate(rt("Cluster"), "", &name, false, |o| o["spec"]["taints"] = json!(taints));
            }
            let now = now_rfc3339();
            let obj = store
                .mutate(rt("Cluster"), "", &name, true, |o| {
                    let prev_ready = o.pointer("/status/conditions").and_then(Value::as_array).and_then(|cs| cs.iter().find(|c| c["type"] == "Ready")).cloned();
                    let status = if ready { "True" } else { "False" };
                    let changed = prev_ready.as_ref().is_none_or(|p| p["status"] != status);
                    let transition = if changed { json!(now) } else { prev_ready.map(|p| p["lastTransitionTime"].clone()).unwrap_or(json!(now)) };
                    let (reason, message) = if ready {
                        ("ClusterReady", "cluster is healthy and ready to accept workloads")
                    } else {
                        ("ClusterNotReachable", "cluster is not reachable")
                    };
                    o["status"]["conditions"] = json!([{"type": "Ready", "status": status, "reason": reason, "message": message, "lastTransitionTime": transition}]);
                    if let Some(m) = &member {
                        let (nodes, _) = m.cluster.store.list(rt("Node"), None);
                        let ready_nodes = nodes
                            .iter()
                            .filter(|n| n.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True")))
                            .count();
                        let (alloc, used) = m.resource_summary();
                        o["status"]["kubernetesVersion"] = json!(m.cluster.kubernetes_version);
                        o["status"]["nodeSummary"] = json!({"totalNum": nodes.len(), "readyNum": ready_nodes});
                        o["status"]["resourceSummary"] = json!({"allocatable": Member::quantity_map(&alloc), "allocated": Member::quantity_map(&used), "allocating": {}});
                        o["status"]["apiEnablements"] = json!([{"groupVersion": "apps/v1", "resources": [{"name": "deployments", "kind": "Deployment"}]}, {"groupVersion": "v1", "resources": [{"name": "services", "kind": "Service"}, {"name": "pods", "kind": "Pod"}]}]);
                    }
                })
                .unwrap_or(c);
            out.push(Target { obj, member, ready });
        }
        out
    }

    /// A Cluster being deleted: its works go, and with them the copies on the member, through
    /// the credentials in the Cluster's Secret. Without the Secret that fails and the copies stay
    /// on the member for good; a member that does not answer is tried again until it does.
    fn withdraw(&self, c: &Value) {
        let name = name_of(c).to_string();
        let store = &self.hub.store;
        match self.reach(c) {
            Some(member) => {
                let ms = &member.cluster.store;
                for kind in PROPAGATABLE {
                    let r = rt(kind);
                    for o in ms
                        .list(r, None)
                        .0
                        .iter()
                        .filter(|o| labels_of(o).get(MANAGED_LABEL).is_some_and(|v| v == "true"))
                    {
                        let _ = ms.delete(r, ns_of(o), name_of(o));
                    }
                }
                let nst = rt("Namespace");
                for o in
                    ms.list(nst, None).0.iter().filter(|o| labels_of(o).get(MANAGED_LABEL).is_some_and(|v| v == "true"))
                {
                    let _ = ms.delete(nst, "", name_of(o));
                }
            }
            None => {
                let secret = c.pointer("/spec/secretRef/name").and_then(Value::as_str).unwrap_or("");
                let sns = c.pointer("/spec/secretRef/namespace").and_then(Value::as_str).unwrap_or("");
                let has_secret = store.try_get(rt("Secret"), sns, secret).is_some();
                let down = c
                    .pointer("/spec/apiEndpoint")
                    .and_then(Value::as_str)
                    .and_then(|e| self.member_at(e))
                    .is_some_and(|m| m.cluster.is_down());
                if has_secret && down {
                    return;
                }
                let why = if has_secret {
                    "the member refused the cluster's credentials".to_string()
                } else {
                    format!("Secret \"{secret}\" not found")
                };
                self.event(c, "Warning", "RemoveExecutionSpaceFailed", &format!("Failed to delete work: {why}"));
            }
        }
        lock(&self.unreachable_since).remove(&name);
        let _ = store.mutate(rt("Cluster"), "", &name, false, |o| {
            if let Some(f) = o["metadata"]["finalizers"].as_array_mut() {
                f.retain(|x| x != CLUSTER_FINALIZER);
            }
        });
    }

    /// WorkloadRebalancers: each workload's binding is marked for a fresh scheduling round
    /// (`spec.rescheduleTriggeredAt`), the result recorded, the object removed after its TTL.
    fn rebalancers(&self) {
        let store = &self.hub.store;
        for wr in store.list(rt("WorkloadRebalancer"), None).0 {
            let name = name_of(&wr).to_string();
            let generation = wr.pointer("/metadata/generation").cloned().unwrap_or(json!(1));
            if wr.pointer("/status/observedGeneration") == Some(&generation) {
                let finished = wr
                    .pointer("/status/finishTime")
                    .and_then(Value::as_str)
                    .and_then(|t| t.parse::<jiff::Timestamp>().ok());
                let ttl = wr.pointer("/spec/ttlSecondsAfterFinished").and_then(Value::as_i64);
                if let (Some(f), Some(ttl)) = (finished, ttl) {
                    if jiff::Timestamp::now().as_second() - f.as_second() >= ttl {
                        let _ = store.delete(rt("WorkloadRebalancer"), "", &name);
                    }
                }
                continue;
            }
            let now = now_rfc3339();
            let mut observed = Vec::new();
            for w in wr.pointer("/spec/workloads").and_then(Value::as_array).into_iter().flatten() {
                let kind = w["kind"].as_str().unwrap_or("").to_ascii_lowercase();
                let ns = w["namespace"].as_str().unwrap_or("");
                let rb_name = format!("{}-{kind}", w["name"].as_str().unwrap_or(""));
                let done = store
                    .mutate(rt("ResourceBinding"), ns, &rb_name, false, |o| {
                        o["spec"]["rescheduleTriggeredAt"] = json!(now)
                    })
                    .is_ok();
                observed.push(if done {
                    json!({"workload": w, "result": "Successful"})
                } else {
                    json!({"workload": w, "result": "Failed", "reason": "ReferencedBindingNotFound"})
                });
            }
            let _ = store.mutate(rt("WorkloadRebalancer"), "", &name, true, |o| {
                o["status"] =
                    json!({"observedWorkloads": observed, "observedGeneration": generation, "finishTime": now});
            });
        }
    }

    /// Finalizers on policies, and what happens when one is deleted.
    fn policies(&self) {
        let store = &self.hub.store;
        let (pps, _) = store.list(rt("PropagationPolicy"), None);
        for pp in pps {
            let (ns, name) = (ns_of(&pp).to_string(), name_of(&pp).to_string());
            let has_finalizer = pp
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| f.iter().any(|x| x == POLICY_FINALIZER));
            if pp.pointer("/metadata/deletionTimestamp").is_some() {
                let preserve =
                    pp.pointer("/spec/preserveResourcesOnDeletion").and_then(Value::as_bool).unwrap_or(false);
                let (rbs, _) = store.list(rt("ResourceBinding"), Some(&ns));
                for rb in rbs.iter().filter(|rb| labels_of(rb).get(POLICY_LABEL) == Some(&name)) {
                    if preserve {
                        // The copies stay where they are; the binding lets go of them.
                        self.release_copies(rb);
                    }
                    let _ = store.delete(rt("ResourceBinding"), &ns, name_of(rb));
                }
                let _ = store.mutate(rt("PropagationPolicy"), &ns, &name, false, |o| {
                    if let Some(f) = o["metadata"]["finalizers"].as_array_mut() {
                        f.retain(|x| x != POLICY_FINALIZER);
                    }
                });
            } else if !has_finalizer {
                let _ = store.mutate(rt("PropagationPolicy"), &ns, &name, false, |o| {
                    let mut f = o["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
                    f.push(json!(POLICY_FINALIZER));
                    o["metadata"]["finalizers"] = json!(f);
                });
            }
        }
    }

    fn release_copies(&self, rb: &Value) {
        for m in self.members.read().unwrap_or_else(|e| e.into_inner()).iter().filter(|m| !m.cluster.is_down()) {
            for (res, copy) in copies_of(m, ns_of(rb), name_of(rb)) {
                let _ = m.cluster.store.mutate(res, ns_of(&copy), name_of(&copy), false, |o| {
                    if let Some(a) = o["metadata"]["annotations"].as_object_mut() {
                        a.remove(BINDING_NAME);
                        a.remove(BINDING_NS);
                    }
                    if let Some(l) = o["metadata"]["labels"].as_object_mut() {
                        l.remove(MANAGED_LABEL);
                    }
                });
            }
        }
    }

    /// Templates each live policy selects, and their bindings' placement.
    fn schedule(&self, targets: &[Target]) {
        let store = &self.hub.store;
        let (mut pps, _) = store.list(rt("PropagationPolicy"), None);
        pps.retain(|p| p.pointer("/metadata/deletionTimestamp").is_none());
        pps.sort_by_key(|p| (ns_of(p).to_string(), name_of(p).to_string()));
        for pp in &pps {
            let ns = ns_of(pp).to_string();
            for sel in pp.pointer("/spec/resourceSelectors").and_then(Value::as_array).into_iter().flatten() {
                let (Some(av), Some(kind)) =
                    (sel.get("apiVersion").and_then(Value::as_str), sel.get("kind").and_then(Value::as_str))
                else {
                    continue;
                };
                let Some(res) = ResourceType::by_kind(av, kind).filter(|r| PROPAGATABLE.contains(&r.kind)) else {
                    continue;
                };
                let sel_ns = sel.get("namespace").and_then(Value::as_str).unwrap_or(&ns);
                if sel_ns != ns {
                    continue;
                }
                let label_sel = sel.get("labelSelector").map(Selector::from_json).transpose().ok().flatten();
                let (templates, _) = store.list(res, Some(&ns));
                for t in templates {
                    if let Some(n) = sel.get("name").and_then(Value::as_str) {
                        if name_of(&t) != n {
                            continue;
                        }
                    }
                    if label_sel.as_ref().is_some_and(|s| !s.matches(&labels_of(&t))) {
                        continue;
                    }
                    if t.pointer("/metadata/deletionTimestamp").is_some() {
                        continue;
                    }
                    self.bind(pp, res, &t, targets);
                }
            }
        }
        self.failover();
    }

    fn bind(&self, pp: &Value, res: &'static ResourceType, t: &Value, targets: &[Target]) {
        let store = &self.hub.store;
        let ns = ns_of(t).to_string();
        let rb_name = format!("{}-{}", name_of(t), res.kind.to_ascii_lowercase());
        let existing = store.try_get(rt("ResourceBinding"), &ns, &rb_name);
        let pp_name = name_of(pp).to_string();
        if let Some(rb) = &existing {
            if labels_of(rb).get(POLICY_LABEL).is_some_and(|p| *p != pp_name) {
                return; // Claimed by another policy first.
            }
        }
        let replicas =
            t.pointer("/spec/replicas").and_then(Value::as_i64).or_else(|| (res.kind == "Deployment").then_some(1));
        let placement = pp.pointer("/spec/placement").cloned().unwrap_or(json!({}));
        let evicted: Vec<String> = existing
            .as_ref()
            .and_then(|rb| rb.pointer("/spec/gracefulEvictionTasks").and_then(Value::as_array).cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e["fromCluster"].as_str().map(String::from))
            .collect();
        let eligible: Vec<&Target> = targets
            .iter()
            .filter(|c| {
                c.ready && fits_placement(&placement, &c.obj) && !evicted.contains(&name_of(&c.obj).to_string())
            })
            .collect();
        let previous: Vec<Value> = existing
            .as_ref()
            .and_then(|rb| rb.pointer("/spec/clusters").and_then(Value::as_array).cloned())
            .unwrap_or_default();
        // A reschedule asked for (a WorkloadRebalancer) after the last round: a fresh one.
        let asked = existing.as_ref().is_some_and(|rb| {
            let at = |p: &str| rb.pointer(p).and_then(Value::as_str).and_then(|t| t.parse::<jiff::Timestamp>().ok());
            match (at("/spec/rescheduleTriggeredAt"), at("/status/lastScheduledTime")) {
                (Some(t), Some(last)) => t >= last,
                (Some(_), None) => true,
                _ => false,
            }
        });
        let same_inputs = !asked
            && existing.as_ref().is_some_and(|rb| {
                rb.pointer("/spec/placement") == Some(&placement)
                    && rb.pointer("/spec/replicas").and_then(Value::as_i64) == replicas
            });
        // Stable: a binding keeps its clusters while they stay eligible and nothing changed.
        let still_ok = !previous.is_empty()
            && previous
                .iter()
                .all(|p| targets.iter().any(|c| name_of(&c.obj) == p["name"] && fits_placement(&placement, &c.obj)))
            && previous.iter().all(|p| !evicted.iter().any(|e| p["name"] == e.as_str()));
        let reused = same_inputs && still_ok;
        let outcome = if reused { Ok(previous.clone()) } else { assign(&placement, replicas, t, &eligible) };
        let (clusters, condition) = match outcome {
            Ok(c) if !c.is_empty() => (c, ("True", "Success", "Binding has been scheduled successfully.".to_string())),
            Ok(_) => {
                let total = targets.len();
                let not_ready = targets.iter().filter(|c| !c.ready).count();
                let mismatch = targets.iter().filter(|c| c.ready && !fits_placement(&placement, &c.obj)).count();
                let evicting = targets.iter().filter(|c| evicted.contains(&name_of(&c.obj).to_string())).count();
                let mut why = vec![];
                if not_ready > 0 {
                    why.push(format!("{not_ready} cluster(s) had untolerated taint {{{NOT_READY_TAINT}: }}"));
                }
                if mismatch > 0 {
                    why.push(format!("{mismatch} cluster(s) did not match the placement cluster affinity constraint"));
                }
                if evicting > 0 {
                    why.push(format!("{evicting} cluster(s) is in the process of eviction"));
                }
                (vec![], ("False", "NoClusterFit", format!("0/{total} clusters are available: {}.", why.join(", "))))
            }
            // A failed round keeps what was scheduled before.
            Err(e) => (previous, ("False", "SchedulerError", e)),
        };
        let scheduled = condition.0 == "True";
        let message = condition.2.clone();
        let failover = pp.pointer("/spec/failover").cloned().unwrap_or(Value::Null);
        let spec = json!({
            "resource": {"apiVersion": res.api_version(), "kind": res.kind, "namespace": ns, "name": name_of(t), "uid": t["metadata"]["uid"], "resourceVersion": t["metadata"]["resourceVersion"]},
            "replicas": replicas,
            "replicaRequirements": {"resourceRequest": requests_json(t)},
            "placement": placement,
            "failover": failover,
            "clusters": clusters,
            "conflictResolution": pp.pointer("/spec/conflictResolution").cloned().unwrap_or(json!("Abort")),
            "preserveResourcesOnDeletion": pp.pointer("/spec/preserveResourcesOnDeletion").cloned().unwrap_or(json!(false)),
            "schedulerName": pp.pointer("/spec/schedulerName").cloned().unwrap_or(json!("default-scheduler")),
        });
        let rb = match existing {
            None => store.create(
                rt("ResourceBinding"),
                &ns,
                json!({"metadata": {"name": rb_name, "labels": {POLICY_LABEL: pp_name, "propagationpolicy.karmada.io/namespace": ns},
                                    "ownerReferences": [{"apiVersion": res.api_version(), "kind": res.kind, "name": name_of(t), "uid": t["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}]},
                       "spec": spec}),
            ),
            Some(_) => store.mutate(rt("ResourceBinding"), &ns, &rb_name, false, |o| {
                let tasks = o.pointer("/spec/gracefulEvictionTasks").cloned();
                let asked = o.pointer("/spec/rescheduleTriggeredAt").cloned();
                o["spec"] = spec;
                if let Some(tasks) = tasks {
                    o["spec"]["gracefulEvictionTasks"] = tasks;
                }
                if let Some(at) = asked {
                    o["spec"]["rescheduleTriggeredAt"] = at;
                }
            }),
        };
        if let Ok(rb) = rb {
            let before = rb
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Scheduled"))
                .and_then(|c| c["message"].as_str())
                .map(String::from);
            if before.as_deref() != Some(message.as_str()) {
                let (kind, reason) =
                    if scheduled { ("Normal", "ScheduleBindingSucceed") } else { ("Warning", "ScheduleBindingFailed") };
                let result: Vec<String> = clusters
                    .iter()
                    .map(|c| format!("{}:{}", c["name"].as_str().unwrap_or(""), c["replicas"].as_i64().unwrap_or(0)))
                    .collect();
                let text =
                    if scheduled { format!("{message} Result: {{{}}}", result.join(", ")) } else { message.clone() };
                self.event(&rb, kind, reason, &text);
            }
            let generation = rb["metadata"]["generation"].clone();
            let _ = store.mutate(rt("ResourceBinding"), &ns, &rb_name, true, |o| {
                super::member::set_condition(o, "Scheduled", condition.0, condition.1, &message);
                o["status"]["schedulerObservedGeneration"] = generation;
                if scheduled && !reused {
                    o["status"]["lastScheduledTime"] = json!(now_rfc3339());
                }
            });
            // Karmada marks the template with its policy.
            if labels_of(t).get(POLICY_LABEL) != Some(&pp_name) {
                let _ = store.mutate(res, &ns, name_of(t), false, |o| {
                    o["metadata"]["labels"][POLICY_LABEL] = json!(pp_name);
                    o["metadata"]["labels"]["propagationpolicy.karmada.io/namespace"] = json!(ns);
                });
            }
        }
    }

    /// Evictions. With failover switched on, the taint manager: a binding on a cluster with a
    /// NoExecute taint it does not tolerate is evicted at once, one it tolerates for T s after T
    /// s, one tolerated without a limit never. On any hub, application failover: a copy whose
    /// health stayed Unhealthy for the policy's toleration is evicted (a cluster that stopped
    /// answering keeps its last health, so this never acts on an outage).
    fn failover(&self) {
        let store = &self.hub.store;
        let (cluster_objs, _) = store.list(rt("Cluster"), None);
        let no_execute: HashMap<String, Vec<Value>> = cluster_objs
            .iter()
            .map(|c| {
                let ts = c.pointer("/spec/taints").and_then(Value::as_array).cloned().unwrap_or_default();
                (name_of(c).to_string(), ts.into_iter().filter(|t| t["effect"] == "NoExecute").collect())
            })
            .collect();
        let tainted_since = lock(&self.no_execute_since).clone();
        let (rbs, _) = store.list(rt("ResourceBinding"), None);
        for rb in rbs {
            let (ns, rb_name) = (ns_of(&rb).to_string(), name_of(&rb).to_string());
            let clusters = rb.pointer("/spec/clusters").and_then(Value::as_array).cloned().unwrap_or_default();
            let names: Vec<String> = clusters.iter().filter_map(|c| c["name"].as_str().map(String::from)).collect();
            // (cluster, purge mode, grace seconds, reason, message)
            let mut evict: Vec<(String, String, f64, &str, String)> = Vec::new();
            if self.failover_on() {
                let tolerations = rb
                    .pointer("/spec/placement/clusterTolerations")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let purge =
                    rb.pointer("/spec/failover/cluster/purgeMode").and_then(Value::as_str).unwrap_or("Gracefully");
                for c in &names {
                    for t in no_execute.get(c).into_iter().flatten() {
                        let key = t["key"].as_str().unwrap_or("").to_string();
                        let Some(since) = tainted_since.get(&(c.clone(), key.clone())) else { continue };
                        let due = match tolerated_for(&tolerations, t) {
                            None => true,
                            Some(None) => false,
                            Some(Some(secs)) => since.elapsed().as_secs_f64() >= secs,
                        };
                        if due && !evict.iter().any(|e| e.0 == *c) {
                            evict.push((
                                c.clone(),
                                purge.to_string(),
                                DEFAULT_GRACE_SECONDS,
                                "TaintUntolerated",
                                format!("cluster {c} has taint {key}:NoExecute past its toleration"),
                            ));
                        }
                    }
                }
            }
            if let Some(app) = rb.pointer("/spec/failover/application").filter(|a| !a.is_null()) {
                let toleration =
                    app.pointer("/decisionConditions/tolerationSeconds").and_then(Value::as_f64).unwrap_or(300.0);
                let purge = app.get("purgeMode").and_then(Value::as_str).unwrap_or("Gracefully").to_string();
                let grace = app.get("gracePeriodSeconds").and_then(Value::as_f64).unwrap_or(DEFAULT_GRACE_SECONDS);
                let aggregated =
                    rb.pointer("/status/aggregatedStatus").and_then(Value::as_array).cloned().unwrap_or_default();
                let mut since = lock(&self.unhealthy_since);
                for c in &names {
                    let key = (ns.clone(), rb_name.clone(), c.clone());
                    let unhealthy =
                        aggregated.iter().any(|a| a["clusterName"] == c.as_str() && a["health"] == "Unhealthy");
                    if !unhealthy {
                        since.remove(&key);
                        continue;
                    }
                    let first = *since.entry(key.clone()).or_insert_with(Instant::now);
                    if first.elapsed().as_secs_f64() >= toleration && !evict.iter().any(|e| e.0 == *c) {
                        since.remove(&key);
                        evict.push((
                            c.clone(),
                            purge.clone(),
                            grace,
                            "ApplicationFailure",
                            format!("the application on cluster {c} stayed unhealthy for {toleration}s"),
                        ));
                    }
                }
            }
            if evict.is_empty() {
                continue;
            }
            let now = now_rfc3339();
            let _ = store.mutate(rt("ResourceBinding"), &ns, &rb_name, false, |o| {
                let mut tasks = o.pointer("/spec/gracefulEvictionTasks").and_then(Value::as_array).cloned().unwrap_or_default();
                for (c, purge, grace, reason, message) in &evict {
                    if !tasks.iter().any(|t| t["fromCluster"] == c.as_str()) {
                        let replicas = clusters.iter().find(|x| x["name"] == c.as_str()).and_then(|x| x.get("replicas").cloned());
                        let producer = if *reason == "TaintUntolerated" { "taint-manager" } else { "resource-binding-application-failover-controller" };
                        tasks.push(json!({"fromCluster": c, "purgeMode": purge, "gracePeriodSeconds": grace, "replicas": replicas,
                                          "reason": reason, "message": message, "producer": producer, "creationTimestamp": now}));
                    }
                }
                o["spec"]["gracefulEvictionTasks"] = json!(tasks);
                o["spec"]["clusters"] = json!(clusters.iter().filter(|c| !evict.iter().any(|e| c["name"] == e.0.as_str())).cloned().collect::<Vec<_>>());
                // Scheduled again without the evicted clusters.
                o["spec"]["placement"] = json!(null);
            });
            for (c, _, _, reason, message) in &evict {
                self.event(
                    &rb,
                    "Warning",
                    "EvictWorkloadFromClusterSucceed",
                    &format!("Evict from cluster {c} succeed ({reason}: {message})."),
                );
            }
        }
    }

    /// Copies on members follow the bindings; status flows back.
    fn sync(&self, targets: &[Target]) {
        let store = &self.hub.store;
        let (rbs, _) = store.list(rt("ResourceBinding"), None);
        let by_name: HashMap<String, &Target> = targets.iter().map(|t| (name_of(&t.obj).to_string(), t)).collect();
        let overrides = store.list(rt("OverridePolicy"), None).0;
        let mut live_bindings = std::collections::HashSet::new();
        for rb in &rbs {
            let ns = ns_of(rb).to_string();
            let rb_name = name_of(rb).to_string();
            live_bindings.insert((ns.clone(), rb_name.clone()));
            let Some(res) = rb.pointer("/spec/resource/kind").and_then(Value::as_str).and_then(ResourceType::of_kind)
            else {
                continue;
            };
            let Some(template) =
                store.try_get(res, &ns, rb.pointer("/spec/resource/name").and_then(Value::as_str).unwrap_or(""))
            else {
                continue;
            };
            let clusters = rb.pointer("/spec/clusters").and_then(Value::as_array).cloned().unwrap_or_default();
            let mut aggregated = Vec::new();
            let mut all_applied = !clusters.is_empty();
            let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
            let mut new_healthy = !clusters.is_empty();
            for c in &clusters {
                let cname = c["name"].as_str().unwrap_or("");
                let Some(target) = by_name.get(cname) else { continue };
                let Some(member) = &target.member else {
                    // Nothing new is heard from it: the binding keeps what it last saw.
                    all_applied = false;
                    new_healthy = false;
                    let last = rb
                        .pointer("/status/aggregatedStatus")
                        .and_then(Value::as_array)
                        .and_then(|a| a.iter().find(|x| x["clusterName"] == cname).cloned());
                    aggregated.push(last.unwrap_or_else(|| json!({"clusterName": cname, "applied": false})));
                    continue;
                };
                let desired =
                    render(&template, res, rb, c.get("replicas").and_then(Value::as_i64), &target.obj, &overrides);
                let applied = apply_copy(member, res, &ns, desired);
                all_applied &= applied.is_ok();
                let failure = applied.as_ref().err().cloned();
                let copy = applied.unwrap_or(Value::Null);
                let status = copy.get("status").cloned().unwrap_or(json!({}));
                let healthy = health(res, &copy);
                new_healthy &= healthy == "Healthy";
                for f in ["replicas", "readyReplicas", "availableReplicas", "updatedReplicas"] {
                    *totals.entry(f).or_default() += status.get(f).and_then(Value::as_i64).unwrap_or(0);
                }
                let mut item =
                    json!({"clusterName": cname, "status": status, "applied": copy.is_object(), "health": healthy});
                if let Some(why) = failure {
                    item["appliedMessage"] = json!(format!("Failed to apply all manifests (0/1): {why}"));
                }
                aggregated.push(item);
            }
            // Eviction tasks: when the old copies may go.
            let mut tasks =
                rb.pointer("/spec/gracefulEvictionTasks").and_then(Value::as_array).cloned().unwrap_or_default();
            let before = tasks.len();
            tasks.retain(|task| {
                let from = task["fromCluster"].as_str().unwrap_or("");
                let Some(member) = by_name.get(from).and_then(|t| t.member.clone()) else { return true };
                let age = task["creationTimestamp"]
                    .as_str()
                    .and_then(|s| s.parse::<jiff::Timestamp>().ok())
                    .map(|t| jiff::Timestamp::now().as_second() - t.as_second())
                    .unwrap_or(0);
                let purge_now = match task["purgeMode"].as_str().unwrap_or("Gracefully") {
                    "Immediately" | "Directly" => true,
                    "Never" => false,
                    _ => {
                        new_healthy
                            || age as f64 >= task["gracePeriodSeconds"].as_f64().unwrap_or(DEFAULT_GRACE_SECONDS)
                    }
                };
                // Not before the scheduler has placed it again without this cluster: the task is
                // what keeps the cluster out of that round.
                let purge_now = purge_now && !rb.pointer("/spec/placement").is_none_or(Value::is_null);
                if purge_now {
                    for (r, copy) in copies_of(&member, &ns, &rb_name) {
                        let _ = member.cluster.store.delete(r, ns_of(&copy), name_of(&copy));
                    }
                }
                // Purged: the cluster may host the workload again.
                !purge_now
            });
            if tasks.len() != before {
                let _ = store.mutate(rt("ResourceBinding"), &ns, &rb_name, false, |o| {
                    o["spec"]["gracefulEvictionTasks"] = json!(tasks)
                });
            }
            // Copies on clusters the binding no longer targets (and that no eviction task keeps).
            let keep: Vec<String> = clusters
                .iter()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .chain(tasks.iter().filter_map(|t| t["fromCluster"].as_str().map(String::from)))
                .collect();
            for t in targets.iter().filter(|t| !keep.contains(&name_of(&t.obj).to_string())) {
                if let Some(member) = &t.member {
                    for (r, copy) in copies_of(member, &ns, &rb_name) {
                        let _ = member.cluster.store.delete(r, ns_of(&copy), name_of(&copy));
                    }
                }
            }
            let _ = store.mutate(rt("ResourceBinding"), &ns, &rb_name, true, |o| {
                o["status"]["aggregatedStatus"] = json!(aggregated);
                super::member::set_condition(
                    o,
                    "FullyApplied",
                    if all_applied { "True" } else { "False" },
                    if all_applied { "FullyAppliedSuccess" } else { "FullyAppliedFailed" },
                    if all_applied { "All works have been successfully applied" } else { "Not all works are applied" },
                );
            });
            if res.kind == "Deployment" {
                let generation = template["metadata"]["generation"].clone();
                let _ = store.mutate(res, &ns, name_of(&template), true, |o| {
                    for (k, v) in &totals {
                        o["status"][*k] = json!(v);
                    }
                    o["status"]["observedGeneration"] = generation;
                });
            }
        }
        // Copies whose binding is gone (template or policy deleted).
        for m in self.members.read().unwrap_or_else(|e| e.into_inner()).iter().filter(|m| !m.cluster.is_down()) {
            for kind in PROPAGATABLE {
                let r = rt(kind);
                let (items, _) = m.cluster.store.list(r, None);
                for o in items.iter().filter(|o| labels_of(o).get(MANAGED_LABEL).map(String::as_str) == Some("true")) {
                    let b = o.pointer("/metadata/annotations").and_then(|a| {
                        Some((a.get(BINDING_NS)?.as_str()?.to_string(), a.get(BINDING_NAME)?.as_str()?.to_string()))
                    });
                    if let Some(key) = b {
                        if !live_bindings.contains(&key) {
                            let _ = m.cluster.store.delete(r, ns_of(o), name_of(o));
                        }
                    }
                }
            }
        }
    }
}

/// How long `tolerations` tolerate `taint`: `None` not at all, `Some(None)` for ever.
fn tolerated_for(tolerations: &[Value], taint: &Value) -> Option<Option<f64>> {
    let matches = |t: &Value| {
        let effect_ok = t.get("effect").and_then(Value::as_str).is_none_or(|e| e.is_empty() || taint["effect"] == e);
        let key = t.get("key").and_then(Value::as_str).unwrap_or("");
        let key_ok = match t.get("operator").and_then(Value::as_str).unwrap_or("Equal") {
            "Exists" => key.is_empty() || taint["key"] == key,
            _ => {
                taint["key"] == key
                    && t.get("value").and_then(Value::as_str).unwrap_or("")
                        == taint.get("value").and_then(Value::as_str).unwrap_or("")
            }
        };
        effect_ok && key_ok
    };
    // The longest of the matching tolerations holds.
    tolerations.iter().filter(|t| matches(t)).map(|t| t.get("tolerationSeconds").and_then(Value::as_f64)).max_by(
        |a, b| match (a, b) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, _) => std::cmp::Ordering::Greater,
            (_, None) => std::cmp::Ordering::Less,
            (Some(x), Some(y)) => x.total_cmp(y),
        },
    )
}

fn health(res: &ResourceType, copy: &Value) -> &'static str {
    match res.kind {
        "Deployment" => {
            let want = copy.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            let ready = copy.pointer("/status/readyReplicas").and_then(Value::as_i64).unwrap_or(0);
            if ready >= want {
                "Healthy"
            } else {
                "Unhealthy"
            }
        }
        _ if copy.is_object() => "Healthy",
        _ => "Unknown",
    }
}

fn requests_json(t: &Value) -> Value {
    let pod = json!({"spec": t.pointer("/spec/template/spec").cloned().unwrap_or(json!({}))});
    Member::quantity_map(&pod_requests(&pod))
}

/// Whether a Cluster object satisfies a placement's cluster affinity.
pub fn fits_placement(placement: &Value, cluster: &Value) -> bool {
    let name = name_of(cluster);
    let affinity = placement
        .get("clusterAffinity")
        .or_else(|| placement.pointer("/clusterAffinities/0"))
        .cloned()
        .unwrap_or(Value::Null);
    if affinity.is_null() {
        return true;
    }
    if let Some(names) = affinity.get("clusterNames").and_then(Value::as_array) {
        if !names.is_empty() && !names.iter().any(|n| n == name) {
            return false;
        }
    }
    if affinity.get("exclude").and_then(Value::as_array).is_some_and(|ex| ex.iter().any(|n| n == name)) {
        return false;
    }
    if let Some(sel) = affinity.get("labelSelector") {
        match Selector::from_json(sel) {
            Ok(s) if s.matches(&labels_of(cluster)) => {}
            _ => return false,
        }
    }
    true
}

/// Resources Karmada's resource models cover; anything else (GPUs) is beyond an estimate made
/// without a scheduler-estimator.
const MODELLED: &[&str] = &["cpu", "memory", "pods", "ephemeral-storage"];

/// How many replicas of the template Karmada estimates a cluster holds without an estimator: from
/// its CPU and memory summary only, and none at all when the template asks for anything else.
fn available_replicas(member: &Member, t: &Value) -> i64 {
    let pod = json!({"spec": t.pointer("/spec/template/spec").cloned().unwrap_or(json!({}))});
    let req = pod_requests(&pod);
    if req.iter().any(|(k, v)| *v > 0 && !MODELLED.contains(&k.as_str())) {
        return 0;
    }
    let (alloc, used) = member.resource_summary();
    req.iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| ((alloc.get(k).copied().unwrap_or(0) - used.get(k).copied().unwrap_or(0)).max(0) / v) as i64)
        .min()
        .unwrap_or(i64::from(i32::MAX))
}

/// Splits `replicas` by `weights` (cluster, weight) the way Karmada's dispenser does: each its
/// floor share, the rest one by one by weight, then name. Clusters left with none are dropped.
fn by_weight(replicas: i64, weights: &[(String, i64)]) -> Vec<Value> {
    let sum: i64 = weights.iter().map(|(_, w)| *w).sum();
    if sum <= 0 {
        return vec![];
    }
    let mut out: Vec<(String, i64, i64)> = weights.iter().map(|(c, w)| (c.clone(), *w, replicas * w / sum)).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut left = replicas - out.iter().map(|o| o.2).sum::<i64>();
    let n = out.len();
    let mut i = 0;
    while left > 0 {
        out[i % n].2 += 1;
        left -= 1;
        i += 1;
    }
    out.into_iter().filter(|o| o.2 > 0).map(|(c, _, n)| json!({"name": c, "replicas": n})).collect()
}

/// Chooses clusters and replicas per the placement's replica scheduling and spread constraints,
/// as karmada-scheduler does without a scheduler-estimator. `Err`: the scheduler's error.
fn assign(placement: &Value, replicas: Option<i64>, t: &Value, eligible: &[&Target]) -> Result<Vec<Value>, String> {
    let mut chosen: Vec<&Target> = eligible.to_vec();
    chosen.sort_by(|a, b| name_of(&a.obj).cmp(name_of(&b.obj)));
    if let Some(max) = placement
        .pointer("/spreadConstraints")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter().find(|c| c.get("spreadByField").and_then(Value::as_str).unwrap_or("cluster") == "cluster")
        })
        .and_then(|c| c["maxGroups"].as_i64())
        .filter(|m| *m > 0)
    {
        chosen.truncate(max as usize);
    }
    let names = |cs: &[&Target]| -> Vec<String> { cs.iter().map(|c| name_of(&c.obj).to_string()).collect() };
    let Some(replicas) = replicas else {
        return Ok(names(&chosen).into_iter().map(|n| json!({"name": n})).collect());
    };
    let rs = placement.get("replicaScheduling").cloned().unwrap_or(Value::Null);
    if rs.get("replicaSchedulingType").and_then(Value::as_str) != Some("Divided") {
        return Ok(names(&chosen).into_iter().map(|n| json!({"name": n, "replicas": replicas})).collect());
    }
    let dynamic = rs.pointer("/weightPreference/dynamicWeight").and_then(Value::as_str).is_some();
    let aggregated = rs.get("replicaDivisionPreference").and_then(Value::as_str) == Some("Aggregated");
    if dynamic || aggregated {
        let available: Vec<(String, i64)> = chosen
            .iter()
            .map(|c| (name_of(&c.obj).to_string(), c.member.as_ref().map(|m| available_replicas(m, t)).unwrap_or(0)))
            .collect();
        let total: i64 = available.iter().map(|(_, a)| *a).sum();
        if total < replicas {
            return Err(format!(
                "failed to assign replicas: failed to scale up: Clusters available replicas {total} are not enough to schedule."
            ));
        }
        if aggregated {
            // As few clusters as hold them, most available first.
            let mut sorted = available.clone();
            sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let mut acc = 0;
            let take: Vec<(String, i64)> = sorted
                .into_iter()
                .take_while(|(_, a)| {
                    let more = acc < replicas;
                    acc += a;
                    more
                })
                .collect();
            return Ok(by_weight(replicas, &take));
        }
        return Ok(by_weight(replicas, &available));
    }
    // Static weights: the first rule a cluster matches gives its weight; clusters no rule matches
    // get nothing, unless no cluster has a weight, then all weigh 1.
    let rules = rs.pointer("/weightPreference/staticWeightList").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut weights: Vec<(String, i64)> = chosen
        .iter()
        .filter_map(|c| {
            rules
                .iter()
                .find(|r| fits_placement(&json!({"clusterAffinity": r["targetCluster"]}), &c.obj))
                .map(|r| (name_of(&c.obj).to_string(), r["weight"].as_i64().unwrap_or(0)))
        })
        .collect();
    if weights.iter().map(|(_, w)| *w).sum::<i64>() == 0 {
        weights = names(&chosen).into_iter().map(|n| (n, 1)).collect();
    }
    Ok(by_weight(replicas, &weights))
}

/// The member's copy of a template: server fields dropped, Karmada's marks added, replicas for
/// this cluster, overrides applied.
fn render(
    template: &Value,
    res: &ResourceType,
    rb: &Value,
    replicas: Option<i64>,
    cluster: &Value,
    ops: &[Value],
) -> Value {
    let mut o = template.clone();
    if let Some(m) = o["metadata"].as_object_mut() {
        for f in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "generation",
            "managedFields",
            "ownerReferences",
            "finalizers",
            "deletionTimestamp",
        ] {
            m.remove(f);
        }
    }
    if let Some(obj) = o.as_object_mut() {
        obj.remove("status");
    }
    o["metadata"]["labels"][MANAGED_LABEL] = json!("true");
    o["metadata"]["annotations"][BINDING_NAME] = json!(name_of(rb));
    o["metadata"]["annotations"][BINDING_NS] = json!(ns_of(rb));
    if let Some(r) = replicas {
        if matches!(res.kind, "Deployment") {
            o["spec"]["replicas"] = json!(r);
        }
    }
    if res.kind == "Service" {
        // Each member allocates its own cluster IP; a node port the template has (the hub
        // allocated it) is copied as it is.
        if let Some(spec) = o["spec"].as_object_mut() {
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        }
    }
    overrides::apply_all(&mut o, template, cluster, ops);
    o
}

/// Creates or updates the copy on a member; returns what the member now has.
fn apply_copy(member: &Member, res: &'static ResourceType, ns: &str, mut desired: Value) -> Result<Value, String> {
    let store = &member.cluster.store;
    let ns_type = rt("Namespace");
    if store.try_get(ns_type, "", ns).is_none() {
        // Karmada propagates namespaces too: the member's copy is its own.
        let _ = store.create(ns_type, "", json!({"metadata": {"name": ns, "labels": {MANAGED_LABEL: "true"}}}));
    }
    let name = name_of(&desired).to_string();
    if res.kind == "Service" {
        // The member's API server refuses a node port another Service of its own holds.
        let mut named = desired.clone();
        named["metadata"]["namespace"] = json!(ns);
        super::admission::check_node_ports(&named, &store.list(res, None).0)
            .map_err(|e| format!("Service \"{name}\" is invalid: {}", e.text))?;
    }
    match store.try_get(res, ns, &name) {
        None => store.create(res, ns, desired).map_err(|e| e.message),
        Some(current) => {
            if res.kind == "Service" {
                // Keep what the member allocated.
                for f in ["clusterIP", "clusterIPs"] {
                    if let Some(v) = current.pointer(&format!("/spec/{f}")) {
                        desired["spec"][f] = v.clone();
                    }
                }
                if let (Some(cur), Some(want)) = (
                    current.pointer("/spec/ports").and_then(Value::as_array).cloned(),
                    desired["spec"]["ports"].as_array_mut(),
                ) {
                    // Karmada keeps the node port a member chose when the template names none.
                    for p in want.iter_mut().filter(|p| p.get("nodePort").is_none()) {
                        if let Some(np) = cur.iter().find(|c| c["port"] == p["port"]).and_then(|c| c.get("nodePort")) {
                            p["nodePort"] = np.clone();
                        }
                    }
                }
            }
            let same = current.get("spec") == desired.get("spec")
                && current.pointer("/metadata/labels") == desired.pointer("/metadata/labels")
                && current.pointer("/metadata/annotations") == desired.pointer("/metadata/annotations")
                && current.get("data") == desired.get("data");
            if same {
                return Ok(current);
            }
            let mut next = current.clone();
            for f in ["spec", "data", "stringData"] {
                match desired.get(f) {
                    Some(v) => next[f] = v.clone(),
                    None => {
                        if let Some(o) = next.as_object_mut() {
                            o.remove(f);
                        }
                    }
                }
            }
            next["metadata"]["labels"] = desired.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
            next["metadata"]["annotations"] = desired.pointer("/metadata/annotations").cloned().unwrap_or(json!({}));
            if let Some(m) = next["metadata"].as_object_mut() {
                m.remove("resourceVersion");
            }
            store.update(res, ns, &name, next, false).map_err(|e| e.message)
        }
    }
}

/// The member's copies that a binding made.
fn copies_of(member: &Member, ns: &str, rb_name: &str) -> Vec<(&'static ResourceType, Value)> {
    let mut out = Vec::new();
    for kind in PROPAGATABLE {
        let r = rt(kind);
        let (items, _) = member.cluster.store.list(r, Some(ns));
        for o in items {
            let a = o.pointer("/metadata/annotations");
            if a.and_then(|a| a.get(BINDING_NAME)).and_then(Value::as_str) == Some(rb_name)
                && a.and_then(|a| a.get(BINDING_NS)).and_then(Value::as_str) == Some(ns)
            {
                out.push((r, o));
            }
        }
    }
    out
}
