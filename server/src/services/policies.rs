//! Policies: stored in the database, resolved into each deployment's placement, and kept in step
//! with the hub by a reconciler that applies what the database says, removes what it no longer
//! says, heals hand-made drift and records a sync status per policy. Also the failover drill.
use crate::changes::Wake;
use crate::hub::join::{self, cluster_labels, MANAGED_BY_LABEL};
use crate::hub::karmada::{Cluster, ClusterTaintPolicy, OverridePolicy, PropagationPolicy, ResourceBinding};
use crate::hub::policy::{
    holds, moves_not_ready, node_port_policy, override_policy, profile_object_name, taint_policy, NODE_PORT_POLICY,
    NOT_READY_TAINT, PROFILE_LABEL, TAINT_POLICY,
};
use crate::hub::render::{cache_name, serving_namespace, ROLE_LABEL, SERVING_NS};
use crate::hub::status::cluster_health;
use crate::hub::KubeClient;
use crate::leader::Leadership;
use crate::services::deployments::{DeploymentsServiceImpl, OnHub};
use crate::services::members::{Members, LIVE_READ};
use crate::store::{
    now_ms, ApplyState, ClusterRecord, ClusterState, ClusterStore, DeploymentRecord, DeploymentStore, PolicyRecord,
    PolicyStore, Store, StoreError,
};
use app::error::{AppError, ErrorCode};
use app::models::cluster::ClusterHealth;
use app::models::deployment::DeploySpec;
use app::models::policy::{
    default_set, gpu_products, plan_placement, ClusterFacts, DrillDeployment, DrillStatus, FailoverPolicy, NodeGpus,
    PlacementPlan, PlacementStrategy, Policies, PolicyKind, PolicyView, ResourceProfile, SyncState, SyncStatus,
};
use app::models::user::SessionUser;
use app::models::validate::shown;
use app::services::PoliciesService;
use async_trait::async_trait;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
use kube::ResourceExt;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// What decisions read live: the hub's view of each cluster and, where the members answered, the
/// GPUs in use on each of their nodes.
#[derive(Default)]
pub struct Live {
    pub health: BTreeMap<String, ClusterHealth>,
    pub gpus_used: BTreeMap<String, BTreeMap<String, i64>>,
}

/// The hub's cluster status, and with `members` each member's GPU use per node (members that do
/// not answer within a few seconds are left out: their clusters are judged by the hub's totals).
/// `None`: the hub cannot be read.
pub async fn read_live(hub: &KubeClient, members: Option<&Members>) -> Option<Live> {
    let clusters = hub.list::<Cluster>(None, None).await.ok()?;
    let health = clusters.iter().map(|c| (c.name_any(), cluster_health(c))).collect();
    let mut gpus_used = BTreeMap::new();
    if let Some(clients) = match members {
        Some(m) => m.all().await.ok(),
        None => None,
    } {
        let reads = clients.into_iter().filter_map(|(name, c)| c.ok().map(|c| (name, c))).map(|(name, c)| async move {
            let used = tokio::time::timeout(LIVE_READ, join::gpus_in_use(&c)).await.ok().and_then(|r| r.ok());
            (name, used)
        });
        for (name, used) in futures::future::join_all(reads).await {
            if let Some(u) = used {
                gpus_used.insert(name, u);
            }
        }
    }
    Some(Live { health, gpus_used })
}

