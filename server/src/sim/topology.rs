//! What the simulated member clusters look like: nodes with CPU, memory and GPUs. The default
//! gives placement something to decide; a YAML file (`--sim-topology`) replaces it.
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Topology {
    #[serde(default = "default_version")]
    pub kubernetes_version: String,
    pub members: Vec<MemberSpec>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberSpec {
    pub name: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub zone: String,
    pub nodes: Vec<NodeGroup>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeGroup {
    /// Nodes are named `<prefix>-1`, `<prefix>-2`, …
    pub prefix: String,
    #[serde(default = "one")]
    pub count: u32,
    /// Cores.
    pub cpu: u32,
    pub memory_gi: u32,
    #[serde(default)]
    pub instance_type: String,
    #[serde(default)]
    pub gpu: Option<GpuSpec>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GpuSpec {
    /// As NVIDIA's feature discovery labels it, e.g. `NVIDIA-A100-SXM4-80GB`.
    pub product: String,
    pub count: u32,
    pub memory_mib: u32,
    #[serde(default)]
    pub nvlink: bool,
    #[serde(default)]
    pub mig_capable: bool,
}

fn default_version() -> String {
    "v1.36.0".into()
}

fn one() -> u32 {
    1
}

impl Topology {
    pub fn from_yaml(text: &str) -> Result<Topology, String> {
        let t: Topology = serde_yaml::from_str(text).map_err(|e| format!("topology: {e}"))?;
        t.validate()?;
        Ok(t)
    }

    fn validate(&self) -> Result<(), String> {
        if self.members.is_empty() {
            return Err("topology: at least one member cluster is required".into());
        }
        let mut seen = std::collections::HashSet::new();
        for m in &self.members {
            if let Some(why) = super::names::check(super::resources::NameRule::Label1123, &m.name) {
                return Err(format!("topology: member name {:?}: {why}", m.name));
            }
            if !seen.insert(&m.name) {
                return Err(format!("topology: member {} is listed twice", m.name));
            }
            if m.nodes.is_empty() {
                return Err(format!("topology: member {} has no nodes", m.name));
            }
            for g in &m.nodes {
                if g.count == 0 || g.cpu == 0 || g.memory_gi == 0 {
                    return Err(format!("topology: node group {} needs count, cpu and memoryGi above 0", g.prefix));
                }
            }
        }
        Ok(())
    }

    /// Three members that make placement meaningful: NVLink H100/A100 for large models, T4/L4
    /// for general serving, and a CPU-only edge site.
    pub fn default_three() -> Topology {
        let gpu = |product: &str, count, memory_mib, nvlink, mig_capable| {
            Some(GpuSpec { product: product.into(), count, memory_mib, nvlink, mig_capable })
        };
        Topology {
            kubernetes_version: default_version(),
            members: vec![
                MemberSpec {
                    name: "gpu-hpc".into(),
                    region: "us-east".into(),
                    zone: "us-east-1a".into(),
                    nodes: vec![
                        NodeGroup {
                            prefix: "h100".into(),
                            count: 2,
                            cpu: 96,
                            memory_gi: 1024,
                            instance_type: "p5.48xlarge".into(),
                            gpu: gpu("NVIDIA-H100-80GB-HBM3", 8, 81559, true, true),
                        },
                        NodeGroup {
                            prefix: "a100".into(),
                            count: 1,
                            cpu: 64,
                            memory_gi: 512,
                            instance_type: "p4d.24xlarge".into(),
                            gpu: gpu("NVIDIA-A100-SXM4-80GB", 4, 81920, true, true),
                        },
                    ],
                },
                MemberSpec {
                    name: "gpu-general".into(),
                    region: "us-west".into(),
                    zone: "us-west-2b".into(),
                    nodes: vec![
                        NodeGroup {
                            prefix: "t4".into(),
                            count: 2,
                            cpu: 16,
                            memory_gi: 64,
                            instance_type: "g4dn.12xlarge".into(),
                            gpu: gpu("Tesla-T4", 4, 15360, false, false),
                        },
                        NodeGroup {
                            prefix: "l4".into(),
                            count: 2,
                            cpu: 8,
                            memory_gi: 32,
                            instance_type: "g6.2xlarge".into(),
                            gpu: gpu("NVIDIA-L4", 1, 23034, false, false),
                        },
                    ],
                },
                MemberSpec {
                    name: "edge-cpu".into(),
                    region: "eu-central".into(),
                    zone: "eu-central-1c".into(),
                    nodes: vec![NodeGroup {
                        prefix: "cpu".into(),
                        count: 2,
                        cpu: 32,
                        memory_gi: 128,
                        instance_type: "c7i.8xlarge".into(),
                        gpu: None,
                    }],
                },
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_file_forms() {
        let d = Topology::default_three();
        assert_eq!(d.members.len(), 3);
        let yaml = serde_yaml::to_string(&d).unwrap();
        assert_eq!(Topology::from_yaml(&yaml).unwrap().members[0].nodes[0].gpu.as_ref().unwrap().count, 8);
        assert!(Topology::from_yaml("members: []").unwrap_err().contains("at least one"));
        assert!(Topology::from_yaml("members: [{name: Bad_Name, nodes: [{prefix: a, cpu: 1, memoryGi: 1}]}]").is_err());
        assert!(Topology::from_yaml("members: [{name: a, nodes: [{prefix: a, cpu: 1, memoryGi: 1, gpus: 3}]}]")
            .unwrap_err()
            .contains("gpus"));
    }
}
