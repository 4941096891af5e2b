//! Policies: where deployments go (placement strategies), the shape their pods take (resource
//! profiles) and what happens when a cluster fails (failover). The rules, the warnings and the
//! placement plan live here once, so the form, the preview and the server agree.
use super::cluster::ZoneClass;
use super::deployment::DeploySpec;
use super::runtime::{model_size_gb, RuntimeKind};
use super::validate::{dns1035_label, max_len};
use crate::error::{AppError, FieldErrors};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MAX_POLICY_NAME: usize = 40;
pub const MAX_RULES: usize = 20;
pub const MAX_TOLERATION_SECONDS: u32 = 86_400;
pub const MAX_GRACE_SECONDS: u32 = 86_400;

pub fn policy_name(v: &str) -> Result<(), String> {
    dns1035_label(v)?;
    max_len(v, MAX_POLICY_NAME)
}

fn description(v: &str) -> Result<(), String> {
    max_len(v, 200)
}

/// `300 s (5 min)`: policies speak seconds (Karmada's unit), people think in minutes.
pub fn seconds_label(s: u32) -> String {
    match s {
        0 => "0 s".into(),
        s if s < 60 => format!("{s} s"),
        s if s % 60 == 0 => format!("{s} s ({} min)", s / 60),
        s => format!("{s} s ({:.1} min)", s as f64 / 60.0),
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlacementMode {
    /// Rules choose among the target clusters from the model and its resource profile.
    #[default]
    Auto,
    /// The target clusters as given.
    Manual,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    #[default]
    All,
    /// Clusters whose labels include every given `key=value`.
    Labels,
    Names,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleField {
    /// The model's weights in GB.
    ModelSize,
    /// The GPU type the resource profile asks for.
    GpuType,
    Runtime,
}

impl RuleField {
    pub const ALL: [RuleField; 3] = [RuleField::ModelSize, RuleField::GpuType, RuleField::Runtime];
    pub fn label(self) -> &'static str {
        match self {
            RuleField::ModelSize => "Model size (GB)",
            RuleField::GpuType => "GPU type",
            RuleField::Runtime => "Runtime",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            RuleField::ModelSize => "model_size",
            RuleField::GpuType => "gpu_type",
            RuleField::Runtime => "runtime",
        }
    }
    pub fn parse(s: &str) -> Option<RuleField> {
        RuleField::ALL.into_iter().find(|f| f.as_str() == s)
    }
    pub fn operators(self) -> &'static [RuleOp] {
        match self {
            RuleField::ModelSize => &[RuleOp::Ge, RuleOp::Gt, RuleOp::Le, RuleOp::Lt, RuleOp::Eq],
            RuleField::GpuType => &[RuleOp::Eq, RuleOp::Ne, RuleOp::Contains],
            RuleField::Runtime => &[RuleOp::Eq, RuleOp::Ne],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Contains,
}

impl RuleOp {
    pub fn symbol(self) -> &'static str {
        match self {
            RuleOp::Eq => "=",
            RuleOp::Ne => "≠",
            RuleOp::Gt => ">",
            RuleOp::Ge => "≥",
            RuleOp::Lt => "<",
            RuleOp::Le => "≤",
            RuleOp::Contains => "contains",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            RuleOp::Eq => "eq",
            RuleOp::Ne => "ne",
            RuleOp::Gt => "gt",
            RuleOp::Ge => "ge",
            RuleOp::Lt => "lt",
            RuleOp::Le => "le",
            RuleOp::Contains => "contains",
        }
    }
    pub fn parse(s: &str) -> Option<RuleOp> {
        [RuleOp::Eq, RuleOp::Ne, RuleOp::Gt, RuleOp::Ge, RuleOp::Lt, RuleOp::Le, RuleOp::Contains]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// If the condition holds, the deployment goes to the zone (or to the named clusters).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementRule {
    pub field: RuleField,
    pub op: RuleOp,
    pub value: String,
    /// The zone it chooses; `None`: the clusters listed.
    #[serde(default)]
    pub zone: Option<ZoneClass>,
    #[serde(default)]
    pub clusters: Vec<String>,
}

/// What a rule looks at, for one deployment.
pub struct RuleFacts<'a> {
    pub model_size_gb: f64,
    pub gpu_type: &'a str,
    pub runtime: RuntimeKind,
}

impl PlacementRule {
    fn check(&self) -> Result<(), String> {
        if !self.field.operators().contains(&self.op) {
            return Err(format!("{} cannot be compared with {}", self.field.label(), self.op.symbol()));
        }
        let v = self.value.trim();
        match self.field {
            RuleField::ModelSize => match v.parse::<f64>() {
                Ok(n) if n >= 0.0 && n.is_finite() => {}
                _ => return Err("the value must be a size in GB, e.g. 30".into()),
            },
            RuleField::Runtime => {
                if RuntimeKind::parse(v).is_none() {
                    return Err(format!(
                        "the value must be a runtime: {}",
                        RuntimeKind::ALL.map(|r| r.as_str()).join(", ")
                    ));
                }
            }
            RuleField::GpuType => {
                if v.is_empty() {
                    return Err("the value must name a GPU type, e.g. A100".into());
                }
                max_len(v, 63)?;
            }
        }
        if self.zone.is_none() && self.clusters.is_empty() {
            return Err("choose a zone or at least one cluster".into());
        }
        Ok(())
    }

    pub fn matches(&self, f: &RuleFacts<'_>) -> bool {
        let v = self.value.trim();
        match self.field {
            RuleField::ModelSize => {
                let Ok(n) = v.parse::<f64>() else { return false };
                let s = f.model_size_gb;
                match self.op {
                    RuleOp::Eq => (s - n).abs() < 1e-9,
                    RuleOp::Gt => s > n,
                    RuleOp::Ge => s >= n,
                    RuleOp::Lt => s < n,
                    RuleOp::Le => s <= n,
                    _ => false,
                }
            }
            RuleField::GpuType => {
                let (have, want) = (f.gpu_type.to_ascii_lowercase(), v.to_ascii_lowercase());
                match self.op {
                    RuleOp::Eq => have == want,
                    RuleOp::Ne => have != want,
                    RuleOp::Contains => !have.is_empty() && have.contains(&want),
                    _ => false,
                }
            }
            RuleField::Runtime => match self.op {
                RuleOp::Eq => f.runtime.as_str() == v,
                RuleOp::Ne => f.runtime.as_str() != v,
                _ => false,
            },
        }
    }

    /// `Model size (GB) ≥ 30 → Zone A`.
    pub fn describe(&self) -> String {
        let to = match self.zone {
            Some(z) => format!("Zone {}", z.as_str().to_ascii_uppercase()),
            None => self.clusters.join(", "),
        };
        format!("{} {} {} → {to}", self.field.label(), self.op.symbol(), self.value.trim())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConflictResolution {
    /// Leave a resource that already exists on a member alone (Karmada's default).
    #[default]
    Abort,
    Overwrite,
}

impl ConflictResolution {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictResolution::Abort => "Abort",
            ConflictResolution::Overwrite => "Overwrite",
        }
    }
}

/// How a deployment's replicas are shared among the chosen clusters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaMode {
    /// Equal shares.
    #[default]
    Divided,
    /// Shares in proportion to free capacity.
    Capacity,
    /// As few clusters as the replicas fit on.
    Aggregated,
    /// Every chosen cluster runs all replicas.
    Duplicated,
}

impl ReplicaMode {
    pub const ALL: [ReplicaMode; 4] =
        [ReplicaMode::Divided, ReplicaMode::Capacity, ReplicaMode::Aggregated, ReplicaMode::Duplicated];
    pub fn label(self) -> &'static str {
        match self {
            ReplicaMode::Divided => "Divide evenly",
            ReplicaMode::Capacity => "Divide by free capacity",
            ReplicaMode::Aggregated => "Pack onto fewest clusters",
            ReplicaMode::Duplicated => "All replicas on every cluster",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaMode::Divided => "divided",
            ReplicaMode::Capacity => "capacity",
            ReplicaMode::Aggregated => "aggregated",
            ReplicaMode::Duplicated => "duplicated",
        }
    }
    pub fn parse(s: &str) -> Option<ReplicaMode> {
        ReplicaMode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementStrategy {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub mode: PlacementMode,
    #[serde(default)]
    pub target: TargetKind,
    /// With `TargetKind::Labels`: every label must match.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// With `TargetKind::Names`.
    #[serde(default)]
    pub clusters: Vec<String>,
    /// Auto mode: the first rule that holds chooses.
    #[serde(default)]
    pub rules: Vec<PlacementRule>,
    /// The resource profile deployments get unless they choose another ("" none).
    #[serde(default)]
    pub default_profile: String,
    #[serde(default)]
    pub is_default: bool,
    /// Keep what was propagated to members when the deployment is deleted.
    #[serde(default)]
    pub preserve_resources: bool,
    #[serde(default)]
    pub conflict: ConflictResolution,
    #[serde(default)]
    pub replica_mode: ReplicaMode,
    /// Spread: at most this many clusters (0: no limit).
    #[serde(default)]
    pub max_clusters: u32,
    /// Spread: at least this many clusters (0: no minimum).
    #[serde(default)]
    pub min_clusters: u32,
}

impl Default for PlacementStrategy {
    fn default() -> Self {
        PlacementStrategy {
            name: String::new(),
            description: String::new(),
            mode: PlacementMode::Auto,
            target: TargetKind::All,
            labels: BTreeMap::new(),
            clusters: vec![],
            rules: vec![],
            default_profile: String::new(),
            is_default: false,
            preserve_resources: false,
            conflict: ConflictResolution::Abort,
            replica_mode: ReplicaMode::Divided,
            max_clusters: 0,
            min_clusters: 0,
        }
    }
}

fn label_key(k: &str) -> Result<(), String> {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix {
        if p.is_empty() || p.len() > 253 || !p.split('.').all(|s| super::validate::dns1123_label(s, 63).is_ok()) {
            return Err(format!("{k}: the prefix must be a DNS subdomain"));
        }
    }
    label_value(name)
        .and_then(|_| if name.is_empty() { Err("is empty".into()) } else { Ok(()) })
        .map_err(|e| format!("{k}: {e}"))
}

fn label_value(v: &str) -> Result<(), String> {
    if v.len() > 63 {
        return Err("must be at most 63 characters".into());
    }
    let b = v.as_bytes();
    if !b.is_empty()
        && (!b[0].is_ascii_alphanumeric()
            || !b[b.len() - 1].is_ascii_alphanumeric()
            || !b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')))
    {
        return Err("must be letters, digits, '-', '_' or '.', starting and ending with a letter or digit".into());
    }
    Ok(())
}

/// `key=value` pairs, one per line or separated by commas (the form's text).
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for part in text.split([',', '\n']).map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(format!("{part}: write key=value"));
        };
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

pub fn labels_text(labels: &BTreeMap<String, String>) -> String {
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

impl PlacementStrategy {
    pub fn validate(&self) -> Result<(), AppError> {
        let mut f = FieldErrors::new();
        f.check("name", policy_name(&self.name));
        f.check("description", description(&self.description));
        match self.target {
            TargetKind::Labels if self.labels.is_empty() => f.check("labels", Err("give at least one label".into())),
            TargetKind::Labels => {
                for (k, v) in &self.labels {
                    f.check("labels", label_key(k).and_then(|_| label_value(v).map_err(|e| format!("{k}: {e}"))));
                }
            }
            TargetKind::Names if self.clusters.is_empty() => {
                f.check("clusters", Err("choose at least one cluster".into()))
            }
            _ => {}
        }
        for c in &self.clusters {
            f.check("clusters", super::cluster::cluster_name(c).map_err(|e| format!("{c}: {e}")));
        }
        if self.mode == PlacementMode::Auto {
            if self.rules.len() > MAX_RULES {
                f.check("rules", Err(format!("at most {MAX_RULES} rules")));
            }
            for (i, r) in self.rules.iter().enumerate() {
                f.check(&format!("rules.{i}"), r.check());
            }
        } else if !self.rules.is_empty() {
            f.check("rules", Err("rules apply in auto mode only; remove them or switch to auto".into()));
        }
        if !self.default_profile.is_empty() {
            f.check("default_profile", policy_name(&self.default_profile));
        }
        if self.max_clusters > 0 && self.min_clusters > self.max_clusters {
            f.check("min_clusters", Err(format!("cannot exceed the maximum of {}", self.max_clusters)));
        }
        if self.max_clusters > 64 {
            f.check("max_clusters", Err("must be at most 64".into()));
        }
        if self.target == TargetKind::Names && self.min_clusters as usize > self.clusters.len() {
            f.check("min_clusters", Err(format!("only {} clusters are listed", self.clusters.len())));
        }
        f.into_result()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheduler {
    #[default]
    Default,
    Volcano,
    Koordinator,
}

impl Scheduler {
    pub const ALL: [Scheduler; 3] = [Scheduler::Default, Scheduler::Volcano, Scheduler::Koordinator];
    /// The pod's `schedulerName`.
    pub fn scheduler_name(self) -> &'static str {
        match self {
            Scheduler::Default => "default-scheduler",
            Scheduler::Volcano => "volcano",
            Scheduler::Koordinator => "koord-scheduler",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Scheduler::Default => "Kubernetes default",
            Scheduler::Volcano => "Volcano",
            Scheduler::Koordinator => "Koordinator",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Scheduler::Default => "default",
            Scheduler::Volcano => "volcano",
            Scheduler::Koordinator => "koordinator",
        }
    }
    pub fn parse(s: &str) -> Option<Scheduler> {
        Scheduler::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Koordinator's QoS classes: latency-sensitive exclusive / reserved / shared, best effort.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum QosClass {
    #[default]
    #[serde(rename = "none")]
    None,
    #[serde(rename = "LSE")]
    Lse,
    #[serde(rename = "LSR")]
    Lsr,
    #[serde(rename = "LS")]
    Ls,
    #[serde(rename = "BE")]
    Be,
}

impl QosClass {
    pub const ALL: [QosClass; 5] = [QosClass::None, QosClass::Lse, QosClass::Lsr, QosClass::Ls, QosClass::Be];
    pub fn as_str(self) -> &'static str {
        match self {
            QosClass::None => "none",
            QosClass::Lse => "LSE",
            QosClass::Lsr => "LSR",
            QosClass::Ls => "LS",
            QosClass::Be => "BE",
        }
    }
    pub fn parse(s: &str) -> Option<QosClass> {
        QosClass::ALL.into_iter().find(|q| q.as_str() == s)
    }
    pub fn label(self) -> &'static str {
        match self {
            QosClass::None => "None",
            QosClass::Lse => "LSE · exclusive CPUs",
            QosClass::Lsr => "LSR · reserved CPUs",
            QosClass::Ls => "LS · shared, latency-sensitive",
            QosClass::Be => "BE · best effort",
        }
    }
}

/// MIG profiles of A100/H100 GPUs.
pub const MIG_PROFILES: &[&str] =
    &["1g.5gb", "1g.10gb", "2g.10gb", "2g.20gb", "3g.20gb", "3g.40gb", "4g.20gb", "4g.40gb", "7g.40gb", "7g.80gb"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceProfile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub zone: ZoneClass,
    /// GPUs per replica the deploy form starts from.
    #[serde(default)]
    pub gpus: u32,
    /// Matched against `nvidia.com/gpu.product` ("" any).
    #[serde(default)]
    pub gpu_type: String,
    /// Memory per replica in GiB (0: the runtime's default).
    #[serde(default)]
    pub memory_gi: u32,
    /// CPU cores per replica (0: the runtime's default).
    #[serde(default)]
    pub cpu: f64,
    #[serde(default)]
    pub scheduler: Scheduler,
    // Zone A: hardware alignment.
    #[serde(default)]
    pub numa_aligned: bool,
    #[serde(default)]
    pub nvlink: bool,
    /// A MIG slice instead of whole GPUs ("" none).
    #[serde(default)]
    pub mig_profile: String,
    // Zone B: sharing.
    #[serde(default)]
    pub qos: QosClass,
    #[serde(default)]
    pub gpu_sharing: bool,
    #[serde(default)]
    pub gang: bool,
    /// Requests below limits, so more replicas fit than the hardware guarantees.
    #[serde(default)]
    pub overcommit: bool,
}

impl Default for ResourceProfile {
    fn default() -> Self {
        ResourceProfile {
            name: String::new(),
            description: String::new(),
            zone: ZoneClass::B,
            gpus: 1,
            gpu_type: String::new(),
            memory_gi: 16,
            cpu: 4.0,
            scheduler: Scheduler::Default,
            numa_aligned: false,
            nvlink: false,
            mig_profile: String::new(),
            qos: QosClass::None,
            gpu_sharing: false,
            gang: false,
            overcommit: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Refused by the server.
    Error,
    Warning,
    Info,
}

/// A remark about a combination of choices, shown next to the field it concerns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remark {
    pub field: String,
    pub severity: Severity,
    pub message: String,
}

fn remark(field: &str, severity: Severity, message: &str) -> Remark {
    Remark { field: field.into(), severity, message: message.into() }
}

impl ResourceProfile {
    /// Combinations that cannot work (errors) or deserve a second look.
    pub fn remarks(&self) -> Vec<Remark> {
        let mut out = Vec::new();
        let zone_a = self.zone == ZoneClass::A;
        if zone_a {
            if !self.mig_profile.is_empty() && self.nvlink {
                out.push(remark(
                    "mig_profile",
                    Severity::Error,
                    "MIG slices cannot use NVLink: a MIG instance has no peer-to-peer links. Turn off NVLink or MIG.",
                ));
            }
            if !self.mig_profile.is_empty() && self.gpus > 1 {
                out.push(remark(
                    "mig_profile",
                    Severity::Error,
                    "a replica gets one MIG slice; set GPUs to 1 or drop the MIG profile",
                ));
            }
            if self.nvlink && self.gpus < 2 {
                out.push(remark("nvlink", Severity::Warning, "NVLink only helps with 2 or more GPUs per replica"));
            }
        } else {
            if self.overcommit && matches!(self.qos, QosClass::Lse | QosClass::Lsr) {
                out.push(remark(
                    "overcommit",
                    Severity::Error,
                    "LSE and LSR pods bind whole CPUs; they cannot be overcommitted. Use LS or BE, or turn overcommit off.",
                ));
            }
            if self.overcommit && self.qos == QosClass::Be {
                out.push(remark(
                    "overcommit",
                    Severity::Info,
                    "BE pods run on reclaimed capacity and may be throttled or evicted when latency-sensitive pods need it",
                ));
            }
            if self.qos != QosClass::None && self.scheduler != Scheduler::Koordinator {
                out.push(remark(
                    "qos",
                    Severity::Error,
                    "QoS classes are Koordinator's: choose the Koordinator scheduler",
                ));
            }
            if self.gpu_sharing && self.scheduler == Scheduler::Default {
                out.push(remark(
                    "gpu_sharing",
                    Severity::Error,
                    "the default scheduler hands out whole GPUs: choose Volcano or Koordinator to share them",
                ));
            }
            if self.gang && self.scheduler == Scheduler::Default {
                out.push(remark(
                    "gang",
                    Severity::Error,
                    "the default scheduler has no gang scheduling: choose Volcano or Koordinator",
                ));
            }
            if self.gpu_sharing && self.gpus == 0 {
                out.push(remark("gpu_sharing", Severity::Warning, "sharing has no effect without GPUs"));
            }
        }
        if self.numa_aligned && self.scheduler == Scheduler::Default && zone_a {
            out.push(remark(
                "numa_aligned",
                Severity::Warning,
                "NUMA alignment needs the kubelet's Topology Manager (single-numa-node) on the members, or Koordinator",
            ));
        }
        out
    }

    pub fn validate(&self) -> Result<(), AppError> {
        let mut f = FieldErrors::new();
        f.check("name", policy_name(&self.name));
        f.check("description", description(&self.description));
        if self.gpus > super::deployment::MAX_GPUS {
            f.check("gpus", Err(format!("must be from 0 to {}", super::deployment::MAX_GPUS)));
        }
        f.check("gpu_type", max_len(self.gpu_type.trim(), 63).and_then(|_| label_value(self.gpu_type.trim())));
        if self.memory_gi > 4096 {
            f.check("memory_gi", Err("must be at most 4096 GiB".into()));
        }
        if !(self.cpu.is_finite() && (0.0..=512.0).contains(&self.cpu)) {
            f.check("cpu", Err("must be from 0 to 512 cores".into()));
        }
        let zone_a = self.zone == ZoneClass::A;
        if !zone_a && (self.nvlink || self.numa_aligned || !self.mig_profile.is_empty()) {
            f.check("zone", Err("NUMA alignment, NVLink and MIG are Zone A settings".into()));
        }
        if zone_a && (self.qos != QosClass::None || self.gpu_sharing || self.gang || self.overcommit) {
            f.check("zone", Err("QoS class, GPU sharing, gang scheduling and overcommit are Zone B settings".into()));
        }
        if !self.mig_profile.is_empty() && !MIG_PROFILES.contains(&self.mig_profile.as_str()) {
            f.check("mig_profile", Err(format!("must be one of {}", MIG_PROFILES.join(", "))));
        }
        for r in self.remarks().into_iter().filter(|r| r.severity == Severity::Error) {
            f.check(&r.field, Err(r.message));
        }
        f.into_result()
    }

    /// Whether a deployment can take this profile: MIG slices and shared GPUs replace the
    /// deployment's GPUs, so a CPU-only deployment has none to replace.
    pub fn fits(&self, gpus_per_replica: u32) -> Result<(), String> {
        if gpus_per_replica == 0 && (!self.mig_profile.is_empty() || self.gpu_sharing) {
            return Err(format!(
                "{} hands out {}; the deployment asks for no GPUs",
                self.name,
                if self.gpu_sharing { "shared GPUs" } else { "MIG slices" }
            ));
        }
        Ok(())
    }

    /// `1 × A100 · 32 GiB · 8 CPU`.
    pub fn summary(&self) -> String {
        let gpu = if !self.mig_profile.is_empty() {
            format!("MIG {}", self.mig_profile)
        } else if self.gpus == 0 {
            "CPU only".into()
        } else if self.gpu_type.is_empty() {
            format!("{} GPU", self.gpus)
        } else {
            format!("{} × {}", self.gpus, self.gpu_type)
        };
        let mut parts = vec![gpu];
        if self.memory_gi > 0 {
            parts.push(format!("{} GiB", self.memory_gi));
        }
        if self.cpu > 0.0 {
            parts.push(format!("{} CPU", self.cpu));
        }
        parts.join(" · ")
    }
}

/// What happens to the copy on the cluster a workload moves away from, in Karmada's words
/// (`Immediately` and `Graciously`, their deprecated names, are still read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PurgeMode {
    /// Remove from the failed cluster at once, then reschedule.
    #[serde(alias = "Immediately")]
    Directly,
    /// Keep the old copy until the new one is healthy or the grace period ends.
    #[default]
    #[serde(alias = "Graciously")]
    Gracefully,
    /// Start a new copy elsewhere and never remove the old one (application failover only).
    Never,
}

impl PurgeMode {
    pub const ALL: [PurgeMode; 3] = [PurgeMode::Directly, PurgeMode::Gracefully, PurgeMode::Never];
    pub fn as_str(self) -> &'static str {
        match self {
            PurgeMode::Directly => "Directly",
            PurgeMode::Gracefully => "Gracefully",
            PurgeMode::Never => "Never",
        }
    }
    pub fn parse(s: &str) -> Option<PurgeMode> {
        match s {
            "Immediately" => Some(PurgeMode::Directly),
            "Graciously" => Some(PurgeMode::Gracefully),
            _ => PurgeMode::ALL.into_iter().find(|m| m.as_str() == s),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverPolicy {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Move workloads off a cluster the hub marks NotReady.
    pub enabled: bool,
    /// How long after the hub marks a cluster NotReady its workloads move (the hub notices a
    /// member that stopped answering after about 40 s).
    pub toleration_seconds: u32,
    pub purge_mode: PurgeMode,
    /// With `Gracefully` and application failover: the longest the old copy is kept (a cluster
    /// failover keeps it for the hub's graceful eviction timeout).
    #[serde(default)]
    pub grace_period_seconds: u32,
    /// Also move a replica that stays unhealthy on a cluster that is up (Karmada's application
    /// failover). Never sooner than the model's cold start, so a download is not cut short.
    #[serde(default)]
    pub application: bool,
}

impl Default for FailoverPolicy {
    fn default() -> Self {
        FailoverPolicy {
            name: String::new(),
            description: String::new(),
            enabled: true,
            toleration_seconds: 300,
            purge_mode: PurgeMode::Gracefully,
            grace_period_seconds: 600,
            application: false,
        }
    }
}

/// How long the hub takes to mark a member that stopped answering NotReady (Karmada's
/// `--cluster-failure-threshold` of 30 s plus its 10 s status period).
pub const HUB_DETECTION_SECONDS: u32 = 40;

impl FailoverPolicy {
    pub fn validate(&self) -> Result<(), AppError> {
        let mut f = FieldErrors::new();
        f.check("name", policy_name(&self.name));
        f.check("description", description(&self.description));
        if self.toleration_seconds > MAX_TOLERATION_SECONDS {
            f.check("toleration_seconds", Err(format!("must be at most {MAX_TOLERATION_SECONDS} (24 h)")));
        }
        if self.purge_mode == PurgeMode::Never && !self.application {
            f.check(
                "purge_mode",
                Err("the hub's cluster failover purges Directly or Gracefully; Never needs application failover".into()),
            );
        }
        if self.purge_mode == PurgeMode::Gracefully {
            if self.grace_period_seconds == 0 {
                f.check("grace_period_seconds", Err("Gracefully needs a grace period of at least 1 s".into()));
            } else if self.grace_period_seconds > MAX_GRACE_SECONDS {
                f.check("grace_period_seconds", Err(format!("must be at most {MAX_GRACE_SECONDS} (24 h)")));
            }
        } else if self.grace_period_seconds > 0 {
            f.check(
                "grace_period_seconds",
                Err(format!("a grace period applies to Gracefully only; {} ignores it", self.purge_mode.as_str())),
            );
        }
        f.into_result()
    }

    /// The application failover's toleration for a model whose cold start takes `cold_start`
    /// seconds: the policy's, but never shorter than the start.
    pub fn application_toleration(&self, cold_start: u32) -> u32 {
        self.toleration_seconds.max(cold_start)
    }
}

/// One stretch of the failover timeline, in seconds after the cluster failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub key: String,
    pub label: String,
    pub start: f64,
    pub end: f64,
}

/// failure → toleration → eviction and reschedule → (grace period) → healthy elsewhere, with
/// `restart` the time a replica takes to become ready on another cluster.
pub fn failover_timeline(p: &FailoverPolicy, restart: f64) -> Vec<Stage> {
    let stage =
        |key: &str, label: &str, start: f64, end: f64| Stage { key: key.into(), label: label.into(), start, end };
    if !p.enabled {
        return vec![stage("down", "Waits for the cluster to recover", 0.0, 0.0)];
    }
    // The hub first has to notice: NotReady about 40 s after the member's last answer.
    let d = HUB_DETECTION_SECONDS as f64;
    let t = d + p.toleration_seconds as f64;
    let healthy = t + restart;
    let mut out = vec![
        stage("detect", "Hub marks NotReady", 0.0, d),
        stage("toleration", "Toleration", d, t),
        stage("reschedule", "Reschedule & start", t, healthy),
    ];
    match p.purge_mode {
        PurgeMode::Gracefully => {
            let g = p.grace_period_seconds as f64;
            out.push(stage("grace", "Grace period (old copy kept)", t, t + g.min(restart.max(0.0)).max(0.0)));
            if g < restart {
                out.push(stage("grace_cut", "Grace ends before the new copy is ready", t + g, t + g));
            }
        }
        PurgeMode::Directly => out.push(stage("evict", "Evicted from failed cluster", t, t)),
        PurgeMode::Never => out.push(stage("kept", "Old copy never removed", t, healthy)),
    }
    out.push(stage("healthy", "Healthy elsewhere", healthy, healthy));
    out
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    #[default]
    Pending,
    InSync,
    Error,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Pending => "pending",
            SyncState::InSync => "in_sync",
            SyncState::Error => "error",
        }
    }
    pub fn parse(s: &str) -> SyncState {
        match s {
            "in_sync" => SyncState::InSync,
            "error" => SyncState::Error,
            _ => SyncState::Pending,
        }
    }
}

/// Whether the hub holds what the database says for a policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStatus {
    pub state: SyncState,
    pub message: String,
    /// Milliseconds since the epoch of the last check.
    pub at: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    Strategy,
    Profile,
    Failover,
}

impl PolicyKind {
    pub const ALL: [PolicyKind; 3] = [PolicyKind::Strategy, PolicyKind::Profile, PolicyKind::Failover];
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Strategy => "strategy",
            PolicyKind::Profile => "profile",
            PolicyKind::Failover => "failover",
        }
    }
    pub fn parse(s: &str) -> Option<PolicyKind> {
        PolicyKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
    pub fn label(self) -> &'static str {
        match self {
            PolicyKind::Strategy => "placement strategy",
            PolicyKind::Profile => "resource profile",
            PolicyKind::Failover => "failover policy",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyView<T> {
    pub policy: T,
    pub sync: SyncStatus,
    /// Who uses it: `deployment x`, `strategy y`.
    pub used_by: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A cluster as policies see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterFacts {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub zone: ZoneClass,
    pub ready: bool,
    pub gpu_products: Vec<String>,
    /// The most GPUs one node has: a replica cannot span nodes.
    pub max_gpus_per_node: i64,
    pub gpus_free: i64,
    pub nvlink: bool,
    pub mig: bool,
    /// Per node with GPUs: what the member's scheduler fits a replica on. Empty when unknown.
    #[serde(default)]
    pub nodes: Vec<NodeGpus>,
}

/// One node's GPUs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeGpus {
    pub product: String,
    pub gpus: i64,
    pub free: i64,
}

/// Whether a GPU product is the type a profile asks for ("" asks for any).
pub fn is_gpu_type(product: &str, wanted: &str) -> bool {
    wanted.is_empty() || product.to_ascii_lowercase().contains(&wanted.to_ascii_lowercase())
}

impl ClusterFacts {
    /// Replicas of `gpus` GPUs of `gpu_type` the cluster holds now: node by node, as the member's
    /// scheduler places them (a replica never spans nodes), where the nodes are known.
    pub fn room(&self, gpus: u32, gpu_type: &str) -> i64 {
        if gpus == 0 {
            return 100;
        }
        if self.nodes.is_empty() {
            return self.gpus_free.max(0) / gpus as i64;
        }
        self.nodes.iter().filter(|n| is_gpu_type(&n.product, gpu_type)).map(|n| n.free.max(0) / gpus as i64).sum()
    }

    /// The most GPUs of `gpu_type` one node has.
    pub fn largest_node(&self, gpu_type: &str) -> i64 {
        if self.nodes.is_empty() {
            return self.max_gpus_per_node;
        }
        self.nodes.iter().filter(|n| is_gpu_type(&n.product, gpu_type)).map(|n| n.gpus).max().unwrap_or(0)
    }
}

/// Every GPU product the clusters report, once each, sorted.
pub fn gpu_products(clusters: &[ClusterFacts]) -> Vec<String> {
    let mut all: Vec<String> = clusters.iter().flat_map(|c| c.gpu_products.iter().cloned()).collect();
    all.sort();
    all.dedup();
    all
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policies {
    pub strategies: Vec<PolicyView<PlacementStrategy>>,
    pub profiles: Vec<PolicyView<ResourceProfile>>,
    pub failovers: Vec<PolicyView<FailoverPolicy>>,
    pub clusters: Vec<ClusterFacts>,
}

/// One cluster in a placement plan: whether the deployment may run there, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub cluster: String,
    pub eligible: bool,
    pub reasons: Vec<String>,
    /// Replicas expected here now (ready clusters, by free capacity).
    pub replicas: i64,
}

/// Where a deployment would go, before anything is applied.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlacementPlan {
    pub strategy: String,
    pub profile: String,
    pub failover: String,
    /// The rule that chose, described.
    pub rule: Option<String>,
    pub zone: Option<ZoneClass>,
    pub model_size_gb: f64,
    /// Eligible clusters, in the order they are preferred.
    pub clusters: Vec<String>,
    pub candidates: Vec<Candidate>,
    pub replica_mode: ReplicaMode,
    pub summary: String,
}

impl Policies {
    /// Whether a policy of this kind and name exists (names are unique per kind).
    pub fn has(&self, kind: PolicyKind, name: &str) -> bool {
        match kind {
            PolicyKind::Strategy => self.strategies.iter().any(|v| v.policy.name == name),
            PolicyKind::Profile => self.profiles.iter().any(|v| v.policy.name == name),
            PolicyKind::Failover => self.failovers.iter().any(|v| v.policy.name == name),
        }
    }
}

impl PlacementPlan {
    /// Clusters with replicas expected, with how many.
    pub fn landing(&self) -> Vec<(String, i64)> {
        self.candidates.iter().filter(|c| c.replicas > 0).map(|c| (c.cluster.clone(), c.replicas)).collect()
    }
}

/// Splits `replicas` over clusters in preference order the way the hub's scheduler does.
pub fn divide(mode: ReplicaMode, replicas: i64, rooms: &[i64]) -> Vec<i64> {
    let n = rooms.len();
    if n == 0 {
        return vec![];
    }
    match mode {
        ReplicaMode::Duplicated => vec![replicas; n],
        ReplicaMode::Aggregated => {
            let mut left = replicas;
            let mut out = vec![0; n];
            for (i, r) in rooms.iter().enumerate() {
                let take = left.min((*r).max(0));
                out[i] = take;
                left -= take;
            }
            // Nothing has room for the rest: the first cluster takes it and waits.
            out[0] += left;
            out
        }
        ReplicaMode::Divided | ReplicaMode::Capacity => {
            let weights: Vec<i64> =
                if mode == ReplicaMode::Divided { vec![1; n] } else { rooms.iter().map(|r| (*r).max(1)).collect() };
            let sum: i64 = weights.iter().sum();
            let mut out: Vec<i64> = weights.iter().map(|w| replicas * w / sum).collect();
            let mut left = replicas - out.iter().sum::<i64>();
            let mut i = 0;
            while left > 0 {
                out[i % n] += 1;
                left -= 1;
                i += 1;
            }
            out
        }
    }
}

/// Where `spec` goes under `strategy` (and `profile`) among `clusters`. Without a strategy the
/// deployment's own cluster list decides.
pub fn plan_placement(
    spec: &DeploySpec,
    strategy: Option<&PlacementStrategy>,
    profile: Option<&ResourceProfile>,
    clusters: &[ClusterFacts],
) -> PlacementPlan {
    let size = model_size_gb(spec.runtime, &spec.model);
    let gpu_type = profile.map(|p| p.gpu_type.trim()).unwrap_or("");
    let mut plan = PlacementPlan {
        strategy: strategy.map(|s| s.name.clone()).unwrap_or_default(),
        profile: profile.map(|p| p.name.clone()).unwrap_or_default(),
        failover: spec.failover.clone(),
        model_size_gb: size,
        replica_mode: strategy.map(|s| s.replica_mode).unwrap_or(if spec.clusters.len() > 1 {
            ReplicaMode::Divided
        } else {
            ReplicaMode::Duplicated
        }),
        ..Default::default()
    };
    let rule = strategy.filter(|s| s.mode == PlacementMode::Auto).and_then(|s| {
        s.rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(&RuleFacts { model_size_gb: size, gpu_type, runtime: spec.runtime }))
    });
    if let Some((i, r)) = rule {
        plan.rule = Some(format!("rule {}: {}", i + 1, r.describe()));
        plan.zone = r.zone;
    }
    for c in clusters {
        let mut reasons = Vec::new();
        let mut ok = true;
        let mut no = |why: String, reasons: &mut Vec<String>| {
            ok = false;
            reasons.push(why);
        };
        match strategy {
            None => {
                if !spec.clusters.contains(&c.name) {
                    no("not chosen for this deployment".into(), &mut reasons);
                }
            }
            Some(s) => {
                match s.target {
                    TargetKind::All => {}
                    TargetKind::Names if !s.clusters.contains(&c.name) => {
                        no(format!("not in {}'s cluster list", s.name), &mut reasons)
                    }
                    TargetKind::Names => {}
                    TargetKind::Labels => {
                        for (k, v) in &s.labels {
                            if c.labels.get(k) != Some(v) {
                                no(format!("lacks label {k}={v}"), &mut reasons);
                            }
                        }
                    }
                }
                if !spec.clusters.is_empty() && !spec.clusters.contains(&c.name) {
                    no("not among the clusters this deployment is limited to".into(), &mut reasons);
                }
                if let Some((i, r)) = rule {
                    match r.zone {
                        Some(z) if c.zone != z => no(
                            format!(
                                "in Zone {}; rule {} wants Zone {}",
                                c.zone.as_str().to_uppercase(),
                                i + 1,
                                z.as_str().to_uppercase()
                            ),
                            &mut reasons,
                        ),
                        None if !r.clusters.contains(&c.name) => {
                            no(format!("rule {} names other clusters", i + 1), &mut reasons)
                        }
                        _ => reasons.push(format!("rule {} matched", i + 1)),
                    }
                }
            }
        }
        let gpus = spec.gpus_per_replica as i64;
        let largest = c.largest_node(gpu_type);
        let has_type = gpu_type.is_empty() || c.gpu_products.iter().any(|p| is_gpu_type(p, gpu_type));
        if gpus > 0 && has_type && largest < gpus {
            let kind = if gpu_type.is_empty() { String::new() } else { format!(" {gpu_type}") };
            let why = format!("largest node has {largest}{kind} GPUs; a replica needs {gpus}");
            if strategy.is_some() {
                no(why, &mut reasons);
            } else {
                // Clusters named by the operator are used as named; the replicas will wait.
                reasons.push(format!("{why}: replicas will stay Pending"));
            }
        }
        if gpus > 0 && !has_type {
            no(format!("no {gpu_type} GPUs"), &mut reasons);
        }
        if let Some(p) = profile {
            if p.nvlink && !c.nvlink {
                no("no NVLink".into(), &mut reasons);
            }
            if !p.mig_profile.is_empty() && !c.mig {
                no("no MIG-capable GPUs".into(), &mut reasons);
            }
        }
        if ok {
            if gpus > 0 {
                let room = c.room(spec.gpus_per_replica, gpu_type);
                reasons.push(format!(
                    "GPU fit: room for {room} replica(s) of {gpus}{} GPUs on its nodes, up to {largest} per node",
                    if gpu_type.is_empty() { String::new() } else { format!(" {gpu_type}") }
                ));
            }
            if !c.ready {
                reasons.push("not ready now: used once it recovers or by failover".into());
            }
        }
        plan.candidates.push(Candidate { cluster: c.name.clone(), eligible: ok, reasons, replicas: 0 });
    }
    // Preferred: ready, most room, then by name (the hub's scheduler orders them the same way).
    let mut order: Vec<usize> = (0..clusters.len()).filter(|i| plan.candidates[*i].eligible).collect();
    order.sort_by(|a, b| {
        let (ca, cb) = (&clusters[*a], &clusters[*b]);
        cb.ready
            .cmp(&ca.ready)
            .then(cb.room(spec.gpus_per_replica, gpu_type).cmp(&ca.room(spec.gpus_per_replica, gpu_type)))
            .then(ca.name.cmp(&cb.name))
    });
    plan.clusters = order.iter().map(|i| clusters[*i].name.clone()).collect();
    let mut ready: Vec<usize> = order.iter().copied().filter(|i| clusters[*i].ready).collect();
    if let Some(max) = strategy.map(|s| s.max_clusters).filter(|m| *m > 0) {
        ready.truncate(max as usize);
    }
    let rooms: Vec<i64> = ready.iter().map(|i| clusters[*i].room(spec.gpus_per_replica, gpu_type)).collect();
    for (i, n) in ready.iter().zip(divide(plan.replica_mode, spec.replicas as i64, &rooms)) {
        plan.candidates[*i].replicas = n;
    }
    let min = strategy.map(|s| s.min_clusters).unwrap_or(0) as usize;
    plan.summary = if plan.clusters.is_empty() {
        "no cluster qualifies: nothing would run".into()
    } else if plan.clusters.len() < min {
        format!("only {} clusters qualify; the strategy wants at least {min}", plan.clusters.len())
    } else {
        let landing: Vec<String> = plan.landing().iter().map(|(c, n)| format!("{c} ×{n}")).collect();
        let why = plan.rule.clone().unwrap_or_else(|| match strategy {
            Some(s) if s.mode == PlacementMode::Auto && !s.rules.is_empty() => {
                "no rule matched: any target cluster".into()
            }
            Some(_) => "the strategy's target clusters".into(),
            None => "the clusters chosen for it".into(),
        });
        if landing.is_empty() {
            format!("{} eligible ({why}); none ready now", plan.clusters.len())
        } else {
            format!("{} ({why})", landing.join(", "))
        }
    };
    plan
}