/// A cluster as policies see it. Without `live` (rendering) every cluster counts as ready with
/// all its GPUs free.
pub fn facts(r: &ClusterRecord, live: Option<&Live>) -> ClusterFacts {
    let health = live.and_then(|l| l.health.get(&r.name));
    let total: i64 = r.nodes.iter().map(|n| n.gpus).sum();
    let mut products: Vec<String> =
        r.nodes.iter().filter(|n| n.gpus > 0 && !n.gpu_product.is_empty()).map(|n| n.gpu_product.clone()).collect();
    products.sort();
    products.dedup();
    // Node by node where known: all free when rendering, as the member says when it answered.
    let used = match live {
        None => Some(BTreeMap::new()),
        Some(l) => l.gpus_used.get(&r.name).cloned(),
    };
    let nodes = used
        .map(|used| {
            r.nodes
                .iter()
                .filter(|n| n.gpus > 0)
                .map(|n| NodeGpus {
                    product: n.gpu_product.clone(),
                    gpus: n.gpus,
                    free: (n.gpus - used.get(&n.name).copied().unwrap_or(0)).max(0),
                })
                .collect()
        })
        .unwrap_or_default();
    ClusterFacts {
        name: r.name.clone(),
        labels: cluster_labels(r.zone_class, &r.region, &r.zone),
        zone: r.zone_class,
        ready: health.is_none_or(|h| h.ready),
        gpu_products: products,
        max_gpus_per_node: r.nodes.iter().map(|n| n.gpus).max().unwrap_or(0),
        gpus_free: health.map(|h| (h.gpus_allocatable - h.gpus_allocated).max(0)).unwrap_or(total),
        nvlink: r.nodes.iter().any(|n| n.nvlink),
        mig: r.nodes.iter().any(|n| n.mig_capable),
        nodes,
    }
}

fn decode<T: DeserializeOwned>(r: &PolicyRecord) -> Result<T, AppError> {
    serde_json::from_str(&r.spec).map_err(|e| AppError::internal(format!("stored {} {}: {e}", r.kind.label(), r.name)))
}

/// Every policy and registered cluster, read once for a decision.
pub struct Book {
    pub records: Vec<PolicyRecord>,
    pub strategies: Vec<PlacementStrategy>,
    pub profiles: Vec<ResourceProfile>,
    pub failovers: Vec<FailoverPolicy>,
    pub clusters: Vec<ClusterFacts>,
}

/// What a deployment's placement resolves to.
pub struct Resolved<'a> {
    pub plan: PlacementPlan,
    pub strategy: Option<&'a PlacementStrategy>,
    pub failover: Option<&'a FailoverPolicy>,
}

impl Book {
    pub async fn load(store: &Store, live: Option<&Live>) -> Result<Book, AppError> {
        let records = store.list_policies().await?;
        let mut book =
            Book { records: vec![], strategies: vec![], profiles: vec![], failovers: vec![], clusters: vec![] };
        for r in &records {
            match r.kind {
                PolicyKind::Strategy => book.strategies.push(decode(r)?),
                PolicyKind::Profile => book.profiles.push(decode(r)?),
                PolicyKind::Failover => book.failovers.push(decode(r)?),
            }
        }
        book.records = records;
        book.clusters = store
            .list_clusters()
            .await?
            .iter()
            .filter(|c| c.state == ClusterState::Registered)
            .map(|c| facts(c, live))
            .collect();
        Ok(book)
    }

    pub fn strategy(&self, name: &str) -> Option<&PlacementStrategy> {
        self.strategies.iter().find(|s| s.name == name)
    }
    pub fn profile(&self, name: &str) -> Option<&ResourceProfile> {
        self.profiles.iter().find(|s| s.name == name)
    }
    pub fn failover(&self, name: &str) -> Option<&FailoverPolicy> {
        self.failovers.iter().find(|s| s.name == name)
    }
    pub fn default_strategy(&self) -> Option<&PlacementStrategy> {
        self.strategies.iter().find(|s| s.is_default)
    }

    /// The profile a deployment gets: its own choice, else its strategy's default.
    pub fn profile_of<'a>(&'a self, spec: &'a DeploySpec) -> &'a str {
        if !spec.profile.is_empty() {
            return &spec.profile;
        }
        self.strategy(&spec.strategy).map(|s| s.default_profile.as_str()).unwrap_or("")
    }

    /// The plan for `spec`; names that do not exist are field errors.
    pub fn resolve<'a>(&'a self, spec: &'a DeploySpec) -> Result<Resolved<'a>, AppError> {
        let strategy = match spec.strategy.as_str() {
            "" => None,
            n => Some(
                self.strategy(n)
                    .ok_or_else(|| AppError::field("strategy", format!("no placement strategy named {n}")))?,
            ),
        };
        let profile = match self.profile_of(spec) {
            "" => None,
            n => match self.profile(n) {
                Some(p) => {
                    p.fits(spec.gpus_per_replica).map_err(|e| AppError::field("profile", e))?;
                    Some(p)
                }
                None if spec.profile.is_empty() => None,
                None => return Err(AppError::field("profile", format!("no resource profile named {n}"))),
            },
        };
        let failover = match spec.failover.as_str() {
            "" => None,
            n => Some(
                self.failover(n).ok_or_else(|| AppError::field("failover", format!("no failover policy named {n}")))?,
            ),
        };
        Ok(Resolved { plan: plan_placement(spec, strategy, profile, &self.clusters), strategy, failover })
    }

