//! `hmas agent` as the wrapper images run it: a real agent process supervising a simulated
//! runtime process, fetching the model from a simulated Ollama registry or Hugging Face Hub,
//! publishing progress and readiness on its pod in a simulated member cluster (with the RBAC
//! H-MAS renders), serving its probes and metrics, and handling signals.
mod common;

use common::fleet::{detail, event_reasons, hub, member, register, running, sim_cluster, wait_for};
use common::{call, login, Hmas};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::Role;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PW: &str = "admin-password-1";
const NS: &str = "hmas-serving";
const HMAS: &str = env!("CARGO_BIN_EXE_hmas");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An agent process; stopped (SIGTERM, then SIGKILL) when dropped.
struct Agent {
    child: Child,
    log: PathBuf,
    base: String,
}

impl Agent {
    fn start(env: &[(&str, String)], command: &[String], log: &Path) -> Agent {
        let port = free_port();
        let mut cmd = Command::new(HMAS);
        cmd.arg("agent").arg("--").args(command);
        for k in ["HMAS_POD_NAME", "HMAS_POD_NAMESPACE", "HF_TOKEN", "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"]
        {
            cmd.env_remove(k);
        }
        cmd.env("HMAS_AGENT_ADDR", format!("127.0.0.1:{port}")).env("HMAS_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.stdout(Stdio::null()).stderr(std::fs::File::create(log).unwrap()).spawn().unwrap();
        Agent { child, log: log.to_path_buf(), base: format!("http://127.0.0.1:{port}") }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        assert!(Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success());
    }

    /// The exit code within `secs`, or a failure with the log.
    fn exit_within(&mut self, secs: u64) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            assert!(start.elapsed() < Duration::from_secs(secs), "agent still running; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        match reqwest::get(format!("{}{path}", self.base)).await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }

    async fn status(&self) -> (u16, Value) {
        let (s, body) = self.get("/readyz").await;
        (s, serde_json::from_str(&body).unwrap_or(Value::Null))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
            for _ in 0..100 {
                if self.child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A background process stopped when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sim_hub(rate: f64, size_mb: u64) -> (Proc, String) {
    let port = free_port();
    let child = Command::new(HMAS)
        .args(["sim-runtime", "hf-hub", "--port", &port.to_string()])
        .args(["--download-mb-per-second", &rate.to_string(), "--model-size-mb", &size_mb.to_string()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (Proc(child), url)
}

async fn until<T>(secs: u64, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A chat completion's status; `ignore_eos` makes the answer exactly `max_tokens` long.
async fn chat(base: &str, model: &str, max_tokens: u32, ignore_eos: bool) -> u16 {
    let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}],
                      "max_tokens": max_tokens, "ignore_eos": ignore_eos});
    let r = reqwest::Client::new().post(format!("{base}/v1/chat/completions")).json(&body).send().await.unwrap();
    r.status().as_u16()
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(&format!("{name}{{"))).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// An agent for Ollama's llama3.2:1b with its runtime on `port` and its cache in `dir`.
fn ollama_env(port: u16, dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("HMAS_RUNTIME", "ollama".to_string()),
        ("HMAS_MODEL", "llama3.2:1b".to_string()),
        ("HMAS_RUNTIME_PORT", port.to_string()),
        ("HMAS_MODEL_DIR", dir.display().to_string()),
        ("OLLAMA_MODELS", dir.join("models").display().to_string()),
    ]
}

/// A kubeconfig for the member that authenticates as the `hmas-agent` service account, with a
/// token the member's token controller issues (what the pod's mounted token is on a real node).
async fn agent_kubeconfig(h: &Hmas, cluster: &str, dir: &Path) -> PathBuf {
    let m = member(h, cluster).await;
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "hmas-agent-test-token", "namespace": NS,
                     "annotations": {"kubernetes.io/service-account.name": "hmas-agent"}},
        "type": "kubernetes.io/service-account-token"
    }))
    .unwrap();
    m.create(&secret).await.unwrap();
    let token = until(10, "the service account token", async || {
        let s: Secret = m.get(Some(NS), "hmas-agent-test-token").await.unwrap()?;
        let t = s.data?.get("token")?.0.clone();
        Some(String::from_utf8(t).unwrap())
    })
    .await;
    let mut kc: serde_yaml::Value = serde_yaml::from_str(&common::fleet::kubeconfig(h, cluster)).unwrap();
    kc["users"][0]["user"] = serde_yaml::to_value(json!({"token": token})).unwrap();
    let path = dir.join(format!("{cluster}-agent.kubeconfig"));
    std::fs::write(&path, serde_yaml::to_string(&kc).unwrap()).unwrap();
    path
}

