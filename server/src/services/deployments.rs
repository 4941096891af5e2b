//! Model deployments as requests see them: validated, stored (the row is the source of truth)
//! and handed to the reconciler (`crate::reconcile`), which applies them to the hub and whose
//! observer stores their status; pages read what it stored.
use crate::auth::token::new_id;
use crate::changes::Wake;
use crate::hub::deploy;
use crate::hub::held::Held;
use crate::hub::render::cache_name;
use crate::members::{Members, LIVE_READ};
use crate::placement::Book;
use crate::reconcile::deployments::objects;
use crate::reconcile::observer::{targets, Freshness};
use crate::store::{now_ms, ApplyState, ClusterState, ClusterStore, DeploymentRecord, DeploymentStore, Store};
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
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone)]
pub struct DeploymentsServiceImpl {
    store: Store,
    members: Members,
    /// How current the observer's stored status is.
    freshness: Freshness,
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

/// Every target must be a registered cluster.
pub async fn check_clusters(store: &Store, spec: &DeploySpec) -> Result<(), AppError> {
    let known: BTreeMap<String, ClusterState> =
        store.list_clusters().await?.into_iter().map(|c| (c.name, c.state)).collect();
    for c in &spec.clusters {
        match known.get(c) {
            Some(ClusterState::Registered) => {}
            Some(_) => return Err(AppError::field("clusters", format!("{c} is not registered successfully"))),
            None => return Err(AppError::field("clusters", format!("no registered cluster named {c}"))),
        }
    }
    Ok(())
}

impl DeploymentsServiceImpl {
    pub fn new(store: Store, members: Members, freshness: Freshness, wake: Wake) -> Self {
        Self { store, members, freshness, wake }
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
        check_clusters(&self.store, spec).await?;
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
        if let Some((at, why)) = self.freshness.stale() {
            let age = (now_ms() - at) / 1000;
            for d in list.iter_mut().filter(|d| !matches!(d.phase, DeploymentPhase::Failed | DeploymentPhase::Applying))
            {
                d.message = format!("hub unreachable for {age} s ({why}); status as last seen");
            }
        }
        Ok(list)
    }

    async fn detail(&self, name: &str) -> Result<DeploymentDetail, AppError> {
        let r = self.record(name).await?;
        let spec = r.spec.clone();
        let book = Book::load(&self.store, None).await?;
        let preset = spec.runtime.preset();
        let objs = objects(&r, &book.resolve(&r.spec)?, &[], &Held::default());
        // Status is the observer's; events are the members' own, read live from those that
        // answer within a few seconds (members known to be down are not asked).
        let mut events = Vec::new();
        if r.state == ApplyState::Applied {
            let mut clusters: BTreeSet<String> = targets(Some(&book), &r).into_iter().collect();
            clusters.extend(r.observed.placements.iter().map(|p| p.cluster.clone()));
            let down = self.members.unanswered();
            let mut names: BTreeSet<String> = r.observed.replicas.iter().map(|p| p.pod.clone()).collect();
            names.insert(name.to_string());
            names.insert(format!("{name}-preload"));
            let clients = self.members.all().await?;
            let reads = clusters.iter().filter(|c| !down.contains(c)).filter_map(|c| match clients.get(c) {
                Some(Ok(m)) => Some((c, m)),
                _ => None,
            });
            let reads = reads.map(|(c, m)| {
                let names = &names;
                async move { tokio::time::timeout(LIVE_READ, deploy::events(m, c, names)).await }
            });
            for evs in futures::future::join_all(reads).await.into_iter().flatten().flatten() {
                events.extend(evs);
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
            command: command_line(&spec.container()),
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