    /// Who uses a policy: deployments, and strategies that name a profile as their default.
    pub fn used_by(&self, kind: PolicyKind, name: &str, rows: &[DeploymentRecord]) -> Vec<String> {
        let mut out = Vec::new();
        for r in rows {
            let uses = match kind {
                PolicyKind::Strategy => r.spec.strategy == name,
                PolicyKind::Profile => self.profile_of(&r.spec) == name,
                PolicyKind::Failover => r.spec.failover == name,
            };
            if uses {
                out.push(format!("deployment {}", r.name));
            }
        }
        if kind == PolicyKind::Profile {
            out.extend(
                self.strategies.iter().filter(|s| s.default_profile == name).map(|s| format!("strategy {}", s.name)),
            );
        }
        out
    }
}

/// What a drill remembers while a cluster is down.
#[derive(Clone)]
struct Drill {
    since: i64,
    affected: Vec<String>,
    recovered: BTreeMap<String, i64>,
}

#[derive(Clone)]
pub struct PoliciesServiceImpl {
    store: Store,
    hub: KubeClient,
    deployments: DeploymentsServiceImpl,
    /// One reconcile pass at a time (a change and the periodic pass never interleave).
    pass: Arc<tokio::sync::Mutex<()>>,
    drills: Arc<Mutex<BTreeMap<String, Drill>>>,
    /// Only the leader writes policies to the hub; another replica wakes it.
    leadership: Leadership,
    wake: Wake,
}

/// What a pass found for one policy.
enum Check {
    InStep(String),
    /// A deployment using it is busy with a change of its own; the next pass decides.
    Busy(String),
    Failed(String),
}

type Outcome = BTreeMap<(PolicyKind, String), Check>;

impl PoliciesServiceImpl {
    pub fn new(
        store: Store,
        hub: KubeClient,
        deployments: DeploymentsServiceImpl,
        leadership: Leadership,
        wake: Wake,
    ) -> Self {
        Self { store, hub, deployments, pass: Default::default(), drills: Default::default(), leadership, wake }
    }

