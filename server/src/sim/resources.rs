//! The API resources a simulated cluster serves: what discovery lists and what the store accepts.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceType {
    /// "" for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Only served by the hub (Karmada's APIs).
    pub hub_only: bool,
    /// Names must be DNS-1035 labels (Services), DNS-1123 labels (Namespaces), else subdomains.
    pub name_rule: NameRule,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NameRule {
    Subdomain,
    /// RBAC objects: anything usable as a path segment (`system:controller:x` is fine).
    PathSegment,
    Label1123,
    Label1035,
}

const fn rt(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
) -> ResourceType {
    ResourceType {
        group,
        version,
        kind,
        plural,
        namespaced,
        short_names,
        hub_only: false,
        name_rule: NameRule::Subdomain,
    }
}

const fn hub(mut r: ResourceType) -> ResourceType {
    r.hub_only = true;
    r
}

const fn named(mut r: ResourceType, rule: NameRule) -> ResourceType {
    r.name_rule = rule;
    r
}

pub const RESOURCES: &[ResourceType] = &[
    named(rt("", "v1", "Namespace", "namespaces", false, &["ns"]), NameRule::Label1123),
    rt("", "v1", "Node", "nodes", false, &["no"]),
    rt("", "v1", "Pod", "pods", true, &["po"]),
    named(rt("", "v1", "Service", "services", true, &["svc"]), NameRule::Label1035),
    rt("", "v1", "Secret", "secrets", true, &[]),
    rt("", "v1", "ConfigMap", "configmaps", true, &["cm"]),
    rt("", "v1", "ServiceAccount", "serviceaccounts", true, &["sa"]),
    rt("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, &["pvc"]),
    rt("", "v1", "Event", "events", true, &["ev"]),
    rt("apps", "v1", "Deployment", "deployments", true, &["deploy"]),
    rt("batch", "v1", "Job", "jobs", true, &[]),
    named(rt("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, &[]), NameRule::PathSegment),
    named(
        rt("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false, &[]),
        NameRule::PathSegment,
    ),
    named(rt("rbac.authorization.k8s.io", "v1", "Role", "roles", true, &[]), NameRule::PathSegment),
    named(rt("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, &[]), NameRule::PathSegment),
    rt("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, &["netpol"]),
    hub(rt("cluster.karmada.io", "v1alpha1", "Cluster", "clusters", false, &[])),
    hub(rt("policy.karmada.io", "v1alpha1", "PropagationPolicy", "propagationpolicies", true, &["pp"])),
    hub(rt("policy.karmada.io", "v1alpha1", "OverridePolicy", "overridepolicies", true, &["op"])),
    hub(rt("policy.karmada.io", "v1alpha1", "ClusterTaintPolicy", "clustertaintpolicies", false, &[])),
    hub(rt("apps.karmada.io", "v1alpha1", "WorkloadRebalancer", "workloadrebalancers", false, &[])),
    hub(rt("work.karmada.io", "v1alpha2", "ResourceBinding", "resourcebindings", true, &["rb"])),
];

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, as the API server names a resource in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn singular(&self) -> String {
        self.kind.to_ascii_lowercase()
    }

    pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
        RESOURCES.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
        RESOURCES.iter().find(|r| r.api_version() == api_version && r.kind == kind)
    }

    pub fn of_kind(kind: &str) -> Option<&'static ResourceType> {
        RESOURCES.iter().find(|r| r.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let d = ResourceType::lookup("apps", "v1", "deployments").unwrap();
        assert_eq!(d.kind, "Deployment");
        assert_eq!(d.qualified(), "deployments.apps");
        assert_eq!(ResourceType::by_kind("v1", "Service").unwrap().name_rule, NameRule::Label1035);
        assert!(ResourceType::lookup("", "v1", "widgets").is_none());
        assert!(ResourceType::of_kind("Cluster").unwrap().hub_only);
    }
}
