//! Model deployments: what the operator asks for, the rules it must meet (checked by the form as
//! you type and by the server), and what H-MAS reports back about it.
use super::cluster::ClusterEvent;
use super::runtime::{check_extra_args, check_settings, model_ref, RuntimeKind};
use super::validate::{dns1035_label, max_len};
use crate::error::{AppError, FieldErrors};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest deployment name: the hub adds suffixes (`-preload`) and member pods add their own.
pub const MAX_NAME: usize = 40;
pub const MAX_REPLICAS: u32 = 32;
pub const MAX_GPUS: u32 = 16;

/// `llama3.2:1b` → `llama3-2-1b`; `Qwen/Qwen2.5-7B-Instruct` → `qwen2-5-7b-instruct` (the part
/// after the last `/` names the model; the organisation only makes names long). Always a valid
/// DNS-1035 label of at most `MAX_NAME` characters.
pub fn sanitize_name(model: &str) -> String {
    let base = model.rsplit('/').next().unwrap_or(model);
    let base = if base.trim().is_empty() { model } else { base };
    let mut out = String::new();
    for c in base.chars().flat_map(|c| c.to_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out = out.trim_matches('-').to_string();
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out = format!("m-{out}");
    }
    out.truncate(MAX_NAME);
    let out = out.trim_end_matches('-').to_string();
    if out == "m" {
        "model".into()
    } else {
        out
    }
}

/// The first of `base`, `base-2`, `base-3`, … that `taken` does not hold, cut to fit.
pub fn unique_name(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_string();
    }
    for n in 2.. {
        let suffix = format!("-{n}");
        let mut stem = base.to_string();
        stem.truncate(MAX_NAME - suffix.len());
        let candidate = format!("{}{suffix}", stem.trim_end_matches('-'));
        if !taken(&candidate) {
            return candidate;
        }
    }
    unreachable!()
}

pub fn deployment_name(v: &str) -> Result<(), String> {
    dns1035_label(v)?;
    max_len(v, MAX_NAME)
}

/// The model cache: a volume per (cluster, runtime, model) that outlives deployments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheSettings {
    pub enabled: bool,
    /// Download the model into the cache with a Job before the replicas start.
    #[serde(default)]
    pub preload: bool,
    /// Size in GiB; 0 sizes it from the model.
    #[serde(default)]
    pub size_gi: u32,
    /// Empty: the cluster's default storage class.
    #[serde(default)]
    pub storage_class: String,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings { enabled: true, preload: false, size_gi: 0, storage_class: String::new() }
    }
}

/// What the operator asks for. Stored as given; rendered to hub objects by the server.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploySpec {
    /// Empty: derived from the model and made unique.
    #[serde(default)]
    pub name: String,
    pub model: String,
    pub runtime: RuntimeKind,
    /// Empty: the runtime's default image.
    #[serde(default)]
    pub image: String,
    pub replicas: u32,
    pub gpus_per_replica: u32,
    /// Without a strategy: the clusters to run on (replicas divided across them). With one: an
    /// optional limit on the clusters it may choose.
    #[serde(default)]
    pub clusters: Vec<String>,
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    #[serde(default)]
    pub extra_args: Vec<String>,
    #[serde(default)]
    pub cache: CacheSettings,
    /// The placement strategy that chooses the clusters ("" none: `clusters` decide). The server
    /// writes the default strategy's name here when the operator names neither.
    #[serde(default)]
    pub strategy: String,
    /// The resource profile ("" the strategy's default profile).
    #[serde(default)]
    pub profile: String,
    /// The failover policy ("" none: the hub's default toleration of 300 s).
    #[serde(default)]
    pub failover: String,
    /// Run the model server in H-MAS's wrapper image (`hmas agent`): model download progress,
    /// one health endpoint and Prometheus metrics whatever the runtime. Off: the official image.
    #[serde(default)]
    pub agent: bool,
}

fn image_ref(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Ok(());
    }
    max_len(v, 255)?;
    if !v.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b':' | b'/' | b'@')) {
        return Err("is not an image reference (registry/repository:tag)".into());
    }
    if !v.as_bytes()[0].is_ascii_alphanumeric() {
        return Err("must start with a letter or digit".into());
    }
    Ok(())
}