#[tokio::test]
async fn agent_in_a_wrapper_pod_drives_the_progress_bar_and_readiness() {
    let h = Hmas::start(Some(PW));
    let admin = login(&h, "admin", PW).await;
    register(&admin, &h, "edge-cpu", "b").await;
    // The member's kubelet starts containers; real agents do the rest.
    let ctl = sim_cluster(&h, "edge-cpu", Some(json!({"externalAgents": true}))).await;
    assert_eq!(ctl["externalAgents"], true, "{ctl}");

    let spec = json!({"name": "agent-llama", "model": "llama3.2:1b", "runtime": "ollama", "replicas": 1,
                      "gpus_per_replica": 0, "clusters": ["edge-cpu"], "agent": true,
                      "settings": {"gpu_layers": "0"}});
    let (s, v) = call(&admin, &h, "/api/deployments/create", json!({"spec": spec})).await;
    assert_eq!(s, 200, "{v}");

    // What the hub got: the wrapper image run by the agent, its probes, the readiness gate.
    let d: Deployment = hub(&h).await.get(Some(NS), "agent-llama").await.unwrap().unwrap();
    let pod_spec = d.spec.unwrap().template.spec.unwrap();
    let c = &pod_spec.containers[0];
    assert!(c.image.as_deref().unwrap().contains("hmas-agent:") && c.image.as_deref().unwrap().ends_with("-ollama"));
    assert_eq!(c.args.as_ref().unwrap()[..3], ["--", "/bin/ollama", "serve"]);
    assert_eq!(c.readiness_probe.as_ref().unwrap().http_get.as_ref().unwrap().path.as_deref(), Some("/readyz"));
    assert_eq!(pod_spec.readiness_gates.unwrap()[0].condition_type, "hmas.io/model-ready");
    assert_eq!(pod_spec.service_account_name.as_deref(), Some("hmas-agent"));

    // The agent's account and Role reached the member with the deployment.
    let m = member(&h, "edge-cpu").await;
    until(15, "the agent's RBAC on the member", async || {
        let sa: Option<ServiceAccount> = m.get(Some(NS), "hmas-agent").await.unwrap();
        let role: Option<Role> = m.get(Some(NS), "hmas-agent").await.unwrap();
        (sa.is_some() && role.is_some()).then_some(())
    })
    .await;
    let pod = until(20, "the wrapper pod's container to start", async || {
        let pods: Vec<Pod> = m.list(Some(NS), Some("hmas.io/deployment=agent-llama")).await.unwrap();
        let p = pods.into_iter().next()?;
        (p.status.as_ref()?.phase.as_deref() == Some("Running")).then(|| p.metadata.name.unwrap())
    })
    .await;
    // Without an agent the replica waits: the kubelet no longer plays its part.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let d0 = detail(&admin, &h, "agent-llama").await;
    assert_ne!(d0["deployment"]["phase"], "running", "{d0}");

    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = agent_kubeconfig(&h, "edge-cpu", tmp.path()).await;
    let rt_port = free_port();
    let mut env = ollama_env(rt_port, tmp.path());
    env.extend([
        ("HMAS_PARAM_NUM_GPU", "0".to_string()),
        ("HMAS_POD_NAME", pod.clone()),
        ("HMAS_POD_NAMESPACE", NS.to_string()),
        ("HMAS_AGENT_KUBECONFIG", kubeconfig.display().to_string()),
    ]);
    let command: Vec<String> = [HMAS, "sim-runtime", "ollama", "--port", &rt_port.to_string()]
        .into_iter()
        .chain(["--download-mb-per-second", "8", "--model-size-mb", "48"])
        .map(String::from)
        .collect();
    let mut agent = Agent::start(&env, &command, &tmp.path().join("agent.log"));

    // Alive at once, not ready while it pulls; the dashboard's progress follows the agent's.
    until(10, "the agent's /healthz", async || (agent.get("/healthz").await.0 == 200).then_some(())).await;
    let (code, first) = agent.status().await;
    assert_eq!(code, 503, "{first}");
    let (_, seen) = wait_for(&admin, &h, "agent-llama", 40, running).await;
    let progress: Vec<i64> = seen.iter().filter(|(p, _)| p == "downloading").filter_map(|(_, pct)| *pct).collect();
    assert!(progress.len() >= 3, "the progress bar moved with the agent's pull: {seen:?}");
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "never backwards: {progress:?}");
    assert!(progress.iter().any(|p| (1..100).contains(p)), "{progress:?}");
    assert!(seen.iter().any(|(p, _)| p == "loading") || seen.iter().any(|(p, _)| p == "downloading"), "{seen:?}");
    let (code, ready) = agent.status().await;
    assert_eq!((code, ready["stage"].as_str(), ready["progress"].as_i64()), (200, Some("ready"), Some(100)), "{ready}");
    assert!(agent.log().contains("sim-runtime: created"), "Modelfile parameters applied: {}", agent.log());

    // The agent tells the story on its pod, as the simulated kubelet does for plain images.
    let d = until(10, "the agent's events in the deployment's panel", async || {
        let d = detail(&admin, &h, "agent-llama").await;
        event_reasons(&d, &pod).contains(&"ModelServed".to_string()).then_some(d)
    })
    .await;
    let reasons = event_reasons(&d, &pod);
    for r in ["DownloadingModel", "ModelDownloaded", "ModelServed"] {
        assert_eq!(reasons.iter().filter(|x| *x == r).count(), 1, "{r} once: {}", d["events"]);
    }
    let told = |reason: &str| {
        d["events"].as_array().unwrap().iter().find(|e| e["reason"] == reason).unwrap()["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(told("ModelDownloaded").starts_with("Downloaded model llama3.2:1b (48 MB) in "), "{}", d["events"]);
    assert_eq!(told("ModelServed"), "Ollama serves model llama3.2:1b");

    // The gate on the pod is the agent's; the replica serves through its endpoint.
    let p: Pod = m.get(Some(NS), &pod).await.unwrap().unwrap();
    let conds = p.status.unwrap().conditions.unwrap();
    let gate = conds.iter().find(|c| c.type_ == "hmas.io/model-ready").unwrap();
    assert_eq!((gate.status.as_str(), gate.reason.as_deref()), ("True", Some("ModelServed")));
    assert!(conds.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let endpoint = d["deployment"]["endpoints"][0].as_str().unwrap().to_string();
    assert_eq!(chat(&endpoint, "llama3.2:1b", 4, false).await, 200, "the replica's endpoint answers");
    let direct = format!("http://127.0.0.1:{rt_port}");
    assert_eq!(chat(&direct, "llama3.2:1b", 4, false).await, 200, "the runtime the agent started answers");
    let (_, metrics) = agent.get("/metrics").await;
    assert_eq!(metric(&metrics, "hmas_agent_ready"), Some(1.0), "{metrics}");
    assert_eq!(metric(&metrics, "hmas_agent_model_fetch_progress_ratio"), Some(1.0), "{metrics}");
    assert_eq!(metric(&metrics, "hmas_agent_model_size_bytes"), Some(48_000_000.0), "{metrics}");

    // SIGHUP reaches the runtime and changes nothing else.
    agent.signal("HUP");
    until(5, "the runtime to see SIGHUP", async || agent.log().contains("sim-runtime: SIGHUP received").then_some(()))
        .await;
    assert_eq!(agent.get("/readyz").await.0, 200);

    // SIGTERM: readiness withdrawn on the pod, the runtime stopped cleanly, exit 0.
    agent.signal("TERM");
    assert_eq!(agent.exit_within(10), 0, "{}", agent.log());
    let log = agent.log();
    assert!(log.contains("sim-runtime: SIGTERM received") && log.contains("sim-runtime: stopped"), "{log}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", rt_port)).is_err(), "the runtime is gone");
    let p: Pod = m.get(Some(NS), &pod).await.unwrap().unwrap();
    let gate = p.status.unwrap().conditions.unwrap().into_iter().find(|c| c.type_ == "hmas.io/model-ready").unwrap();
    assert_eq!((gate.status.as_str(), gate.reason.as_deref()), ("False", Some("ShuttingDown")));
    let evs: Vec<Event> = m.list(Some(NS), None).await.unwrap();
    let stopping = evs.iter().find(|e| e.reason.as_deref() == Some("Stopping")).expect("a Stopping event");
    assert_eq!(stopping.message.as_deref(), Some("SIGTERM received: stopping the runtime (grace 50s)"));
    assert_eq!(stopping.involved_object.uid, p.metadata.uid, "attached to this pod");
    assert_eq!(stopping.source.as_ref().unwrap().component.as_deref(), Some("hmas-agent"));
    until(10, "the replica to leave the endpoints", async || {
        let d = detail(&admin, &h, "agent-llama").await;
        (d["deployment"]["phase"] != "running").then_some(())
    })
    .await;
}

