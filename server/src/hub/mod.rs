//! The only code that talks Kubernetes: typed kube-rs clients for the Karmada hub and member
//! clusters, server-side apply with one field manager, errors mapped to H-MAS's. Nothing of
//! kube or k8s-openapi leaves this module except through H-MAS models.
pub mod client;
pub mod deploy;
pub mod error;
pub mod held;
pub mod hub_policies;
pub mod join;
pub mod karmada;
pub mod kubeconfig;
pub mod names;
pub mod policy;
pub mod render;
pub mod status;

pub use client::KubeClient;
pub use error::HubError;

/// The field manager of every write H-MAS makes.
pub const FIELD_MANAGER: &str = "hmas";
