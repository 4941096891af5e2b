//! Model deployments: the database row first, then the hub; a status observer that reads the hub
//! and the members back into the row; and a reconciler that finishes what a crash or an outage
//! interrupted.
use crate::auth::token::new_id;
use crate::changes::Wake;
use crate::hub::deploy::{self, MemberState};
use crate::hub::karmada::{PropagationPolicy, ResourceBinding, WorkloadRebalancer};
use crate::hub::policy::{self, holds};
use crate::hub::render::{self, cache_name, cache_size_gi, HubObjects, RenderInput, SERVING_NS};
use crate::hub::KubeClient;
use crate::services::members::{Members, LIVE_READ};
use crate::services::policies::{read_live, Book, Resolved};
use crate::store::{
    now_ms, ApplyState, CacheRecord, ClusterState, ClusterStore, DeploymentRecord, DeploymentStore, Store,
};
use app::error::{AppError, ErrorCode};
use app::models::deployment::{
    sanitize_name, unique_name, DeployOptions, DeploySpec, DeploymentDetail, DeploymentPhase, DeploymentView,
    ObservedStatus,
};
use app::models::runtime::{command_line, model_presets};
use app::models::user::SessionUser;
use app::models::validate::shown;
use app::services::DeploymentsService;
use async_trait::async_trait;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct DeploymentsServiceImpl {
    store: Store,
    hub: KubeClient,
    members: Members,
    /// One pass at a time per deployment: the deployment loop and the policy loop's repairs
    /// never interleave on one row.
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// When the observer last read the hub, and why it could not since (for a stale list).
    observed: Arc<Mutex<(i64, Option<String>)>>,
    /// Requests only store a change (rows in `applying` or `deleting`) and wake the leader's
    /// reconciler, here or on another replica: a change is applied once, by one writer.
    wake: Wake,
}

/// How long a request waits for the reconciler's first pass over its change before answering
/// with the change still in progress.
const ANSWER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn not_found(name: &str) -> AppError {
    AppError::not_found(format!("no deployment named {}", shown(name)))
}

/// The phase shown: the database's state first (applying, failed, deleting), then what the
/// observer saw.
fn phase_of(r: &DeploymentRecord) -> DeploymentPhase {
    match r.state {
        ApplyState::Applying => DeploymentPhase::Applying,
        ApplyState::Failed => DeploymentPhase::Failed,
        ApplyState::Deleting => DeploymentPhase::Deleting,
        ApplyState::Applied if r.stopped => DeploymentPhase::Stopped,
        ApplyState::Applied => r.observed.pod_phase.unwrap_or(DeploymentPhase::Pending),
    }
}

