//! Applying a deployment's objects to the hub, removing them, and reading back what the hub and
//! the members say about them.
use super::client::KubeClient;
use super::error::HubError;
use super::karmada::{PropagationPolicy, ResourceBinding};
use super::names::{DEPLOYMENT_LABEL, MANAGED_BY_LABEL, PROGRESS_ANNOTATION, ROLE_LABEL, SERVING_NS};
use super::render::HubObjects;
use app::models::cluster::ClusterEvent;
use app::models::deployment::{ClusterPlacement, DeploymentPhase, ObservedStatus, ReplicaView};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim, Pod, Service};
use kube::ResourceExt;
use std::collections::{BTreeMap, BTreeSet};

/// Applies everything, the policy last. A Job that already ran is left alone: its template is
/// immutable, and a finished pre-load need not run again.
pub async fn apply(hub: &KubeClient, objs: &HubObjects) -> Result<(), HubError> {
    hub.apply(&objs.namespace).await?;
    if let Some(a) = &objs.agent_access {
        hub.apply(&a.account).await?;
        hub.apply(&a.role).await?;
        hub.apply(&a.binding).await?;
        hub.apply(&a.policy).await?;
    }
    if let Some((pvc, pp)) = &objs.cache {
        hub.apply(pvc).await?;
        hub.apply(pp).await?;
    }
    if let Some(job) = &objs.preload {
        if hub.get::<Job>(Some(SERVING_NS), &job.name_any()).await?.is_none() {
            hub.apply(job).await?;
        }
    } else {
        hub.delete::<Job>(Some(SERVING_NS), &format!("{}-preload", objs.deployment.name_any())).await?;
    }
    hub.apply(&objs.deployment).await?;
    // Before the Service, so its copies are NodePorts from the start.
    hub.apply(&super::policy::node_port_policy()).await?;
    hub.apply(&objs.service).await?;
    hub.apply(&objs.policy).await?;
    Ok(())
}

/// Removes a deployment's objects from the hub: the templates first, so Karmada withdraws their
/// copies from the members, then the policy. Missing objects are fine (a retry).
pub async fn remove(hub: &KubeClient, name: &str) -> Result<(), HubError> {
    hub.delete::<Deployment>(Some(SERVING_NS), name).await?;
    hub.delete::<Service>(Some(SERVING_NS), name).await?;
    hub.delete::<Job>(Some(SERVING_NS), &format!("{name}-preload")).await?;
    hub.delete::<PropagationPolicy>(Some(SERVING_NS), name).await?;
    Ok(())
}

pub async fn remove_cache(hub: &KubeClient, cache: &str) -> Result<(), HubError> {
    hub.delete::<PersistentVolumeClaim>(Some(SERVING_NS), cache).await?;
    hub.delete::<PropagationPolicy>(Some(SERVING_NS), cache).await?;
    Ok(())
}

pub fn object_names(objs: &HubObjects) -> Vec<String> {
    let mut v = vec![
        format!("Deployment {SERVING_NS}/{}", objs.deployment.name_any()),
        format!("Service {SERVING_NS}/{}", objs.service.name_any()),
        format!("PropagationPolicy {SERVING_NS}/{}", objs.policy.name_any()),
    ];
    if let Some(j) = &objs.preload {
        v.push(format!("Job {SERVING_NS}/{}", j.name_any()));
    }
    if let Some((pvc, pp)) = &objs.cache {
        v.push(format!("PersistentVolumeClaim {SERVING_NS}/{}", pvc.name_any()));
        v.push(format!("PropagationPolicy {SERVING_NS}/{}", pp.name_any()));
    }
    if let Some(a) = &objs.agent_access {
        for kind in ["ServiceAccount", "Role", "RoleBinding", "PropagationPolicy"] {
            v.push(format!("{kind} {SERVING_NS}/{}", a.account.name_any()));
        }
    }
    v
}

