//! Kube clients for registered member clusters, built from their sealed credentials and reused
//! while those stay the same: dashboards poll, and a TLS client per poll would redo the
//! handshake and the decryption every time.
use crate::hub::join;
use crate::hub::kubeconfig::MemberAccess;
use crate::hub::KubeClient;
use crate::secrets::Sealer;
use crate::store::{ClusterRecord, ClusterStore, Store};
use app::error::AppError;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// How long a page waits for a member's own answer before showing what was last read.
pub const LIVE_READ: std::time::Duration = std::time::Duration::from_secs(4);

#[derive(Clone)]
pub struct Members {
    store: Store,
    sealer: Sealer,
    clients: Arc<Mutex<BTreeMap<String, (String, KubeClient)>>>,
    /// Whether each member answered the last read, so that an outage is logged once when it
    /// starts and once when it ends, not on every poll.
    answered: Arc<Mutex<BTreeMap<String, bool>>>,
}

impl Members {
    pub fn new(store: Store, sealer: Sealer) -> Self {
        Self { store, sealer, clients: Default::default(), answered: Default::default() }
    }

    pub fn access_of(&self, r: &ClusterRecord) -> Result<MemberAccess, AppError> {
        let json = self
            .sealer
            .open(&r.credentials)
            .map_err(|e| AppError::internal(format!("credentials of {}: {e}", r.name)))?;
        serde_json::from_str(&json).map_err(|e| AppError::internal(format!("credentials of {}: {e}", r.name)))
    }

    pub async fn client(&self, r: &ClusterRecord) -> Result<KubeClient, AppError> {
        if let Some((sealed, c)) = self.clients.lock().unwrap_or_else(|e| e.into_inner()).get(&r.name) {
            if *sealed == r.credentials {
                return Ok(c.clone());
            }
        }
        let c = join::member_client(&r.name, &self.access_of(r)?).await.map_err(AppError::from)?;
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(r.name.clone(), (r.credentials.clone(), c.clone()));
        Ok(c)
    }

    /// Clients for every registered cluster, by name (clusters whose client cannot be built are
    /// reported with why).
    pub async fn all(&self) -> Result<BTreeMap<String, Result<KubeClient, String>>, AppError> {
        let mut out = BTreeMap::new();
        for r in self.store.list_clusters().await? {
            let c = self.client(&r).await.map_err(|e| e.message);
            out.insert(r.name.clone(), c);
        }
        Ok(out)
    }

    pub fn forget(&self, name: &str) {
        self.clients.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
        self.answered.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
    }

    /// Members whose last read failed: read again until they answer, also when nothing is
    /// placed on them any more, so that the log tells when the outage ended.
    pub fn unanswered(&self) -> Vec<String> {
        let answered = self.answered.lock().unwrap_or_else(|e| e.into_inner());
        answered.iter().filter(|(_, ok)| !**ok).map(|(name, _)| name.clone()).collect()
    }

    /// Logs a member starting or ceasing to answer H-MAS's reads.
    pub fn note_reads<T>(&self, reads: &BTreeMap<String, Result<T, String>>) {
        let mut answered = self.answered.lock().unwrap_or_else(|e| e.into_inner());
        for (name, read) in reads {
            let now = read.is_ok();
            match (answered.insert(name.clone(), now), read) {
                (Some(true) | None, Err(e)) => {
                    tracing::warn!(cluster = %name, error = %e, "member cluster does not answer; its placements show it as not reachable")
                }
                (Some(false), Ok(_)) => tracing::info!(cluster = %name, "member cluster answers again"),
                _ => {}
            }
        }
    }
}
