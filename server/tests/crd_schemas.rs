//! Every Karmada object H-MAS renders, held to Karmada v1.18.2's own CRD schemas (read from
//! `../shared/karmada-v1.18.2/crds`, never copied): types, enums, required fields, minimums, and no
//! field the schema does not know (the API server prunes or, with strict validation, refuses them).
use app::models::cluster::ZoneClass;
use app::models::deployment::{CacheSettings, DeploySpec};
use app::models::policy::{
    default_set, plan_placement, ClusterFacts, FailoverPolicy, PlacementStrategy, PurgeMode, QosClass, ReplicaMode,
    ResourceProfile, Scheduler,
};
use app::models::runtime::RuntimeKind;
use serde_json::Value;
use server::hub::policy::{override_policy, taint_policy};
use server::hub::render::{render, RenderInput};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn crds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/karmada-v1.18.2/crds")
}

/// The `spec.versions[name=v1alpha1].schema.openAPIV3Schema` of one CRD file.
fn schema(file: &str) -> Value {
    let path = crds_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let crd: Value = serde_yaml::from_str(&text).unwrap();
    crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1alpha1")
        .map(|v| v["schema"]["openAPIV3Schema"].clone())
        .unwrap()
}

/// Problems of `v` under the structural schema `s`, each with its path.
fn check(s: &Value, v: &Value, path: &str, out: &mut Vec<String>) {
    if s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) && s.get("properties").is_none() {
        return;
    }
    if s.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        if !(v.is_string() || v.is_i64() || v.is_u64()) {
            out.push(format!("{path}: not an int or string: {v}"));
        }
        return;
    }
    if v.is_null() {
        if s.get("nullable") != Some(&Value::Bool(true)) {
            out.push(format!("{path}: null"));
        }
        return;
    }
    let ty = s.get("type").and_then(Value::as_str).unwrap_or("");
    let ok = match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => true,
    };
    if !ok {
        out.push(format!("{path}: expected {ty}, got {v}"));
        return;
    }
    if let Some(allowed) = s.get("enum").and_then(Value::as_array) {
        if !allowed.contains(v) {
            out.push(format!("{path}: {v} not one of {allowed:?}"));
        }
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_f64), v.as_f64()) {
        if n < min {
            out.push(format!("{path}: {n} below the minimum {min}"));
        }
    }
    if let (Some(max), Some(n)) = (s.get("maximum").and_then(Value::as_f64), v.as_f64()) {
        if n > max {
            out.push(format!("{path}: {n} above the maximum {max}"));
        }
    }
    match v {
        Value::Object(m) => {
            for r in s.get("required").and_then(Value::as_array).into_iter().flatten() {
                let r = r.as_str().unwrap();
                if !m.contains_key(r) {
                    out.push(format!("{path}.{r}: required"));
                }
            }
            let props = s.get("properties").and_then(Value::as_object);
            let extra = s.get("additionalProperties").filter(|a| a.is_object());
            for (k, child) in m {
                let p = format!("{path}.{k}");
                match (props.and_then(|p| p.get(k)), extra) {
                    (Some(cs), _) | (None, Some(cs)) => check(cs, child, &p, out),
                    // metadata is the API server's own.
                    (None, None) if path.is_empty() && k == "metadata" => {}
                    (None, None) if props.is_some() => out.push(format!("{p}: unknown field")),
                    (None, None) => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = s.get("items") {
                for (i, it) in items.iter().enumerate() {
                    check(is, it, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

fn assert_valid(file: &str, what: &str, obj: &impl serde::Serialize) {
    let v = serde_json::to_value(obj).unwrap();
    let mut problems = Vec::new();
    check(&schema(file), &v, "", &mut problems);
    assert!(problems.is_empty(), "{what} against {file}:\n{}\n{v:#}", problems.join("\n"));
}

const PP: &str = "policy/policy.karmada.io_propagationpolicies.yaml";
const OP: &str = "policy/policy.karmada.io_overridepolicies.yaml";
const CTP: &str = "policy/policy.karmada.io_clustertaintpolicies.yaml";

fn cluster(name: &str, zone: ZoneClass, gpus: i64, product: &str, ready: bool) -> ClusterFacts {
    ClusterFacts {
        name: name.into(),
        labels: BTreeMap::from([("hmas.io/zone-class".to_string(), zone.as_str().to_string())]),
        zone,
        ready,
        gpu_products: vec![product.into()],
        max_gpus_per_node: gpus,
        gpus_free: gpus,
        nvlink: zone == ZoneClass::A,
        mig: zone == ZoneClass::A,
        nodes: vec![],
    }
}

#[test]
fn the_validator_catches_what_karmada_refuses() {
    // Held to the same schemas, what the real hub refused must fail here too.
    let bad: Value = serde_json::from_str(
        r#"{"apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy", "metadata": {"name": "x"},
            "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}],
                     "failover": {"application": {"decisionConditions": {}, "purgeMode": "Bogus"}},
                     "placement": {"replicaScheduling": {"weightPreference": {"staticWeightList": [
                         {"targetCluster": {"clusterNames": ["a"]}, "weight": 0}]}}, "unknownField": 1}}}"#,
    )
    .unwrap();
    let mut problems = Vec::new();
    check(&schema(PP), &bad, "", &mut problems);
    let text = problems.join("\n");
    for want in
        ["purgeMode: \"Bogus\" not one of", "weight: 0 below the minimum 1", "placement.unknownField: unknown field"]
    {
        assert!(text.contains(want), "{want} in:\n{text}");
    }
}

#[test]
fn every_rendered_policy_fits_karmadas_schemas() {
    let clusters = vec![
        cluster("gpu-hpc", ZoneClass::A, 8, "NVIDIA-H100-80GB-HBM3", true),
        cluster("gpu-general", ZoneClass::B, 2, "Tesla-T4", true),
        cluster("edge-cpu", ZoneClass::B, 0, "", false),
    ];
    let (strategies, profiles, failovers) = default_set();
    let mut all_strategies = strategies.clone();
    for mode in ReplicaMode::ALL {
        all_strategies.push(PlacementStrategy {
            name: format!("mode-{}", mode.as_str()),
            replica_mode: mode,
            min_clusters: 1,
            max_clusters: 2,
            ..Default::default()
        });
    }
    let base = failovers[0].clone();
    let mut all_failovers: Vec<Option<FailoverPolicy>> = vec![None, Some(base.clone())];
    all_failovers.push(Some(FailoverPolicy { enabled: false, ..base.clone() }));
    all_failovers.push(Some(FailoverPolicy {
        purge_mode: PurgeMode::Directly,
        grace_period_seconds: 0,
        ..base.clone()
    }));
    all_failovers.push(Some(FailoverPolicy { application: true, ..base.clone() }));
    all_failovers.push(Some(FailoverPolicy {
        application: true,
        purge_mode: PurgeMode::Never,
        grace_period_seconds: 0,
        ..base.clone()
    }));
    let mut rendered = 0;
    for (model, runtime, gpus, agent) in [
        ("llama3.2:1b", RuntimeKind::Ollama, 1, false),
        ("Qwen/Qwen2.5-7B-Instruct", RuntimeKind::Vllm, 2, true),
        ("llama3.2:1b", RuntimeKind::Ollama, 0, false),
    ] {
        for strategy in &all_strategies {
            for failover in &all_failovers {
                let spec = DeploySpec {
                    model: model.into(),
                    runtime,
                    replicas: 3,
                    gpus_per_replica: gpus,
                    agent,
                    cache: CacheSettings { enabled: true, preload: agent, ..Default::default() },
                    ..Default::default()
                };
                let plan = plan_placement(&spec, Some(strategy), None, &clusters);
                let objs = render(&RenderInput {
                    name: "m",
                    spec: &spec,
                    replicas: 3,
                    cache_clusters: &plan.clusters,
                    preload: spec.cache.preload,
                    plan: &plan,
                    strategy: Some(strategy),
                    failover: failover.as_ref(),
                });
                let what = format!("{model} by {} with {:?}", strategy.name, failover);
                assert_valid(PP, &what, &objs.policy);
                if let Some((_, pp)) = &objs.cache {
                    assert_valid(PP, &format!("cache of {what}"), pp);
                }
                if let Some(a) = &objs.agent_access {
                    assert_valid(PP, &format!("agent access of {what}"), &a.policy);
                }
                rendered += 1;
            }
        }
    }
    let products: Vec<String> = clusters.iter().flat_map(|c| c.gpu_products.clone()).collect();
    let mut all_profiles = profiles.clone();
    all_profiles.push(ResourceProfile {
        name: "mig".into(),
        zone: ZoneClass::A,
        gpus: 1,
        mig_profile: "1g.10gb".into(),
        numa_aligned: true,
        gang: true,
        ..Default::default()
    });
    all_profiles.push(ResourceProfile {
        name: "volcano-shared".into(),
        gpus: 1,
        gpu_sharing: true,
        scheduler: Scheduler::Volcano,
        qos: QosClass::None,
        gang: true,
        ..Default::default()
    });
    for p in &all_profiles {
        assert_valid(OP, &format!("profile {}", p.name), &override_policy(p, &products));
    }
    assert_valid(CTP, "the NotReady taint policy", &taint_policy());
    assert_valid(OP, "the members' NodePorts", &server::hub::policy::node_port_policy());
    assert_valid(
        "apps/apps.karmada.io_workloadrebalancers.yaml",
        "a reschedule request",
        &server::hub::policy::rebalancer("m"),
    );
    println!(
        "{rendered} deployments' PropagationPolicies, {} OverridePolicies and the ClusterTaintPolicy fit the CRD schemas",
        all_profiles.len()
    );
}