/// What the hub made of one deployment: where it scheduled it, and why it could not schedule or
/// apply it, in Karmada's words (only the ResourceBinding says so).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HubSchedule {
    /// (cluster, replicas).
    pub clusters: Vec<(String, i64)>,
    pub problem: Option<String>,
}

impl HubSchedule {
    pub fn on(&self, cluster: &str) -> bool {
        self.clusters.iter().any(|(c, n)| c == cluster && *n > 0)
    }
}

fn binding_problem(rb: &ResourceBinding) -> Option<String> {
    let status = rb.status.as_ref()?;
    let failed = |kind: &str| status.conditions.iter().find(|c| c.type_ == kind && c.status == "False");
    if let Some(c) = failed("Scheduled") {
        return Some(format!("the hub cannot schedule it ({}): {}", c.reason, c.message));
    }
    let not_applied: Vec<String> = status
        .aggregated_status
        .iter()
        .filter(|a| !a.applied)
        .filter_map(|a| a.applied_message.as_ref().map(|m| format!("{}: {m}", a.cluster_name)))
        .collect();
    if failed("FullyApplied").is_some() && !not_applied.is_empty() {
        return Some(format!("the hub cannot apply it on {}", not_applied.join("; ")));
    }
    None
}

/// What the hub made of each deployment, by deployment name.
pub async fn schedules(hub: &KubeClient) -> Result<BTreeMap<String, HubSchedule>, HubError> {
    let rbs: Vec<ResourceBinding> = hub.list(Some(SERVING_NS), None).await?;
    Ok(rbs
        .into_iter()
        .filter(|rb| rb.spec.resource.kind == "Deployment")
        .map(|rb| {
            let clusters = rb.spec.clusters.iter().map(|c| (c.name.clone(), c.replicas.unwrap_or(0) as i64)).collect();
            let problem = binding_problem(&rb);
            (rb.spec.resource.name.clone(), HubSchedule { clusters, problem })
        })
        .collect())
}

/// What one member runs for H-MAS: pods and services of the serving namespace.
#[derive(Clone, Default)]
pub struct MemberState {
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
}

pub async fn member_state(member: &KubeClient) -> Result<MemberState, HubError> {
    let selector = format!("{MANAGED_BY_LABEL}=hmas");
    Ok(MemberState {
        pods: member.list(Some(SERVING_NS), Some(&selector)).await?,
        services: member.list(Some(SERVING_NS), Some(&selector)).await?,
    })
}

fn label<'a>(p: &'a Pod, key: &str) -> Option<&'a str> {
    p.metadata.labels.as_ref().and_then(|l| l.get(key)).map(String::as_str)
}

fn condition<'a>(p: &'a Pod, kind: &str) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    p.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == kind)
}

