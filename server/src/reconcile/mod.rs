//! The only code that writes to the hub or observes it. Requests store a change in the database
//! and wake these loops; the leader runs them, every other replica only follows what the leader
//! stored. Each loop calls per-object, idempotent reconcile functions: a failing object is tried
//! again with backoff, logged at warn with the object named, and counted in
//! `hmas_reconcile_failures_total{loop, reason}`.
//!
//! - `deployments`: rows `applying` applied (or recorded, when the hub holds them already), rows
//!   `deleting` removed, then the status observer (every 2 s and when woken);
//! - `policies`: hub-wide policies and every applied deployment's hub objects held to the
//!   database (every 5 s and when woken), with a sync status per policy;
//! - `clusters`: interrupted registrations settled, clusters the hub lost joined again (10 s).
pub mod clusters;
pub mod deployments;
pub mod observer;
pub mod policies;
pub mod requeue;
#[cfg(test)]
mod tests;

use crate::changes::{Wake, ROUTES};
use crate::gateway::Gateway;
use crate::leader::Leadership;
use crate::store::{Backend, DeploymentStore, Store};
use clusters::ClusterPass;
use deployments::Deployer;
use observer::{route_specs, Observer};
use policies::PolicyPass;
use requeue::Failing;
use std::time::Duration;
use tokio::task::JoinHandle;

/// What the loops work with.
pub struct Parts {
    pub store: Store,
    pub gateway: Gateway,
    pub leadership: Leadership,
    pub wake: Wake,
    pub metrics: crate::metrics::Metrics,
    pub deployer: Deployer,
    pub observer: Observer,
    pub policies: PolicyPass,
    pub clusters: ClusterPass,
}

/// The running loops; stopped with the process.
pub struct Reconcilers(Vec<JoinHandle<()>>);

impl Reconcilers {
    /// `settled`: this process led from the start and has already settled interrupted
    /// registrations (before it answered anyone).
    pub fn start(p: Parts, settled: bool) -> Reconcilers {
        let clusters = tokio::spawn(clusters_loop(
            p.clusters,
            p.leadership.clone(),
            settled,
            Failing::new("clusters", &p.metrics),
        ));
        let policies = tokio::spawn(policies_loop(
            p.policies,
            p.leadership.clone(),
            p.wake.clone(),
            Failing::new("policies", &p.metrics),
        ));
        let deployments = tokio::spawn(deployments_loop(
            p.deployer,
            p.observer,
            p.gateway,
            p.store,
            p.leadership,
            p.wake,
            Failing::new("deployments", &p.metrics),
        ));
        Reconcilers(vec![clusters, policies, deployments])
    }

    pub fn stop(self) {
        for t in self.0 {
            t.abort();
        }
    }
}

async fn clusters_loop(clusters: ClusterPass, leadership: Leadership, settled: bool, mut failing: Failing) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    let mut leading = settled;
    loop {
        tick.tick().await;
        if !leadership.is_leader() {
            leading = false;
            continue;
        }
        if !leading {
            if let Err(e) = clusters.recover().await {
                failing.failed(&e);
                continue;
            }
            leading = true;
        }
        failing.outcome(clusters.reconcile().await);
    }
}

async fn policies_loop(policies: PolicyPass, leadership: Leadership, wake: Wake, mut failing: Failing) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = wake.policies.notified() => {}
        }
        if !leadership.is_leader() {
            continue;
        }
        failing.outcome(policies.reconcile().await);
    }
}

/// The leader settles pending rows and observes; every other replica routes by what the leader
/// stored.
async fn deployments_loop(
    deployer: Deployer,
    observer: Observer,
    gateway: Gateway,
    store: Store,
    leadership: Leadership,
    wake: Wake,
    mut failing: Failing,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = Vec::new();
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => ticks += 1,
            _ = wake.deployments.notified() => {}
        }
        // A backstop for a lost NOTIFY from another replica: keys are re-read every 10 s too.
        if ticks.is_multiple_of(5) && store.backend() == Backend::Postgres {
            if let Err(e) = gateway.reload_keys().await {
                tracing::warn!(error = %e, "reloading API keys");
            }
        }
        if !leadership.is_leader() {
            observer::publish_routes(&store, &gateway).await;
            last.clear();
            continue;
        }
        // On failure the gateway keeps routing to what was last seen.
        if let Some(rows) = failing.outcome(deployments_pass(&deployer, &observer, &store).await) {
            let specs = route_specs(&rows);
            if specs != last {
                crate::changes::announce(&store, ROUTES).await;
                last = specs.clone();
            }
            gateway.set_routes(specs);
        }
    }
}

/// Settles every pending row, then observes the applied ones.
pub async fn deployments_pass(
    deployer: &Deployer,
    observer: &Observer,
    store: &Store,
) -> Result<Vec<crate::store::DeploymentRecord>, app::error::AppError> {
    let rows = store.list_deployments().await?;
    let mut changed = false;
    for r in &rows {
        changed |= deployer.reconcile(r).await?;
    }
    let rows = if changed { store.list_deployments().await? } else { rows };
    observer.observe(rows).await
}
