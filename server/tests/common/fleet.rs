//! A fleet on the simulated hub for tests: register its clusters, deploy, wait for a phase.
use super::{call, Hmas};
use serde_json::{json, Value};
use server::hub::KubeClient;
use std::time::{Duration, Instant};

pub fn kubeconfig(h: &Hmas, name: &str) -> String {
    std::fs::read_to_string(h.data_dir.join("sim").join(format!("{name}.kubeconfig"))).unwrap()
}

pub async fn hub(h: &Hmas) -> KubeClient {
    KubeClient::from_kubeconfig_file(&h.data_dir.join("sim/hub.kubeconfig"), None).await.unwrap()
}

pub async fn member(h: &Hmas, name: &str) -> KubeClient {
    KubeClient::from_kubeconfig(&kubeconfig(h, name), None).await.unwrap()
}

pub async fn register(c: &reqwest::Client, h: &Hmas, name: &str, zone: &str) {
    let body =
        json!({"name": name, "zone_class": zone, "access": {"kind": "kubeconfig", "kubeconfig": kubeconfig(h, name)}});
    let (s, v) = call(c, h, "/api/clusters/register", body).await;
    assert_eq!(s, 200, "{v}");
    let start = Instant::now();
    loop {
        let (_, list) = call(c, h, "/api/clusters/list", json!({})).await;
        if list.as_array().unwrap().iter().any(|v| v["name"] == name && v["phase"] == "ready") {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{name} never turned ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn spec(model: &str, runtime: &str, gpus: u32, clusters: &[&str]) -> Value {
    json!({"model": model, "runtime": runtime, "replicas": 1, "gpus_per_replica": gpus, "clusters": clusters})
}

pub async fn detail(c: &reqwest::Client, h: &Hmas, name: &str) -> Value {
    let (s, d) = call(c, h, "/api/deployments/get", json!({"name": name})).await;
    assert_eq!(s, 200, "{d}");
    d
}

/// Polls the detail until `done` holds; returns it and every phase seen on the way.
pub async fn wait_for(
    c: &reqwest::Client,
    h: &Hmas,
    name: &str,
    secs: u64,
    done: impl Fn(&Value) -> bool,
) -> (Value, Vec<(String, Option<i64>)>) {
    let start = Instant::now();
    let mut seen: Vec<(String, Option<i64>)> = Vec::new();
    loop {
        let d = detail(c, h, name).await;
        let phase = d["deployment"]["phase"].as_str().unwrap().to_string();
        let progress = d["deployment"]["progress"].as_i64();
        if seen.last() != Some(&(phase.clone(), progress)) {
            seen.push((phase, progress));
        }
        if done(&d) {
            return (d, seen);
        }
        assert!(start.elapsed() < Duration::from_secs(secs), "{name} did not get there; seen {seen:?}; last {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn running(d: &Value) -> bool {
    d["deployment"]["phase"] == "running" && !d["deployment"]["endpoints"].as_array().unwrap().is_empty()
}

/// The simulated hub's fault controls for one cluster: read them, or change them.
pub async fn sim_cluster(h: &Hmas, name: &str, change: Option<Value>) -> Value {
    let hub = hub(h).await;
    let req = match change {
        Some(c) => http::Request::post(format!("/sim/v1/clusters/{name}"))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&c).unwrap())
            .unwrap(),
        None => http::Request::get(format!("/sim/v1/clusters/{name}")).body(Vec::new()).unwrap(),
    };
    hub.kube().request(req).await.unwrap()
}

/// The hub's own fault control: every API request answers 503 while `on`.
pub async fn hub_failing(h: &Hmas, on: bool) {
    let v = sim_cluster(h, "karmada-apiserver", Some(json!({"errorPerMille": if on { 1000 } else { 0 }}))).await;
    assert_eq!(v["errorPerMille"], if on { 1000 } else { 0 }, "{v}");
}

/// The reasons of a deployment detail's events about one pod, newest first.
pub fn event_reasons(d: &Value, pod: &str) -> Vec<String> {
    d["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["object"].as_str().unwrap().ends_with(pod))
        .map(|e| e["reason"].as_str().unwrap().to_string())
        .collect()
}
