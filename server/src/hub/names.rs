//! Every name H-MAS writes on the hub or reads back from it: namespaces, labels, annotations and
//! taints. One place, so that what the renderer sets and what the observer and the reconcilers
//! select by cannot drift apart.

/// The hub namespace every deployment's objects live in.
pub const SERVING_NS: &str = "hmas-serving";
/// Where Karmada keeps a push-mode member's identity, on the hub and on the member.
pub const KARMADA_NS: &str = "karmada-cluster";
/// The model server's container in every pod H-MAS renders.
pub const CONTAINER: &str = "model-server";

/// On everything H-MAS creates: what the reconcilers list by.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// On a deployment's objects and pods: the H-MAS deployment they belong to.
pub const DEPLOYMENT_LABEL: &str = "hmas.io/deployment";
/// What an object is for (model server, cache, resource profile, ...).
pub const ROLE_LABEL: &str = "hmas.io/role";
pub const RUNTIME_LABEL: &str = "hmas.io/runtime";
/// On a Cluster: Zone A or B, which placement rules select by.
pub const ZONE_CLASS_LABEL: &str = "hmas.io/zone-class";
/// On a Deployment: the resource profile whose OverridePolicy shapes its pods.
pub const PROFILE_LABEL: &str = "hmas.io/resource-profile";
/// On a PropagationPolicy: the strategy and failover policy it was rendered from.
pub const STRATEGY_LABEL: &str = "hmas.io/placement-strategy";
pub const FAILOVER_LABEL: &str = "hmas.io/failover-policy";

/// The model's own name, which need not be a valid label value.
pub const MODEL_ANNOTATION: &str = "hmas.io/model";
/// On a pod: the model download's percentage, written by the agent (and the simulated runtimes).
pub const PROGRESS_ANNOTATION: &str = "sim.hmas.io/model-progress";
/// On a pod of a NUMA-aligned profile under the default scheduler.
pub const NUMA_ALIGNED_ANNOTATION: &str = "hmas.io/numa-aligned";

/// Karmada's taint of a cluster whose Ready condition is not True.
pub const NOT_READY_TAINT: &str = "cluster.karmada.io/not-ready";
/// The node label NVIDIA's GPU feature discovery sets to the GPU's product name.
pub const GPU_PRODUCT_LABEL: &str = "nvidia.com/gpu.product";
