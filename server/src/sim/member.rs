//! A member cluster's control loops: what kube-controller-manager, the scheduler and the kubelets
//! do, compressed in time. Deployments and Jobs make pods, the scheduler places them where CPU,
//! memory and GPUs fit (or leaves them Pending and says why), kubelets pull images and models and
//! report progress, Services get NodePorts that answer like the model server behind them.
use super::cluster::Cluster;
use super::config::SimConfig;
use super::quantity::{format as fmt_qty, parse_milli};
use super::registry;
use super::resources::ResourceType;
use super::runtime::{self, NodePortServer};
use super::selectors::{labels_of, Selector};
use super::store::{name_of, now_rfc3339, ns_of};
use super::topology::MemberSpec;
use super::workload::{self, Runtime, Workload};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn rt(kind: &str) -> &'static ResourceType {
    ResourceType::of_kind(kind).expect("known kind")
}

pub const PROGRESS_ANNOTATION: &str = "sim.hmas.io/model-progress";
pub const MODEL_ANNOTATION: &str = "sim.hmas.io/model";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    PullingImage,
    DownloadingModel,
    Loading,
    Ready,
    Done,
    /// The container exited; the kubelet waits out its back-off before starting it again.
    BackOff,
    /// Running and never to serve (a server whose model pull failed and that did not exit).
    Stalled,
}

struct PodRun {
    stage: Stage,
    since: Instant,
    workload: Workload,
    node: String,
    last_progress: i64,
    restarts: i32,
}

#[derive(Default)]
struct State {
    pods: HashMap<(String, String), PodRun>,
    pulled: HashSet<(String, String)>,
    /// Models present on each PersistentVolumeClaim (ns, claim).
    pvc_models: HashMap<(String, String), HashSet<String>>,
    node_ports: HashMap<(String, String), Vec<(u16, NodePortServer)>>,
    unschedulable: HashMap<(String, String), String>,
    next_ip: u32,
}

pub struct Member {
    pub cluster: Arc<Cluster>,
    pub spec: MemberSpec,
    cfg: Arc<SimConfig>,
    state: Mutex<State>,
    /// Itself, for the NodePort servers it starts (they outlive no member).
    me: std::sync::OnceLock<std::sync::Weak<Member>>,
}

/// Sum of a pod's container requests (limits where no request is given), in milli-units.
pub fn pod_requests(pod: &Value) -> BTreeMap<String, i128> {
    let mut out = BTreeMap::new();
    for c in pod.pointer("/spec/containers").and_then(Value::as_array).into_iter().flatten() {
        let mut mine: BTreeMap<String, i128> = BTreeMap::new();
        for src in ["/resources/limits", "/resources/requests"] {
            if let Some(m) = c.pointer(src).and_then(Value::as_object) {
                for (k, v) in m {
                    if let Some(q) = v.as_str().and_then(parse_milli).or_else(|| v.as_i64().map(|n| n as i128 * 1000)) {
                        mine.insert(k.clone(), q);
                    }
                }
            }
        }
        for (k, v) in mine {
            *out.entry(k).or_default() += v;
        }
    }
    out
}

fn is_terminal(pod: &Value) -> bool {
    matches!(pod.pointer("/status/phase").and_then(Value::as_str), Some("Succeeded" | "Failed"))
}

fn short_hash(v: &Value) -> String {
    // FNV-1a over the template: stable across restarts, changes with the template.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in serde_json::to_string(v).unwrap_or_default().bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{:010x}", h & 0xff_ffff_ffff)
        .chars()
        .map(|c| if c.is_ascii_digit() { c } else { ((c as u8) + 10) as char })
        .collect()
}

fn owned_by(o: &Value, uid: &str) -> bool {
    o.pointer("/metadata/ownerReferences").and_then(Value::as_array).is_some_and(|r| r.iter().any(|x| x["uid"] == uid))
}

