//! Changes other replicas must see at once. Each replica keeps the gateway's key table in memory;
//! when one replica changes a key (created, revoked, its owner disabled) it reloads its own table
//! and tells the others through PostgreSQL's `NOTIFY` (`Gateway::keys_changed`); this listener
//! makes them reload theirs. The leader announces new routes the same way, and a replica that
//! stored a change for the hub (a deployment, a policy) wakes the leader's reconciler with it
//! instead of waiting for its next tick. SQLite has one process: nothing to tell.
use crate::gateway::Gateway;
use crate::store::{Backend, Store};
use sqlx::postgres::PgListener;
use std::sync::Arc;
use tokio::sync::Notify;

pub const CHANNEL: &str = "hmas_changes";
/// The payload that says the key table changed.
pub const KEYS: &str = "keys";
/// The payload that says the leader stored new routes (endpoints came or went).
pub const ROUTES: &str = "routes";
/// The payload that says a deployment row wants the hub changed (created, changed, deleted).
pub const DEPLOYMENTS: &str = "deployments";
/// The payload that says a policy row changed.
pub const POLICIES: &str = "policies";

/// Wakes this process's reconcile loops early; each wakes its loop at most once per tick, however
/// many changes arrived.
#[derive(Clone, Default)]
pub struct Wake {
    pub deployments: Arc<Notify>,
    pub policies: Arc<Notify>,
}

impl Wake {
    /// Wakes the loop that `what` concerns, here and (PostgreSQL) on whichever replica leads.
    pub async fn changed(&self, store: &Store, what: &str) {
        match what {
            DEPLOYMENTS => self.deployments.notify_one(),
            POLICIES => self.policies.notify_one(),
            _ => {}
        }
        announce(store, what).await;
    }
}

/// Tells the other replicas that `what` changed (PostgreSQL; nothing to tell on SQLite). A lost
/// message costs only time: non-leaders also re-read routes every 2 s.
pub async fn announce(store: &Store, what: &str) {
    if store.backend() == Backend::Postgres {
        if let Err(e) = store.notify(CHANNEL, what).await {
            tracing::warn!(error = %e, what, "telling the other replicas");
        }
    }
}

/// Listens for the other replicas' changes (PostgreSQL only) until the process ends. After a
/// lost connection the listener reconnects and reloads, since changes may have been missed.
pub fn listen(database_url: &str, store: &Store, gateway: Gateway, wake: Wake) -> Option<tokio::task::JoinHandle<()>> {
    if store.backend() != Backend::Postgres {
        return None;
    }
    let (url, store) = (database_url.to_string(), store.clone());
    Some(tokio::spawn(async move {
        loop {
            match PgListener::connect(&url).await {
                Ok(mut l) => {
                    if let Err(e) = l.listen(CHANNEL).await {
                        tracing::warn!(error = %e, "listening for other replicas' changes");
                    } else {
                        // Whatever changed while not listening.
                        let _ = gateway.reload_keys().await;
                        loop {
                            match l.try_recv().await {
                                Ok(Some(n)) if n.payload() == KEYS => {
                                    if let Err(e) = gateway.reload_keys().await {
                                        tracing::warn!(error = %e, "reloading API keys after another replica's change");
                                    }
                                }
                                Ok(Some(n)) if n.payload() == ROUTES => {
                                    crate::reconcile::observer::publish_routes(&store, &gateway).await;
                                }
                                Ok(Some(n)) if n.payload() == DEPLOYMENTS => wake.deployments.notify_one(),
                                Ok(Some(n)) if n.payload() == POLICIES => wake.policies.notify_one(),
                                Ok(Some(_)) => {}
                                // The connection was lost; PgListener reconnects on the next call.
                                Ok(None) => {
                                    let _ = gateway.reload_keys().await;
                                    wake.deployments.notify_one();
                                    wake.policies.notify_one();
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "other replicas' changes: listener failed");
                                    break;
                                }
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "other replicas' changes: cannot connect"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }))
}