/// One pod's stage, in the words a person watching a model come up would use.
pub fn replica(cluster: &str, p: &Pod) -> ReplicaView {
    let status = p.status.clone().unwrap_or_default();
    let cs = status.container_statuses.clone().unwrap_or_default();
    let first = cs.first();
    let ready = condition(p, "Ready").is_some_and(|c| c.status == "True");
    let progress = p.annotations().get(PROGRESS_ANNOTATION).and_then(|v| v.parse::<i64>().ok());
    let waiting = first.and_then(|c| c.state.as_ref()).and_then(|s| s.waiting.as_ref());
    let terminated = first.and_then(|c| c.state.as_ref()).and_then(|s| s.terminated.as_ref());
    let unscheduled = condition(p, "PodScheduled").filter(|c| c.status == "False");
    let (phase, message) = if ready {
        (DeploymentPhase::Running, String::new())
    } else if let Some(c) = unscheduled {
        (DeploymentPhase::Pending, c.message.clone().unwrap_or_default())
    } else if let Some(w) = waiting.filter(|w| w.reason.as_deref() == Some("CrashLoopBackOff")) {
        // What the server said before it exited is worth more than the back-off's wording.
        let last = first.and_then(|c| c.last_state.as_ref()).and_then(|s| s.terminated.as_ref());
        let restarts = first.map(|c| c.restart_count).unwrap_or(0);
        let said = last.and_then(|t| t.message.as_deref()).map(str::trim).filter(|m| !m.is_empty());
        let code = last.map(|t| format!(", exit code {}", t.exit_code)).unwrap_or_default();
        let head = format!("crash-looping (restarted {restarts}×{code})");
        (
            DeploymentPhase::Failed,
            match said {
                Some(m) => format!("{head}: {}", m.lines().last().unwrap_or(m)),
                None => format!("{head}: {}", w.message.clone().unwrap_or_default()),
            },
        )
    } else if let Some(w) = waiting.filter(|w| w.reason.as_deref() != Some("ContainerCreating")) {
        // ImagePullBackOff, ErrImagePull, CreateContainerConfigError …
        let why = w.reason.clone().unwrap_or_default();
        (
            DeploymentPhase::Failed,
            format!("{why}: {}", w.message.clone().unwrap_or_default()).trim_end_matches(": ").to_string(),
        )
    } else if let Some(t) = terminated.filter(|t| t.exit_code != 0) {
        (DeploymentPhase::Failed, format!("exited with code {}: {}", t.exit_code, t.reason.clone().unwrap_or_default()))
    } else if status.phase.as_deref() == Some("Running") {
        match progress {
            Some(pct) if pct < 100 => (DeploymentPhase::Downloading, format!("model {pct}% downloaded")),
            _ => (DeploymentPhase::Loading, "loading the model".into()),
        }
    } else if p.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty()) {
        (DeploymentPhase::Pulling, "pulling the runtime image".into())
    } else {
        (DeploymentPhase::Pending, "waiting for the scheduler".into())
    };
    ReplicaView {
        cluster: cluster.to_string(),
        pod: p.name_any(),
        node: p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default(),
        phase,
        ready,
        progress: progress.filter(|_| matches!(phase, DeploymentPhase::Downloading)),
        restarts: cs.iter().map(|c| c.restart_count as i64).sum(),
        message,
    }
}

fn node_port(svc: &Service) -> Option<i32> {
    svc.spec.as_ref()?.ports.as_ref()?.iter().find_map(|p| p.node_port)
}

fn job_done(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")
}