fn storage_class(v: &str) -> Result<(), String> {
    if v.is_empty() {
        Ok(())
    } else {
        super::validate::dns1123_label(v, 63)
    }
}

impl DeploySpec {
    /// The container each replica runs: the official image's, or the wrapper image's.
    pub fn container(&self) -> super::runtime::ContainerPlan {
        use super::runtime::{agent_plan, container_plan};
        let plain = container_plan(
            self.runtime,
            &self.image,
            &self.model,
            self.gpus_per_replica,
            &self.settings,
            &self.extra_args,
        );
        if self.agent {
            agent_plan(self.runtime, &self.image, self.gpus_per_replica, plain)
        } else {
            plain
        }
    }

    pub fn validate(&self) -> Result<(), AppError> {
        let mut f = FieldErrors::new();
        if !self.name.is_empty() {
            f.check("name", deployment_name(&self.name));
        }
        f.check("model", model_ref(&self.model));
        f.check("image", image_ref(self.image.trim()));
        if self.replicas > MAX_REPLICAS {
            f.check("replicas", Err(format!("must be from 0 to {MAX_REPLICAS}")));
        }
        let preset = self.runtime.preset();
        if self.gpus_per_replica > MAX_GPUS {
            f.check("gpus_per_replica", Err(format!("must be from 0 to {MAX_GPUS}")));
        } else if self.gpus_per_replica == 0 && !preset.cpu_capable {
            f.check("gpus_per_replica", Err(format!("{} needs at least one GPU per replica", preset.label)));
        }
        if self.clusters.is_empty() && self.strategy.is_empty() {
            f.check("clusters", Err("choose a placement strategy or at least one cluster".into()));
        }
        for (field, v) in [("strategy", &self.strategy), ("profile", &self.profile), ("failover", &self.failover)] {
            if !v.is_empty() {
                f.check(field, super::policy::policy_name(v));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.clusters {
            if !seen.insert(c) {
                f.check("clusters", Err(format!("{c} is listed twice")));
            }
            f.check("clusters", super::cluster::cluster_name(c).map_err(|e| format!("{c}: {e}")));
        }
        for (k, e) in check_settings(self.runtime, &self.settings) {
            f.check(&k, Err(e));
        }
        if let Some(k) = preset.gpus_setting {
            if let Some(n) = self.settings.get(k).and_then(|v| v.trim().parse::<u32>().ok()) {
                if self.gpus_per_replica > 0 && n > self.gpus_per_replica {
                    f.check(
                        &format!("settings.{k}"),
                        Err(format!("cannot exceed the {} GPUs per replica", self.gpus_per_replica)),
                    );
                }
            }
        }
        f.check("extra_args", check_extra_args(self.runtime, &self.extra_args));
        if self.cache.size_gi > 4096 {
            f.check("cache.size_gi", Err("must be at most 4096 GiB".into()));
        }
        f.check("cache.storage_class", storage_class(&self.cache.storage_class));
        if self.cache.preload && !self.cache.enabled {
            f.check("cache.preload", Err("needs the model cache".into()));
        }
        if self.cache.preload && preset.preload.is_none() && !self.agent {
            f.check(
                "cache.preload",
                Err(format!("{} fills its cache on first start; pre-loading is not available", preset.label)),
            );
        }
        f.into_result()
    }

    /// `extra_args` from the form's text: one argument per line or separated by spaces.
    pub fn split_args(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentPhase {
    /// Written to the database, being applied to the hub.
    Applying,
    /// Pre-loading the model into the cache before replicas start.
    Preloading,
    /// Applied; waiting for the hub to schedule or for members to place the pods.
    Pending,
    /// Pulling the runtime image.
    Pulling,
    /// Fetching the model (progress known).
    Downloading,
    /// Model fetched, loading into memory.
    Loading,
    Running,
    /// Some replicas serve, others do not.
    Degraded,
    /// Scaled to zero by the operator.
    Stopped,
    /// Could not be applied; retry with redeploy.
    Failed,
    /// Applied, but the hub cannot schedule or apply it (its reason is the message).
    Unschedulable,
    Deleting,
}

impl DeploymentPhase {
    pub fn label(self) -> &'static str {
        match self {
            DeploymentPhase::Applying => "Applying",
            DeploymentPhase::Preloading => "Pre-loading",
            DeploymentPhase::Pending => "Pending",
            DeploymentPhase::Pulling => "Pulling image",
            DeploymentPhase::Downloading => "Downloading model",
            DeploymentPhase::Loading => "Loading model",
            DeploymentPhase::Running => "Running",
            DeploymentPhase::Degraded => "Degraded",
            DeploymentPhase::Stopped => "Stopped",
            DeploymentPhase::Failed => "Failed",
            DeploymentPhase::Unschedulable => "Not scheduled",
            DeploymentPhase::Deleting => "Deleting",
        }
    }
    /// On its way to Running: the deployments page's "Starting" filter and the overview's count.
    pub fn is_starting(self) -> bool {
        use DeploymentPhase::*;
        matches!(self, Applying | Preloading | Pending | Pulling | Downloading | Loading)
    }

    /// Needs someone to look: the "Problems" filter and the overview's "Needs attention".
    pub fn is_problem(self) -> bool {
        matches!(self, DeploymentPhase::Failed | DeploymentPhase::Degraded | DeploymentPhase::Unschedulable)
    }

    pub fn tone(self) -> &'static str {
        match self {
            DeploymentPhase::Running => "ok",
            DeploymentPhase::Failed | DeploymentPhase::Unschedulable => "danger",
            DeploymentPhase::Degraded | DeploymentPhase::Pending => "warn",
            DeploymentPhase::Stopped | DeploymentPhase::Deleting => "muted",
            _ => "info",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentPhase::Applying => "applying",
            DeploymentPhase::Preloading => "preloading",
            DeploymentPhase::Pending => "pending",
            DeploymentPhase::Pulling => "pulling",
            DeploymentPhase::Downloading => "downloading",
            DeploymentPhase::Loading => "loading",
            DeploymentPhase::Running => "running",
            DeploymentPhase::Degraded => "degraded",
            DeploymentPhase::Stopped => "stopped",
            DeploymentPhase::Failed => "failed",
            DeploymentPhase::Unschedulable => "unschedulable",
            DeploymentPhase::Deleting => "deleting",
        }
    }
}

/// One replica (pod) on one cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaView {
    pub cluster: String,
    pub pod: String,
    pub node: String,
    pub phase: DeploymentPhase,
    pub ready: bool,
    /// Model download progress in percent, while it is known.
    pub progress: Option<i64>,
    pub restarts: i64,
    /// Why it is not ready, in Kubernetes' words (e.g. the scheduler's reason).
    pub message: String,
}

/// The deployment on one member cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterPlacement {
    pub cluster: String,
    pub desired: i64,
    pub ready: i64,
    /// `http://<node IP>:<NodePort>` once the Service has its port.
    pub endpoint: Option<String>,
    pub message: String,
}

