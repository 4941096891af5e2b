use serde::{Deserialize, Serialize};

/// A member cluster as the hub sees it right now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterHealth {
    pub name: String,
    pub ready: bool,
    /// Why it is (not) ready, in the hub's words.
    pub message: String,
    pub kubernetes_version: String,
    pub nodes_total: i64,
    pub nodes_ready: i64,
    pub gpus_allocatable: i64,
    pub gpus_allocated: i64,
}