#[tokio::test]
async fn agent_fetches_from_the_hub_into_the_cache_and_translates_metrics() {
    let (_hub, hub_url) = sim_hub(12.0, 36);
    let tmp = tempfile::tempdir().unwrap();
    let hf_home = tmp.path().join("huggingface");
    let model = "Qwen/Qwen2.5-1.5B-Instruct";
    let rt_port = free_port();
    let env = |extra: &[(&'static str, String)]| {
        let mut v = vec![
            ("HMAS_RUNTIME", "vllm".to_string()),
            ("HMAS_MODEL", model.to_string()),
            ("HMAS_RUNTIME_PORT", rt_port.to_string()),
            ("HMAS_MODEL_DIR", tmp.path().display().to_string()),
            ("HF_HOME", hf_home.display().to_string()),
            ("HF_ENDPOINT", hub_url.clone()),
        ];
        v.extend(extra.iter().cloned());
        v
    };
    let command: Vec<String> =
        [HMAS, "sim-runtime", "vllm", model, "--host", "127.0.0.1", "--port", &rt_port.to_string()]
            .into_iter()
            .map(String::from)
            .collect();
    let mut agent = Agent::start(&env(&[]), &command, &tmp.path().join("a1.log"));
    let mut seen = Vec::new();
    let ready = until(20, "the model to download and the runtime to serve it", async || {
        let (code, s) = agent.status().await;
        if let Some(p) = s["progress"].as_i64() {
            if s["stage"] == "fetching" && seen.last() != Some(&p) {
                seen.push(p);
            }
        }
        (code == 200).then_some(s)
    })
    .await;
    assert!(seen.len() >= 3 && seen.windows(2).all(|w| w[0] < w[1]), "download progress: {seen:?}");
    assert_eq!(ready["bytes_total"].as_u64(), ready["bytes_done"].as_u64());
    assert!(ready["bytes_total"].as_u64().unwrap() > 36_000_000, "{ready}");
    // The layout the Hugging Face libraries read offline; README and the like are not fetched.
    let repo = hf_home.join("hub/models--Qwen--Qwen2.5-1.5B-Instruct");
    let commit = std::fs::read_to_string(repo.join("refs/main")).unwrap();
    let snapshot = repo.join("snapshots").join(commit.trim());
    let mut files: Vec<String> =
        std::fs::read_dir(&snapshot).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert_eq!(
        files,
        [
            "config.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "tokenizer.json",
            "tokenizer_config.json"
        ]
    );

    // Metrics: the runtime's own names become hmas_runtime_*, with a token rate.
    for _ in 0..3 {
        assert_eq!(chat(&format!("http://127.0.0.1:{rt_port}"), model, 20, true).await, 200);
    }
    let metrics = until(15, "two scrapes of the runtime's metrics", async || {
        let (_, m) = agent.get("/metrics").await;
        (metric(&m, "hmas_runtime_generation_tokens_total") == Some(60.0)
            && metric(&m, "hmas_runtime_generation_tokens_per_second").is_some())
        .then_some(m)
    })
    .await;
    assert_eq!(metric(&metrics, "hmas_runtime_requests_total"), Some(3.0), "{metrics}");
    assert_eq!(metric(&metrics, "hmas_runtime_requests_running"), Some(0.0), "{metrics}");
    assert_eq!(metric(&metrics, "hmas_agent_runtime_up"), Some(1.0), "{metrics}");
    assert!(metrics.contains("# TYPE hmas_runtime_generation_tokens_total counter"), "{metrics}");
    agent.signal("INT");
    assert_eq!(agent.exit_within(10), 0, "{}", agent.log());

    // A restart finds the model in the cache: no download, ready at once.
    let started = Instant::now();
    let mut again = Agent::start(&env(&[]), &command, &tmp.path().join("a2.log"));
    until(10, "ready from the cache", async || (again.status().await.0 == 200).then_some(())).await;
    assert!(started.elapsed() < Duration::from_secs(3), "cached start took {:?}", started.elapsed());

    // The runtime dying takes the agent with it, with the runtime's code (the kubelet restarts).
    let pid: i32 = again
        .log()
        .lines()
        .find(|l| l.contains("runtime started"))
        .and_then(|l| l.split("pid=").nth(1))
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).find(|s| !s.is_empty()).map(|s| s.parse().unwrap()))
        .unwrap_or_else(|| panic!("no pid in {}", again.log()));
    let pid = pid.to_string();
    assert!(Command::new("kill").args(["-KILL", pid.as_str()]).status().unwrap().success());
    assert_eq!(again.exit_within(10), 137, "{}", again.log());

    // A gated model without a token: a clear failure, not a hang.
    let gated = [("HMAS_MODEL", "org/gated-model".to_string())];
    let mut refused = Agent::start(&env(&gated), &command, &tmp.path().join("a3.log"));
    assert_eq!(refused.exit_within(10), 1);
    assert!(refused.log().contains("a gated model needs HF_TOKEN"), "{}", refused.log());
}

