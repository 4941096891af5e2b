//! Deploy pipeline timings, run by `scripts/bench-deploy` (ignored by the test command: it
//! measures, it does not judge). Against a real `hmas` with SQLite and the simulated hub at its
//! default time scale: submit → hub objects applied (the create call returns once they are),
//! over 100 deploys; submit → Running for those that fit; and delete.
mod common;

use common::{call, login, Hmas};
use serde_json::json;
use std::time::{Duration, Instant};

const PW: &str = "admin-password-1";

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(what: &str, mut ms: Vec<f64>) {
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{what:<44} n={:<4} p50={:>8.1} ms  p99={:>8.1} ms  max={:>8.1} ms",
        ms.len(),
        pct(&ms, 0.5),
        pct(&ms, 0.99),
        ms[ms.len() - 1]
    );
}

#[tokio::test]
#[ignore]
async fn deploy_pipeline_timings() {
    let scale: f64 = std::env::var("HMAS_BENCH_TIME_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(0.2);
    let h = Hmas::start_scaled(Some(PW), scale);
    let admin = login(&h, "admin", PW).await;
    for (name, zone) in [("gpu-hpc", "a"), ("edge-cpu", "b")] {
        let kc = std::fs::read_to_string(h.data_dir.join("sim").join(format!("{name}.kubeconfig"))).unwrap();
        let body = json!({"name": name, "zone_class": zone, "access": {"kind": "kubeconfig", "kubeconfig": kc}});
        assert_eq!(call(&admin, &h, "/api/clusters/register", body).await.0, 200);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 100 deploys, one after another; the first 8 fit on gpu-hpc's GPUs and are watched to Running.
    let mut applied = Vec::new();
    let mut submitted = Vec::new();
    for i in 0..100 {
        let (model, gpus, cluster) = if i < 8 { ("llama3.2:1b", 1, "gpu-hpc") } else { ("qwen2.5:7b", 0, "edge-cpu") };
        let spec = json!({"name": format!("bench-{i}"), "model": model, "runtime": "ollama", "replicas": 1,
            "gpus_per_replica": gpus, "clusters": [cluster]});
        let t = Instant::now();
        let (s, v) = call(&admin, &h, "/api/deployments/create", json!({"spec": spec})).await;
        applied.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(s == 200 && v["phase"] != "failed", "{v}");
        submitted.push(t);
    }
    let mut to_running = vec![None; 8];
    let start = Instant::now();
    while to_running.iter().any(Option::is_none) && start.elapsed() < Duration::from_secs(300) {
        for (i, slot) in to_running.iter_mut().enumerate().filter(|(_, s)| s.is_none()) {
            let (_, d) = call(&admin, &h, "/api/deployments/get", json!({"name": format!("bench-{i}")})).await;
            if d["deployment"]["phase"] == "running" {
                *slot = Some(submitted[i].elapsed().as_secs_f64() * 1000.0);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut deletes = Vec::new();
    for i in 0..100 {
        let t = Instant::now();
        assert_eq!(call(&admin, &h, "/api/deployments/delete", json!({"name": format!("bench-{i}")})).await.0, 200);
        deletes.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!("\nDeploy pipeline (SQLite, simulated hub, time scale {scale}):");
    report("submit -> hub objects applied (100 deploys)", applied);
    report("submit -> Running (llama3.2:1b, cold node)", to_running.into_iter().flatten().collect());
    report("delete (hub objects and row)", deletes);
}
