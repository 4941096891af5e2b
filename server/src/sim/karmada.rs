//! Karmada's control plane on the simulated hub: cluster status from the members (through the
//! credentials in each Cluster's secret), PropagationPolicy → ResourceBinding scheduling, copies
//! on the chosen members with OverridePolicies applied, status aggregated back, and failover of
//! workloads from clusters that stay NotReady past their toleration.
use super::cluster::Cluster;
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
pub const NOT_READY_TAINT: &str = "cluster.karmada.io/not-ready";
const DEFAULT_TOLERATION_SECONDS: f64 = 300.0;
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
    not_ready_since: Mutex<HashMap<String, Instant>>,
}

/// A hub Cluster object together with the member it points at, when reachable.
struct Target {
    obj: Value,
    member: Option<Arc<Member>>,
    ready: bool,
}

impl Karmada {
    pub fn new(hub: Arc<Cluster>, members: Arc<RwLock<Vec<Arc<Member>>>>) -> Karmada {
        Karmada { hub, members, not_ready_since: Mutex::new(HashMap::new()) }
    }

    pub fn tick(&self) {
        if self.hub.is_down() {
            return;
        }
        let targets = self.cluster_status();
        self.policies();
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

    fn cluster_status(&self) -> Vec<Target> {
        let store = &self.hub.store;
        let (clusters, _) = store.list(rt("Cluster"), None);
        let mut out = Vec::new();
        for c in clusters {
            let name = name_of(&c).to_string();
            let member = self.reach(&c);
            let ready = member.is_some();
            {
                let mut since = self.not_ready_since.lock().unwrap_or_else(|e| e.into_inner());
                if ready {
                    since.remove(&name);
                } else {
                    since.entry(name.clone()).or_insert_with(Instant::now);
                }
            }
            let now = now_rfc3339();
            let taints: Vec<Value> = if ready {
                vec![]
            } else {
                let added = c.pointer("/spec/taints/0/timeAdded").cloned().unwrap_or(json!(now));
                vec![
                    json!({"key": NOT_READY_TAINT, "effect": "NoSchedule", "timeAdded": added}),
                    json!({"key": NOT_READY_TAINT, "effect": "NoExecute", "timeAdded": added}),
                ]
            };
            let current_taints = c.pointer("/spec/taints").and_then(Value::as_array).cloned().unwrap_or_default();
            let foreign: Vec<Value> = current_taints.iter().filter(|t| t["key"] != NOT_READY_TAINT).cloned().collect();
            let mut all_taints = foreign;
            all_taints.extend(taints);
            if all_taints != current_taints {
                let _ = store.mutate(rt("Cluster"), "", &name, false, |o| o["spec"]["taints"] = json!(all_taints));
            }
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
        let same_inputs = existing.as_ref().is_some_and(|rb| {
            rb.pointer("/spec/placement") == Some(&placement)
                && rb.pointer("/spec/replicas").and_then(Value::as_i64) == replicas
        });
        // Stable: a binding keeps its clusters while they stay eligible and nothing changed.
        let still_ok = !previous.is_empty()
            && previous
                .iter()
                .all(|p| targets.iter().any(|c| name_of(&c.obj) == p["name"] && fits_placement(&placement, &c.obj)))
            && previous.iter().all(|p| !evicted.iter().any(|e| p["name"] == e.as_str()));
        let clusters = if same_inputs && still_ok { previous } else { assign(&placement, replicas, t, &eligible) };
        let scheduled = !clusters.is_empty();
        let total = targets.len();
        let message = if scheduled {
            "Binding has been scheduled successfully.".to_string()
        } else {
            let not_ready = targets.iter().filter(|c| !c.ready).count();
            let mismatch = targets.iter().filter(|c| c.ready && !fits_placement(&placement, &c.obj)).count();
            format!("0/{total} clusters are available: {not_ready} cluster(s) are not ready, {mismatch} cluster(s) did not match the placement cluster affinity constraint.")
        };
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
                o["spec"] = spec;
                if let Some(tasks) = tasks {
                    o["spec"]["gracefulEvictionTasks"] = tasks;
                }
            }),
        };
        if let Ok(rb) = rb {
            let generation = rb["metadata"]["generation"].clone();
            let _ = store.mutate(rt("ResourceBinding"), &ns, &rb_name, true, |o| {
                super::member::set_condition(
                    o,
                    "Scheduled",
                    if scheduled { "True" } else { "False" },
                    if scheduled { "Success" } else { "NoClusterFit" },
                    &message,
                );
                o["status"]["schedulerObservedGeneration"] = generation;
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

    /// Workloads on clusters that stayed NotReady past their toleration move elsewhere.
    fn failover(&self) {
        let store = &self.hub.store;
        let since = self.not_ready_since.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (rbs, _) = store.list(rt("ResourceBinding"), None);
        for rb in rbs {
            let clusters = rb.pointer("/spec/clusters").and_then(Value::as_array).cloned().unwrap_or_default();
            let toleration = toleration_seconds(&rb);
            let app = rb.pointer("/spec/failover/application").cloned().unwrap_or(Value::Null);
            let purge = app.get("purgeMode").and_then(Value::as_str).unwrap_or("Graciously").to_string();
            let grace = app.get("gracePeriodSeconds").and_then(Value::as_f64).unwrap_or(DEFAULT_GRACE_SECONDS);
            let failed: Vec<String> = clusters
                .iter()
                .filter_map(|c| c["name"].as_str())
                .filter(|n| since.get(*n).is_some_and(|t| t.elapsed().as_secs_f64() >= toleration))
                .map(String::from)
                .collect();
            if failed.is_empty() {
                continue;
            }
            let now = now_rfc3339();
            let _ = store.mutate(rt("ResourceBinding"), ns_of(&rb), name_of(&rb), false, |o| {
                let mut tasks = o.pointer("/spec/gracefulEvictionTasks").and_then(Value::as_array).cloned().unwrap_or_default();
                for f in &failed {
                    if !tasks.iter().any(|t| t["fromCluster"] == f.as_str()) {
                        let replicas = clusters.iter().find(|c| c["name"] == f.as_str()).and_then(|c| c.get("replicas").cloned());
                        tasks.push(json!({"fromCluster": f, "purgeMode": purge, "gracePeriodSeconds": grace, "replicas": replicas,
                                          "reason": "TaintUntolerated", "message": format!("cluster {f} is not ready for {toleration}s"),
                                          "producer": "taint-manager", "creationTimestamp": now}));
                    }
                }
                o["spec"]["gracefulEvictionTasks"] = json!(tasks);
                // Force a new placement without the failed clusters.
                o["spec"]["clusters"] = json!(clusters.iter().filter(|c| !failed.iter().any(|f| c["name"] == f.as_str())).cloned().collect::<Vec<_>>());
                o["spec"]["placement"] = json!(null);
            });
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
                    all_applied = false;
                    aggregated.push(json!({"clusterName": cname, "applied": false, "health": "Unknown", "appliedMessage": "cluster is not reachable"}));
                    new_healthy = false;
                    continue;
                };
                let desired =
                    render(&template, res, rb, c.get("replicas").and_then(Value::as_i64), &target.obj, &overrides);
                let applied = apply_copy(member, res, &ns, desired);
                all_applied &= applied.is_ok();
                let copy = applied.unwrap_or(Value::Null);
                let status = copy.get("status").cloned().unwrap_or(json!({}));
                let healthy = health(res, &copy);
                new_healthy &= healthy == "Healthy";
                for f in ["replicas", "readyReplicas", "availableReplicas", "updatedReplicas"] {
                    *totals.entry(f).or_default() += status.get(f).and_then(Value::as_i64).unwrap_or(0);
                }
                aggregated.push(
                    json!({"clusterName": cname, "status": status, "applied": copy.is_object(), "health": healthy}),
                );
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
                let purge_now = match task["purgeMode"].as_str().unwrap_or("Graciously") {
                    "Immediately" => true,
                    "Never" => false,
                    _ => {
                        new_healthy
                            || age as f64 >= task["gracePeriodSeconds"].as_f64().unwrap_or(DEFAULT_GRACE_SECONDS)
                    }
                };
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

fn toleration_seconds(rb: &Value) -> f64 {
    if let Some(s) =
        rb.pointer("/spec/failover/application/decisionConditions/tolerationSeconds").and_then(Value::as_f64)
    {
        return s;
    }
    rb.pointer("/spec/placement/clusterTolerations")
        .and_then(Value::as_array)
        .and_then(|ts| {
            ts.iter().find(|t| t["key"] == NOT_READY_TAINT && (t["effect"] == "NoExecute" || t.get("effect").is_none()))
        })
        // Tolerated without a limit: never evicted.
        .map(|t| t["tolerationSeconds"].as_f64().unwrap_or(f64::INFINITY))
        .unwrap_or(DEFAULT_TOLERATION_SECONDS)
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

/// How many more replicas of the template a member has room for.
fn room_for(member: &Member, t: &Value) -> i64 {
    let pod = json!({"spec": t.pointer("/spec/template/spec").cloned().unwrap_or(json!({}))});
    let req = pod_requests(&pod);
    let (alloc, used) = member.resource_summary();
    req.iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| ((alloc.get(k).copied().unwrap_or(0) - used.get(k).copied().unwrap_or(0)).max(0) / v) as i64)
        .min()
        .unwrap_or(100)
}

/// Chooses clusters and replicas per the placement's replica scheduling and spread constraints.
fn assign(placement: &Value, replicas: Option<i64>, t: &Value, eligible: &[&Target]) -> Vec<Value> {
    let mut chosen: Vec<(&Target, i64)> =
        eligible.iter().map(|c| (*c, c.member.as_ref().map(|m| room_for(m, t)).unwrap_or(0))).collect();
    // Most room first, then by name: deterministic.
    chosen.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| name_of(&a.0.obj).cmp(name_of(&b.0.obj))));
    if let Some(max) = placement
        .pointer("/spreadConstraints")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter().find(|c| c.get("spreadByField").and_then(Value::as_str).unwrap_or("cluster") == "cluster")
        })
        .and_then(|c| c["maxGroups"].as_i64())
    {
        chosen.truncate(max.max(0) as usize);
    }
    let Some(replicas) = replicas else {
        return chosen.iter().map(|(c, _)| json!({"name": name_of(&c.obj)})).collect();
    };
    let divided =
        placement.pointer("/replicaScheduling/replicaSchedulingType").and_then(Value::as_str) == Some("Divided");
    if !divided {
        return chosen.iter().map(|(c, _)| json!({"name": name_of(&c.obj), "replicas": replicas})).collect();
    }
    if placement.pointer("/replicaScheduling/replicaDivisionPreference").and_then(Value::as_str) == Some("Aggregated") {
        // As few clusters as hold the replicas, most room first; what fits nowhere waits on the first.
        let mut left = replicas;
        let mut out: Vec<i64> = chosen
            .iter()
            .map(|(_, room)| {
                let take = left.min((*room).max(0));
                left -= take;
                take
            })
            .collect();
        if let Some(first) = out.first_mut() {
            *first += left;
        }
        return chosen
            .iter()
            .zip(out)
            .filter(|(_, n)| *n > 0)
            .map(|((c, _), n)| json!({"name": name_of(&c.obj), "replicas": n}))
            .collect();
    }
    // Divided: by static weights when given, else by room (dynamic), else evenly.
    let static_weights =
        placement.pointer("/replicaScheduling/weightPreference/staticWeightList").and_then(Value::as_array).cloned();
    let weights: Vec<i64> = chosen
        .iter()
        .map(|(c, room)| match &static_weights {
            Some(list) => list
                .iter()
                .find(|w| {
                    w.pointer("/targetCluster/clusterNames")
                        .and_then(Value::as_array)
                        .is_some_and(|ns| ns.iter().any(|n| n == name_of(&c.obj)))
                })
                .and_then(|w| w["weight"].as_i64())
                .unwrap_or(0),
            None => (*room).max(1),
        })
        .collect();
    let sum: i64 = weights.iter().sum();
    if sum == 0 || chosen.is_empty() {
        return vec![];
    }
    let mut out: Vec<i64> = weights.iter().map(|w| replicas * w / sum).collect();
    let mut left = replicas - out.iter().sum::<i64>();
    let mut i = 0;
    while left > 0 {
        if weights[i % weights.len()] > 0 {
            out[i % weights.len()] += 1;
            left -= 1;
        }
        i += 1;
    }
    chosen
        .iter()
        .zip(out)
        .filter(|(_, n)| *n > 0)
        .map(|((c, _), n)| json!({"name": name_of(&c.obj), "replicas": n}))
        .collect()
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
        // Each member allocates its own addresses.
        if let Some(spec) = o["spec"].as_object_mut() {
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        }
        if let Some(ps) = o["spec"]["ports"].as_array_mut() {
            for p in ps {
                if let Some(p) = p.as_object_mut() {
                    p.remove("nodePort");
                }
            }
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
        let _ = store.create(ns_type, "", json!({"metadata": {"name": ns}}));
    }
    let name = name_of(&desired).to_string();
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
                    for p in want.iter_mut() {
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