#[tokio::test]
async fn agent_gives_llama_cpp_the_downloaded_file_and_preloads_with_fetch_only() {
    let (_hub, hub_url) = sim_hub(200.0, 8);
    let tmp = tempfile::tempdir().unwrap();
    let model = "bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M";
    let rt_port = free_port();
    let env = vec![
        ("HMAS_RUNTIME", "llama_cpp".to_string()),
        ("HMAS_MODEL", model.to_string()),
        ("HMAS_RUNTIME_PORT", rt_port.to_string()),
        ("HMAS_MODEL_DIR", tmp.path().display().to_string()),
        ("HF_ENDPOINT", hub_url.clone()),
    ];
    let command: Vec<String> = [HMAS, "sim-runtime", "llama_cpp", "--port", &rt_port.to_string(), "--alias", model]
        .into_iter()
        .map(String::from)
        .collect();
    // Pre-load: fetch into the cache and exit 0, without starting the runtime.
    let mut fetch = Command::new(HMAS);
    fetch
        .args(["agent", "--fetch-only", "--"])
        .args(&command)
        .env("HMAS_AGENT_ADDR", format!("127.0.0.1:{}", free_port()));
    for (k, v) in &env {
        fetch.env(k, v);
    }
    let out = fetch.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let gguf = tmp.path().join("gguf/bartowski--Llama-3.2-1B-Instruct-GGUF/Llama-3.2-1B-Instruct-Q4_K_M.gguf");
    assert_eq!(std::fs::metadata(&gguf).unwrap().len(), 8_000_000);
    assert!(!tmp.path().join("gguf/bartowski--Llama-3.2-1B-Instruct-GGUF/Llama-3.2-1B-Instruct-Q8_0.gguf").exists());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("runtime started"));

    let agent = Agent::start(&env, &command, &tmp.path().join("l.log"));
    until(10, "llama.cpp to serve the file", async || (agent.status().await.0 == 200).then_some(())).await;
    assert!(agent.log().contains(&format!("--model {}", gguf.display())), "{}", agent.log());
}

