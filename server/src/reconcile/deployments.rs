//! One deployment at a time: a row the database says is `applying` is applied to the hub (or
//! recorded, when the hub already holds it), a row `deleting` is removed from it, and an applied
//! row whose hub objects differ from what the database implies is applied again. Each function
//! is idempotent: run twice, the second run finds nothing to do.
use super::requeue::Requeue;
use crate::hub::deploy;
use crate::hub::held::{self, Held};
use crate::hub::render::{cache_name, cache_size_gi, HubObjects, RenderInput};
use crate::hub::KubeClient;
use crate::members::Members;
use crate::placement::{read_live, Book, Resolved};
use crate::store::{now_ms, ApplyState, CacheRecord, DeploymentRecord, DeploymentStore, Store};
use app::error::AppError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Writes deployments to the hub. Shared by the deployment loop and the policy loop, which never
/// work on one row at the same time.
#[derive(Clone)]
pub struct Deployer {
    store: Store,
    hub: KubeClient,
    members: Members,
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    requeue: Requeue,
}

/// A row's objects under its resolved policies, the hub's current division kept.
pub fn objects(r: &DeploymentRecord, resolved: &Resolved<'_>, cache_clusters: &[String], held: &Held) -> HubObjects {
    let preloading = r.spec.cache.enabled && r.spec.cache.preload && !r.observed.preloaded;
    let replicas = if r.stopped || preloading { 0 } else { r.spec.replicas as i32 };
    let input = RenderInput {
        name: &r.name,
        spec: &r.spec,
        replicas,
        cache_clusters,
        preload: preloading,
        plan: &resolved.plan,
        strategy: resolved.strategy,
        failover: resolved.failover,
    };
    held.render(&input, r.spec.replicas as i64)
}

/// Whether the hub already holds what the row renders to.
pub fn in_step(r: &DeploymentRecord, book: &Book, held: &Held) -> Result<bool, AppError> {
    Ok(held.holds(&objects(r, &book.resolve(&r.spec)?, &[], held)))
}

impl Deployer {
    pub fn new(store: Store, hub: KubeClient, members: Members, requeue: Requeue) -> Self {
        Self { store, hub, members, locks: Default::default(), requeue }
    }

    pub(crate) fn lock_for(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().unwrap_or_else(|e| e.into_inner()).entry(name.to_string()).or_default().clone()
    }

    /// Drives one row toward what the database says of it: applies a row left `applying`,
    /// removes a row `deleting`. A row busy with another pass, or backing off after a failure,
    /// waits for a later pass. Returns whether it did anything.
    pub async fn reconcile(&self, r: &DeploymentRecord) -> Result<bool, AppError> {
        if !matches!(r.state, ApplyState::Applying | ApplyState::Deleting) || !self.requeue.due(&r.name, r.generation) {
            return Ok(false);
        }
        let lock = self.lock_for(&r.name);
        let Ok(_g) = lock.try_lock() else { return Ok(false) };
        let result = match r.state {
            ApplyState::Applying => self.settle_applying(r).await,
            _ => self.delete(r).await,
        };
        self.requeue.record(&r.name, r.generation, &result);
        // Failures are in the row (failed, or deleting with why) and in the requeue's log.
        Ok(true)
    }

    /// Applies a row left `applying` unless the hub holds it already: a leader that died after
    /// applying and before recording it leaves nothing for its successor to write again.
    async fn settle_applying(&self, r: &DeploymentRecord) -> Result<(), AppError> {
        let cache = r.spec.cache.enabled.then(|| cache_name(r.spec.runtime, &r.spec.model));
        let held = match Held::of(&self.hub, &r.name, cache.as_deref()).await {
            Ok(held) => in_step(r, &Book::load(&self.store, None).await?, &held).unwrap_or(false),
            // The apply says what is wrong with the hub.
            Err(_) => false,
        };
        if held {
            tracing::info!(deployment = %r.name, "the hub already holds this change; recorded without applying");
            self.store.record_outcome(&r.name, r.generation, ApplyState::Applied, "", now_ms()).await?;
            return Ok(());
        }
        self.apply_and_record(r).await
    }

    /// Applies an applied row again when the hub's copy differs from what the database implies
    /// (a policy changed, an object was edited or deleted by hand, the hub lost it), and asks the
    /// hub to reschedule a split that strayed. `false`: not in step and busy with another change.
    pub async fn converge(&self, r: &DeploymentRecord, book: &Book, held: &Held) -> Result<bool, AppError> {
        if in_step(r, book, held)? {
            // In step either way: a refused request is asked again next pass.
            if held.strayed(&r.name) {
                if let Err(e) = held::rebalance(&self.hub, &r.name).await {
                    tracing::warn!(deployment = %r.name, error = %e, "the hub refused a rebalance");
                }
            }
            return Ok(true);
        }
        let lock = self.lock_for(&r.name);
        let Ok(_g) = lock.try_lock() else { return Ok(false) };
        tracing::info!(deployment = %r.name, "hub objects differ from the database; applying again");
        self.apply_and_record(r).await?;
        Ok(true)
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
        let held = Held::of(&self.hub, &r.name, None).await.unwrap_or_default();
        deploy::apply(&self.hub, &objects(r, &resolved, &cache_clusters, &held)).await.map_err(AppError::from)
    }

    /// Applies and records the outcome for the generation applied. A failure leaves the row
    /// `failed` with why; what was applied before it stays inert (the policy goes last) until a
    /// retry.
    pub(crate) async fn apply_and_record(&self, r: &DeploymentRecord) -> Result<(), AppError> {
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
                Err(e)
            }
        }
    }

    /// Removes what the hub has of a row in `deleting`, then the row (and its cache if asked and
    /// no other deployment uses it). While the hub does not answer, the row says why it waits.
    async fn delete(&self, r: &DeploymentRecord) -> Result<(), AppError> {
        let result = self.remove(r).await;
        if let Err(e) = &result {
            let message = format!("deletion continues when the hub answers: {}", e.message);
            if message != r.state_message {
                self.store.record_outcome(&r.name, r.generation, ApplyState::Deleting, &message, now_ms()).await?;
            }
        }
        result
    }

    async fn remove(&self, r: &DeploymentRecord) -> Result<(), AppError> {
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
        self.requeue.forget(name);
        Ok(())
    }
}
