//! Model deployments end to end through a real `hmas` and its simulated hub: deploy, watch it come
//! up, ask the model, redeploy from the cache, stop and start, delete without leftovers, and what
//! happens when it cannot fit or the hub fails.
mod common;

use common::fleet::{detail, event_reasons, hub, hub_failing, member, register, running, spec, wait_for};
use common::{call, login, Hmas};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use serde_json::{json, Value};
use server::hub::karmada::PropagationPolicy;
use std::time::{Duration, Instant};

const PW: &str = "admin-password-1";
const NS: &str = "hmas-serving";

/// Polls the list (the observer's stored copy) until `name`'s row satisfies `done`.
async fn list_row(c: &reqwest::Client, h: &Hmas, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (_, list) = call(c, h, "/api/deployments/list", json!({})).await;
        let row = list.as_array().unwrap().iter().find(|d| d["name"] == name).cloned().unwrap_or(Value::Null);
        if done(&row) {
            return row;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{row}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn chat(endpoint: &str, model: &str) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{endpoint}/v1/chat/completions"))
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "Say hello"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn ollama_comes_up_answers_redeploys_from_cache_and_leaves_nothing() {
    // Slower than other tests, so the download can be watched.
    let h = Hmas::start_scaled(Some(PW), 0.05);
    let admin = login(&h, "admin", PW).await;
    register(&admin, &h, "gpu-general", "b").await;

    let (s, v) =
        call(&admin, &h, "/api/deployments/create", json!({"spec": spec("qwen2.5:7b", "ollama", 1, &["gpu-general"])}))
            .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["name"], "qwen2-5-7b");
    let (d, seen) = wait_for(&admin, &h, "qwen2-5-7b", 60, running).await;
    let phases: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
    assert!(phases.contains(&"downloading"), "the download is visible: {seen:?}");
    assert!(seen.iter().any(|(p, pct)| p == "downloading" && pct.is_some_and(|x| x > 0 && x < 100)), "{seen:?}");
    assert_eq!(d["deployment"]["ready_replicas"], 1);
    let endpoint = d["deployment"]["endpoints"][0].as_str().unwrap().to_string();
    assert!(endpoint.starts_with("http://127.0.0.1:3"), "{endpoint}");
    let answer = chat(&endpoint, "qwen2.5:7b").await;
    assert!(answer["choices"][0]["message"]["content"].as_str().unwrap().contains("qwen2.5:7b"));
    assert!(d["command"].as_str().unwrap().starts_with("/bin/sh -c"));
    let first_pod = d["replicas"][0]["pod"].as_str().unwrap().to_string();
    assert!(event_reasons(&d, &first_pod).contains(&"DownloadingModel".to_string()), "{}", d["events"]);

    // The hub has the template, its NodePort Service, the policy and the cache with its policy.
    let hub = hub(&h).await;
    let dep: Deployment = hub.get(Some(NS), "qwen2-5-7b").await.unwrap().unwrap();
    let pod_spec = dep.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod_spec.containers[0].resources.as_ref().unwrap().limits.as_ref().unwrap()["nvidia.com/gpu"].0, "1");
    let svc: Service = hub.get(Some(NS), "qwen2-5-7b").await.unwrap().unwrap();
    assert_eq!(svc.spec.unwrap().type_.as_deref(), Some("ClusterIP"), "a NodePort on the members only");
    let pp: PropagationPolicy = hub.get(Some(NS), "qwen2-5-7b").await.unwrap().unwrap();
    assert_eq!(pp.spec.placement.cluster_affinity.unwrap().cluster_names, ["gpu-general"]);
    let cache = d["cache_volume"].as_str().unwrap().to_string();
    assert!(hub.get::<PersistentVolumeClaim>(Some(NS), &cache).await.unwrap().is_some());
    assert!(hub.get::<PropagationPolicy>(Some(NS), &cache).await.unwrap().is_some());

    // Redeploy with a changed setting: a new replica, started from the warm cache.
    let mut changed = d["spec"].clone();
    changed["settings"] = json!({"context_length": "8192"});
    let (s, v) = call(&admin, &h, "/api/deployments/redeploy", json!({"name": "qwen2-5-7b", "spec": changed})).await;
    assert_eq!(s, 200, "{v}");
    let (d, seen) = wait_for(&admin, &h, "qwen2-5-7b", 60, |d| {
        running(d) && d["replicas"][0]["pod"].as_str() != Some(first_pod.as_str())
    })
    .await;
    assert!(!seen.iter().any(|(p, _)| p == "downloading"), "no download the second time: {seen:?}");
    let second_pod = d["replicas"][0]["pod"].as_str().unwrap().to_string();
    let reasons = event_reasons(&d, &second_pod);
    assert!(
        reasons.contains(&"ModelCached".to_string()) && !reasons.contains(&"DownloadingModel".to_string()),
        "{reasons:?}"
    );

    // Stop scales to zero, start brings it back.
    let (s, v) = call(&admin, &h, "/api/deployments/stop", json!({"name": "qwen2-5-7b"})).await;
    assert_eq!((s, v["phase"].as_str()), (200, Some("stopped")), "{v}");
    wait_for(&admin, &h, "qwen2-5-7b", 30, |d| d["replicas"].as_array().unwrap().is_empty()).await;
    let (s, _) = call(&admin, &h, "/api/deployments/start", json!({"name": "qwen2-5-7b"})).await;
    assert_eq!(s, 200);
    wait_for(&admin, &h, "qwen2-5-7b", 60, running).await;

    // Delete: nothing left on the hub or the member, except the model cache.
    let (s, v) = call(&admin, &h, "/api/deployments/delete", json!({"name": "qwen2-5-7b"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(call(&admin, &h, "/api/deployments/get", json!({"name": "qwen2-5-7b"})).await.0, 404);
    let m = member(&h, "gpu-general").await;
    let start = Instant::now();
    loop {
        let hub_left = hub.get::<Deployment>(Some(NS), "qwen2-5-7b").await.unwrap().is_some()
            || hub.get::<Service>(Some(NS), "qwen2-5-7b").await.unwrap().is_some()
            || hub.get::<PropagationPolicy>(Some(NS), "qwen2-5-7b").await.unwrap().is_some();
        let member_left =
            !m.list::<Deployment>(Some(NS), Some("hmas.io/deployment=qwen2-5-7b")).await.unwrap().is_empty()
                || !m.list::<Pod>(Some(NS), Some("hmas.io/deployment=qwen2-5-7b")).await.unwrap().is_empty()
                || !m.list::<Service>(Some(NS), Some("hmas.io/deployment=qwen2-5-7b")).await.unwrap().is_empty();
        if !hub_left && !member_left {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "objects left: hub {hub_left}, member {member_left}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(m.get::<PersistentVolumeClaim>(Some(NS), &cache).await.unwrap().is_some(), "the cache stays");

    // Deployed again: warm from the start. Then deleted with its cache.
    let (s, _) =
        call(&admin, &h, "/api/deployments/create", json!({"spec": spec("qwen2.5:7b", "ollama", 1, &["gpu-general"])}))
            .await;
    assert_eq!(s, 200);
    let (_, seen) = wait_for(&admin, &h, "qwen2-5-7b", 60, running).await;
    assert!(!seen.iter().any(|(p, _)| p == "downloading"), "{seen:?}");
    let (s, _) = call(&admin, &h, "/api/deployments/delete", json!({"name": "qwen2-5-7b", "delete_cache": true})).await;
    assert_eq!(s, 200);
    assert!(hub.get::<PersistentVolumeClaim>(Some(NS), &cache).await.unwrap().is_none());
    let start = Instant::now();
    while m.get::<PersistentVolumeClaim>(Some(NS), &cache).await.unwrap().is_some() {
        assert!(start.elapsed() < Duration::from_secs(20), "the member's cache copy stays");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn every_runtime_serves_its_model() {
    let h = Hmas::start(Some(PW));
    let admin = login(&h, "admin", PW).await;
    register(&admin, &h, "gpu-hpc", "a").await;
    let cases = [
        ("llama3.2:1b", "ollama", "llama3-2-1b"),
        ("Qwen/Qwen2.5-1.5B-Instruct", "vllm", "qwen2-5-1-5b-instruct"),
        ("Qwen/Qwen2.5-7B-Instruct", "tgi", "qwen2-5-7b-instruct"),
        ("bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "llama_cpp", "llama-3-2-1b-instruct-gguf-q4-k-m"),
        ("Qwen/Qwen2.5-1.5B-Instruct", "sglang", "qwen2-5-1-5b-instruct-2"),
    ];
    for (model, runtime, name) in cases {
        let (s, v) =
            call(&admin, &h, "/api/deployments/create", json!({"spec": spec(model, runtime, 1, &["gpu-hpc"])})).await;
        assert_eq!((s, v["name"].as_str()), (200, Some(name)), "{v}");
    }
    for (model, _, name) in cases {
        let (d, _) = wait_for(&admin, &h, name, 60, running).await;
        let endpoint = d["deployment"]["endpoints"][0].as_str().unwrap();
        let models: Value = reqwest::get(format!("{endpoint}/v1/models")).await.unwrap().json().await.unwrap();
        assert_eq!(models["data"][0]["id"], model, "{name}");
        chat(endpoint, model).await;
    }
    let (_, list) = call(&admin, &h, "/api/deployments/list", json!({})).await;
    assert_eq!(list.as_array().unwrap().len(), 5);
    let (_, clusters) = call(&admin, &h, "/api/clusters/list", json!({})).await;
    assert_eq!(clusters[0]["instances"], 5, "the cluster counts its deployments");
}

#[tokio::test]
async fn names_validation_and_roles() {
    let h = Hmas::start(Some(PW));
    let admin = login(&h, "admin", PW).await;
    register(&admin, &h, "edge-cpu", "b").await;

    // Bad input: 400 naming each field, nothing written.
    let bad = json!({"spec": {"name": "Bad_Name", "model": "x; rm -rf /", "runtime": "vllm", "replicas": 99, "gpus_per_replica": 0,
        "clusters": [], "settings": {"dtype": "int3"}, "extra_args": ["--port=1"]}});
    let (s, e) = call(&admin, &h, "/api/deployments/create", bad).await;
    assert_eq!(s, 400, "{e}");
    for f in ["name", "model", "replicas", "gpus_per_replica", "clusters", "settings.dtype", "extra_args"] {
        assert!(e["fields"][f].is_string(), "{f}: {e}");
    }
    let (s, e) =
        call(&admin, &h, "/api/deployments/create", json!({"spec": spec("llama3.2:1b", "ollama", 0, &["nowhere"])}))
            .await;
    assert_eq!(s, 400);
    assert!(e["fields"]["clusters"].as_str().unwrap().contains("nowhere"));
    let (s, e) = call(&admin, &h, "/api/deployments/create", json!({"spec": {"model": "m"}})).await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(call(&admin, &h, "/api/deployments/list", json!({})).await.1, json!([]));

    // Derived names are unique; an explicit name that is taken is a conflict.
    let cpu = spec("llama3.2:1b", "ollama", 0, &["edge-cpu"]);
    let mut names = Vec::new();
    for _ in 0..3 {
        let (s, v) = call(&admin, &h, "/api/deployments/create", json!({"spec": cpu})).await;
        assert_eq!(s, 200, "{v}");
        names.push(v["name"].as_str().unwrap().to_string());
    }
    assert_eq!(names, ["llama3-2-1b", "llama3-2-1b-2", "llama3-2-1b-3"]);
    let mut named = cpu.clone();
    named["name"] = json!("llama3-2-1b");
    let (s, e) = call(&admin, &h, "/api/deployments/create", json!({"spec": named})).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("conflict")), "{e}");
    assert!(e["fields"]["name"].is_string());
    wait_for(&admin, &h, "llama3-2-1b", 60, running).await;
    // The list is the observer's copy in the database: it catches up within its period.
    let row = list_row(&admin, &h, "llama3-2-1b", |r| r["phase"] == "running").await;
    assert_eq!(row["ready_replicas"], 1);
    assert!(row["endpoints"][0].as_str().unwrap().starts_with("http://127.0.0.1:"));

    // Users see; operators change.
    call(&admin, &h, "/api/users/create", json!({"username": "viewer", "role": "user", "password": "viewer-password"}))
        .await;
    let viewer = login(&h, "viewer", "viewer-password").await;
    assert_eq!(call(&viewer, &h, "/api/deployments/list", json!({})).await.0, 200);
    assert_eq!(call(&viewer, &h, "/api/deployments/get", json!({"name": "llama3-2-1b"})).await.0, 200);
    assert_eq!(call(&viewer, &h, "/api/deployments/delete", json!({"name": "llama3-2-1b"})).await.0, 403);
    assert_eq!(call(&viewer, &h, "/api/deployments/create", json!({"spec": cpu})).await.0, 403);
    assert_eq!(call(&admin, &h, "/api/deployments/get", json!({"name": "nope"})).await.0, 404);
}

#[tokio::test]
async fn a_deployment_that_fits_no_gpu_stays_pending_with_the_reason() {
    let h = Hmas::start(Some(PW));
    let admin = login(&h, "admin", PW).await;
    register(&admin, &h, "gpu-general", "b").await;
    // The largest node there has 4 GPUs.
    let (s, v) = call(
        &admin,
        &h,
        "/api/deployments/create",
        json!({"spec": spec("meta-llama/Llama-3.1-70B-Instruct", "vllm", 8, &["gpu-general"])}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (d, _) = wait_for(&admin, &h, "llama-3-1-70b-instruct", 30, |d| {
        d["deployment"]["message"].as_str().unwrap_or("").contains("Insufficient nvidia.com/gpu")
    })
    .await;
    assert_eq!(d["deployment"]["phase"], "pending");
    assert_eq!(d["replicas"][0]["phase"], "pending");
    assert!(d["events"].as_array().unwrap().iter().any(|e| e["reason"] == "FailedScheduling"), "{}", d["events"]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(detail(&admin, &h, "llama-3-1-70b-instruct").await["deployment"]["phase"], "pending");
}

#[tokio::test]
async fn a_hub_outage_during_deploy_leaves_a_retryable_failure() {
    let h = Hmas::start(Some(PW));
    let admin = login(&h, "admin", PW).await;
    register(&admin, &h, "gpu-general", "b").await;

    // A running deployment first: while the hub fails, the list says its status is as last seen.
    let running_spec = json!({"spec": spec("qwen2.5:7b", "ollama", 1, &["gpu-general"])});
    assert_eq!(call(&admin, &h, "/api/deployments/create", running_spec).await.0, 200);
    wait_for(&admin, &h, "qwen2-5-7b", 60, running).await;

    list_row(&admin, &h, "qwen2-5-7b", |r| r["phase"] == "running").await;
    hub_failing(&h, true).await;
    let row =
        list_row(&admin, &h, "qwen2-5-7b", |r| r["message"].as_str().unwrap_or("").contains("hub unreachable")).await;
    assert_eq!(row["phase"], "running", "the last seen phase stays, marked as such");
    let (s, v) = call(
        &admin,
        &h,
        "/api/deployments/create",
        json!({"spec": spec("llama3.2:1b", "ollama", 1, &["gpu-general"])}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["phase"], "failed", "{v}");
    assert!(v["message"].as_str().unwrap().contains("Retry"), "{v}");
    // Kept, and still failed a while later: nothing retries behind the operator's back.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, list) = call(&admin, &h, "/api/deployments/list", json!({})).await;
    let failed = list.as_array().unwrap().iter().find(|d| d["name"] == "llama3-2-1b").unwrap();
    assert_eq!(failed["phase"], "failed", "{list}");
    hub_failing(&h, false).await;
    // Nothing half-made propagates: the policy, applied last, is not there.
    let hub = hub(&h).await;
    assert!(hub.get::<PropagationPolicy>(Some(NS), "llama3-2-1b").await.unwrap().is_none());

    let (s, v) = call(&admin, &h, "/api/deployments/redeploy", json!({"name": "llama3-2-1b"})).await;
    assert_eq!(s, 200, "{v}");
    wait_for(&admin, &h, "llama3-2-1b", 60, running).await;
}

#[tokio::test]
async fn the_database_is_the_truth_across_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut h = Hmas::start_in(&data, Some(PW));
    let admin = login(&h, "admin", PW).await;
    register(&admin, &h, "gpu-general", "b").await;
    let (s, _) = call(
        &admin,
        &h,
        "/api/deployments/create",
        json!({"spec": spec("llama3.2:1b", "ollama", 1, &["gpu-general"])}),
    )
    .await;
    assert_eq!(s, 200);
    wait_for(&admin, &h, "llama3-2-1b", 60, running).await;
    assert!(h.terminate());
    drop(h);

    // The simulated hub starts empty; the reconcilers put the cluster and the deployment back.
    let h = Hmas::start_in(&data, Some(PW));
    let admin = login(&h, "admin", PW).await;
    let (d, _) = wait_for(&admin, &h, "llama3-2-1b", 60, running).await;
    chat(d["deployment"]["endpoints"][0].as_str().unwrap(), "llama3.2:1b").await;
}

#[tokio::test]
async fn preload_fills_the_cache_before_replicas_start() {
    let h = Hmas::start_scaled(Some(PW), 0.05);
    let admin = login(&h, "admin", PW).await;
    register(&admin, &h, "gpu-hpc", "a").await;
    let mut s = spec("Qwen/Qwen2.5-7B-Instruct", "vllm", 1, &["gpu-hpc"]);
    s["cache"] = json!({"enabled": true, "preload": true});
    let (st, v) = call(&admin, &h, "/api/deployments/create", json!({"spec": s})).await;
    assert_eq!(st, 200, "{v}");
    let (d, seen) = wait_for(&admin, &h, "qwen2-5-7b-instruct", 60, running).await;
    assert!(seen.iter().any(|(p, _)| p == "preloading"), "{seen:?}");
    assert!(!seen.iter().any(|(p, _)| p == "downloading"), "the replica never downloads: {seen:?}");
    let pod = d["replicas"][0]["pod"].as_str().unwrap().to_string();
    let reasons = event_reasons(&d, &pod);
    assert!(reasons.contains(&"ModelCached".to_string()), "{reasons:?}");
    assert!(
        d["objects"].as_array().unwrap().iter().all(|o| !o.as_str().unwrap().starts_with("Job")),
        "the Job is done with"
    );
}

#[tokio::test]
async fn runtimes_fail_as_real_ones_do_and_say_why() {
    let h = Hmas::start(Some(PW));
    let admin = login(&h, "admin", PW).await;
    register(&admin, &h, "gpu-general", "b").await;
    // A flag vLLM does not take: the server exits, the kubelet backs off and starts it again.
    let mut bad_flag = spec("Qwen/Qwen2.5-1.5B-Instruct", "vllm", 1, &["gpu-general"]);
    bad_flag["extra_args"] = json!(["--no-such-flag"]);
    // A model the Ollama library does not have: the pull fails and the start script gives up.
    let missing = spec("no-such-model:1b", "ollama", 0, &["gpu-general"]);
    let mut names = Vec::new();
    for s in [bad_flag, missing] {
        let (code, v) = call(&admin, &h, "/api/deployments/create", json!({"spec": s})).await;
        assert_eq!(code, 200, "{v}");
        names.push(v["name"].as_str().unwrap().to_string());
    }
    let restarted =
        |d: &Value| d["replicas"].as_array().is_some_and(|r| r.iter().any(|r| r["restarts"].as_i64() >= Some(2)));
    let (d, _) = wait_for(&admin, &h, &names[0], 60, |d| d["deployment"]["phase"] == "failed" && restarted(d)).await;
    let message = d["deployment"]["message"].as_str().unwrap();
    assert!(message.starts_with("crash-looping (restarted"), "{message}");
    assert!(message.ends_with("exit code 2): vllm: error: unrecognized arguments: --no-such-flag"), "{message}");
    assert!(event_reasons(&d, "").iter().any(|r| r == "BackOff"), "{d}");
    let (d, _) = wait_for(&admin, &h, &names[1], 60, |d| d["deployment"]["phase"] == "failed").await;
    let message = d["deployment"]["message"].as_str().unwrap();
    assert!(message.ends_with("exit code 1): Error: pull model manifest: file does not exist"), "{message}");
    // On the member: CrashLoopBackOff with the restarts counted, as kubectl shows it.
    let m = member(&h, "gpu-general").await;
    let pods: Vec<Pod> = m.list(Some(NS), Some(&format!("hmas.io/deployment={}", names[1]))).await.unwrap();
    let cs = &pods[0].status.as_ref().unwrap().container_statuses.as_ref().unwrap()[0];
    assert_eq!(cs.state.as_ref().unwrap().waiting.as_ref().unwrap().reason.as_deref(), Some("CrashLoopBackOff"));
    assert!(cs.restart_count >= 1);
}

#[tokio::test]
async fn each_member_chooses_its_own_node_port_and_the_gateway_follows_it() {
    let h = Hmas::start(Some(PW));
    let admin = login(&h, "admin", PW).await;
    register(&admin, &h, "gpu-general", "b").await;
    register(&admin, &h, "edge-cpu", "b").await;
    let mut s = spec("llama3.2:1b", "ollama", 0, &["gpu-general", "edge-cpu"]);
    s["replicas"] = json!(2);
    let (code, v) = call(&admin, &h, "/api/deployments/create", json!({"spec": s})).await;
    assert_eq!(code, 200, "{v}");
    let name = v["name"].as_str().unwrap().to_string();
    wait_for(&admin, &h, &name, 60, running).await;
    // The hub's Service has no node port to copy; each member's copy has its own.
    let hub = hub(&h).await;
    let on_hub: Service = hub.get(Some(NS), &name).await.unwrap().unwrap();
    assert_eq!(on_hub.spec.as_ref().unwrap().type_.as_deref(), Some("ClusterIP"));
    let port_on = |svc: Service| svc.spec.unwrap().ports.unwrap()[0].node_port.unwrap();
    let mut ports = Vec::new();
    let mut uids = Vec::new();
    for c in ["gpu-general", "edge-cpu"] {
        let m = member(&h, c).await;
        let svc: Service = m.get(Some(NS), &name).await.unwrap().unwrap();
        assert_eq!(svc.spec.as_ref().unwrap().type_.as_deref(), Some("NodePort"), "{c}");
        uids.push(svc.metadata.uid.clone().unwrap());
        ports.push((c, port_on(svc)));
    }
    let endpoints = |d: &Value| {
        let mut e: Vec<String> =
            d["deployment"]["endpoints"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()).collect();
        e.sort();
        e
    };
    let mut want: Vec<String> = ports.iter().map(|(_, p)| format!("http://127.0.0.1:{p}")).collect();
    want.sort();
    assert_eq!(endpoints(&detail(&admin, &h, &name).await), want, "the gateway reaches each member on its own port");
    // Deleted by hand on the hub, the Service comes back; its copies are new (Karmada withdrew
    // the old ones with the binding), their ports the members' choice again, and the endpoints
    // follow them.
    hub.delete::<Service>(Some(NS), &name).await.unwrap();
    let start = Instant::now();
    let fresh = loop {
        let mut now = Vec::new();
        for c in ["gpu-general", "edge-cpu"] {
            let m = member(&h, c).await;
            if let Some(svc) = m.get::<Service>(Some(NS), &name).await.unwrap() {
                let copy_is_new = !uids.contains(svc.metadata.uid.as_ref().unwrap());
                if let Some(p) = svc.spec.and_then(|s| s.ports?.first()?.node_port).filter(|_| copy_is_new) {
                    now.push(format!("http://127.0.0.1:{p}"));
                }
            }
        }
        now.sort();
        let d = detail(&admin, &h, &name).await;
        if now.len() == 2 && endpoints(&d) == now && d["deployment"]["phase"] == "running" {
            break now;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the Service and the endpoints back: {now:?} {d}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for e in &fresh {
        assert_eq!(chat(e, "llama3.2:1b").await["object"], "chat.completion", "{e}");
    }
}
