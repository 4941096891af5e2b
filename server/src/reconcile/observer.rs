//! The status observer: once per round it reads the hub's schedules and each member's pods and
//! Services, and stores each applied deployment's status (phase, replicas, progress, endpoints)
//! when it changed. Pages and the gateway read what it stored; nothing else observes.
use super::deployments::Deployer;
use crate::gateway::{Gateway, RouteSpec};
use crate::hub::deploy::{self, MemberState};
use crate::hub::KubeClient;
use crate::members::Members;
use crate::placement::Book;
use crate::store::{now_ms, ApplyState, DeploymentRecord, DeploymentStore, Store};
use app::error::AppError;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// When the observer last read the hub, and why it could not since: a list shows status that
/// old as old.
#[derive(Clone)]
pub struct Freshness(Arc<Mutex<(i64, Option<String>)>>);

impl Default for Freshness {
    fn default() -> Self {
        Self(Arc::new(Mutex::new((now_ms(), None))))
    }
}

impl Freshness {
    /// `None` while the hub answers; else since when (unix ms) and why it does not.
    pub fn stale(&self) -> Option<(i64, String)> {
        let (at, why) = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        why.map(|w| (at, w))
    }

    fn read(&self, r: &Result<(), String>) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match r {
            Ok(()) => *g = (now_ms(), None),
            Err(e) => g.1 = Some(e.clone()),
        }
    }
}

#[derive(Clone)]
pub struct Observer {
    store: Store,
    hub: KubeClient,
    members: Members,
    deployer: Deployer,
    freshness: Freshness,
}

/// What the gateway routes to: every applied, running deployment, with the endpoints of the
/// clusters that have a ready replica.
pub fn route_specs(rows: &[DeploymentRecord]) -> Vec<RouteSpec> {
    rows.iter()
        .filter(|r| r.state == ApplyState::Applied && !r.stopped)
        .map(|r| RouteSpec {
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

/// Hands the gateway the deployments as last stored: at start, and on a replica that does not
/// lead whenever the leader says it stored new routes.
pub async fn publish_routes(store: &Store, gateway: &Gateway) {
    match store.list_deployments().await {
        Ok(rows) => gateway.set_routes(route_specs(&rows)),
        Err(e) => tracing::warn!(error = %e, "gateway routes not refreshed"),
    }
}

/// The clusters a row may run on under its policies (its own list when they cannot be read).
pub fn targets(book: Option<&Book>, r: &DeploymentRecord) -> Vec<String> {
    book.and_then(|b| b.resolve(&r.spec).ok()).map(|x| x.plan.clusters).unwrap_or_else(|| r.spec.clusters.clone())
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

impl Observer {
    pub fn new(store: Store, hub: KubeClient, members: Members, deployer: Deployer, freshness: Freshness) -> Self {
        Self { store, hub, members, deployer, freshness }
    }

    /// Reads the hub's schedule and the members' pods into the applied rows and stores what was
    /// seen; returns the rows as now observed. A pre-load that finished starts the replicas.
    pub async fn observe(&self, rows: Vec<DeploymentRecord>) -> Result<Vec<DeploymentRecord>, AppError> {
        let rows: Vec<DeploymentRecord> = rows.into_iter().filter(|r| r.state == ApplyState::Applied).collect();
        if rows.is_empty() {
            return Ok(rows);
        }
        let schedules = deploy::schedules(&self.hub).await;
        self.freshness.read(&schedules.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        let schedules = schedules?;
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
                    .flat_map(|r| targets(book.as_ref(), r)),
            )
            .chain(self.members.unanswered())
            .collect();
        let states = member_states(&self.members.all().await?, &clusters).await;
        self.members.note_reads(&states);
        let mut seen = Vec::with_capacity(rows.len());
        for r in rows {
            let desired = if r.stopped { 0 } else { r.spec.replicas as i64 };
            let mut observed = deploy::observe(&r.name, desired, schedules.get(&r.name), &states);
            observed.preloaded = r.observed.preloaded;
            if r.spec.cache.preload
                && !observed.preloaded
                && deploy::preload_finished(&r.name, &targets(book.as_ref(), &r), &states)
            {
                let lock = self.deployer.lock_for(&r.name);
                let guard = lock.try_lock();
                if guard.is_ok() {
                    // The cache is warm: stored first, so the apply renders the real replicas. If
                    // the row is busy, the next round tries again.
                    observed.preloaded = true;
                    self.store.set_deployment_observed(&r.name, &observed, now_ms()).await?;
                    tracing::info!(deployment = %r.name, "model pre-loaded; starting replicas");
                    let r = DeploymentRecord { observed, ..r };
                    if let Err(e) = self.deployer.apply_and_record(&r).await {
                        tracing::warn!(deployment = %r.name, error = %e, "starting replicas after the pre-load failed");
                    }
                    seen.push(r);
                    continue;
                }
            }
            if observed != r.observed {
                self.store.set_deployment_observed(&r.name, &observed, now_ms()).await?;
            }
            seen.push(DeploymentRecord { observed, ..r });
        }
        Ok(seen)
    }
}