#[test]
fn agent_refuses_bad_configuration_naming_the_setting() {
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut c = Command::new(HMAS);
        c.arg("agent").args(args);
        for k in ["HMAS_RUNTIME", "HMAS_MODEL", "HMAS_POD_NAME", "HMAS_POD_NAMESPACE"] {
            c.env_remove(k);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (code, err) = run(&[("HMAS_RUNTIME", "triton"), ("HMAS_MODEL", "m")], &["--", "true"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("runtime:") && err.contains("ollama, vllm, tgi, llama_cpp, sglang"), "{err}");
    let (code, err) = run(&[("HMAS_RUNTIME", "vllm"), ("HMAS_MODEL", "org/m; rm -rf /")], &["--", "true"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("model:"), "{err}");
    let (code, err) =
        run(&[("HMAS_RUNTIME", "vllm"), ("HMAS_MODEL", "org/m"), ("HMAS_POD_NAME", "p")], &["--", "true"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("pod-name and pod-namespace"), "{err}");
    let (code, _) = run(&[("HMAS_RUNTIME", "vllm"), ("HMAS_MODEL", "org/m")], &[]);
    assert_eq!(code, Some(2), "the runtime's command is required");
}

/// Exited children of `pid` not yet reaped.
fn zombies_of(pid: u32) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.ok()?.path().join("stat")).ok()?;
            let rest: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
            (rest.first() == Some(&"Z") && rest.get(1) == Some(&pid.to_string().as_str())).then_some(stat)
        })
        .collect()
}