    /// Applies what the database says about policies to the hub, removes what it no longer
    /// says, puts back deployments' objects that were changed by hand or lost, and records each
    /// policy's sync status.
    pub async fn reconcile(&self) -> Result<(), AppError> {
        let _g = self.pass.lock().await;
        // A division made again (a strategy changed) goes by what the hub says is ready and free.
        let live = read_live(&self.hub, None).await;
        let book = Book::load(&self.store, live.as_ref()).await?;
        let rows = self.store.list_deployments().await?;
        let mut outcome: Outcome = BTreeMap::new();
        // One read of each kind for the whole pass, not one per deployment.
        let selector = format!("{MANAGED_BY_LABEL}=hmas");
        let read = async {
            let mut profiles = self.sync_profiles(&book).await?;
            if !rows.is_empty() {
                self.sync_node_port_policy().await?;
            }
            profiles.extend(self.sync_hub_failover(&book).await?);
            let pps = self.hub.list::<PropagationPolicy>(Some(SERVING_NS), Some(&selector)).await?;
            let deps = self.hub.list::<Deployment>(Some(SERVING_NS), Some(&selector)).await?;
            let svcs = self.hub.list::<Service>(Some(SERVING_NS), Some(&selector)).await?;
            let pvcs = self.hub.list::<PersistentVolumeClaim>(Some(SERVING_NS), Some(&selector)).await?;
            let rbs = self.hub.list::<ResourceBinding>(Some(SERVING_NS), None).await?;
            Ok::<_, AppError>((profiles, pps, deps, svcs, pvcs, rbs))
        };
        let (pps, deps, svcs, pvcs, rbs) = match read.await {
            Err(e) => {
                let why = format!("hub unreachable: {e}");
                for r in &book.records {
                    outcome.insert((r.kind, r.name.clone()), Check::Failed(why.clone()));
                }
                return self.record(&book, &rows, outcome).await;
            }
            Ok((per_profile, pps, deps, svcs, pvcs, rbs)) => {
                outcome.extend(per_profile);
                let pps: BTreeMap<String, PropagationPolicy> = pps.into_iter().map(|p| (p.name_any(), p)).collect();
                let deps: BTreeMap<String, Deployment> = deps.into_iter().map(|d| (d.name_any(), d)).collect();
                let svcs: BTreeMap<String, Service> = svcs.into_iter().map(|d| (d.name_any(), d)).collect();
                let pvcs: BTreeSet<String> = pvcs.into_iter().map(|p| p.name_any()).collect();
                let rbs: BTreeMap<String, ResourceBinding> = rbs.into_iter().map(|r| (r.name_any(), r)).collect();
                (pps, deps, svcs, pvcs, rbs)
            }
        };
        let ready: Option<BTreeSet<String>> =
            live.as_ref().map(|l| l.health.iter().filter(|(_, h)| h.ready).map(|(n, _)| n.clone()).collect());
        for r in rows.iter().filter(|r| matches!(r.state, ApplyState::Applied | ApplyState::Failed)) {
            let result = if r.state == ApplyState::Failed {
                // The hub refused it: its policies are not in effect for it.
                Err(AppError::new(ErrorCode::Invalid, r.state_message.clone()))
            } else {
                let cache = cache_name(r.spec.runtime, &r.spec.model);
                let on_hub = OnHub {
                    policy: pps.get(&r.name),
                    deployment: deps.get(&r.name),
                    service: svcs.get(&r.name),
                    cache: pvcs.contains(&cache) && pps.contains_key(&cache),
                    binding: rbs.get(&format!("{}-deployment", r.name)),
                    ready: ready.as_ref(),
                };
                self.deployments.converge(r, &book, on_hub).await
            };
            let mut note = |kind: PolicyKind, name: &str| {
                if name.is_empty() {
                    return;
                }
                let entry = outcome.entry((kind, name.to_string())).or_insert(Check::InStep(String::new()));
                match (&result, &entry) {
                    (Err(e), Check::InStep(_) | Check::Busy(_)) => {
                        *entry = Check::Failed(format!("deployment {}: {}", r.name, e.message))
                    }
                    (Ok(false), Check::InStep(_)) => {
                        *entry = Check::Busy(format!("deployment {} is being changed", r.name))
                    }
                    _ => {}
                }
            };
            note(PolicyKind::Strategy, &r.spec.strategy);
            note(PolicyKind::Failover, &r.spec.failover);
            note(PolicyKind::Profile, book.profile_of(&r.spec));
        }
        self.record(&book, &rows, outcome).await
    }

    /// What enabled failover policies need of the hub: the ClusterTaintPolicy that taints a
    /// NotReady cluster NoExecute (installed when missing; a hub whose webhook refuses it says
    /// so), and a taint controller that acts on it.
    async fn sync_hub_failover(&self, book: &Book) -> Result<Outcome, AppError> {
        let enabled: Vec<&FailoverPolicy> = book.failovers.iter().filter(|f| f.enabled).collect();
        let mut out = Outcome::new();
        if enabled.is_empty() {
            return Ok(out);
        }
        if let Some(p) = self.hub_failover_problem(true).await? {
            for f in enabled {
                out.insert((PolicyKind::Failover, f.name.clone()), Check::Failed(p.clone()));
            }
        }
        Ok(out)
    }

