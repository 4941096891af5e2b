//! A deployment's hub objects, as pure functions of what the operator asked for: the model server
//! Deployment, its Service (a NodePort on each member), the PropagationPolicy that places both, the model cache
//! volume with its own policy, and the optional pre-load Job.
use super::karmada::{
    ClusterAffinity, Placement, PropagationPolicy, PropagationPolicySpec, ReplicaSchedulingStrategy, ResourceSelector,
};
use super::names::{
    CONTAINER, DEPLOYMENT_LABEL, FAILOVER_LABEL, MANAGED_BY_LABEL, MODEL_ANNOTATION, PROFILE_LABEL, ROLE_LABEL,
    RUNTIME_LABEL, SERVING_NS, STRATEGY_LABEL,
};
use super::policy;
use app::models::deployment::DeploySpec;
use app::models::policy::{FailoverPolicy, PlacementPlan, PlacementStrategy};
use app::models::runtime::{
    cold_start_seconds, model_size_gb, ContainerPlan, RuntimeKind, AGENT_MODEL_DIR, AGENT_PORT, MODEL_READY_CONDITION,
};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction, HTTPGetAction,
    Namespace, ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, PodReadinessGate, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec, Toleration, Volume,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;
use sha2::Digest;
use std::collections::BTreeMap;

/// Everything one deployment puts in the hub, in the order it is applied: the policy last, so
/// nothing propagates until every object it selects is in place.
pub struct HubObjects {
    pub namespace: Namespace,
    /// What wrapper-image pods need on every member: the agent's account and its right to
    /// publish progress and readiness on its own pod.
    pub agent_access: Option<AgentAccess>,
    pub cache: Option<(PersistentVolumeClaim, PropagationPolicy)>,
    pub preload: Option<Job>,
    pub deployment: Deployment,
    pub service: Service,
    pub policy: PropagationPolicy,
}

pub struct AgentAccess {
    pub account: ServiceAccount,
    pub role: Role,
    pub binding: RoleBinding,
    pub policy: PropagationPolicy,
}

/// The account wrapper-image pods run as.
pub const AGENT_ACCOUNT: &str = "hmas-agent";

/// The agent may read and annotate pods and set their conditions in the serving namespace, and
/// nothing else; the same objects on every member (Duplicated, no affinity: all clusters).
pub fn agent_access() -> AgentAccess {
    let labels = BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), "hmas".to_string()),
        ("app.kubernetes.io/name".to_string(), AGENT_ACCOUNT.to_string()),
    ]);
    let meta = || ObjectMeta {
        name: Some(AGENT_ACCOUNT.into()),
        namespace: Some(SERVING_NS.into()),
        labels: Some(labels.clone()),
        ..Default::default()
    };
    let rule = |resources: &[&str], verbs: &[&str]| PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(resources.iter().map(|s| s.to_string()).collect()),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    AgentAccess {
        account: ServiceAccount { metadata: meta(), ..Default::default() },
        role: Role {
            metadata: meta(),
            rules: Some(vec![
                rule(&["pods"], &["get", "patch"]),
                rule(&["pods/status"], &["get", "patch"]),
                rule(&["events"], &["create"]),
            ]),
        },
        binding: RoleBinding {
            metadata: meta(),
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "Role".into(),
                name: AGENT_ACCOUNT.into(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: AGENT_ACCOUNT.into(),
                namespace: Some(SERVING_NS.into()),
                ..Default::default()
            }]),
        },
        policy: PropagationPolicy {
            metadata: meta(),
            spec: PropagationPolicySpec {
                resource_selectors: vec![
                    selector("ServiceAccount", "v1", AGENT_ACCOUNT),
                    selector("Role", "rbac.authorization.k8s.io/v1", AGENT_ACCOUNT),
                    selector("RoleBinding", "rbac.authorization.k8s.io/v1", AGENT_ACCOUNT),
                ],
                placement: Placement {
                    replica_scheduling: Some(ReplicaSchedulingStrategy {
                        replica_scheduling_type: Some("Duplicated".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            },
        },
    }
}

/// The pod's own name and namespace, for the agent to find the object it reports on.
fn downward_env() -> Vec<EnvVar> {
    [("HMAS_POD_NAME", "metadata.name"), ("HMAS_POD_NAMESPACE", "metadata.namespace")]
        .into_iter()
        .map(|(name, path)| EnvVar {
            name: name.into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector { field_path: path.into(), ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

/// Wrapper images run as this user with a read-only root: only the volumes below are written.
pub const AGENT_UID: i64 = 10001;

fn agent_security() -> (PodSecurityContext, SecurityContext) {
    (
        PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(AGENT_UID),
            run_as_group: Some(AGENT_UID),
            fs_group: Some(AGENT_UID),
            ..Default::default()
        },
        SecurityContext {
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
            ..Default::default()
        },
    )
}

/// What rendering needs besides the spec.
#[derive(Clone, Copy)]
pub struct RenderInput<'a> {
    pub name: &'a str,
    pub spec: &'a DeploySpec,
    /// Replicas to run now (0 while stopped or while the cache is pre-loading).
    pub replicas: i32,
    /// Every cluster the cache volume is placed on (it only grows until the cache is deleted).
    pub cache_clusters: &'a [String],
    /// Whether to include the pre-load Job.
    pub preload: bool,
    /// Where it goes (clusters, replica sharing) and with which resource profile.
    pub plan: &'a PlacementPlan,
    pub strategy: Option<&'a PlacementStrategy>,
    pub failover: Option<&'a FailoverPolicy>,
}

fn labels(name: &str, role: &str, runtime: RuntimeKind) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), "hmas".to_string()),
        ("app.kubernetes.io/name".to_string(), name.to_string()),
        (DEPLOYMENT_LABEL.to_string(), name.to_string()),
        (ROLE_LABEL.to_string(), role.to_string()),
        (RUNTIME_LABEL.to_string(), runtime.as_str().replace('_', "-")),
    ])
}