/// What the status observer last saw, stored with the deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedStatus {
    pub ready_replicas: i64,
    pub placements: Vec<ClusterPlacement>,
    pub replicas: Vec<ReplicaView>,
    pub progress: Option<i64>,
    pub message: String,
    /// The phase the pods say, before what the database says (applying, failed, …) is applied.
    pub pod_phase: Option<DeploymentPhase>,
    /// The pre-load Job finished on every target cluster: replicas may start.
    #[serde(default)]
    pub preloaded: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentView {
    pub id: String,
    pub name: String,
    pub model: String,
    pub runtime: RuntimeKind,
    pub replicas: u32,
    pub ready_replicas: i64,
    pub gpus_per_replica: u32,
    pub clusters: Vec<String>,
    pub phase: DeploymentPhase,
    pub message: String,
    pub progress: Option<i64>,
    /// Reachable model server endpoints, one per cluster that has one.
    pub endpoints: Vec<String>,
    pub stopped: bool,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentDetail {
    pub deployment: DeploymentView,
    pub spec: DeploySpec,
    pub placements: Vec<ClusterPlacement>,
    pub replicas: Vec<ReplicaView>,
    /// Member events about this deployment's objects, newest first, `object` prefixed by cluster.
    pub events: Vec<ClusterEvent>,
    /// The hub objects H-MAS manages for it (`Kind namespace/name`).
    pub objects: Vec<String>,
    /// The model server's command line.
    pub command: String,
    /// OpenAI base path of the runtime (`/v1`).
    pub openai_base: String,
    /// The model cache volume's name, if the cache is on.
    pub cache_volume: Option<String>,
}

/// What the form needs to offer runtimes and models.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployOptions {
    pub models: Vec<super::runtime::ModelPreset>,
    /// Clusters a deployment may target now: registered, with their GPU count.
    pub clusters: Vec<(String, String, i64)>,
}