    /// Why the hub would not move workloads off a NotReady cluster: no ClusterTaintPolicy adds
    /// the NoExecute taint (with `install`, H-MAS tries to add one; the refusal is the reason),
    /// or a cluster has been NotReady for 30 s without the taint (the controller manager runs
    /// without its `Failover` gate).
    async fn hub_failover_problem(&self, install: bool) -> Result<Option<String>, AppError> {
        let taint_policies = self.hub.list::<ClusterTaintPolicy>(None, None).await?;
        if !moves_not_ready(&taint_policies) {
            if !install {
                return Ok(Some(format!("the hub has no ClusterTaintPolicy that taints a NotReady cluster NoExecute ({TAINT_POLICY} is installed with the first enabled failover policy)")));
            }
            match self.hub.apply(&taint_policy()).await {
                Ok(_) => tracing::info!(policy = TAINT_POLICY, "installed the hub's NotReady NoExecute taint policy"),
                Err(e) => {
                    return Ok(Some(format!(
                        "the hub does not move workloads off a NotReady cluster: it refused ClusterTaintPolicy {TAINT_POLICY} ({e}); see docs/install.md"
                    )))
                }
            }
        }
        let now = jiff::Timestamp::now();
        for c in self.hub.list::<Cluster>(None, None).await? {
            let since = c.status.as_ref().and_then(|s| {
                s.conditions
                    .iter()
                    .find(|x| x.type_ == "Ready" && x.status == "False")
                    .map(|x| x.last_transition_time.0)
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

    /// The OverridePolicy that gives model servers a NodePort of each member's own, put back when
    /// it was changed or lost.
    async fn sync_node_port_policy(&self) -> Result<(), AppError> {
        let desired = node_port_policy();
        let current = self.hub.get::<OverridePolicy>(Some(SERVING_NS), NODE_PORT_POLICY).await?;
        let in_step = current.is_some_and(|c| {
            holds(
                &serde_json::to_value(&c.spec).unwrap_or_default(),
                &serde_json::to_value(&desired.spec).unwrap_or_default(),
            )
        });
        if !in_step {
            tracing::info!(
                policy = NODE_PORT_POLICY,
                "NodePort OverridePolicy differs from what H-MAS writes; applying again"
            );
            // A hub that lost everything has lost the namespace too.
            self.hub.apply(&serving_namespace()).await?;
            self.hub.apply(&desired).await?;
        }
        Ok(())
    }

    /// One OverridePolicy per profile; others that H-MAS made go.
    async fn sync_profiles(&self, book: &Book) -> Result<Outcome, AppError> {
        let selector = format!("{MANAGED_BY_LABEL}=hmas,{ROLE_LABEL}=resource-profile");
        let existing = self.hub.list::<OverridePolicy>(Some(SERVING_NS), Some(&selector)).await?;
        let products = gpu_products(&book.clusters);
        let mut out = Outcome::new();
        if !book.profiles.is_empty() && existing.is_empty() {
            self.hub.apply(&serving_namespace()).await?;
        }
        for p in &book.profiles {
            let desired = override_policy(p, &products);
            let name = profile_object_name(&p.name);
            let current = existing.iter().find(|o| o.name_any() == name);
            let in_step = current.is_some_and(|c| {
                holds(
                    &serde_json::to_value(&c.spec).unwrap_or_default(),
                    &serde_json::to_value(&desired.spec).unwrap_or_default(),
                )
            });
            let result = if in_step {
                Check::InStep(format!("OverridePolicy {name} in step"))
            } else {
                if current.is_some() {
                    tracing::info!(profile = %p.name, "OverridePolicy differs from the database; applying again");
                }
                match self.hub.apply(&desired).await {
                    Ok(_) => Check::InStep(format!("OverridePolicy {name} applied")),
                    Err(e) => Check::Failed(format!("could not apply OverridePolicy {name}: {e}")),
                }
            };
            out.insert((PolicyKind::Profile, p.name.clone()), result);
        }
        for o in existing {
            let owner = o.labels().get(PROFILE_LABEL).cloned().unwrap_or_default();
            if book.profile(&owner).is_none() {
                tracing::info!(object = %o.name_any(), "removing OverridePolicy of a deleted profile");
                self.hub.delete::<OverridePolicy>(Some(SERVING_NS), &o.name_any()).await?;
            }
        }
        Ok(out)
    }

    async fn record(&self, book: &Book, rows: &[DeploymentRecord], outcome: Outcome) -> Result<(), AppError> {
        let now = now_ms();
        for r in &book.records {
            let users = book.used_by(r.kind, &r.name, rows).iter().filter(|u| u.starts_with("deployment")).count();
            let (state, message) = match outcome.get(&(r.kind, r.name.clone())) {
                Some(Check::Failed(e)) => (SyncState::Error, e.clone()),
                Some(Check::Busy(m)) => (SyncState::Pending, m.clone()),
                Some(Check::InStep(m)) if r.kind == PolicyKind::Profile => (SyncState::InSync, m.clone()),
                _ if users == 0 => (SyncState::InSync, "not used by any deployment".to_string()),
                _ => (SyncState::InSync, format!("{users} deployment(s) in step")),
            };
            // A status that did not change is written once a minute, not every pass.
            if r.sync.state != state || r.sync.message != message || now - r.sync.at > 60_000 {
                self.store.set_policy_sync(r.kind, &r.name, &SyncStatus { state, message, at: now }).await?;
            }
        }
        Ok(())
    }

    /// Runs a pass after a change here if this replica leads, so the answer follows it; otherwise
    /// wakes the leader's. Failures are in the sync status, not the answer.
    async fn after_change(&self) {
        if !self.leadership.is_leader() {
            self.wake.changed(&self.store, crate::changes::POLICIES).await;
            return;
        }
        if let Err(e) = self.reconcile().await {
            tracing::warn!(error = %e, "policy reconcile after a change failed");
        }
    }

    async fn save(
        &self,
        actor: &SessionUser,
        kind: PolicyKind,
        name: &str,
        policy: &(impl serde::Serialize + Sync),
        create: bool,
    ) -> Result<(), AppError> {
        let spec = serde_json::to_string(policy).map_err(|e| AppError::internal(e.to_string()))?;
        let now = now_ms();
        if create {
            self.store
                .insert_policy(&PolicyRecord {
                    kind,
                    name: name.to_string(),
                    spec,
                    sync: SyncStatus::default(),
                    created_by: actor.username.clone(),
                    created_at: now,
                    updated_at: now,
                })
                .await
                .map_err(|e| match e {
                    StoreError::Conflict(m) => AppError { code: ErrorCode::Conflict, ..AppError::field("name", m) },
                    e => e.into(),
                })?;
        } else {
            self.store.update_policy(kind, name, &spec, now).await.map_err(|e| match e {
                StoreError::NotFound => AppError::not_found(format!("no {} named {}", kind.label(), shown(name))),
                e => e.into(),
            })?;
        }
        tracing::info!(by = %actor.username, kind = kind.as_str(), policy = name, created = create, "policy saved");
        Ok(())
    }

    /// The drill's view of a member on the simulated hub: its name there and whether it is down.
    async fn sim_member(&self, cluster: &str) -> Result<Option<(String, bool)>, AppError> {
        let Some(record) = self.store.cluster_by_name(cluster).await? else {
            return Err(AppError::not_found(format!("no cluster named {}", shown(cluster))));
        };
        let req =
            http::Request::get("/sim/v1/clusters").body(Vec::new()).map_err(|e| AppError::internal(e.to_string()))?;
        let Some(list) = self.hub.raw(req).await? else { return Ok(None) };
        let endpoint = record.api_endpoint.trim_end_matches('/');
        Ok(list["clusters"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["server"].as_str().map(|s| s.trim_end_matches('/')) == Some(endpoint))
            .map(|c| (c["name"].as_str().unwrap_or_default().to_string(), c["down"].as_bool().unwrap_or(false))))
    }

    async fn drill_view(&self, cluster: &str, available: bool, down: bool) -> Result<DrillStatus, AppError> {
        let rows = self.store.list_deployments().await?;
        let book = Book::load(&self.store, None).await?;
        let stuck = if down { self.hub_failover_problem(false).await.unwrap_or(None) } else { None };
        let now = now_ms();
        let mut drills = self.drills.lock().unwrap_or_else(|e| e.into_inner());
        let drill = drills.get_mut(cluster);
        let mut affected = Vec::new();
        let names: Vec<String> = match &drill {
            Some(d) => d.affected.clone(),
            None => rows
                .iter()
                .filter(|r| r.observed.placements.iter().any(|p| p.cluster == cluster && p.desired > 0))
                .map(|r| r.name.clone())
                .collect(),
        };
        let mut recovered = drill.as_ref().map(|d| d.recovered.clone()).unwrap_or_default();
        for name in names {
            let Some(r) = rows.iter().find(|r| r.name == name) else { continue };
            let elsewhere: i64 = r.observed.placements.iter().filter(|p| p.cluster != cluster).map(|p| p.ready).sum();
            if drill.is_some() && down && !recovered.contains_key(&name) && elsewhere >= r.spec.replicas.max(1) as i64 {
                recovered.insert(name.clone(), now);
            }
            affected.push(DrillDeployment {
                name: name.clone(),
                replicas: r.spec.replicas,
                failover: book.failover(&r.spec.failover).cloned(),
                placements: r.observed.placements.iter().map(|p| (p.cluster.clone(), p.desired, p.ready)).collect(),
                recovered_at: recovered.get(&name).copied(),
            });
        }
        let since = drill.as_ref().map(|d| d.since);
        if let Some(d) = drill {
            d.recovered = recovered;
        }
        Ok(DrillStatus { cluster: cluster.to_string(), available, down, since, now, affected, stuck })
    }
}

#[async_trait]
impl PoliciesService for PoliciesServiceImpl {
    async fn list(&self) -> Result<Policies, AppError> {
        let live = read_live(&self.hub, None).await;
        let book = Book::load(&self.store, live.as_ref()).await?;
        let rows = self.store.list_deployments().await?;
        let view = |kind: PolicyKind, name: &str| {
            let r = book.records.iter().find(|r| r.kind == kind && r.name == name).expect("loaded together");
            (r.sync.clone(), book.used_by(kind, name, &rows), r.created_at, r.updated_at)
        };
        macro_rules! views {
            ($list:expr, $kind:expr) => {
                $list
                    .iter()
                    .map(|p| {
                        let (sync, used_by, created_at, updated_at) = view($kind, &p.name);
                        PolicyView { policy: p.clone(), sync, used_by, created_at, updated_at }
                    })
                    .collect()
            };
        }
        Ok(Policies {
            strategies: views!(book.strategies, PolicyKind::Strategy),
            profiles: views!(book.profiles, PolicyKind::Profile),
            failovers: views!(book.failovers, PolicyKind::Failover),
            clusters: book.clusters.clone(),
        })
    }

    async fn save_strategy(&self, actor: &SessionUser, p: PlacementStrategy, create: bool) -> Result<(), AppError> {
        p.validate()?;
        let book = Book::load(&self.store, None).await?;
        if !p.default_profile.is_empty() && book.profile(&p.default_profile).is_none() {
            return Err(AppError::field("default_profile", format!("no resource profile named {}", p.default_profile)));
        }
        for c in p.clusters.iter().chain(p.rules.iter().flat_map(|r| r.clusters.iter())) {
            if !book.clusters.iter().any(|k| &k.name == c) {
                let field = if p.clusters.contains(c) { "clusters" } else { "rules" };
                return Err(AppError::field(field, format!("no registered cluster named {c}")));
            }
        }
        self.save(actor, PolicyKind::Strategy, &p.name, &p, create).await?;
        if p.is_default {
            // One default: the others step down.
            for other in book.strategies.iter().filter(|s| s.is_default && s.name != p.name) {
                let mut o = other.clone();
                o.is_default = false;
                let spec = serde_json::to_string(&o).map_err(|e| AppError::internal(e.to_string()))?;
                self.store.update_policy(PolicyKind::Strategy, &o.name, &spec, now_ms()).await?;
            }
        }
        self.after_change().await;
        Ok(())
    }

    async fn save_profile(&self, actor: &SessionUser, p: ResourceProfile, create: bool) -> Result<(), AppError> {
        p.validate()?;
        self.save(actor, PolicyKind::Profile, &p.name, &p, create).await?;
        self.after_change().await;
        Ok(())
    }

    async fn save_failover(&self, actor: &SessionUser, p: FailoverPolicy, create: bool) -> Result<(), AppError> {
        p.validate()?;
        self.save(actor, PolicyKind::Failover, &p.name, &p, create).await?;
        self.after_change().await;
        Ok(())
    }

    async fn delete(&self, actor: &SessionUser, kind: PolicyKind, name: &str) -> Result<(), AppError> {
        let book = Book::load(&self.store, None).await?;
        let rows = self.store.list_deployments().await?;
        if !book.records.iter().any(|r| r.kind == kind && r.name == name) {
            return Err(AppError::not_found(format!("no {} named {}", kind.label(), shown(name))));
        }
        let users = book.used_by(kind, name, &rows);
        if !users.is_empty() {
            return Err(AppError::conflict(format!("{name} is in use by {}; change them first", users.join(", "))));
        }
        self.store.delete_policy(kind, name).await?;
        tracing::info!(by = %actor.username, kind = kind.as_str(), policy = name, "policy deleted");
        self.after_change().await;
        Ok(())
    }

    async fn create_defaults(&self, actor: &SessionUser) -> Result<Vec<String>, AppError> {
        let book = Book::load(&self.store, None).await?;
        let (strategies, profiles, failovers) = default_set();
        let has_default = book.default_strategy().is_some();
        let mut created = Vec::new();
        // Profiles first: strategies name them.
        for p in profiles.into_iter().filter(|p| book.profile(&p.name).is_none()) {
            self.save(actor, PolicyKind::Profile, &p.name, &p, true).await?;
            created.push(format!("profile {}", p.name));
        }
        for mut s in strategies.into_iter().filter(|s| book.strategy(&s.name).is_none()) {
            s.is_default &= !has_default;
            self.save(actor, PolicyKind::Strategy, &s.name, &s, true).await?;
            created.push(format!("strategy {}", s.name));
        }
        for f in failovers.into_iter().filter(|f| book.failover(&f.name).is_none()) {
            self.save(actor, PolicyKind::Failover, &f.name, &f, true).await?;
            created.push(format!("failover {}", f.name));
        }
        self.after_change().await;
        Ok(created)
    }

    async fn preview(&self, mut spec: DeploySpec) -> Result<PlacementPlan, AppError> {
        let live = read_live(&self.hub, Some(self.deployments.members())).await;
        let book = Book::load(&self.store, live.as_ref()).await?;
        if spec.strategy.is_empty() && spec.clusters.is_empty() {
            spec.strategy = book.default_strategy().map(|s| s.name.clone()).unwrap_or_default();
        }
        // What create would refuse, the preview refuses the same way: no plan for a spec that
        // cannot be deployed. (A plan where no cluster qualifies is still a plan: it says why.)
        spec.validate()?;
        self.deployments.check_clusters(&spec).await?;
        Ok(book.resolve(&spec)?.plan)
    }

    async fn drill(&self, actor: &SessionUser, cluster: &str, down: bool) -> Result<DrillStatus, AppError> {
        let Some((sim_name, _)) = self.sim_member(cluster).await? else {
            return Err(AppError::conflict(
                "failover drills switch members of the simulated hub; on a real hub, stop the member's API server or cordon it",
            ));
        };
        let req = http::Request::post(format!("/sim/v1/clusters/{sim_name}"))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&json!({"down": down})).unwrap_or_default())
            .map_err(|e| AppError::internal(e.to_string()))?;
        self.hub.raw(req).await?;
        if down {
            // What the hub has scheduled there now (the observer's copy may be seconds old).
            let affected = crate::hub::deploy::schedules(&self.hub)
                .await?
                .into_iter()
                .filter(|(_, placed)| placed.on(cluster))
                .map(|(name, _)| name)
                .collect();
            self.drills.lock().unwrap_or_else(|e| e.into_inner()).entry(cluster.to_string()).or_insert(Drill {
                since: now_ms(),
                affected,
                recovered: BTreeMap::new(),
            });
        } else {
            self.drills.lock().unwrap_or_else(|e| e.into_inner()).remove(cluster);
        }
        tracing::info!(by = %actor.username, cluster, down, "failover drill");
        self.drill_view(cluster, true, down).await
    }

    async fn drill_status(&self, cluster: &str) -> Result<DrillStatus, AppError> {
        let member = self.sim_member(cluster).await.unwrap_or(None);
        let (available, down) = match &member {
            Some((_, down)) => (true, *down),
            None => (false, false),
        };
        self.drill_view(cluster, available, down).await
    }
}