fn meta(name: &str, labels: BTreeMap<String, String>, model: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(SERVING_NS.into()),
        labels: Some(labels),
        annotations: Some(BTreeMap::from([(MODEL_ANNOTATION.to_string(), model.to_string())])),
        ..Default::default()
    }
}

/// Download size of a known model in GB, else a cautious guess.
/// The cache volume's name: readable, and unique per (runtime, model) even where two models
/// sanitise to the same words.
pub fn cache_name(runtime: RuntimeKind, model: &str) -> String {
    let digest = sha2::Sha256::digest(format!("{}/{model}", runtime.as_str()));
    let hash = hex::encode(&digest[..3]);
    let mut slug = app::models::deployment::sanitize_name(model);
    slug.truncate(30);
    format!("cache-{}-{}-{hash}", runtime.as_str().replace('_', "-"), slug.trim_end_matches('-'))
}

/// Cache size: as asked, else twice the model (room for a second quantisation), at least 10 GiB.
pub fn cache_size_gi(spec: &DeploySpec) -> i64 {
    if spec.cache.size_gi > 0 {
        return spec.cache.size_gi as i64;
    }
    ((model_size_gb(spec.runtime, &spec.model) * 2.0).ceil() as i64).max(10)
}

/// Startup budget: time to pull the image and fetch the model at a modest 50 MB/s, doubled.
fn startup_failures(spec: &DeploySpec) -> i32 {
    let seconds = 600.0 + model_size_gb(spec.runtime, &spec.model) * 1000.0 / 50.0 * 2.0;
    ((seconds / 10.0).ceil() as i32).clamp(60, 2160)
}

/// A GET on the named container port ("http": the runtime, "agent": `hmas agent`).
fn http_probe(port: &str, path: &str, period: i32, failures: i32, initial: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(port.into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        initial_delay_seconds: (initial > 0).then_some(initial),
        timeout_seconds: Some(5),
        ..Default::default()
    }
}

fn env(plan: &ContainerPlan) -> Vec<EnvVar> {
    plan.env.iter().map(|(k, v)| EnvVar { name: k.clone(), value: Some(v.clone()), ..Default::default() }).collect()
}

fn quantity(s: impl Into<String>) -> Quantity {
    Quantity(s.into())
}

