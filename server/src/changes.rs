//! Changes other replicas must see at once. Each replica keeps the gateway's key table in memory;
//! when one replica changes a key (created, revoked, its owner disabled) it reloads its own table
//! and tells the others through PostgreSQL's `NOTIFY` (`Gateway::keys_changed`); this listener
//! makes them reload theirs. SQLite has one process: nothing to tell.
use crate::gateway::Gateway;
use crate::store::{Backend, Store};
use sqlx::postgres::PgListener;

pub const CHANNEL: &str = "hmas_changes";
/// The payload that says the key table changed.
pub const KEYS: &str = "keys";

/// Listens for the other replicas' changes (PostgreSQL only) until the process ends. After a
/// lost connection the listener reconnects and reloads, since changes may have been missed.
pub fn listen(database_url: &str, store: &Store, gateway: Gateway) -> Option<tokio::task::JoinHandle<()>> {
    if store.backend() != Backend::Postgres {
        return None;
    }
    let url = database_url.to_string();
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
                                Ok(Some(_)) => {}
                                // The connection was lost; PgListener reconnects on the next call.
                                Ok(None) => {
                                    let _ = gateway.reload_keys().await;
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