/// Status of one deployment from the hub's schedule and the members' pods and services.
/// `members` holds each member's state, or why it could not be read.
pub fn observe(
    name: &str,
    desired: i64,
    hub: Option<&HubSchedule>,
    members: &BTreeMap<String, Result<MemberState, String>>,
) -> ObservedStatus {
    let mut out = ObservedStatus::default();
    let Some(hub) = hub else {
        out.pod_phase = Some(DeploymentPhase::Pending);
        out.message = "waiting for the hub to schedule it".into();
        return out;
    };
    let schedule = &hub.clusters;
    let mut preload_pending = false;
    let mut preload_progress: Option<i64> = None;
    for (cluster, want) in schedule {
        let mut placement = ClusterPlacement {
            cluster: cluster.clone(),
            desired: *want,
            ready: 0,
            endpoint: None,
            message: String::new(),
        };
        match members.get(cluster) {
            Some(Ok(state)) => {
                let mine =
                    |p: &&Pod| label(p, DEPLOYMENT_LABEL) == Some(name) && p.metadata.deletion_timestamp.is_none();
                for p in state.pods.iter().filter(mine) {
                    if label(p, ROLE_LABEL) == Some("preload") {
                        if !job_done(p) {
                            preload_pending = true;
                            let pct = p.annotations().get(PROGRESS_ANNOTATION).and_then(|v| v.parse::<i64>().ok());
                            preload_progress = pct.or(preload_progress);
                        }
                        continue;
                    }
                    let r = replica(cluster, p);
                    if r.ready {
                        placement.ready += 1;
                    }
                    out.replicas.push(r);
                }
                let host = state
                    .pods
                    .iter()
                    .filter(mine)
                    .filter(|p| label(p, ROLE_LABEL) == Some("server"))
                    .filter(|p| condition(p, "Ready").is_some_and(|c| c.status == "True"))
                    .find_map(|p| p.status.as_ref().and_then(|s| s.host_ip.clone()));
                let port = state.services.iter().find(|s| s.name_any() == name).and_then(node_port);
                placement.endpoint = match (host, port) {
                    (Some(h), Some(p)) => Some(format!("http://{h}:{p}")),
                    _ => None,
                };
                if *want > 0 && placement.ready == 0 {
                    placement.message = "no ready replica yet".into();
                }
            }
            Some(Err(e)) => placement.message = format!("cluster not reachable: {e}"),
            None => placement.message = "cluster not registered in H-MAS".into(),
        }
        out.ready_replicas += placement.ready;
        out.placements.push(placement);
    }
    out.replicas.sort_by(|a, b| (&a.cluster, &a.pod).cmp(&(&b.cluster, &b.pod)));
    let downloading: Vec<i64> = out.replicas.iter().filter_map(|r| r.progress).collect();
    out.progress = downloading.iter().min().copied();
    // The least advanced replica says where the deployment stands.
    let rank = |p: DeploymentPhase| match p {
        DeploymentPhase::Failed => 0,
        DeploymentPhase::Pending => 1,
        DeploymentPhase::Pulling => 2,
        DeploymentPhase::Downloading => 3,
        DeploymentPhase::Loading => 4,
        _ => 5,
    };
    let laggard = out.replicas.iter().filter(|r| !r.ready).min_by_key(|r| rank(r.phase));
    let phase = if desired == 0 {
        DeploymentPhase::Stopped
    } else if out.ready_replicas >= desired {
        DeploymentPhase::Running
    } else if out.ready_replicas > 0 {
        DeploymentPhase::Degraded
    } else if preload_pending || (out.replicas.is_empty() && preload_progress.is_some()) {
        out.progress = preload_progress;
        DeploymentPhase::Preloading
    } else if let Some(r) = laggard {
        r.phase
    } else {
        DeploymentPhase::Pending
    };
    // The hub's own refusal outranks what the pods say while the deployment is short.
    let phase = match &hub.problem {
        Some(_) if desired > 0 && out.ready_replicas == 0 => DeploymentPhase::Unschedulable,
        _ => phase,
    };
    if let Some(p) = hub.problem.as_ref().filter(|_| desired > 0 && out.ready_replicas < desired) {
        out.message = p.clone();
        out.pod_phase = Some(phase);
        return out;
    }
    out.message = match (phase, laggard) {
        (DeploymentPhase::Running | DeploymentPhase::Stopped, _) => String::new(),
        (DeploymentPhase::Preloading, _) => "pre-loading the model into the cache".into(),
        (_, Some(r)) if !r.message.is_empty() => r.message.clone(),
        _ => out.placements.iter().map(|p| &p.message).find(|m| !m.is_empty()).cloned().unwrap_or_default(),
    };
    out.pod_phase = Some(phase);
    out
}

/// Whether every targeted member finished the pre-load Job (its pod succeeded).
pub fn preload_finished(
    name: &str,
    clusters: &[String],
    members: &BTreeMap<String, Result<MemberState, String>>,
) -> bool {
    clusters.iter().all(|c| match members.get(c) {
        Some(Ok(s)) => s.pods.iter().any(|p| {
            label(p, DEPLOYMENT_LABEL) == Some(name) && label(p, ROLE_LABEL) == Some("preload") && job_done(p)
        }),
        _ => false,
    })
}

/// The member's events about a deployment's objects (its pods, Deployment, Service, Job).
pub async fn events(
    member: &KubeClient,
    cluster: &str,
    objects: &BTreeSet<String>,
) -> Result<Vec<ClusterEvent>, HubError> {
    let evs: Vec<Event> = member.list(Some(SERVING_NS), None).await?;
    let ours = evs.iter().filter(|e| e.involved_object.name.as_ref().is_some_and(|n| objects.contains(n)));
    let mut v = super::join::newest_first(ours);
    for e in &mut v {
        e.object = format!("{cluster}: {}", e.object);
    }
    Ok(v)
}