/// Requests equal limits for GPUs (the device plugin needs both); CPU and memory sized for the
/// tokenizer, HTTP server and host-side buffers, scaled with the GPUs.
fn resources(gpus: u32) -> ResourceRequirements {
    let cpu = if gpus == 0 { 4 } else { 4 * gpus.min(4) };
    let memory = if gpus == 0 { 8 } else { 16 * gpus.min(4) };
    let mut requests = BTreeMap::from([
        ("cpu".to_string(), quantity(cpu.to_string())),
        ("memory".to_string(), quantity(format!("{memory}Gi"))),
    ]);
    let mut limits = BTreeMap::from([("memory".to_string(), quantity(format!("{}Gi", memory * 2)))]);
    if gpus > 0 {
        requests.insert("nvidia.com/gpu".into(), quantity(gpus.to_string()));
        limits.insert("nvidia.com/gpu".into(), quantity(gpus.to_string()));
    }
    ResourceRequirements { requests: Some(requests), limits: Some(limits), ..Default::default() }
}

fn cache_volume(name: Option<&str>) -> Volume {
    match name {
        Some(claim) => Volume {
            name: "model-cache".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.into(),
                read_only: None,
            }),
            ..Default::default()
        },
        None => Volume {
            name: "model-cache".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
    }
}

/// The model cache at `cache_path` and, for wrapper images (read-only root), `/tmp` for the
/// runtime's scratch space and $HOME.
fn storage(claim: Option<&str>, cache_path: &str, agent: bool) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mount =
        |name: &str, path: &str| VolumeMount { name: name.into(), mount_path: path.into(), ..Default::default() };
    let mut volumes = vec![cache_volume(claim)];
    let mut mounts = vec![mount("model-cache", cache_path)];
    if agent {
        volumes.push(Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        });
        mounts.push(mount("tmp", "/tmp"));
    }
    (volumes, mounts)
}

fn selector(kind: &str, api_version: &str, name: &str) -> ResourceSelector {
    ResourceSelector {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: Some(SERVING_NS.into()),
        name: Some(name.into()),
        label_selector: None,
    }
}

/// The hub namespace deployments and profiles live in.
pub fn serving_namespace() -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(SERVING_NS.into()),
            labels: Some(BTreeMap::from([(MANAGED_BY_LABEL.to_string(), "hmas".to_string())])),
            ..Default::default()
        },
        ..Default::default()
    }
}