fn owner_ref(api_version: &str, kind: &str, owner: &Value) -> Value {
    json!([{"apiVersion": api_version, "kind": kind, "name": name_of(owner), "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}])
}

pub fn set_condition(obj: &mut Value, ctype: &str, status: &str, reason: &str, message: &str) {
    let now = now_rfc3339();
    let conds = obj["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let mut out: Vec<Value> = conds.into_iter().filter(|c| c["type"] != ctype).collect();
    let prev = obj["status"]["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == ctype).cloned());
    let changed = prev.as_ref().is_none_or(|p| p["status"] != status);
    let transition =
        if changed { json!(now) } else { prev.as_ref().map(|p| p["lastTransitionTime"].clone()).unwrap_or(json!(now)) };
    out.push(json!({"type": ctype, "status": status, "reason": reason, "message": message, "lastTransitionTime": transition}));
    out.sort_by(|a, b| a["type"].as_str().cmp(&b["type"].as_str()));
    obj["status"]["conditions"] = Value::Array(out);
}

impl Member {
    pub fn new(cluster: Arc<Cluster>, spec: MemberSpec, cfg: Arc<SimConfig>) -> Arc<Member> {
        let m = Arc::new(Member {
            cluster,
            spec,
            cfg,
            state: Mutex::new(State { next_ip: 1, ..Default::default() }),
            me: std::sync::OnceLock::new(),
        });
        let _ = m.me.set(Arc::downgrade(&m));
        m.create_nodes();
        m
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn create_nodes(&self) {
        let store = &self.cluster.store;
        for g in &self.spec.nodes {
            for i in 1..=g.count {
                let name = format!("{}-{}-{i}", self.spec.name, g.prefix);
                let mut labels = json!({
                    "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                    "node.kubernetes.io/instance-type": g.instance_type,
                    "topology.kubernetes.io/region": self.spec.region, "topology.kubernetes.io/zone": self.spec.zone,
                });
                let mut capacity = json!({"cpu": g.cpu.to_string(), "memory": format!("{}Gi", g.memory_gi), "pods": "110", "ephemeral-storage": "500Gi"});
                if let Some(gpu) = &g.gpu {
                    labels["nvidia.com/gpu.present"] = json!("true");
                    labels["nvidia.com/gpu.product"] = json!(gpu.product);
                    labels["nvidia.com/gpu.count"] = json!(gpu.count.to_string());
                    labels["nvidia.com/gpu.memory"] = json!(gpu.memory_mib.to_string());
                    labels["nvidia.com/mig.capable"] = json!(gpu.mig_capable.to_string());
                    labels["nvidia.com/gpu.nvlink"] = json!(gpu.nvlink.to_string());
                    capacity["nvidia.com/gpu"] = json!(gpu.count.to_string());
                }
                let now = now_rfc3339();
                let node = json!({
                    "metadata": {"name": name, "labels": labels},
                    "spec": {"podCIDR": "10.244.0.0/24"},
                    "status": {
                        "capacity": capacity, "allocatable": capacity,
                        "conditions": [
                            {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now},
                            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "lastHeartbeatTime": now, "lastTransitionTime": now},
                        ],
                        "addresses": [{"type": "InternalIP", "address": self.cfg.node_ip}, {"type": "Hostname", "address": name}],
                        "nodeInfo": {"kubeletVersion": self.cluster.kubernetes_version, "containerRuntimeVersion": "containerd://2.0.0", "osImage": "Simulated Linux", "architecture": "amd64", "operatingSystem": "linux"},
                    }
                });
                if let Ok(created) = store.create(rt("Node"), "", node.clone()) {
                    let _ = store.update(
                        rt("Node"),
                        "",
                        &name,
                        json!({"metadata": created["metadata"].clone(), "status": node["status"].clone()}),
                        true,
                    );
                }
            }
        }
    }

    pub fn event(&self, involved: &Value, kind: &str, reason: &str, message: &str) {
        self.cluster.event("simulated-kubelet", involved, kind, reason, message);
    }

    /// One pass of every control loop.
    pub fn tick(&self) {
        if self.cluster.is_down() {
            return;
        }
        self.service_account_tokens();
        self.volume_claims();
        self.deployments();
        self.jobs();
        self.schedule();
        self.kubelets();
        self.services();
    }

    fn service_account_tokens(&self) {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let store = &self.cluster.store;
        let (secrets, _) = store.list(rt("Secret"), None);
        for s in secrets {
            if s["type"] != "kubernetes.io/service-account-token" || s.pointer("/data/token").is_some() {
                continue;
            }
            let Some(sa) =
                s.pointer("/metadata/annotations/kubernetes.io~1service-account.name").and_then(Value::as_str)
            else {
                continue;
            };
            if store.try_get(rt("ServiceAccount"), ns_of(&s), sa).is_none() {
                continue;
            }
            let token = super::random_token();
            let ns = ns_of(&s).to_string();
            let _ = store.mutate(rt("Secret"), &ns, name_of(&s), false, |o| {
                o["data"] = json!({"token": b64(&token), "ca.crt": b64(super::SIM_CA_PEM), "namespace": b64(&ns)});
            });
        }
    }

    fn volume_claims(&self) {
        let store = &self.cluster.store;
        let (claims, _) = store.list(rt("PersistentVolumeClaim"), None);
        for c in claims.into_iter().filter(|c| c.pointer("/status/phase").is_none()) {
            let size = c.pointer("/spec/resources/requests/storage").cloned().unwrap_or(json!("1Gi"));
            let uid = c["metadata"]["uid"].as_str().unwrap_or("").to_string();
            let _ = store.mutate(rt("PersistentVolumeClaim"), ns_of(&c), name_of(&c), false, |o| {
                o["spec"]["volumeName"] = json!(format!("pvc-{uid}"));
            });
            let _ = store.mutate(rt("PersistentVolumeClaim"), ns_of(&c), name_of(&c), true, |o| {
                o["status"] = json!({"phase": "Bound", "capacity": {"storage": size}, "accessModes": o["spec"]["accessModes"].clone()});
            });
        }
    }

    fn new_pod(
        &self,
        owner: &Value,
        owner_api: &str,
        owner_kind: &str,
        name_prefix: &str,
        extra_labels: Value,
    ) -> Value {
        let tpl = &owner["spec"]["template"];
        let mut labels = tpl.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
        if let (Some(l), Some(extra)) = (labels.as_object_mut(), extra_labels.as_object()) {
            for (k, v) in extra {
                l.insert(k.clone(), v.clone());
            }
        }
        json!({
            "metadata": {
                "generateName": name_prefix, "labels": labels,
                "annotations": tpl.pointer("/metadata/annotations").cloned().unwrap_or(json!({})),
                "ownerReferences": owner_ref(owner_api, owner_kind, owner),
            },
            "spec": tpl["spec"].clone(),
        })
    }

    fn pods_of(&self, uid: &str) -> Vec<Value> {
        let (pods, _) = self.cluster.store.list(rt("Pod"), None);
        pods.into_iter().filter(|p| owned_by(p, uid)).collect()
    }

    /// The pod's readiness gates: condition types that must be True, besides the containers, for
    /// the pod to be Ready (set by someone else through the status subresource).
    fn gates(p: &Value) -> Vec<String> {
        p.pointer("/spec/readinessGates")
            .and_then(Value::as_array)
            .map(|g| g.iter().filter_map(|x| x["conditionType"].as_str().map(String::from)).collect())
            .unwrap_or_default()
    }

    fn condition_true(p: &Value, ctype: &str) -> bool {
        p.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == ctype && c["status"] == "True"))
    }

    /// Ready follows the containers and every gate, as the kubelet computes it.
    fn sync_ready(&self, p: &Value, key: &(String, String)) {
        let gates = Self::gates(p);
        let missing: Vec<&String> = gates.iter().filter(|g| !Self::condition_true(p, g)).collect();
        let ready = missing.is_empty();
        if ready == Self::pod_ready(p) {
            return;
        }
        let message = missing
            .first()
            .map(|g| format!("corresponding condition of pod readiness gate \"{g}\" does not exist."))
            .unwrap_or_default();
        let _ = self.cluster.store.mutate(rt("Pod"), &key.0, &key.1, true, |o| {
            if ready {
                set_condition(o, "Ready", "True", "", "");
            } else {
                set_condition(o, "Ready", "False", "ReadinessGatesNotReady", &message);
            }
        });
    }

    fn external(&self) -> bool {
        self.cluster.faults.external_agents.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn pod_ready(p: &Value) -> bool {
        Self::condition_true(p, "Ready")
    }

    fn deployments(&self) {
        let store = &self.cluster.store;
        let (deps, _) = store.list(rt("Deployment"), None);
        for d in deps {
            if d.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let ns = ns_of(&d).to_string();
            let name = name_of(&d).to_string();
            let uid = d["metadata"]["uid"].as_str().unwrap_or("").to_string();
            let want = d.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1).max(0) as usize;
            let hash = short_hash(&d["spec"]["template"]);
            let pods = self.pods_of(&uid);
            let (current, outdated): (Vec<Value>, Vec<Value>) = pods.into_iter().partition(|p| {
                p.pointer("/metadata/labels/pod-template-hash").and_then(Value::as_str) == Some(hash.as_str())
            });
            // Recreate: old pods go first, so GPUs are free for the new ones.
            for p in &outdated {
                let _ = store.delete(rt("Pod"), &ns, name_of(p));
            }
            let mut current = current;
            if current.len() < want {
                for _ in current.len()..want {
                    let pod = self.new_pod(
                        &d,
                        "apps/v1",
                        "Deployment",
                        &format!("{name}-{hash}-"),
                        json!({"pod-template-hash": hash}),
                    );
                    if let Ok(p) = store.create(rt("Pod"), &ns, pod) {
                        current.push(p);
                    }
                }
            } else if current.len() > want {
                current.sort_by(|a, b| Self::pod_ready(a).cmp(&Self::pod_ready(b)));
                for p in current.drain(..current.len() - want) {
                    let _ = store.delete(rt("Pod"), &ns, name_of(&p));
                }
            }
            let ready = current.iter().filter(|p| Self::pod_ready(p)).count() as i64;
            let total = current.len() as i64;
            let generation = d.pointer("/metadata/generation").cloned().unwrap_or(json!(1));
            let _ = store.mutate(rt("Deployment"), &ns, &name, true, |o| {
                o["status"]["observedGeneration"] = generation;
                o["status"]["replicas"] = json!(total);
                o["status"]["updatedReplicas"] = json!(total);
                o["status"]["readyReplicas"] = json!(ready);
                o["status"]["availableReplicas"] = json!(ready);
                o["status"]["unavailableReplicas"] = json!((want as i64 - ready).max(0));
                if ready >= want as i64 {
                    set_condition(
                        o,
                        "Available",
                        "True",
                        "MinimumReplicasAvailable",
                        "Deployment has minimum availability.",
                    );
                } else {
                    set_condition(
                        o,
                        "Available",
                        "False",
                        "MinimumReplicasUnavailable",
                        "Deployment does not have minimum availability.",
                    );
                }
                set_condition(
                    o,
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    &format!("ReplicaSet \"{name}-{hash}\" is progressing."),
                );
            });
        }
    }

    fn jobs(&self) {
        let store = &self.cluster.store;
        let (jobs, _) = store.list(rt("Job"), None);
        for j in jobs {
            if j.pointer("/status/completionTime").is_some() || j.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let ns = ns_of(&j).to_string();
            let name = name_of(&j).to_string();
            let uid = j["metadata"]["uid"].as_str().unwrap_or("").to_string();
            let pods = self.pods_of(&uid);
            if pods.is_empty() {
                let pod = self.new_pod(
                    &j,
                    "batch/v1",
                    "Job",
                    &format!("{name}-"),
                    json!({"job-name": name, "batch.kubernetes.io/job-name": name, "controller-uid": uid}),
                );
                let _ = store.create(rt("Pod"), &ns, pod);
                let _ = store.mutate(rt("Job"), &ns, &name, true, |o| {
                    o["status"]["active"] = json!(1);
                    o["status"]["startTime"] = json!(now_rfc3339());
                });
                continue;
            }
            let succeeded =
                pods.iter().any(|p| p.pointer("/status/phase").and_then(Value::as_str) == Some("Succeeded"));
            if succeeded {
                let _ = store.mutate(rt("Job"), &ns, &name, true, |o| {
                    o["status"]["active"] = json!(0);
                    o["status"]["succeeded"] = json!(1);
                    o["status"]["completionTime"] = json!(now_rfc3339());
                    set_condition(o, "Complete", "True", "", "");
                });
            }
        }
    }

    fn schedule(&self) {
        let store = &self.cluster.store;
        let (pods, _) = store.list(rt("Pod"), None);
        let (nodes, _) = store.list(rt("Node"), None);
        let mut used: HashMap<String, BTreeMap<String, i128>> = HashMap::new();
        for p in pods.iter().filter(|p| !is_terminal(p)) {
            if let Some(n) = p.pointer("/spec/nodeName").and_then(Value::as_str) {
                let u = used.entry(n.to_string()).or_default();
                for (k, v) in pod_requests(p) {
                    *u.entry(k).or_default() += v;
                }
            }
        }
        for p in pods
            .iter()
            .filter(|p| p.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("").is_empty() && !is_terminal(p))
        {
            let req = pod_requests(p);
            let selector: Vec<(String, String)> = p
                .pointer("/spec/nodeSelector")
                .and_then(Value::as_object)
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
                .unwrap_or_default();
            // Required node affinity: any one term, each term's expressions all.
            let terms: Vec<Selector> = p
                .pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| {
                    Selector::from_json(
                        &json!({"matchExpressions": t.get("matchExpressions").cloned().unwrap_or(json!([]))}),
                    )
                    .ok()
                })
                .collect();
            let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
            let mut best: Option<(&Value, i128)> = None;
            for n in &nodes {
                let labels = labels_of(n);
                if !selector.iter().all(|(k, v)| labels.get(k) == Some(v))
                    || (!terms.is_empty() && !terms.iter().any(|t| t.matches(&labels)))
                {
                    *reasons.entry("node(s) didn't match Pod's node affinity/selector".into()).or_default() += 1;
                    continue;
                }
                let alloc = n.pointer("/status/allocatable").and_then(Value::as_object).cloned().unwrap_or_default();
                let u = used.get(name_of(n)).cloned().unwrap_or_default();
                let mut fits = true;
                for (res, want) in &req {
                    let have = alloc.get(res).and_then(Value::as_str).and_then(parse_milli).unwrap_or(0);
                    if have - u.get(res).copied().unwrap_or(0) < *want {
                        *reasons.entry(format!("Insufficient {res}")).or_default() += 1;
                        fits = false;
                        break;
                    }
                }
                if fits {
                    // Least allocated first: spread load across nodes.
                    let free_cpu = alloc.get("cpu").and_then(Value::as_str).and_then(parse_milli).unwrap_or(0)
                        - u.get("cpu").copied().unwrap_or(0);
                    if best.is_none_or(|(_, f)| free_cpu > f) {
                        best = Some((n, free_cpu));
                    }
                }
            }
            let key = (ns_of(p).to_string(), name_of(p).to_string());
            match best {
                Some((node, _)) => {
                    let node_name = name_of(node).to_string();
                    let u = used.entry(node_name.clone()).or_default();
                    for (k, v) in &req {
                        *u.entry(k.clone()).or_default() += v;
                    }
                    let _ =
                        store.mutate(rt("Pod"), &key.0, &key.1, false, |o| o["spec"]["nodeName"] = json!(node_name));
                    if let Ok(o) = store.mutate(rt("Pod"), &key.0, &key.1, true, |o| {
                        o["status"]["phase"] = json!("Pending");
                        set_condition(o, "PodScheduled", "True", "", "");
                    }) {
                        self.event(
                            &o,
                            "Normal",
                            "Scheduled",
                            &format!("Successfully assigned {}/{} to {node_name}", key.0, key.1),
                        );
                    }
                    self.st().unschedulable.remove(&key);
                }
                None => {
                    let detail = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect::<Vec<_>>().join(", ");
                    let msg = format!("0/{} nodes are available: {detail}. preemption: 0/{} nodes are available: {} No preemption victims found for incoming pod.", nodes.len(), nodes.len(), nodes.len());
                    let changed = self.st().unschedulable.get(&key) != Some(&msg);
                    if changed {
                        self.st().unschedulable.insert(key.clone(), msg.clone());
                        if let Ok(o) = store.mutate(rt("Pod"), &key.0, &key.1, true, |o| {
                            o["status"]["phase"] = json!("Pending");
                            set_condition(o, "PodScheduled", "False", "Unschedulable", &msg);
                        }) {
                            self.event(&o, "Warning", "FailedScheduling", &msg);
                        }
                    }
                }
            }
        }
    }

    fn models_on_claims(&self, pod: &Value) -> Vec<(String, String)> {
        let ns = ns_of(pod).to_string();
        pod.pointer("/spec/volumes")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter_map(|v| v.pointer("/persistentVolumeClaim/claimName").and_then(Value::as_str))
                    .map(|c| (ns.clone(), c.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn kubelets(&self) {
        let store = &self.cluster.store;
        let (pods, _) = store.list(rt("Pod"), None);
        let live: HashSet<(String, String)> =
            pods.iter().map(|p| (ns_of(p).to_string(), name_of(p).to_string())).collect();
        self.st().pods.retain(|k, _| live.contains(k));
        let scale = self.cfg.time_scale;
        for p in pods {
            let Some(node) =
                p.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()).map(String::from)
            else {
                continue;
            };
            if is_terminal(&p) || p.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let key = (ns_of(&p).to_string(), name_of(&p).to_string());
            let fresh = !self.st().pods.contains_key(&key);
            if fresh {
                let wl = workload::read(&p);
                let cached = self.st().pulled.contains(&(node.clone(), wl.image.clone()));
                if cached {
                    self.event(
                        &p,
                        "Normal",
                        "Pulled",
                        &format!("Container image \"{}\" already present on machine", wl.image),
                    );
                } else {
                    self.event(&p, "Normal", "Pulling", &format!("Pulling image \"{}\"", wl.image));
                }
                self.cluster.log(&key.0, &key.1, format!("starting {}", wl.image));
                self.st().pods.insert(
                    key.clone(),
                    PodRun {
                        stage: Stage::PullingImage,
                        since: Instant::now(),
                        workload: wl,
                        node: node.clone(),
                        last_progress: -1,
                        restarts: 0,
                    },
                );
                let _ = store.mutate(rt("Pod"), &key.0, &key.1, true, |o| {
                    o["status"]["hostIP"] = json!(self.cfg.node_ip);
                    o["status"]["podIP"] = json!(format!("10.244.{}.{}", key.1.len() % 250, (key.0.len() * 7 + key.1.len()) % 250 + 2));
                    o["status"]["startTime"] = json!(now_rfc3339());
                    o["status"]["containerStatuses"] = json!([{"name": p.pointer("/spec/containers/0/name").cloned().unwrap_or(json!("main")), "image": p.pointer("/spec/containers/0/image").cloned().unwrap_or(Value::Null), "ready": false, "restartCount": 0, "started": false, "state": {"waiting": {"reason": "ContainerCreating"}}}]);
                    set_condition(o, "Initialized", "True", "", "");
                    let cname = o.pointer("/spec/containers/0/name").and_then(Value::as_str).unwrap_or("main").to_string();
                    set_condition(o, "Ready", "False", "ContainersNotReady", &format!("containers with unready status: [{cname}]"));
                });
                if cached {
                    self.advance(&p, &key);
                }
                continue;
            }
            let (stage, elapsed, wl) = {
                let g = self.st();
                let r = &g.pods[&key];
                (r.stage, r.since.elapsed(), r.workload.clone())
            };
            match stage {
                Stage::Ready => self.sync_ready(&p, &key),
                Stage::PullingImage if elapsed >= Duration::from_secs_f64(self.cfg.image_pull_seconds * scale) => {
                    self.st().pulled.insert((node.clone(), wl.image.clone()));
                    self.event(
                        &p,
                        "Normal",
                        "Pulled",
                        &format!("Successfully pulled image \"{}\" in {:.1}s", wl.image, elapsed.as_secs_f64()),
                    );
                    self.advance(&p, &key);
                }
                Stage::DownloadingModel => {
                    let model = wl.model.clone().unwrap_or_default();
                    let total = workload::model_size_mb(&model) as f64 / self.cfg.download_mb_per_second * scale;
                    let pct = ((elapsed.as_secs_f64() / total.max(0.001)) * 100.0).min(100.0) as i64;
                    let last = self.st().pods.get(&key).map(|r| r.last_progress).unwrap_or(-1);
                    if pct >= 100 {
                        for claim in self.models_on_claims(&p) {
                            self.st().pvc_models.entry(claim).or_default().insert(model.clone());
                        }
                        self.cluster.log(&key.0, &key.1, format!("model {model}: download complete"));
                        self.event(&p, "Normal", "ModelDownloaded", &format!("Downloaded model {model}"));
                        self.set_progress(&key, 100);
                        self.advance(&p, &key);
                    } else if pct / 5 != last / 5 {
                        if let Some(r) = self.st().pods.get_mut(&key) {
                            r.last_progress = pct;
                        }
                        self.cluster.log(&key.0, &key.1, format!("pulling {model}: {pct}%"));
                        self.set_progress(&key, pct);
                    }
                }
                Stage::Loading if elapsed >= Duration::from_secs_f64(self.cfg.model_load_seconds * scale) => {
                    self.advance(&p, &key)
                }
                Stage::BackOff if elapsed >= self.back_off(&key) => {
                    // Started again, from the image already on the node.
                    let cname = p.pointer("/spec/containers/0/name").and_then(Value::as_str).unwrap_or("main");
                    self.event(
                        &p,
                        "Normal",
                        "Pulled",
                        &format!("Container image \"{}\" already present on machine", wl.image),
                    );
                    self.event(&p, "Normal", "Started", &format!("Started container {cname}"));
                    if let Some(r) = self.st().pods.get_mut(&key) {
                        r.stage = Stage::PullingImage;
                    }
                    self.advance(&p, &key);
                }
                _ => {}
            }
        }
    }

    fn set_progress(&self, key: &(String, String), pct: i64) {
        let _ = self.cluster.store.mutate(rt("Pod"), &key.0, &key.1, false, |o| {
            o["metadata"]["annotations"][PROGRESS_ANNOTATION] = json!(pct.to_string());
        });
    }

    /// How long the kubelet waits before starting a crashed container again: 10 s, doubling per
    /// restart up to 5 min (scaled).
    fn back_off(&self, key: &(String, String)) -> Duration {
        let restarts = self.st().pods.get(key).map(|r| r.restarts).unwrap_or(1).clamp(1, 6);
        let secs = (10.0 * 2f64.powi(restarts - 1)).min(300.0);
        Duration::from_secs_f64(secs * self.cfg.time_scale)
    }

    /// The container printed `line` and exited with `code`: the kubelet records it (with the log's
    /// tail as the termination message under `FallbackToLogsOnError`) and backs off.
    fn crash(&self, pod: &Value, key: &(String, String), line: &str, code: i32) {
        self.cluster.log(&key.0, &key.1, line);
        let restarts = {
            let mut g = self.st();
            let Some(r) = g.pods.get_mut(key) else { return };
            r.restarts += 1;
            r.stage = Stage::BackOff;
            r.since = Instant::now();
            r.restarts
        };
        let cname = pod.pointer("/spec/containers/0/name").and_then(Value::as_str).unwrap_or("main").to_string();
        let fallback = pod.pointer("/spec/containers/0/terminationMessagePolicy").and_then(Value::as_str)
            == Some("FallbackToLogsOnError");
        let message = if fallback {
            let logs = self.cluster.pod_logs(&key.0, &key.1);
            logs[logs.len().saturating_sub(3)..].join("\n")
        } else {
            String::new()
        };
        let back_off = self.back_off(key).as_secs_f64() / self.cfg.time_scale.max(1e-9);
        let uid = pod.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("").to_string();
        let _ = self.cluster.store.mutate(rt("Pod"), &key.0, &key.1, true, |o| {
            o["status"]["phase"] = json!("Running");
            let c = &mut o["status"]["containerStatuses"][0];
            c["ready"] = json!(false);
            c["started"] = json!(false);
            c["restartCount"] = json!(restarts);
            c["lastState"] = json!({"terminated": {"exitCode": code, "reason": "Error", "message": message, "finishedAt": now_rfc3339()}});
            c["state"] = json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off {back_off:.0}s restarting failed container={cname} pod={}_{}({uid})", key.1, key.0)}});
            set_condition(o, "Ready", "False", "ContainersNotReady", &format!("containers with unready status: [{cname}]"));
        });
        self.event(
            pod,
            "Warning",
            "BackOff",
            &format!("Back-off restarting failed container {cname} in pod {}_{}({uid})", key.1, key.0),
        );
    }

    /// Moves a pod to its next stage and writes what that looks like in its status.
    fn advance(&self, pod: &Value, key: &(String, String)) {
        let store = &self.cluster.store;
        let (stage, wl) = {
            let g = self.st();
            let r = &g.pods[key];
            (r.stage, r.workload.clone())
        };
        let needs_model = wl.runtime != Runtime::Other && wl.model.is_some();
        // A real agent in the container fetches the model and sets the gates itself.
        let agent_outside = self.external() && !Self::gates(pod).is_empty();
        let next = match stage {
            Stage::PullingImage => {
                let cname = pod.pointer("/spec/containers/0/name").and_then(Value::as_str).unwrap_or("main");
                self.event(pod, "Normal", "Created", &format!("Created container: {cname}"));
                self.event(pod, "Normal", "Started", &format!("Started container {cname}"));
                // The server reads its command line first: a flag it does not take ends it.
                if !wl.completes && !wl.wrapped {
                    if let Some((line, code)) = registry::bad_flag(wl.runtime, &wl.flags) {
                        return self.crash(pod, key, &line, code);
                    }
                }
                let _ = store.mutate(rt("Pod"), &key.0, &key.1, true, |o| {
                    o["status"]["phase"] = json!("Running");
                    o["status"]["containerStatuses"][0]["state"] = json!({"running": {"startedAt": now_rfc3339()}});
                    o["status"]["containerStatuses"][0]["started"] = json!(true);
                });
                if agent_outside {
                    self.cluster.log(&key.0, &key.1, "container started; the agent fetches the model");
                    Stage::Loading
                } else if needs_model {
                    let model = wl.model.clone().unwrap_or_default();
                    let cached = self
                        .models_on_claims(pod)
                        .iter()
                        .any(|c| self.st().pvc_models.get(c).is_some_and(|m| m.contains(&model)));
                    let _ = store.mutate(rt("Pod"), &key.0, &key.1, false, |o| {
                        o["metadata"]["annotations"][MODEL_ANNOTATION] = json!(model);
                        o["metadata"]["annotations"][PROGRESS_ANNOTATION] = json!(if cached { "100" } else { "0" });
                    });
                    if cached {
                        self.event(pod, "Normal", "ModelCached", &format!("Model {model} found in the cache volume"));
                        Stage::Loading
                    } else if !registry::has_model(wl.runtime, &model) {
                        // The registry does not have it: the fetch fails the way the runtime's does.
                        let (line, code) = registry::fetch_failure(wl.runtime, &model);
                        match code {
                            Some(code) => return self.crash(pod, key, &line, code),
                            None if wl.exits_on_failed_pull => return self.crash(pod, key, &line, 1),
                            None => {
                                self.cluster.log(&key.0, &key.1, line);
                                Stage::Stalled
                            }
                        }
                    } else {
                        self.event(
                            pod,
                            "Normal",
                            "DownloadingModel",
                            &format!("Downloading model {model} ({} MB)", workload::model_size_mb(&model)),
                        );
                        Stage::DownloadingModel
                    }
                } else {
                    Stage::Loading
                }
            }
            Stage::DownloadingModel => Stage::Loading,
            Stage::Loading if wl.completes => {
                let _ = store.mutate(rt("Pod"), &key.0, &key.1, true, |o| {
                    o["status"]["phase"] = json!("Succeeded");
                    o["status"]["containerStatuses"][0]["state"] =
                        json!({"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": now_rfc3339()}});
                    set_condition(o, "Ready", "False", "PodCompleted", "");
                });
                Stage::Done
            }
            Stage::Loading => {
                let gates = Self::gates(pod);
                let _ = store.mutate(rt("Pod"), &key.0, &key.1, true, |o| {
                    o["status"]["containerStatuses"][0]["ready"] = json!(true);
                    set_condition(o, "ContainersReady", "True", "", "");
                    if !agent_outside {
                        // Playing the agent: the model is served.
                        for g in &gates {
                            set_condition(o, g, "True", "", "");
                        }
                        set_condition(o, "Ready", "True", "", "");
                    }
                });
                self.cluster.log(&key.0, &key.1, "server ready");
                Stage::Ready
            }
            s => s,
        };
        if let Some(r) = self.st().pods.get_mut(key) {
            r.stage = next;
            r.since = Instant::now();
        }
    }

    /// Ready pods behind a Service's selector, with what they run.
    pub fn endpoints(&self, ns: &str, selector: &Selector) -> Vec<(String, Workload)> {
        let (pods, _) = self.cluster.store.list(rt("Pod"), Some(ns));
        let g = self.st();
        pods.iter()
            .filter(|p| selector.matches(&labels_of(p)) && Self::pod_ready(p))
            .filter_map(|p| {
                let r = g.pods.get(&(ns.to_string(), name_of(p).to_string()))?;
                (r.stage == Stage::Ready).then(|| (format!("{}@{}", name_of(p), r.node), r.workload.clone()))
            })
            .collect()
    }

    fn services(self: &Member) {
        let store = &self.cluster.store;
        let (svcs, _) = store.list(rt("Service"), None);
        let live: HashSet<(String, String)> =
            svcs.iter().map(|s| (ns_of(s).to_string(), name_of(s).to_string())).collect();
        // Listeners of deleted Services close.
        self.st().node_ports.retain(|k, _| live.contains(k));
        for s in svcs {
            let key = (ns_of(&s).to_string(), name_of(&s).to_string());
            let node_port_type =
                matches!(s.pointer("/spec/type").and_then(Value::as_str), Some("NodePort" | "LoadBalancer"));
            let mut needs_update = s.pointer("/spec/clusterIP").is_none();
            let ports = s.pointer("/spec/ports").and_then(Value::as_array).cloned().unwrap_or_default();
            if node_port_type && ports.iter().any(|p| p.get("nodePort").is_none()) {
                needs_update = true;
            }
            // Ports the Service names itself (kubectl, or a copy from the hub) get their listener.
            if node_port_type {
                let listening: Vec<u16> =
                    self.st().node_ports.get(&key).map(|v| v.iter().map(|(p, _)| *p).collect()).unwrap_or_default();
                for port in ports.iter().filter_map(|p| p.get("nodePort").and_then(Value::as_u64)) {
                    let port = port as u16;
                    if listening.contains(&port) {
                        continue;
                    }
                    if let Some(l) = runtime::allocate_node_port(
                        &self.cfg.node_ip,
                        Some(port),
                        self.me.get().cloned().unwrap_or_default(),
                        self.cluster.faults.down.clone(),
                        self.cfg.clone(),
                    ) {
                        self.st().node_ports.entry(key.clone()).or_default().push(l);
                    }
                }
            }
            if needs_update {
                let ip = {
                    let mut g = self.st();
                    g.next_ip += 1;
                    format!("10.96.{}.{}", g.next_ip / 250, g.next_ip % 250 + 1)
                };
                let mut allocated = Vec::new();
                let _ = store.mutate(rt("Service"), &key.0, &key.1, false, |o| {
                    if o.pointer("/spec/clusterIP").is_none() {
                        o["spec"]["clusterIP"] = json!(ip);
                        o["spec"]["clusterIPs"] = json!([ip]);
                    }
                    if node_port_type {
                        if let Some(ps) = o["spec"]["ports"].as_array_mut() {
                            for p in ps.iter_mut() {
                                if p.get("nodePort").is_none() {
                                    if let Some((port, server)) = runtime::allocate_node_port(
                                        &self.cfg.node_ip,
                                        None,
                                        self.me.get().cloned().unwrap_or_default(),
                                        self.cluster.faults.down.clone(),
                                        self.cfg.clone(),
                                    ) {
                                        p["nodePort"] = json!(port);
                                        allocated.push((port, server));
                                    }
                                }
                                if p.get("protocol").is_none() {
                                    p["protocol"] = json!("TCP");
                                }
                            }
                        }
                    }
                });
                self.st().node_ports.entry(key.clone()).or_default().extend(allocated);
            }
            // Keep each NodePort's listener pointed at the Service's current selector.
            let selector = s.pointer("/spec/selector").and_then(Value::as_object).map(|m| {
                Selector(
                    m.iter()
                        .map(|(k, v)| super::selectors::Req::Eq(k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect(),
                )
            });
            if let Some(servers) = self.st().node_ports.get(&key) {
                for (_, server) in servers {
                    server.set_target(&key.0, selector.clone());
                }
            }
        }
    }

    /// Allocatable and allocated (requests of running pods) per resource, across nodes.
    pub fn resource_summary(&self) -> (BTreeMap<String, i128>, BTreeMap<String, i128>) {
        let store = &self.cluster.store;
        let (nodes, _) = store.list(rt("Node"), None);
        let (pods, _) = store.list(rt("Pod"), None);
        let mut alloc = BTreeMap::new();
        for n in &nodes {
            for (k, v) in n.pointer("/status/allocatable").and_then(Value::as_object).into_iter().flatten() {
                *alloc.entry(k.clone()).or_insert(0) += v.as_str().and_then(parse_milli).unwrap_or(0);
            }
        }
        let mut used = BTreeMap::new();
        for p in pods.iter().filter(|p| !is_terminal(p) && p.pointer("/spec/nodeName").is_some()) {
            for (k, v) in pod_requests(p) {
                *used.entry(k).or_insert(0) += v;
            }
        }
        (alloc, used)
    }

    pub fn quantity_map(m: &BTreeMap<String, i128>) -> Value {
        Value::Object(m.iter().map(|(k, v)| (k.clone(), json!(fmt_qty(k, *v)))).collect())
    }
}
