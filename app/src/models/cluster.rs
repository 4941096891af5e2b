use serde::{Deserialize, Serialize};

/// A member cluster as the hub sees it right now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterHealth {
    pub name: String,
    /// Whether the hub has reported on the cluster at all yet.
    pub reported: bool,
    pub ready: bool,
    /// Why it is (not) ready, in the hub's words.
    pub message: String,
    pub kubernetes_version: String,
    pub nodes_total: i64,
    pub nodes_ready: i64,
    pub gpus_allocatable: i64,
    pub gpus_allocated: i64,
}

use super::validate::{max_len, required};
use crate::error::{AppError, FieldErrors};

/// Performance class of a cluster's zone: A for large models on fast interconnects, B for
/// general-purpose serving.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneClass {
    A,
    B,
}

impl ZoneClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ZoneClass::A => "a",
            ZoneClass::B => "b",
        }
    }
    pub fn parse(s: &str) -> Result<ZoneClass, String> {
        match s {
            "a" => Ok(ZoneClass::A),
            "b" => Ok(ZoneClass::B),
            _ => Err("must be a (high performance) or b (general purpose)".into()),
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            ZoneClass::A => "Zone A · high performance",
            ZoneClass::B => "Zone B · general purpose",
        }
    }
}

/// How the operator hands over access to the member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClusterAccess {
    /// A kubeconfig file's text, and which of its contexts to use (default: current-context).
    Kubeconfig {
        kubeconfig: String,
        #[serde(default)]
        context: Option<String>,
    },
    /// The API endpoint with its CA, and a bearer token or a client certificate and key (PEM).
    Endpoint {
        server: String,
        #[serde(default)]
        ca_pem: String,
        #[serde(default)]
        token: String,
        #[serde(default)]
        client_cert_pem: String,
        #[serde(default)]
        client_key_pem: String,
    },
}

pub const MAX_KUBECONFIG_BYTES: usize = 256 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterCluster {
    /// The cluster's name in the hub: a DNS-1123 label.
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    pub zone_class: ZoneClass,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub zone: String,
    pub access: ClusterAccess,
}

/// A Kubernetes label value: empty, or up to 63 of `A-Za-z0-9-_.` starting and ending alphanumeric.
pub fn label_value(v: &str) -> Result<(), String> {
    let ok = v.is_empty()
        || (v.len() <= 63
            && v.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
            && v.as_bytes()[0].is_ascii_alphanumeric()
            && v.as_bytes()[v.len() - 1].is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err("must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit".into())
    }
}

/// A DNS-1123 label of at most 48 characters (room for the prefixes H-MAS adds on members).
pub fn cluster_name(v: &str) -> Result<(), String> {
    super::validate::dns1123_label(v, 48)
}

/// `My GPU Cluster!` → `my-gpu-cluster`: a name suggestion from a display name.
pub fn suggest_name(display: &str) -> String {
    let mut out = String::new();
    for c in display.trim().to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_matches('-').chars().take(48).collect::<String>().trim_end_matches('-').to_string()
}

impl RegisterCluster {
    pub fn validate(&self) -> Result<(), AppError> {
        let mut f = FieldErrors::new();
        f.check("name", cluster_name(&self.name));
        f.check("display_name", max_len(&self.display_name, 64));
        f.check("region", label_value(&self.region));
        f.check("zone", label_value(&self.zone));
        match &self.access {
            ClusterAccess::Kubeconfig { kubeconfig, .. } => {
                f.check("kubeconfig", required(kubeconfig));
                if kubeconfig.len() > MAX_KUBECONFIG_BYTES {
                    f.check("kubeconfig", Err(format!("is larger than {} KiB", MAX_KUBECONFIG_BYTES / 1024)));
                }
            }
            ClusterAccess::Endpoint { server, ca_pem, token, client_cert_pem, client_key_pem } => {
                f.check(
                    "server",
                    required(server).and_then(|_| {
                        // The credentials go with every request: never over plain HTTP.
                        if server.trim().to_ascii_lowercase().starts_with("https://") {
                            Ok(())
                        } else {
                            Err("must be an https:// URL (credentials would travel in clear over http://)".into())
                        }
                    }),
                );
                for (name, v) in [
                    ("ca_pem", ca_pem),
                    ("token", token),
                    ("client_cert_pem", client_cert_pem),
                    ("client_key_pem", client_key_pem),
                ] {
                    f.check(name, max_len(v, 64 * 1024));
                }
                if token.is_empty() && (client_cert_pem.is_empty() || client_key_pem.is_empty()) {
                    f.check("token", Err("give a bearer token, or a client certificate and key".into()));
                }
            }
        }
        f.into_result()
    }
}