/// A deployment caught in a failover drill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DrillDeployment {
    pub name: String,
    pub replicas: u32,
    pub failover: Option<FailoverPolicy>,
    /// Per cluster: (cluster, desired, ready), as last observed.
    pub placements: Vec<(String, i64, i64)>,
    /// When it first served all its replicas from other clusters (ms since the epoch).
    pub recovered_at: Option<i64>,
}

/// A failover drill on one cluster of the simulated hub.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DrillStatus {
    pub cluster: String,
    /// Drills need the simulated hub; a real member is not switched off from here.
    pub available: bool,
    pub down: bool,
    /// When the drill took the cluster down (ms since the epoch).
    pub since: Option<i64>,
    pub now: i64,
    pub affected: Vec<DrillDeployment>,
    /// Why the hub is not moving workloads off a NotReady cluster, when it is not.
    #[serde(default)]
    pub stuck: Option<String>,
}

/// The set the dashboard offers in one click: three strategies, three profiles, one failover.
pub fn default_set() -> (Vec<PlacementStrategy>, Vec<ResourceProfile>, Vec<FailoverPolicy>) {
    let strategies = vec![
        PlacementStrategy {
            name: "auto-by-model-size".into(),
            description: "Large models to Zone A, the rest to Zone B".into(),
            mode: PlacementMode::Auto,
            rules: vec![
                PlacementRule {
                    field: RuleField::ModelSize,
                    op: RuleOp::Ge,
                    value: "30".into(),
                    zone: Some(ZoneClass::A),
                    clusters: vec![],
                },
                PlacementRule {
                    field: RuleField::ModelSize,
                    op: RuleOp::Lt,
                    value: "30".into(),
                    zone: Some(ZoneClass::B),
                    clusters: vec![],
                },
            ],
            default_profile: "general-1gpu".into(),
            is_default: true,
            replica_mode: ReplicaMode::Capacity,
            ..Default::default()
        },
        PlacementStrategy {
            name: "high-availability".into(),
            description: "Replicas spread over at least two clusters".into(),
            mode: PlacementMode::Manual,
            default_profile: "general-1gpu".into(),
            replica_mode: ReplicaMode::Divided,
            min_clusters: 2,
            ..Default::default()
        },
        PlacementStrategy {
            name: "performance-zone-a".into(),
            description: "Zone A clusters only, packed onto as few as fit".into(),
            mode: PlacementMode::Manual,
            target: TargetKind::Labels,
            labels: BTreeMap::from([("hmas.io/zone-class".to_string(), "a".to_string())]),
            default_profile: "a100-nvlink-4gpu".into(),
            replica_mode: ReplicaMode::Aggregated,
            ..Default::default()
        },
    ];
    let profiles = vec![
        ResourceProfile {
            name: "a100-nvlink-4gpu".into(),
            description: "Tensor-parallel serving of large models".into(),
            zone: ZoneClass::A,
            gpus: 4,
            gpu_type: "A100".into(),
            memory_gi: 128,
            cpu: 16.0,
            numa_aligned: true,
            nvlink: true,
            ..Default::default()
        },
        ResourceProfile {
            name: "general-1gpu".into(),
            description: "One GPU per replica, default scheduler".into(),
            zone: ZoneClass::B,
            gpus: 1,
            memory_gi: 16,
            cpu: 4.0,
            ..Default::default()
        },
        ResourceProfile {
            name: "shared-gpu-be".into(),
            description: "Best effort on shared GPUs for experiments".into(),
            zone: ZoneClass::B,
            gpus: 1,
            memory_gi: 8,
            cpu: 2.0,
            scheduler: Scheduler::Koordinator,
            qos: QosClass::Be,
            gpu_sharing: true,
            overcommit: true,
            ..Default::default()
        },
    ];
    let failovers = vec![FailoverPolicy {
        name: "standard-failover".into(),
        description: "Move after 5 minutes NotReady; keep the old copy up to 10 minutes".into(),
        ..Default::default()
    }];
    (strategies, profiles, failovers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(name: &str, zone: ZoneClass, gpus: i64, product: &str) -> ClusterFacts {
        ClusterFacts {
            name: name.into(),
            labels: BTreeMap::from([("hmas.io/zone-class".to_string(), zone.as_str().to_string())]),
            zone,
            ready: true,
            gpu_products: vec![product.into()],
            max_gpus_per_node: gpus,
            gpus_free: gpus,
            nvlink: zone == ZoneClass::A,
            mig: false,
            nodes: vec![],
        }
    }

    fn spec(model: &str, runtime: RuntimeKind, gpus: u32) -> DeploySpec {
        DeploySpec { model: model.into(), runtime, replicas: 1, gpus_per_replica: gpus, ..Default::default() }
    }

    #[test]
    fn default_set_is_valid() {
        let (s, p, f) = default_set();
        assert_eq!((s.len(), p.len(), f.len()), (3, 3, 1));
        s.iter().for_each(|x| x.validate().unwrap());
        p.iter().for_each(|x| x.validate().unwrap());
        f.iter().for_each(|x| x.validate().unwrap());
        assert_eq!(s.iter().filter(|x| x.is_default).count(), 1);
        for x in &s {
            assert!(p.iter().any(|p| p.name == x.default_profile), "{}", x.name);
        }
    }

    #[test]
    fn profile_conflicts_are_errors_with_the_field() {
        let mut p = ResourceProfile {
            name: "x".into(),
            zone: ZoneClass::A,
            gpus: 1,
            nvlink: true,
            mig_profile: "1g.10gb".into(),
            ..Default::default()
        };
        assert!(p.validate().unwrap_err().field_error("mig_profile").unwrap().contains("NVLink"));
        p.nvlink = false;
        p.validate().unwrap();
        let mut b = ResourceProfile {
            name: "y".into(),
            scheduler: Scheduler::Koordinator,
            qos: QosClass::Lse,
            overcommit: true,
            ..Default::default()
        };
        assert!(b.validate().unwrap_err().field_error("overcommit").unwrap().contains("LSE"));
        b.qos = QosClass::Be;
        b.validate().unwrap();
        assert!(b.remarks().iter().any(|r| r.severity == Severity::Info && r.field == "overcommit"));
        b.scheduler = Scheduler::Default;
        assert!(b.validate().unwrap_err().field_error("qos").is_some());
        assert!(p.fits(0).unwrap_err().contains("MIG") && p.fits(1).is_ok() && b.fits(0).is_ok());
        let zone_mix = ResourceProfile { name: "z".into(), zone: ZoneClass::B, nvlink: true, ..Default::default() };
        assert!(zone_mix.validate().unwrap_err().field_error("zone").is_some());
    }

    #[test]
    fn failover_rules() {
        let mut f = FailoverPolicy { name: "f".into(), ..Default::default() };
        f.validate().unwrap();
        f.purge_mode = PurgeMode::Directly;
        assert!(f.validate().unwrap_err().field_error("grace_period_seconds").unwrap().contains("Gracefully"));
        f.grace_period_seconds = 0;
        f.validate().unwrap();
        f.purge_mode = PurgeMode::Gracefully;
        assert!(f.validate().unwrap_err().field_error("grace_period_seconds").is_some());
        f.toleration_seconds = 100_000;
        assert!(f.validate().unwrap_err().field_error("toleration_seconds").is_some());
        // The hub's cluster failover has no Never; application failover has.
        let never = FailoverPolicy {
            name: "n".into(),
            purge_mode: PurgeMode::Never,
            grace_period_seconds: 0,
            ..Default::default()
        };
        assert!(never.validate().unwrap_err().field_error("purge_mode").unwrap().contains("application"));
        FailoverPolicy { application: true, ..never }.validate().unwrap();
        // Stored under the deprecated names, read as today's.
        let old: FailoverPolicy =
            serde_json::from_str(r#"{"name":"o","enabled":true,"toleration_seconds":5,"purge_mode":"Immediately"}"#)
                .unwrap();
        assert_eq!((old.purge_mode, old.application), (PurgeMode::Directly, false));
        assert_eq!(PurgeMode::parse("Graciously"), Some(PurgeMode::Gracefully));
        assert_eq!(FailoverPolicy { toleration_seconds: 30, ..old }.application_toleration(400), 400);
        assert_eq!(seconds_label(300), "300 s (5 min)");
        assert_eq!(seconds_label(90), "90 s (1.5 min)");
        assert_eq!(seconds_label(45), "45 s");
    }

    #[test]
    fn timeline_follows_the_policy() {
        let f =
            FailoverPolicy { name: "f".into(), toleration_seconds: 60, grace_period_seconds: 30, ..Default::default() };
        let t = failover_timeline(&f, 45.0);
        let get = |k: &str| t.iter().find(|s| s.key == k).unwrap().clone();
        assert_eq!((get("detect").start, get("detect").end), (0.0, 40.0));
        assert_eq!((get("toleration").start, get("toleration").end), (40.0, 100.0));
        assert_eq!(get("healthy").start, 145.0);
        assert_eq!(get("grace").end, 130.0);
        assert!(t.iter().any(|s| s.key == "grace_cut"));
        let off = FailoverPolicy { enabled: false, ..f };
        assert_eq!(failover_timeline(&off, 45.0).len(), 1);
    }

    #[test]
    fn strategy_validation_names_fields() {
        let s = PlacementStrategy {
            name: "Bad".into(),
            target: TargetKind::Labels,
            rules: vec![
                PlacementRule {
                    field: RuleField::ModelSize,
                    op: RuleOp::Contains,
                    value: "x".into(),
                    zone: None,
                    clusters: vec![],
                },
                PlacementRule {
                    field: RuleField::Runtime,
                    op: RuleOp::Eq,
                    value: "docker".into(),
                    zone: Some(ZoneClass::A),
                    clusters: vec![],
                },
            ],
            min_clusters: 3,
            max_clusters: 2,
            ..Default::default()
        };
        let e = s.validate().unwrap_err();
        for f in ["name", "labels", "rules.0", "rules.1", "min_clusters"] {
            assert!(e.field_error(f).is_some(), "{f}: {e:?}");
        }
        assert!(e.field_error("rules.1").unwrap().contains("vllm"));
        let manual = PlacementStrategy {
            name: "m".into(),
            mode: PlacementMode::Manual,
            rules: default_set().0[0].rules.clone(),
            ..Default::default()
        };
        assert!(manual.validate().unwrap_err().field_error("rules").is_some());
        assert_eq!(parse_labels("a=1, b = 2\nc=").unwrap().len(), 3);
        assert!(parse_labels("novalue").is_err());
    }

    #[test]
    fn rules_choose_zones_and_gpu_fit_narrows() {
        let clusters = vec![
            facts("big-a", ZoneClass::A, 8, "NVIDIA-A100-SXM4-80GB"),
            facts("small-b", ZoneClass::B, 1, "Tesla-T4"),
            facts("mid-b", ZoneClass::B, 2, "NVIDIA-L4"),
        ];
        let (strategies, profiles, _) = default_set();
        let auto = &strategies[0];
        let general = &profiles[1];
        // 141 GB → Zone A.
        let p = plan_placement(
            &spec("meta-llama/Llama-3.1-70B-Instruct", RuntimeKind::Vllm, 4),
            Some(auto),
            Some(general),
            &clusters,
        );
        assert_eq!(p.clusters, ["big-a"]);
        assert!(p.rule.as_deref().unwrap().contains("rule 1"), "{p:?}");
        assert_eq!(p.landing(), [("big-a".to_string(), 1)]);
        // 1.3 GB → Zone B; 2 GPUs per replica leaves only mid-b.
        let p = plan_placement(&spec("llama3.2:1b", RuntimeKind::Ollama, 2), Some(auto), Some(general), &clusters);
        assert_eq!(p.clusters, ["mid-b"]);
        let small = p.candidates.iter().find(|c| c.cluster == "small-b").unwrap();
        assert!(small.reasons.iter().any(|r| r.contains("largest node has 1")), "{small:?}");
        let big = p.candidates.iter().find(|c| c.cluster == "big-a").unwrap();
        assert!(big.reasons.iter().any(|r| r.contains("wants Zone B")), "{big:?}");
        // GPU type from the profile.
        let a100 = &profiles[0];
        let mut s = spec("Qwen/Qwen2.5-7B-Instruct", RuntimeKind::Vllm, 4);
        let p = plan_placement(&s, Some(&strategies[2]), Some(a100), &clusters);
        assert_eq!(p.clusters, ["big-a"]);
        s.gpus_per_replica = 1;
        let t4 = ResourceProfile { gpu_type: "T4".into(), ..general.clone() };
        let p = plan_placement(&s, Some(&strategies[1]), Some(&t4), &clusters);
        assert_eq!(p.clusters, ["small-b"]);
        // Unknown model names are sized from their parameter count.
        let p = plan_placement(&spec("org/Some-34B-Chat", RuntimeKind::Vllm, 1), Some(auto), None, &clusters);
        assert_eq!(p.model_size_gb, 68.0);
        assert_eq!(p.zone, Some(ZoneClass::A));
    }

    #[test]
    fn gpus_fit_by_type_node_by_node() {
        // Four T4s free, but the A100 node is full: no A100 replica fits, though 4 GPUs are free.
        let mut mixed = facts("mixed", ZoneClass::B, 8, "NVIDIA-A100-SXM4-80GB");
        mixed.gpu_products.push("Tesla-T4".into());
        mixed.gpus_free = 4;
        mixed.nodes = vec![
            NodeGpus { product: "NVIDIA-A100-SXM4-80GB".into(), gpus: 8, free: 0 },
            NodeGpus { product: "Tesla-T4".into(), gpus: 2, free: 2 },
            NodeGpus { product: "Tesla-T4".into(), gpus: 2, free: 2 },
        ];
        assert_eq!(mixed.room(1, "A100"), 0);
        assert_eq!(mixed.room(1, "T4"), 4);
        // Two free GPUs on each of two nodes hold no 4-GPU replica.
        assert_eq!(mixed.room(4, "T4"), 0);
        assert_eq!(mixed.largest_node("T4"), 2);
        let a100 = ResourceProfile { name: "a".into(), gpu_type: "A100".into(), gpus: 1, ..Default::default() };
        let mut s = spec("llama3.2:1b", RuntimeKind::Ollama, 1);
        s.clusters = vec!["mixed".into()];
        let p = plan_placement(&s, None, Some(&a100), std::slice::from_ref(&mixed));
        let c = &p.candidates[0];
        assert!(c.reasons.iter().any(|r| r.contains("room for 0 replica(s) of 1 A100 GPUs")), "{c:?}");
        let t4 = ResourceProfile { gpu_type: "T4".into(), ..a100 };
        s.gpus_per_replica = 4;
        let p = plan_placement(&s, None, Some(&t4), &[mixed]);
        assert!(p.candidates[0].reasons.iter().any(|r| r.contains("largest node has 2 T4 GPUs")), "{p:?}");
    }

    #[test]
    fn replicas_divide_like_the_scheduler() {
        assert_eq!(divide(ReplicaMode::Divided, 3, &[4, 4]), [2, 1]);
        assert_eq!(divide(ReplicaMode::Capacity, 4, &[3, 1]), [3, 1]);
        assert_eq!(divide(ReplicaMode::Aggregated, 3, &[2, 8]), [2, 1]);
        assert_eq!(divide(ReplicaMode::Aggregated, 5, &[2, 1]), [4, 1]);
        assert_eq!(divide(ReplicaMode::Duplicated, 2, &[1, 1, 1]), [2, 2, 2]);
        let mut down = facts("down", ZoneClass::B, 4, "L4");
        down.ready = false;
        let clusters = vec![facts("b1", ZoneClass::B, 2, "L4"), facts("b2", ZoneClass::B, 4, "L4"), down];
        let ha = &default_set().0[1];
        let mut s = spec("llama3.2:3b", RuntimeKind::Ollama, 1);
        s.replicas = 3;
        let p = plan_placement(&s, Some(ha), None, &clusters);
        assert_eq!(p.clusters, ["b2", "b1", "down"]);
        assert_eq!(p.landing(), [("b1".to_string(), 1), ("b2".to_string(), 2)]);
        // Explicit clusters without a strategy, as before policies existed.
        let mut e = spec("llama3.2:3b", RuntimeKind::Ollama, 1);
        e.clusters = vec!["b1".into()];
        let p = plan_placement(&e, None, None, &clusters);
        assert_eq!(p.clusters, ["b1"]);
        assert_eq!(p.replica_mode, ReplicaMode::Duplicated);
    }
}