#[tokio::test]
async fn agent_reaps_what_the_runtime_orphans() {
    let tmp = tempfile::tempdir().unwrap();
    let rt_port = free_port();
    let mut env = ollama_env(rt_port, tmp.path());
    env.push(("HMAS_LOG", "info,server::agent::reap=debug".to_string()));
    // A launcher that leaves a background helper behind, as runtimes' shell entrypoints do: the
    // helper's parent is gone at once, so when it exits nobody but the agent can reap it.
    let command: Vec<String> = ["sh", "-c", "(sleep 0.3 &); exec \"$0\" \"$@\"", HMAS, "sim-runtime", "ollama"]
        .into_iter()
        .chain(["--port", &rt_port.to_string(), "--download-mb-per-second", "100", "--model-size-mb", "2"])
        .map(String::from)
        .collect();
    let mut agent = Agent::start(&env, &command, &tmp.path().join("agent.log"));
    until(20, "the runtime to serve", async || (agent.status().await.0 == 200).then_some(())).await;
    until(5, "the orphan to be reaped", async || agent.log().contains("reaped an orphaned process").then_some(()))
        .await;
    assert_eq!(zombies_of(agent.child.id()), Vec::<String>::new(), "no zombies left under the agent");
    agent.signal("TERM");
    assert_eq!(agent.exit_within(10), 0, "{}", agent.log());
}