/// One context of an uploaded kubeconfig, for the operator to choose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeconfigContext {
    pub name: String,
    pub server: String,
    /// `token`, `client certificate`, or what else the user entry uses.
    pub auth: String,
    pub current: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuGroup {
    pub product: String,
    /// GPUs of this product across the cluster.
    pub count: i64,
    pub memory_mib: i64,
    pub nvlink: bool,
    pub mig_capable: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    pub ready: bool,
    pub cpu: String,
    pub memory: String,
    pub gpu_product: String,
    pub gpus: i64,
    pub gpu_memory_mib: i64,
    pub nvlink: bool,
    pub mig_capable: bool,
    pub instance_type: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterPhase {
    /// H-MAS is provisioning it.
    Registering,
    /// Registered, and the hub reports it Ready.
    Ready,
    /// Registered, and the hub cannot reach it.
    NotReady,
    /// Registration failed part-way; what was made was undone. Register again to retry.
    Failed,
}

impl ClusterPhase {
    pub fn label(self) -> &'static str {
        match self {
            ClusterPhase::Registering => "Registering",
            ClusterPhase::Ready => "Ready",
            ClusterPhase::NotReady => "Not ready",
            ClusterPhase::Failed => "Failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub api_endpoint: String,
    pub zone_class: ZoneClass,
    pub region: String,
    pub zone: String,
    pub phase: ClusterPhase,
    pub message: String,
    pub kubernetes_version: String,
    pub nodes_total: i64,
    pub nodes_ready: i64,
    pub gpus: Vec<GpuGroup>,
    pub gpus_allocatable: i64,
    pub gpus_allocated: i64,
    /// H-MAS deployments that target this cluster.
    pub instances: i64,
    pub registered_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterCondition {
    pub kind: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub since: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterEvent {
    pub time: String,
    pub kind: String,
    pub reason: String,
    pub object: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterDetail {
    pub cluster: ClusterView,
    pub nodes: Vec<NodeInfo>,
    pub conditions: Vec<ClusterCondition>,
    pub events: Vec<ClusterEvent>,
    /// Names of the hub workloads placed here (what a release would affect).
    pub workloads: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseReport {
    pub name: String,
    /// Member objects that could not be removed, with why.
    pub leftovers: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(name: &str, access: ClusterAccess) -> RegisterCluster {
        RegisterCluster {
            name: name.into(),
            display_name: String::new(),
            zone_class: ZoneClass::A,
            region: "us-east".into(),
            zone: String::new(),
            access,
        }
    }

    #[test]
    fn names_and_labels() {
        assert!(cluster_name("gpu-hpc").is_ok());
        for bad in ["", "Gpu", "-a", "a-", "a_b", &"a".repeat(49)] {
            assert!(cluster_name(bad).is_err(), "{bad}");
        }
        assert!(label_value("NVIDIA-A100").is_ok());
        assert!(label_value("NVIDIA T4").is_err());
        assert_eq!(suggest_name("  My GPU Cluster! (east) "), "my-gpu-cluster-east");
        assert_eq!(suggest_name("!!!"), "");
    }

    #[test]
    fn register_validation_names_fields() {
        let e =
            reg("Bad", ClusterAccess::Kubeconfig { kubeconfig: String::new(), context: None }).validate().unwrap_err();
        assert!(e.field_error("name").is_some() && e.field_error("kubeconfig").is_some());
        let huge = "x".repeat(MAX_KUBECONFIG_BYTES + 1);
        let e = reg("ok", ClusterAccess::Kubeconfig { kubeconfig: huge, context: None }).validate().unwrap_err();
        assert!(e.field_error("kubeconfig").unwrap().contains("KiB"));
        let e = reg(
            "ok",
            ClusterAccess::Endpoint {
                server: "10.0.0.1:6443".into(),
                ca_pem: String::new(),
                token: String::new(),
                client_cert_pem: "c".into(),
                client_key_pem: String::new(),
            },
        )
        .validate()
        .unwrap_err();
        assert!(e.field_error("server").is_some() && e.field_error("token").is_some());
        let mut r = reg(
            "ok",
            ClusterAccess::Endpoint {
                server: "https://x:6443".into(),
                ca_pem: String::new(),
                token: "t".into(),
                client_cert_pem: String::new(),
                client_key_pem: String::new(),
            },
        );
        assert!(r.validate().is_ok());
        r.region = "us east".into();
        assert!(r.validate().unwrap_err().field_error("region").is_some());
    }
}