pub fn view(r: &DeploymentRecord) -> DeploymentView {
    let phase = phase_of(r);
    let message = match r.state {
        ApplyState::Applied => r.observed.message.clone(),
        _ => r.state_message.clone(),
    };
    DeploymentView {
        id: r.id.clone(),
        name: r.name.clone(),
        model: r.spec.model.clone(),
        runtime: r.spec.runtime,
        replicas: r.spec.replicas,
        ready_replicas: r.observed.ready_replicas,
        gpus_per_replica: r.spec.gpus_per_replica,
        clusters: clusters_of(r),
        phase,
        message,
        progress: r
            .observed
            .progress
            .filter(|_| matches!(phase, DeploymentPhase::Downloading | DeploymentPhase::Preloading)),
        endpoints: r.observed.placements.iter().filter_map(|p| p.endpoint.clone()).collect(),
        stopped: r.stopped,
        created_by: r.created_by.clone(),
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// Where it runs (as observed), else where it was asked to.
fn clusters_of(r: &DeploymentRecord) -> Vec<String> {
    let placed: Vec<String> =
        r.observed.placements.iter().filter(|p| p.desired > 0).map(|p| p.cluster.clone()).collect();
    if placed.is_empty() {
        r.spec.clusters.clone()
    } else {
        placed
    }
}

/// What the gateway routes to: every applied, running deployment, with the endpoints of the
/// clusters that have a ready replica.
pub fn route_specs(rows: &[DeploymentRecord]) -> Vec<crate::gateway::RouteSpec> {
    rows.iter()
        .filter(|r| r.state == ApplyState::Applied && !r.stopped)
        .map(|r| crate::gateway::RouteSpec {
            deployment: r.name.clone(),
            model: r.spec.model.clone(),
            runtime: r.spec.runtime.as_str().to_string(),
            endpoints: r
                .observed
                .placements
                .iter()
                .filter(|p| p.ready > 0)
                .filter_map(|p| p.endpoint.clone())
                .collect(),
            created: r.created_at,
        })
        .collect()
}

/// What the hub holds of one deployment, as one pass of the policy reconciler listed it.
#[derive(Clone, Copy, Default)]
pub struct OnHub<'a> {
    pub policy: Option<&'a PropagationPolicy>,
    pub deployment: Option<&'a Deployment>,
    pub service: Option<&'a Service>,
    /// The model cache's volume and its policy are both there.
    pub cache: bool,
    /// Its Deployment's ResourceBinding, and the clusters the hub reports ready.
    pub binding: Option<&'a ResourceBinding>,
    pub ready: Option<&'a BTreeSet<String>>,
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

impl DeploymentsServiceImpl {
    pub fn new(store: Store, hub: KubeClient, members: Members, wake: Wake) -> Self {
        Self { store, hub, members, locks: Default::default(), observed: Arc::new(Mutex::new((now_ms(), None))), wake }
    }

    /// Hands a stored change to the reconciler and waits (up to `ANSWER_WAIT`) for its first
    /// pass: the row applied, failed, gone, changed again, or a deletion that has to wait.
    async fn submit(&self, name: &str, generation: i64, message: &str) -> Result<(), AppError> {
        self.wake.changed(&self.store, crate::changes::DEPLOYMENTS).await;
        let started = tokio::time::Instant::now();
        let mut wait = std::time::Duration::from_millis(5);
        loop {
            let Some(r) = self.store.deployment_by_name(name).await? else { return Ok(()) };
            let pending = matches!(r.state, ApplyState::Applying | ApplyState::Deleting) && r.state_message == message;
            if r.generation != generation || !pending || started.elapsed() >= ANSWER_WAIT {
                return Ok(());
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(std::time::Duration::from_millis(50));
        }
    }

    pub fn members(&self) -> &Members {
        &self.members
    }

    fn lock_for(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().unwrap_or_else(|e| e.into_inner()).entry(name.to_string()).or_default().clone()
    }

    async fn record(&self, name: &str) -> Result<DeploymentRecord, AppError> {
        self.store.deployment_by_name(name).await?.ok_or_else(|| not_found(name))
    }

    /// Names the default strategy when the operator named neither a strategy nor clusters, and
    /// refuses a spec whose policies do not exist or under which no cluster qualifies.
    async fn settle(&self, spec: &mut DeploySpec) -> Result<(), AppError> {
        let book = Book::load(&self.store, None).await?;
        if spec.strategy.is_empty() && spec.clusters.is_empty() {
            if let Some(d) = book.default_strategy() {
                spec.strategy = d.name.clone();
            }
        }
        spec.validate()?;
        self.check_clusters(spec).await?;
        let plan = book.resolve(spec)?.plan;
        if plan.clusters.is_empty() {
            let why: Vec<String> = plan
                .candidates
                .iter()
                .map(|c| format!("{}: {}", c.cluster, c.reasons.first().cloned().unwrap_or_default()))
                .collect();
            let field = if spec.strategy.is_empty() { "clusters" } else { "strategy" };
            return Err(AppError::field(field, format!("no cluster qualifies ({})", why.join("; "))));
        }
        Ok(())
    }

    /// Every target must be a registered cluster.
    pub(crate) async fn check_clusters(&self, spec: &DeploySpec) -> Result<(), AppError> {
        let known: BTreeMap<String, ClusterState> =
            self.store.list_clusters().await?.into_iter().map(|c| (c.name, c.state)).collect();
        for c in &spec.clusters {
            match known.get(c) {
                Some(ClusterState::Registered) => {}
                Some(_) => return Err(AppError::field("clusters", format!("{c} is not registered successfully"))),
                None => return Err(AppError::field("clusters", format!("no registered cluster named {c}"))),
            }
        }
        Ok(())
    }

    /// The row's hub objects under its resolved policies.
    /// `current`: the hub's policy now; its division is kept while it still fits the plan, so
    /// free GPUs moving (this deployment's own, for one) or a cluster failing never re-divide a
    /// running deployment behind the hub's back.
    fn render_row(
        r: &DeploymentRecord,
        resolved: &Resolved<'_>,
        cache_clusters: &[String],
        current: Option<&PropagationPolicy>,
    ) -> HubObjects {
        let preloading = r.spec.cache.enabled && r.spec.cache.preload && !r.observed.preloaded;
        let replicas = if r.stopped || preloading { 0 } else { r.spec.replicas as i32 };
        let mut plan = resolved.plan.clone();
        if let Some(pp) = current {
            policy::keep_division(&mut plan, &pp.spec.placement, r.spec.replicas as i64);
        }
        render::render(&RenderInput {
            name: &r.name,
            spec: &r.spec,
            replicas,
            cache_clusters,
            preload: preloading,
            plan: &plan,
            strategy: resolved.strategy,
            failover: resolved.failover,
        })
    }

    /// Whether what the hub holds of a row (as the caller listed it) still says what the
    /// database implies — a policy changed, someone edited or deleted an object by hand, or the
    /// hub lost it; if not, applies the row again. `false`: not in step and busy with another
    /// change.
    /// Whether the hub already holds what the row renders to (its division kept).
    fn in_step(r: &DeploymentRecord, book: &Book, hub: &OnHub<'_>) -> Result<bool, AppError> {
        let objs = Self::render_row(r, &book.resolve(&r.spec)?, &[], hub.policy);
        Ok(match (hub.policy, hub.deployment, hub.service) {
            (Some(pp), Some(d), Some(svc)) => {
                holds(&json(&pp.spec), &json(&objs.policy.spec))
                    && holds(&json(&d.spec), &json(&objs.deployment.spec))
                    && holds(&json(&d.metadata.labels), &json(&objs.deployment.metadata.labels))
                    && holds(&json(&svc.spec), &json(&objs.service.spec))
                    && (objs.cache.is_none() || hub.cache)
            }
            _ => false,
        })
    }

    /// Applies a row left `applying` unless the hub holds it already: a leader that died after
    /// applying and before recording it leaves nothing for its successor to write again.
    async fn settle_applying(&self, r: &DeploymentRecord) -> Result<(), AppError> {
        let name = r.name.as_str();
        let cache = cache_name(r.spec.runtime, &r.spec.model);
        let (pp, d, svc, cache_pvc, cache_pp) = tokio::join!(
            self.hub.get::<PropagationPolicy>(Some(SERVING_NS), name),
            self.hub.get::<Deployment>(Some(SERVING_NS), name),
            self.hub.get::<Service>(Some(SERVING_NS), name),
            async {
                if !r.spec.cache.enabled {
                    return Ok(None);
                }
                self.hub.get::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(Some(SERVING_NS), &cache).await
            },
            async {
                if !r.spec.cache.enabled {
                    return Ok(None);
                }
                self.hub.get::<PropagationPolicy>(Some(SERVING_NS), &cache).await
            },
        );
        let held = match (pp, d, svc, cache_pvc, cache_pp) {
            (Ok(pp), Ok(d), Ok(svc), Ok(cpvc), Ok(cpp)) => {
                let book = Book::load(&self.store, None).await?;
                let on_hub = OnHub {
                    policy: pp.as_ref(),
                    deployment: d.as_ref(),
                    service: svc.as_ref(),
                    cache: cpvc.is_some() && cpp.is_some(),
                    binding: None,
                    ready: None,
                };
                Self::in_step(r, &book, &on_hub).unwrap_or(false)
            }
            // The apply says what is wrong with the hub.
            _ => false,
        };
        if held {
            tracing::info!(deployment = name, "the hub already holds this change; recorded without applying");
            self.store.record_outcome(name, r.generation, ApplyState::Applied, "", now_ms()).await?;
            return Ok(());
        }
        self.apply_and_record(r).await
    }

    pub async fn converge(&self, r: &DeploymentRecord, book: &Book, hub: OnHub<'_>) -> Result<bool, AppError> {
        if Self::in_step(r, book, &hub)? {
            if let (Some(pp), Some(rb), Some(ready)) = (hub.policy, hub.binding, hub.ready) {
                // The deployment is in step either way: a refused request is tried again next pass.
                if policy::strayed_from_division(&pp.spec.placement, rb, ready) {
                    if let Err(e) = self.rebalance(&r.name).await {
                        tracing::warn!(deployment = %r.name, error = %e, "the hub refused a rebalance");
                    }
                }
            }
            return Ok(true);
        }
        let lock = self.lock_for(&r.name);
        // Busy with a change of its own: not in step yet, the next pass looks again.
        let Ok(_g) = lock.try_lock() else { return Ok(false) };
        tracing::info!(deployment = %r.name, "hub objects differ from the database; applying again");
        self.apply_and_record(r).await?;
        Ok(true)
    }

    /// Asks the hub for a fresh scheduling round of a deployment, once at a time: a finished
    /// request still there is cleared first, the next pass asks again if still needed.
    async fn rebalance(&self, name: &str) -> Result<(), AppError> {
        let wr = policy::rebalancer(name);
        let wr_name = wr.metadata.name.clone().unwrap_or_default();
        match self.hub.get::<WorkloadRebalancer>(None, &wr_name).await? {
            Some(old) if old.status.as_ref().is_some_and(|s| s.finish_time.is_some()) => {
                self.hub.delete::<WorkloadRebalancer>(None, &wr_name).await?;
            }
            Some(_) => {}
            None => {
                tracing::info!(deployment = %name, "the hub's schedule left the division; asking it to reschedule");
                self.hub.create(&wr).await?;
            }
        }
        Ok(())
    }

    /// Renders and applies the row's objects; the cache record grows to cover new clusters.
    async fn apply(&self, r: &DeploymentRecord) -> Result<(), AppError> {
        let spec = &r.spec;
        // Divided as the preview divides it: on what the clusters have free now.
        let live = read_live(&self.hub, Some(&self.members)).await;
        let book = Book::load(&self.store, live.as_ref()).await?;
        let resolved = book.resolve(spec)?;
        let mut cache_clusters = Vec::new();
        if spec.cache.enabled {
            let now = now_ms();
            let existing = self.store.cache_for(spec.runtime, &spec.model).await?;
            let mut clusters = existing.as_ref().map(|c| c.clusters.clone()).unwrap_or_default();
            for c in &resolved.plan.clusters {
                if !clusters.contains(c) {
                    clusters.push(c.clone());
                }
            }
            self.store
                .upsert_cache(&CacheRecord {
                    name: cache_name(spec.runtime, &spec.model),
                    runtime: spec.runtime,
                    model: spec.model.clone(),
                    clusters: clusters.clone(),
                    size_gi: existing.as_ref().map(|c| c.size_gi).unwrap_or_else(|| cache_size_gi(spec)),
                    storage_class: spec.cache.storage_class.clone(),
                    created_at: existing.as_ref().map(|c| c.created_at).unwrap_or(now),
                    updated_at: now,
                })
                .await?;
            cache_clusters = clusters;
        }
        let current: Option<PropagationPolicy> = self.hub.get(Some(SERVING_NS), &r.name).await.ok().flatten();
        let objs = Self::render_row(r, &resolved, &cache_clusters, current.as_ref());
        deploy::apply(&self.hub, &objs).await.map_err(AppError::from)
    }

    /// Applies under the row's lock and records the outcome. A failure leaves the row `failed`
    /// with why; what was applied before it stays inert (the policy goes last) until a retry.
    async fn apply_and_record(&self, r: &DeploymentRecord) -> Result<(), AppError> {
        match self.apply(r).await {
            Ok(()) => {
                if !self.store.record_outcome(&r.name, r.generation, ApplyState::Applied, "", now_ms()).await? {
                    tracing::info!(deployment = %r.name, "changed while being applied; the next pass applies the change");
                }
                Ok(())
            }
            Err(e) => {
                let message = format!("could not apply to the hub: {}. Retry with Redeploy.", e.message);
                self.store.record_outcome(&r.name, r.generation, ApplyState::Failed, &message, now_ms()).await?;
                tracing::warn!(deployment = %r.name, error = %e.message, "apply failed");
                Err(e)
            }
        }
    }

    /// Changes the spec or the stop flag and hands the change to the reconciler.
    async fn change(
        &self,
        actor: &SessionUser,
        name: &str,
        spec: DeploySpec,
        stopped: bool,
        what: &str,
    ) -> Result<DeploymentView, AppError> {
        let deleting = || AppError::conflict(format!("{name} is being deleted"));
        if self.record(name).await?.state == ApplyState::Deleting {
            return Err(deleting());
        }
        match self.store.update_deployment_spec(name, &spec, stopped, now_ms()).await {
            // Deleted, or marked for deletion, since it was read.
            Err(crate::store::StoreError::NotFound) => {
                self.record(name).await?;
                return Err(deleting());
            }
            r => r?,
        }
        let r = self.record(name).await?;
        self.submit(name, r.generation, "").await?;
        tracing::info!(by = %actor.username, deployment = name, "{what}");
        Ok(view(&self.record(name).await?))
    }

    /// Removes what the hub has of a row in `deleting`, then the row (and its cache if asked).
    async fn finish_delete(&self, r: &DeploymentRecord) -> Result<(), AppError> {
        let (name, delete_cache) = (r.name.as_str(), r.delete_cache);
        deploy::remove(&self.hub, name).await.map_err(AppError::from)?;
        self.store.delete_deployment(name).await?;
        if delete_cache && r.spec.cache.enabled {
            let others = self
                .store
                .list_deployments()
                .await?
                .into_iter()
                .any(|o| o.spec.cache.enabled && o.spec.runtime == r.spec.runtime && o.spec.model == r.spec.model);
            if !others {
                let cache = cache_name(r.spec.runtime, &r.spec.model);
                deploy::remove_cache(&self.hub, &cache).await.map_err(AppError::from)?;
                self.store.delete_cache(&cache).await?;
            }
        }
        self.locks.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
        Ok(())
    }

    /// Member states for the given clusters, read concurrently with `clients` (from `Members::all`).
    async fn member_states(
        clients: &BTreeMap<String, Result<KubeClient, String>>,
        clusters: &BTreeSet<String>,
    ) -> BTreeMap<String, Result<MemberState, String>> {
        let reads = clusters.iter().filter_map(|c| clients.get(c).map(|client| (c.clone(), client.clone()))).map(
            |(name, client)| async move {
                let state = match client {
                    Ok(m) => deploy::member_state(&m).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                (name, state)
            },
        );
        futures::future::join_all(reads).await.into_iter().collect()
    }

    /// Finishes what a crash or an outage cut off (rows left applying or deleting), then
    /// observes. Returns the applied rows as now observed (what the gateway routes to). What the
    /// hub lost or had changed by hand is put back by the policy pass (`converge`).
    pub async fn reconcile(&self) -> Result<Vec<DeploymentRecord>, AppError> {
        let rows = self.store.list_deployments().await?;
        let mut changed = false;
        for r in &rows {
            let lock = self.lock_for(&r.name);
            let Ok(_g) = lock.try_lock() else { continue };
            match r.state {
                ApplyState::Applying => {
                    changed = true;
                    let _ = self.settle_applying(r).await;
                }
                ApplyState::Deleting => {
                    changed = true;
                    if let Err(e) = self.finish_delete(r).await {
                        tracing::warn!(deployment = %r.name, error = %e, "deletion waits for the hub");
                        let message = format!("deletion continues when the hub answers: {}", e.message);
                        if message != r.state_message {
                            self.store
                                .record_outcome(&r.name, r.generation, ApplyState::Deleting, &message, now_ms())
                                .await?;
                        }
                    }
                }
                _ => {}
            }
        }
        let rows = if changed { self.store.list_deployments().await? } else { rows };
        self.observe(rows.into_iter().filter(|r| r.state == ApplyState::Applied).collect()).await
    }

    /// Reads the hub's schedule and the members' pods into the given (applied) rows, and returns
    /// them with what was seen.
    async fn observe(&self, rows: Vec<DeploymentRecord>) -> Result<Vec<DeploymentRecord>, AppError> {
        if rows.is_empty() {
            return Ok(rows);
        }
        let schedules = match deploy::schedules(&self.hub).await {
            Ok(s) => s,
            Err(e) => {
                self.observed.lock().unwrap_or_else(|e| e.into_inner()).1 = Some(e.to_string());
                return Err(e.into());
            }
        };
        *self.observed.lock().unwrap_or_else(|e| e.into_inner()) = (now_ms(), None);
        // Pre-load Jobs run on every cluster the row may use, scheduled or not.
        let book = if rows.iter().any(|r| r.spec.cache.preload && !r.observed.preloaded) {
            Book::load(&self.store, None).await.ok()
        } else {
            None
        };
        let clusters: BTreeSet<String> = schedules
            .values()
            .flat_map(|v| v.clusters.iter().map(|(c, _)| c.clone()))
            .chain(rows.iter().flat_map(|r| r.spec.clusters.clone()))
            .chain(
                rows.iter()
                    .filter(|r| r.spec.cache.preload && !r.observed.preloaded)
                    .flat_map(|r| Self::targets(book.as_ref(), r)),
            )
            .chain(self.members.unanswered())
            .collect();
        let states = Self::member_states(&self.members.all().await?, &clusters).await;
        self.members.note_reads(&states);
        let mut seen = Vec::with_capacity(rows.len());
        for r in rows {
            let desired = if r.stopped { 0 } else { r.spec.replicas as i64 };
            let mut observed = deploy::observe(&r.name, desired, schedules.get(&r.name), &states);
            observed.preloaded = r.observed.preloaded;
            if r.spec.cache.preload
                && !observed.preloaded
                && deploy::preload_finished(&r.name, &Self::targets(book.as_ref(), &r), &states)
            {
                let lock = self.lock_for(&r.name);
                let guard = lock.try_lock();
                if guard.is_ok() {
                    // The cache is warm: stored first, so the apply renders the real replicas. If
                    // the row is busy, the next round tries again.
                    observed.preloaded = true;
                    self.store.set_deployment_observed(&r.name, &observed, now_ms()).await?;
                    tracing::info!(deployment = %r.name, "model pre-loaded; starting replicas");
                    let r = DeploymentRecord { observed, ..r };
                    let _ = self.apply_and_record(&r).await;
                    seen.push(r);
                    continue;
                }
            }
            self.store.set_deployment_observed(&r.name, &observed, now_ms()).await?;
            seen.push(DeploymentRecord { observed, ..r });
        }
        Ok(seen)
    }

    /// The clusters a row may run on under its policies (its own list when they cannot be read).
    fn targets(book: Option<&Book>, r: &DeploymentRecord) -> Vec<String> {
        book.and_then(|b| b.resolve(&r.spec).ok()).map(|x| x.plan.clusters).unwrap_or_else(|| r.spec.clusters.clone())
    }

    /// How many deployments target each cluster (for the clusters page).
    pub async fn per_cluster(store: &Store) -> Result<BTreeMap<String, Vec<String>>, AppError> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in store.list_deployments().await? {
            for c in clusters_of(&r) {
                out.entry(c).or_default().push(r.name.clone());
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl DeploymentsService for DeploymentsServiceImpl {
    async fn options(&self) -> Result<DeployOptions, AppError> {
        let clusters = self
            .store
            .list_clusters()
            .await?
            .into_iter()
            .filter(|c| c.state == ClusterState::Registered)
            .map(|c| {
                let gpus = c.nodes.iter().map(|n| n.gpus).sum();
                let label = if c.display_name.is_empty() { c.name.clone() } else { c.display_name.clone() };
                (c.name, label, gpus)
            })
            .collect();
        Ok(DeployOptions { models: model_presets(), clusters })
    }

    async fn deploy(&self, actor: &SessionUser, mut spec: DeploySpec) -> Result<DeploymentView, AppError> {
        self.settle(&mut spec).await?;
        let explicit = !spec.name.is_empty();
        let base = if explicit { spec.name.clone() } else { sanitize_name(&spec.model) };
        // A concurrent deploy may take the derived name between the check and the insert: try again.
        for _ in 0..5 {
            let taken: BTreeSet<String> = self.store.list_deployments().await?.into_iter().map(|d| d.name).collect();
            if explicit && taken.contains(&base) {
                return Err(AppError {
                    code: ErrorCode::Conflict,
                    ..AppError::field("name", format!("a deployment named {base} already exists"))
                });
            }
            let name = unique_name(&base, |n| taken.contains(n));
            spec.name = name.clone();
            let now = now_ms();
            let r = DeploymentRecord {
                id: new_id(),
                name: name.clone(),
                spec: spec.clone(),
                state: ApplyState::Applying,
                state_message: String::new(),
                stopped: false,
                observed: ObservedStatus::default(),
                created_by: actor.username.clone(),
                created_at: now,
                updated_at: now,
                applied_at: 0,
                generation: 1,
                delete_cache: false,
            };
            match self.store.insert_deployment(&r).await {
                Ok(()) => {}
                Err(crate::store::StoreError::Conflict(_)) if !explicit => continue,
                Err(e) => return Err(e.into()),
            }
            self.submit(&name, r.generation, "").await?;
            let r = self.record(&name).await?;
            tracing::info!(by = %actor.username, deployment = %name, model = %spec.model, runtime = spec.runtime.as_str(), state = r.state.as_str(), "deployment submitted");
            return Ok(view(&r));
        }
        Err(AppError::conflict("could not find a free name; give one explicitly"))
    }

    async fn list(&self) -> Result<Vec<DeploymentView>, AppError> {
        let mut list: Vec<DeploymentView> = self.store.list_deployments().await?.iter().map(view).collect();
        // What the observer stored may be old: say so rather than show it as current.
        let (at, why) = self.observed.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(why) = why {
            let age = (now_ms() - at) / 1000;
            for d in list.iter_mut().filter(|d| !matches!(d.phase, DeploymentPhase::Failed | DeploymentPhase::Applying))
            {
                d.message = format!("hub unreachable for {age} s ({why}); status as last seen");
            }
        }
        Ok(list)
    }

    async fn detail(&self, name: &str) -> Result<DeploymentDetail, AppError> {
        let mut r = self.record(name).await?;
        let spec = r.spec.clone();
        let book = Book::load(&self.store, None).await?;
        let mut clusters: BTreeSet<String> = Self::targets(Some(&book), &r).into_iter().collect();
        clusters.extend(r.observed.placements.iter().map(|p| p.cluster.clone()));
        let preset = spec.runtime.preset();
        let plan = spec.container();
        let current: Option<PropagationPolicy> = self.hub.get(Some(SERVING_NS), name).await.ok().flatten();
        let objs = Self::render_row(&r, &book.resolve(&r.spec)?, &[], current.as_ref());
        let mut events = Vec::new();
        if r.state == ApplyState::Applied {
            // Live: the observer's copy may be two seconds old, and the detail page is where
            // people watch a model come up.
            let clients = self.members.all().await?;
            // Members known to be down are not asked, and the rest get a few seconds: the page
            // shows the observer's copy rather than hang on a member that does not answer.
            let down = self.members.unanswered();
            let live = async {
                let schedules = deploy::schedules(&self.hub).await.ok()?;
                let ask: BTreeSet<String> = clusters.iter().filter(|c| !down.contains(c)).cloned().collect();
                let mut states = Self::member_states(&clients, &ask).await;
                for c in clusters.iter().filter(|c| down.contains(c)) {
                    states.insert(c.clone(), Err("the member cluster does not answer".into()));
                }
                let desired = if r.stopped { 0 } else { spec.replicas as i64 };
                let mut observed = deploy::observe(name, desired, schedules.get(name), &states);
                observed.preloaded = r.observed.preloaded;
                let mut events = Vec::new();
                for (cluster, state) in &states {
                    let Ok(state) = state else { continue };
                    let mut names: BTreeSet<String> = state
                        .pods
                        .iter()
                        .filter(|p| p.labels().get(render::DEPLOYMENT_LABEL).map(String::as_str) == Some(name))
                        .map(|p| p.name_any())
                        .collect();
                    names.insert(name.to_string());
                    names.insert(format!("{name}-preload"));
                    if let Some(Ok(m)) = clients.get(cluster) {
                        if let Ok(mut evs) = deploy::events(m, cluster, &names).await {
                            events.append(&mut evs);
                        }
                    }
                }
                Some((observed, events))
            };
            if let Ok(Some((observed, evs))) = tokio::time::timeout(LIVE_READ, live).await {
                r.observed = observed;
                events = evs;
            }
        }
        // Stable: each cluster's events are already in order within a second.
        events.sort_by(|a, b| b.time.cmp(&a.time));
        events.truncate(50);
        Ok(DeploymentDetail {
            deployment: view(&r),
            placements: r.observed.placements.clone(),
            replicas: r.observed.replicas.clone(),
            events,
            objects: deploy::object_names(&objs),
            command: command_line(&plan),
            openai_base: preset.openai_base.to_string(),
            cache_volume: spec.cache.enabled.then(|| cache_name(spec.runtime, &spec.model)),
            spec,
        })
    }

    async fn redeploy(
        &self,
        actor: &SessionUser,
        name: &str,
        spec: Option<DeploySpec>,
    ) -> Result<DeploymentView, AppError> {
        let r = self.record(name).await?;
        let mut spec = spec.unwrap_or(r.spec.clone());
        if spec.name.is_empty() {
            spec.name = name.to_string();
        }
        if spec.name != name {
            return Err(AppError::field("name", "cannot be changed; deploy under the new name instead"));
        }
        self.settle(&mut spec).await?;
        self.change(actor, name, spec, r.stopped, "redeployed").await
    }

    async fn set_stopped(&self, actor: &SessionUser, name: &str, stopped: bool) -> Result<DeploymentView, AppError> {
        let r = self.record(name).await?;
        self.change(actor, name, r.spec.clone(), stopped, if stopped { "stopped" } else { "started" }).await
    }

    async fn delete(&self, actor: &SessionUser, name: &str, delete_cache: bool) -> Result<(), AppError> {
        self.record(name).await?;
        // Marked first: the reconciler removes it from the hub, now or when the hub answers.
        const REMOVING: &str = "removing from the hub";
        self.store.mark_deleting(name, delete_cache, REMOVING, now_ms()).await?;
        let generation = self.store.deployment_by_name(name).await?.map(|r| r.generation).unwrap_or_default();
        self.submit(name, generation, REMOVING).await?;
        match self.store.deployment_by_name(name).await? {
            None => tracing::info!(by = %actor.username, deployment = name, delete_cache, "deployment deleted"),
            Some(r) => {
                tracing::info!(by = %actor.username, deployment = name, message = %r.state_message, "deletion continues when the hub answers")
            }
        }
        Ok(())
    }
}