pub fn render(input: &RenderInput<'_>) -> HubObjects {
    let spec = input.spec;
    let name = input.name;
    let preset = spec.runtime.preset();
    let plan = spec.container();
    let cache = spec.cache.enabled.then(|| cache_name(spec.runtime, &spec.model));
    let server_labels = labels(name, "server", spec.runtime);
    let pod_selector = BTreeMap::from([
        (DEPLOYMENT_LABEL.to_string(), name.to_string()),
        (ROLE_LABEL.to_string(), "server".to_string()),
    ]);

    let agent = spec.agent;
    let cache_path = if agent { AGENT_MODEL_DIR } else { preset.cache_path };
    // Ollama's health answers before the model is pulled; ready means the model is there. The
    // agent says both for every runtime.
    let readiness = if agent {
        http_probe("agent", "/readyz", 10, 3, 0)
    } else if spec.runtime == RuntimeKind::Ollama {
        Probe {
            exec: Some(ExecAction {
                command: Some(vec!["/bin/sh".into(), "-c".into(), "ollama show \"$HMAS_MODEL\" >/dev/null".into()]),
            }),
            period_seconds: Some(10),
            failure_threshold: Some(3),
            timeout_seconds: Some(5),
            ..Default::default()
        }
    } else {
        http_probe("http", &format!("{}/models", preset.openai_base), 10, 3, 0)
    };
    let (mut volumes, mut mounts) = storage(cache.as_deref(), cache_path, agent);
    if spec.gpus_per_replica > 1 {
        // Tensor parallel workers talk through shared memory; the default 64 MiB /dev/shm is too small.
        volumes.push(Volume {
            name: "dshm".into(),
            empty_dir: Some(EmptyDirVolumeSource { medium: Some("Memory".into()), size_limit: Some(quantity("16Gi")) }),
            ..Default::default()
        });
        mounts.push(VolumeMount { name: "dshm".into(), mount_path: "/dev/shm".into(), ..Default::default() });
    }
    let tolerations = (spec.gpus_per_replica > 0).then(|| {
        vec![Toleration {
            key: Some("nvidia.com/gpu".into()),
            operator: Some("Exists".into()),
            effect: Some("NoSchedule".into()),
            ..Default::default()
        }]
    });
    let mut ports = vec![ContainerPort {
        name: Some("http".into()),
        container_port: plan.port as i32,
        protocol: Some("TCP".into()),
        ..Default::default()
    }];
    let mut container_env = env(&plan);
    let (pod_security, container_security) = if agent {
        ports.push(ContainerPort {
            name: Some("agent".into()),
            container_port: AGENT_PORT as i32,
            protocol: Some("TCP".into()),
            ..Default::default()
        });
        container_env.extend(downward_env());
        let (p, c) = agent_security();
        (Some(p), Some(c))
    } else {
        (None, None)
    };
    let (startup, liveness) = if agent {
        (http_probe("agent", "/healthz", 10, startup_failures(spec), 5), http_probe("agent", "/healthz", 15, 4, 0))
    } else {
        let h = preset.health_path;
        (http_probe("http", h, 10, startup_failures(spec), 5), http_probe("http", h, 15, 4, 0))
    };
    let container = Container {
        name: CONTAINER.into(),
        image: Some(plan.image.clone()),
        command: (!plan.command.is_empty()).then(|| plan.command.clone()),
        args: (!plan.args.is_empty()).then(|| plan.args.clone()),
        env: Some(container_env.clone()),
        ports: Some(ports),
        resources: Some(resources(spec.gpus_per_replica)),
        volume_mounts: Some(mounts),
        startup_probe: Some(startup),
        readiness_probe: Some(readiness),
        liveness_probe: Some(liveness),
        security_context: container_security.clone(),
        // A server that dies says why in its last log lines: the kubelet keeps them in the
        // container's status, where H-MAS reads them without fetching logs.
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Default::default()
    };
    let mut deployment_labels = server_labels.clone();
    if !input.plan.profile.is_empty() {
        deployment_labels.insert(PROFILE_LABEL.into(), input.plan.profile.clone());
    }
    let deployment = Deployment {
        metadata: meta(name, deployment_labels, &spec.model),
        spec: Some(DeploymentSpec {
            replicas: Some(input.replicas),
            selector: LabelSelector { match_labels: Some(pod_selector.clone()), ..Default::default() },
            // GPUs cannot be shared by the old and the new replica: replace, do not overlap.
            strategy: Some(DeploymentStrategy { type_: Some("Recreate".into()), rolling_update: None }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(server_labels.clone()),
                    annotations: Some(BTreeMap::from([(MODEL_ANNOTATION.to_string(), spec.model.clone())])),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    volumes: Some(volumes),
                    tolerations: tolerations.clone(),
                    // Long enough for in-flight generations to finish.
                    termination_grace_period_seconds: Some(60),
                    service_account_name: agent.then(|| AGENT_ACCOUNT.to_string()),
                    security_context: pod_security.clone(),
                    readiness_gates: agent
                        .then(|| vec![PodReadinessGate { condition_type: MODEL_READY_CONDITION.into() }]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    };
    // ClusterIP on the hub: a NodePort allocated there would be copied to every member (colliding
    // with ports in use there, and changing when the hub's Service is re-created). The members
    // turn it into a NodePort of their own through `node_port_policy`.
    let service = Service {
        metadata: meta(name, server_labels.clone(), &spec.model),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(pod_selector),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: plan.port as i32,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    };
    // The agent pre-loads any runtime: the same command with `--fetch-only`.
    // (command, args) of the pre-load container.
    type Argv = Option<Vec<String>>;
    let preload_command: Option<(Argv, Argv)> = if agent {
        let mut args = vec!["--fetch-only".to_string()];
        args.extend(plan.args.iter().cloned());
        Some((Some(plan.command.clone()), Some(args)))
    } else {
        preset.preload.map(|c| (Some(c.iter().map(|s| s.to_string()).collect()), None))
    };
    let preload = match (input.preload, &cache, preload_command) {
        (true, Some(claim), Some((command, args))) => {
            let job_name = format!("{name}-preload");
            let job_labels = labels(name, "preload", spec.runtime);
            let mut env = container_env.clone();
            if !agent {
                env.retain(|e| e.name == "HMAS_MODEL" || preset.cache_env.iter().any(|(k, _)| *k == e.name));
            }
            let (job_volumes, job_mounts) = storage(Some(claim), cache_path, agent);
            Some(Job {
                metadata: meta(&job_name, job_labels.clone(), &spec.model),
                spec: Some(JobSpec {
                    backoff_limit: Some(3),
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta { labels: Some(job_labels), ..Default::default() }),
                        spec: Some(PodSpec {
                            restart_policy: Some("OnFailure".into()),
                            containers: vec![Container {
                                name: "preload".into(),
                                image: Some(plan.image.clone()),
                                command,
                                args,
                                env: Some(env),
                                volume_mounts: Some(job_mounts),
                                security_context: container_security,
                                termination_message_policy: Some("FallbackToLogsOnError".into()),
                                resources: Some(ResourceRequirements {
                                    requests: Some(BTreeMap::from([
                                        ("cpu".to_string(), quantity("1")),
                                        ("memory".to_string(), quantity("2Gi")),
                                    ])),
                                    ..Default::default()
                                }),
                                ..Default::default()
                            }],
                            volumes: Some(job_volumes),
                            tolerations,
                            service_account_name: agent.then(|| AGENT_ACCOUNT.to_string()),
                            security_context: pod_security,
                            ..Default::default()
                        }),
                    },
                    ..Default::default()
                }),
                status: None,
            })
        }
        _ => None,
    };
    let mut selectors = vec![selector("Deployment", "apps/v1", name), selector("Service", "v1", name)];
    if let Some(j) = &preload {
        selectors.push(selector("Job", "batch/v1", j.metadata.name.as_deref().unwrap_or_default()));
    }
    let mut policy_labels = server_labels;
    if let Some(s) = input.strategy {
        policy_labels.insert(STRATEGY_LABEL.into(), s.name.clone());
    }
    if let Some(f) = input.failover {
        policy_labels.insert(FAILOVER_LABEL.into(), f.name.clone());
    }
    let failover = policy::failover(input.failover, cold_start_seconds(spec.runtime, &spec.model));
    let policy = PropagationPolicy {
        metadata: meta(name, policy_labels, &spec.model),
        spec: PropagationPolicySpec {
            resource_selectors: selectors,
            placement: policy::placement(input.plan, input.strategy, input.failover),
            failover: failover.clone(),
            propagate_deps: policy::propagate_deps(&failover),
            conflict_resolution: input.strategy.map(|s| s.conflict.as_str().to_string()),
            preserve_resources_on_deletion: input.strategy.map(|s| s.preserve_resources),
            ..Default::default()
        },
    };
    let cache = cache.map(|claim| {
        let mut cache_labels = BTreeMap::from([
            (MANAGED_BY_LABEL.to_string(), "hmas".to_string()),
            (ROLE_LABEL.to_string(), "model-cache".to_string()),
            (RUNTIME_LABEL.to_string(), spec.runtime.as_str().replace('_', "-")),
        ]);
        cache_labels.insert("app.kubernetes.io/name".into(), claim.clone());
        let pvc = PersistentVolumeClaim {
            metadata: meta(&claim, cache_labels.clone(), &spec.model),
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".to_string(),
                        quantity(format!("{}Gi", cache_size_gi(spec))),
                    )])),
                    ..Default::default()
                }),
                storage_class_name: (!spec.cache.storage_class.is_empty()).then(|| spec.cache.storage_class.clone()),
                ..Default::default()
            }),
            status: None,
        };
        let mut clusters: Vec<String> = input.cache_clusters.to_vec();
        for c in &input.plan.clusters {
            if !clusters.contains(c) {
                clusters.push(c.clone());
            }
        }
        let pp = PropagationPolicy {
            metadata: meta(&claim, cache_labels, &spec.model),
            spec: PropagationPolicySpec {
                resource_selectors: vec![selector("PersistentVolumeClaim", "v1", &claim)],
                placement: Placement {
                    cluster_affinity: Some(ClusterAffinity { cluster_names: clusters, ..Default::default() }),
                    replica_scheduling: Some(ReplicaSchedulingStrategy {
                        replica_scheduling_type: Some("Duplicated".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            },
        };
        (pvc, pp)
    });
    HubObjects {
        namespace: serving_namespace(),
        agent_access: agent.then(agent_access),
        cache,
        preload,
        deployment,
        service,
        policy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(runtime: RuntimeKind, model: &str, gpus: u32) -> DeploySpec {
        DeploySpec {
            model: model.into(),
            runtime,
            replicas: 2,
            gpus_per_replica: gpus,
            clusters: vec!["a".into(), "b".into()],
            ..Default::default()
        }
    }

    fn objs(s: &DeploySpec) -> HubObjects {
        let plan = PlacementPlan {
            clusters: s.clusters.clone(),
            replica_mode: app::models::policy::ReplicaMode::Divided,
            ..Default::default()
        };
        render(&RenderInput {
            name: "m",
            spec: s,
            replicas: s.replicas as i32,
            cache_clusters: &[],
            preload: s.cache.preload,
            plan: &plan,
            strategy: None,
            failover: None,
        })
    }

    /// Per runtime: image, port, where the model and the cache go, and probes on the named port.
    #[test]
    fn every_runtime_renders_its_deployment() {
        let cases = [
            (RuntimeKind::Ollama, "llama3.2:1b", "ollama/ollama:", 11434, "/root/.ollama", "/"),
            (
                RuntimeKind::Vllm,
                "Qwen/Qwen2.5-7B-Instruct",
                "vllm/vllm-openai:",
                8000,
                "/root/.cache/huggingface",
                "/health",
            ),
            (
                RuntimeKind::Tgi,
                "Qwen/Qwen2.5-7B-Instruct",
                "ghcr.io/huggingface/text-generation-inference:",
                80,
                "/data",
                "/health",
            ),
            (
                RuntimeKind::LlamaCpp,
                "bartowski/X-GGUF:Q4_K_M",
                "ghcr.io/ggml-org/llama.cpp:server-cuda-b11151",
                8080,
                "/models",
                "/health",
            ),
            (
                RuntimeKind::Sglang,
                "Qwen/Qwen2.5-7B-Instruct",
                "lmsysorg/sglang:",
                30000,
                "/root/.cache/huggingface",
                "/health",
            ),
        ];
        for (runtime, model, image, port, cache_path, health) in cases {
            let s = spec(runtime, model, 2);
            let o = objs(&s);
            let d = o.deployment.spec.as_ref().unwrap();
            assert_eq!(d.replicas, Some(2));
            assert_eq!(d.strategy.as_ref().unwrap().type_.as_deref(), Some("Recreate"));
            let pod = d.template.spec.as_ref().unwrap();
            let c = &pod.containers[0];
            assert!(c.image.as_ref().unwrap().starts_with(image), "{runtime:?} {:?}", c.image);
            assert_eq!(c.ports.as_ref().unwrap()[0].container_port, port);
            let words: Vec<String> =
                c.command.clone().unwrap_or_default().into_iter().chain(c.args.clone().unwrap_or_default()).collect();
            let env = c.env.as_ref().unwrap();
            let model_env = env.iter().find(|e| e.name == "HMAS_MODEL").unwrap().value.clone();
            assert_eq!(model_env.as_deref(), Some(model));
            if runtime != RuntimeKind::Ollama {
                assert!(words.iter().any(|w| w == model), "{runtime:?} passes the model: {words:?}");
                assert!(words.windows(2).any(|w| w[0] == "--port" && w[1] == port.to_string()), "{words:?}");
                // Two GPUs shard the model unless a setting says otherwise.
                assert!(words.iter().any(|w| w == "2") || runtime == RuntimeKind::LlamaCpp, "{runtime:?} {words:?}");
            }
            let mount = &c.volume_mounts.as_ref().unwrap()[0];
            assert_eq!((mount.name.as_str(), mount.mount_path.as_str()), ("model-cache", cache_path));
            let claim = pod.volumes.as_ref().unwrap()[0].persistent_volume_claim.as_ref().unwrap();
            assert_eq!(claim.claim_name, cache_name(runtime, model));
            assert!(pod.volumes.as_ref().unwrap().iter().any(|v| v.name == "dshm"), "shared memory for 2 GPUs");
            let gpu = &c.resources.as_ref().unwrap().limits.as_ref().unwrap()["nvidia.com/gpu"];
            assert_eq!(gpu.0, "2");
            let startup = c.startup_probe.as_ref().unwrap();
            assert_eq!(startup.http_get.as_ref().unwrap().path.as_deref(), Some(health));
            assert_eq!(startup.http_get.as_ref().unwrap().port, IntOrString::String("http".into()));
            assert!(startup.failure_threshold.unwrap() * startup.period_seconds.unwrap() >= 600, "slow loads fit");
            let ready = c.readiness_probe.as_ref().unwrap();
            if runtime == RuntimeKind::Ollama {
                assert!(ready.exec.is_some(), "ready when the model is there");
            } else {
                assert_eq!(ready.http_get.as_ref().unwrap().path.as_deref(), Some("/v1/models"));
            }
            // Serialises as a Kubernetes object would be sent.
            let json = serde_json::to_value(&o.deployment).unwrap();
            assert_eq!(json["spec"]["template"]["metadata"]["labels"][DEPLOYMENT_LABEL], "m");
            assert_eq!(json["spec"]["selector"]["matchLabels"][ROLE_LABEL], "server");
        }
    }

    #[test]
    fn service_policy_and_cache() {
        let s = spec(RuntimeKind::Vllm, "Qwen/Qwen2.5-7B-Instruct", 1);
        let o = objs(&s);
        let svc = o.service.spec.as_ref().unwrap();
        // A NodePort on the members only (hmas-node-ports): none is allocated on the hub and copied.
        assert_eq!(svc.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(svc.selector.as_ref().unwrap()[ROLE_LABEL], "server");
        let p = &o.policy.spec;
        let kinds: Vec<&str> = p.resource_selectors.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds, ["Deployment", "Service"]);
        assert_eq!(p.placement.cluster_affinity.as_ref().unwrap().cluster_names, ["a", "b"]);
        let rs = p.placement.replica_scheduling.as_ref().unwrap();
        assert_eq!(rs.replica_scheduling_type.as_deref(), Some("Divided"));
        assert_eq!(rs.weight_preference.as_ref().unwrap().static_weight_list.len(), 2);
        let (pvc, cache_pp) = o.cache.as_ref().unwrap();
        assert_eq!(
            pvc.spec.as_ref().unwrap().resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"].0,
            "31Gi"
        );
        assert_eq!(cache_pp.spec.resource_selectors[0].kind, "PersistentVolumeClaim");
        // Without the cache: an emptyDir, no volume claim.
        let mut no_cache = s.clone();
        no_cache.cache.enabled = false;
        let o = objs(&no_cache);
        assert!(o.cache.is_none());
        let pod = o.deployment.spec.unwrap().template.spec.unwrap();
        assert!(pod.volumes.unwrap()[0].empty_dir.is_some());
    }

    #[test]
    fn preload_job_fetches_into_the_cache() {
        let mut s = spec(RuntimeKind::Vllm, "Qwen/Qwen2.5-7B-Instruct", 1);
        s.cache.preload = true;
        let o = objs(&s);
        let job = o.preload.as_ref().unwrap();
        let c = &job.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0];
        assert_eq!(c.command.as_ref().unwrap(), &["hf", "download", "$(HMAS_MODEL)"]);
        assert!(c.env.as_ref().unwrap().iter().any(|e| e.name == "HF_HOME"));
        assert!(o.policy.spec.resource_selectors.iter().any(|r| r.kind == "Job"));
    }

    #[test]
    fn cache_names_are_distinct_and_valid() {
        let a = cache_name(RuntimeKind::Ollama, "llama3.2:1b");
        let b = cache_name(RuntimeKind::Ollama, "llama3-2-1b");
        assert_ne!(a, b);
        let long =
            cache_name(RuntimeKind::LlamaCpp, "bartowski/Llama-3.2-1B-Instruct-GGUF-with-a-very-long-name:Q4_K_M");
        assert!(app::models::validate::dns1123_label(&long, 63).is_ok(), "{long}");
    }
}
