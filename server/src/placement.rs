//! The placement engine's inputs: every policy and registered cluster read once for a decision
//! (`Book`), what the hub and the members say live about readiness and free GPUs (`Live`), and
//! a deployment's placement resolved from them. The plan itself is the pure function
//! `app::models::policy::plan_placement`, shared with the preview.
use crate::hub::join::{self, cluster_labels};
use crate::hub::status;
use crate::hub::KubeClient;
use crate::members::{Members, LIVE_READ};
use crate::store::{ClusterRecord, ClusterState, ClusterStore, DeploymentRecord, PolicyRecord, PolicyStore, Store};
use app::error::AppError;
use app::models::cluster::ClusterHealth;
use app::models::deployment::DeploySpec;
use app::models::policy::{
    plan_placement, ClusterFacts, FailoverPolicy, NodeGpus, PlacementPlan, PlacementStrategy, PolicyKind,
    ResourceProfile,
};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

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
    let health = status::clusters(hub).await.ok()?.into_iter().map(|(name, c)| (name, c.health)).collect();
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
