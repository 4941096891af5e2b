//! The policy pass: applies what the database says about policies to the hub (profiles'
//! OverridePolicies, the NodePort policy, what failover needs), removes what it no longer says,
//! puts back deployments' objects that were changed by hand or lost, and records a sync status
//! per policy.
use super::deployments::Deployer;
use crate::hub::held::Held;
use crate::hub::hub_policies;
use crate::hub::KubeClient;
use crate::placement::{read_live, Book};
use crate::store::{now_ms, ApplyState, DeploymentRecord, DeploymentStore, PolicyStore, Store};
use app::error::{AppError, ErrorCode};
use app::models::policy::{gpu_products, PolicyKind, SyncState, SyncStatus};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::watch;

/// What a pass found for one policy.
enum Check {
    InStep(String),
    /// A deployment using it is busy with a change of its own; the next pass decides.
    Busy(String),
    Failed(String),
}

type Outcome = BTreeMap<(PolicyKind, String), Check>;

#[derive(Clone)]
pub struct PolicyPass {
    store: Store,
    hub: KubeClient,
    deployer: Deployer,
    /// One pass at a time.
    pass: Arc<tokio::sync::Mutex<()>>,
    /// Passes begun and passes finished, so that a request can wait for one that read its change.
    begun: Arc<std::sync::atomic::AtomicU64>,
    finished: watch::Sender<u64>,
}

impl PolicyPass {
    pub fn new(store: Store, hub: KubeClient, deployer: Deployer) -> Self {
        Self {
            store,
            hub,
            deployer,
            pass: Default::default(),
            begun: Default::default(),
            finished: watch::Sender::new(0),
        }
    }

    /// The pass a change stored now is read by: the next one to begin.
    pub fn ticket(&self) -> u64 {
        self.begun.load(std::sync::atomic::Ordering::SeqCst) + 1
    }

    /// Waits (up to `limit`) for the pass of `ticket` to finish: the change is then in the hub,
    /// or in the policies' sync status with why not.
    pub async fn wait(&self, ticket: u64, limit: std::time::Duration) {
        let mut rx = self.finished.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|n| *n >= ticket)).await;
    }

    /// One pass. Failures of single objects are in the sync status; an `Err` is a pass that could
    /// not read the database.
    pub async fn reconcile(&self) -> Result<(), AppError> {
        let _g = self.pass.lock().await;
        let n = self.begun.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let result = self.pass().await;
        self.finished.send_replace(n);
        result
    }

    async fn pass(&self) -> Result<(), AppError> {
        // A division made again (a strategy changed) goes by what the hub says is ready and free.
        let live = read_live(&self.hub, None).await;
        let book = Book::load(&self.store, live.as_ref()).await?;
        let rows = self.store.list_deployments().await?;
        let mut outcome: Outcome = BTreeMap::new();
        let read = async {
            let mut profiles = self.sync_profiles(&book).await?;
            if !rows.is_empty() {
                hub_policies::sync_node_ports(&self.hub).await?;
            }
            profiles.extend(self.sync_hub_failover(&book).await?);
            // One read of each kind for the whole pass, not one per deployment.
            Ok::<_, AppError>((profiles, Held::list(&self.hub).await?))
        };
        let held = match read.await {
            Err(e) => {
                let why = format!("hub unreachable: {e}");
                for r in &book.records {
                    outcome.insert((r.kind, r.name.clone()), Check::Failed(why.clone()));
                }
                return self.record(&book, &rows, outcome).await;
            }
            Ok((per_profile, held)) => {
                outcome.extend(per_profile);
                let ready: Option<BTreeSet<String>> =
                    live.as_ref().map(|l| l.health.iter().filter(|(_, h)| h.ready).map(|(n, _)| n.clone()).collect());
                held.with_ready(ready)
            }
        };
        for r in rows.iter().filter(|r| matches!(r.state, ApplyState::Applied | ApplyState::Failed)) {
            let result = if r.state == ApplyState::Failed {
                // The hub refused it: its policies are not in effect for it.
                Err(AppError::new(ErrorCode::Invalid, r.state_message.clone()))
            } else {
                self.deployer.converge(r, &book, &held).await
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

    /// Enabled failover policies fail when the hub would not act on them.
    async fn sync_hub_failover(&self, book: &Book) -> Result<Outcome, AppError> {
        let mut out = Outcome::new();
        let enabled: Vec<&str> = book.failovers.iter().filter(|f| f.enabled).map(|f| f.name.as_str()).collect();
        if enabled.is_empty() {
            return Ok(out);
        }
        if let Some(p) = hub_policies::failover_problem(&self.hub, true).await? {
            for f in enabled {
                out.insert((PolicyKind::Failover, f.to_string()), Check::Failed(p.clone()));
            }
        }
        Ok(out)
    }

    async fn sync_profiles(&self, book: &Book) -> Result<Outcome, AppError> {
        let done = hub_policies::sync_profiles(&self.hub, &book.profiles, &gpu_products(&book.clusters)).await?;
        Ok(done
            .into_iter()
            .map(|(name, r)| {
                let check = match r {
                    Ok(m) => Check::InStep(m),
                    Err(m) => Check::Failed(m),
                };
                ((PolicyKind::Profile, name), check)
            })
            .collect())
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
}