/// A curl command that asks the model something through its endpoint.
/// A call through the gateway (key, limits, usage), never to a member's port: that one has no key
/// and moves when the workload does.
pub fn curl_example(origin: &str, model: &str) -> String {
    format!(
        "curl -s {origin}/v1/chat/completions \\\n  -H \"Authorization: Bearer $HMAS_API_KEY\" \\\n  -H 'Content-Type: application/json' \\\n  -d '{{\"model\": \"{model}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Say hello\"}}]}}'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DeploySpec {
        DeploySpec {
            model: "llama3.2:1b".into(),
            runtime: RuntimeKind::Ollama,
            replicas: 1,
            gpus_per_replica: 1,
            clusters: vec!["gpu-general".into()],
            ..Default::default()
        }
    }

    #[test]
    fn sanitising_edge_cases() {
        let cases = [
            ("llama3.2:1b", "llama3-2-1b"),
            ("Qwen/Qwen2.5-7B-Instruct", "qwen2-5-7b-instruct"),
            ("bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "llama-3-2-1b-instruct-gguf-q4-k-m"),
            ("3b-model", "m-3b-model"),
            ("::", "model"),
            ("a__b", "a-b"),
            ("org/", "org"),
            ("Ünïcode-Ärger", "n-code-rger"),
        ];
        for (input, want) in cases {
            assert_eq!(sanitize_name(input), want, "{input}");
            assert!(deployment_name(&sanitize_name(input)).is_ok(), "{input}");
        }
        let long = sanitize_name(&format!("{}-x", "y".repeat(60)));
        assert_eq!(long.len(), MAX_NAME);
        let cut = sanitize_name(&format!("{}-abc", "y".repeat(MAX_NAME - 1)));
        assert!(!cut.ends_with('-') && deployment_name(&cut).is_ok(), "{cut}");
    }

    #[test]
    fn unique_names_fit_after_suffixes() {
        let taken = ["llama3-2-1b", "llama3-2-1b-2"];
        assert_eq!(unique_name("llama3-2-1b", |n| taken.contains(&n)), "llama3-2-1b-3");
        assert_eq!(unique_name("fresh", |n| taken.contains(&n)), "fresh");
        let long = "a".repeat(MAX_NAME);
        let u = unique_name(&long, |n| n == long);
        assert_eq!(u.len(), MAX_NAME);
        assert!(u.ends_with("-2") && deployment_name(&u).is_ok());
    }

    #[test]
    fn validation_names_fields() {
        assert!(spec().validate().is_ok());
        let mut s = spec();
        s.name = "Bad Name".into();
        s.model = "x; rm -rf /".into();
        s.clusters = vec![];
        s.replicas = 99;
        let e = s.validate().unwrap_err();
        for f in ["name", "model", "clusters", "replicas"] {
            assert!(e.field_error(f).is_some(), "{f}: {e:?}");
        }
        let mut v = spec();
        v.runtime = RuntimeKind::Vllm;
        v.gpus_per_replica = 0;
        v.settings.insert("tensor_parallel_size".into(), "4".into());
        let e = v.validate().unwrap_err();
        assert!(e.field_error("gpus_per_replica").unwrap().contains("GPU"));
        v.gpus_per_replica = 2;
        assert!(v.validate().unwrap_err().field_error("settings.tensor_parallel_size").is_some());
        let mut p = spec();
        p.runtime = RuntimeKind::LlamaCpp;
        p.model = "bartowski/X-GGUF:Q4_K_M".into();
        p.cache.preload = true;
        assert!(p.validate().unwrap_err().field_error("cache.preload").is_some());
    }
}
