//! The agent's life: serve the probes, fetch, start the runtime, watch it, and stop it when
//! asked, passing on every signal a runtime might act on.
use super::endpoints::{self, Probe};
use super::fetch::{self, HubSource};
use super::fetch_http::Http;
use super::metrics::{self, Scraped};
use super::publish::Publisher;
use super::reap;
use super::state::{Shared, Stage};
use super::AgentConfig;
use app::models::runtime::RuntimeKind;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio::signal::unix::{signal, Signal, SignalKind};

/// Signals passed on to the runtime; the first three also end the agent.
struct Signals {
    term: Signal,
    int: Signal,
    quit: Signal,
    hup: Signal,
    usr1: Signal,
    usr2: Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            quit: signal(SignalKind::quit())?,
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
            usr2: signal(SignalKind::user_defined2())?,
        })
    }

    /// The next signal, and whether it asks to stop.
    async fn next(&mut self) -> (i32, bool) {
        tokio::select! {
            _ = self.term.recv() => (libc::SIGTERM, true),
            _ = self.int.recv() => (libc::SIGINT, true),
            _ = self.quit.recv() => (libc::SIGQUIT, true),
            _ = self.hup.recv() => (libc::SIGHUP, false),
            _ = self.usr1.recv() => (libc::SIGUSR1, false),
            _ = self.usr2.recv() => (libc::SIGUSR2, false),
        }
    }
}

fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(9))
}

/// To the runtime's whole process group: launchers (TGI, SGLang) start workers of their own.
fn forward(child: &Child, sig: i32) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) with a process group id we created; no memory is touched.
        unsafe {
            libc::kill(-(pid as i32), sig);
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        _ => "signal",
    }
}

pub async fn run(cfg: AgentConfig) -> i32 {
    reap::become_subreaper();
    let state = Shared::new(cfg.runtime.as_str(), &cfg.model);
    let mut signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hmas agent: cannot handle signals: {e}");
            return 1;
        }
    };
    let http = match Http::new() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("hmas agent: {e}");
            return 1;
        }
    };
    let probe = Probe {
        state: state.clone(),
        runtime: cfg.runtime,
        scraped: Arc::new(Mutex::new(Scraped::default())),
        runtime_up: Arc::new(AtomicBool::new(false)),
    };
    let listener = match tokio::net::TcpListener::bind(cfg.addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hmas agent: listen on {}: {e}", cfg.addr);
            return 1;
        }
    };
    tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), runtime = cfg.runtime.as_str(), model = %cfg.model, "agent listening");
    let app = endpoints::router(probe.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let publisher = match &cfg.pod {
        Some((ns, name)) => match Publisher::connect(cfg.kubeconfig.as_deref(), ns, name).await {
            Ok(p) => Some(tokio::spawn(p.run(state.clone()))),
            Err(e) => {
                tracing::error!(error = %e, "cannot reach the Kubernetes API: progress and readiness stay on /readyz only");
                None
            }
        },
        None => None,
    };
    let code = life(&cfg, &http, &state, &probe, &mut signals).await;
    // Let the last status reach the pod before the process goes.
    if publisher.is_some() {
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    code
}

/// What the runtime's child process gets besides the container's environment.
fn runtime_env(cfg: &AgentConfig) -> Vec<(String, String)> {
    match cfg.runtime {
        // The agent fetched everything; the libraries must not go back to the network.
        RuntimeKind::Vllm | RuntimeKind::Tgi | RuntimeKind::Sglang => {
            vec![("HF_HUB_OFFLINE".into(), "1".into()), ("HF_ENDPOINT".into(), cfg.hf_endpoint.clone())]
        }
        _ => Vec::new(),
    }
}

async fn life(cfg: &AgentConfig, http: &Http, state: &Shared, probe: &Probe, signals: &mut Signals) -> i32 {
    let mut command = cfg.command.clone();
    if cfg.runtime != RuntimeKind::Ollama {
        state.stage(Stage::Fetching, format!("downloading {}", cfg.model));
        let src = HubSource { http, endpoint: &cfg.hf_endpoint, token: cfg.hf_token.as_deref() };
        let started = Instant::now();
        let fetched = tokio::select! {
            r = fetch::hub_download(&src, cfg.runtime, &cfg.model, &cfg.model_dir, state) => r,
            (sig, _) = signals.next() => {
                tracing::info!(signal = signal_name(sig), "stopping before the runtime started");
                state.stage(Stage::ShuttingDown, "stopped while downloading");
                return 128 + sig;
            }
        };
        match fetched {
            Ok((dir, files)) => {
                let s = state.get();
                tracing::info!(files = files.len(), bytes = s.bytes_total, seconds = started.elapsed().as_secs_f64(), dir = %dir.display(), "model fetched");
                if cfg.runtime == RuntimeKind::LlamaCpp {
                    let first = files.iter().map(|f| f.name.as_str()).min().unwrap_or_default();
                    command.extend(["--model".to_string(), dir.join(first).display().to_string()]);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "model download failed");
                state.fail("ModelFetchFailed", e);
                return 1;
            }
        }
        if cfg.fetch_only {
            state.stage(Stage::Ready, "model in the cache");
            return 0;
        }
        state.stage(Stage::Starting, "starting the runtime");
    }
    let mut child = match Command::new(&command[0])
        .args(&command[1..])
        .envs(runtime_env(cfg))
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("cannot start {}: {e}", command[0]);
            tracing::error!("{msg}");
            state.fail("RuntimeFailed", msg);
            return 127;
        }
    };
    tracing::info!(pid = child.id().unwrap_or(0), command = %command.join(" "), "runtime started");
    tokio::spawn(reap::orphans(child.id().unwrap_or(0)));
    let base = format!("http://127.0.0.1:{}", cfg.runtime_port);
    let watch = watch_runtime(cfg, http, state, probe, &base);
    tokio::pin!(watch);
    loop {
        tokio::select! {
            status = child.wait() => {
                let code = status.map(exit_code).unwrap_or(1);
                tracing::error!(code, "the runtime exited");
                state.fail("RuntimeExited", format!("The runtime exited with code {code}"));
                return if code == 0 { 1 } else { code };
            }
            (sig, stop) = signals.next() => {
                forward(&child, sig);
                if !stop {
                    tracing::info!(signal = signal_name(sig), "passed on to the runtime");
                    continue;
                }
                return shutdown(cfg, state, &mut child, sig).await;
            }
            done = &mut watch => {
                // Only a fetch-only run (or a failed pull) gets here; the runtime is not needed.
                if let Err(e) = &done {
                    state.fail("ModelFetchFailed", e.clone());
                    tracing::error!(error = %e, "model fetch failed");
                }
                forward(&child, libc::SIGTERM);
                let _ = tokio::time::timeout(cfg.grace, child.wait()).await;
                return if done.is_ok() { 0 } else { 1 };
            }
        }
    }
}

/// Readiness first goes to 503 (endpoints drop the replica), then the runtime gets the signal
/// and the grace period, then SIGKILL.
async fn shutdown(cfg: &AgentConfig, state: &Shared, child: &mut Child, sig: i32) -> i32 {
    state.stage(Stage::ShuttingDown, format!("{} received", signal_name(sig)));
    let grace = cfg.grace.as_secs();
    state.note(false, "Stopping", format!("{} received: stopping the runtime (grace {grace}s)", signal_name(sig)));
    tracing::info!(signal = signal_name(sig), grace_seconds = cfg.grace.as_secs(), "stopping the runtime");
    match tokio::time::timeout(cfg.grace, child.wait()).await {
        Ok(Ok(status)) => {
            let code = exit_code(status);
            tracing::info!(code, "the runtime stopped");
            // A runtime that exits on the signal it was sent stopped cleanly.
            if code == 128 + sig {
                0
            } else {
                code
            }
        }
        _ => {
            tracing::warn!("the runtime did not stop in time; killing it");
            forward(child, libc::SIGKILL);
            let _ = child.wait().await;
            128 + libc::SIGKILL
        }
    }
}

/// Waits for the runtime, pulls through it (Ollama), then checks health and scrapes metrics
/// for as long as it runs. Returns only in fetch-only mode, once the model is in the cache.
async fn watch_runtime(
    cfg: &AgentConfig,
    http: &Http,
    state: &Shared,
    probe: &Probe,
    base: &str,
) -> Result<(), String> {
    let preset = cfg.runtime.preset();
    let t = Duration::from_secs(5);
    if cfg.runtime == RuntimeKind::Ollama {
        state.stage(Stage::Fetching, "waiting for ollama serve");
        loop {
            if matches!(http.get_text(&format!("{base}/"), t).await, Ok((s, _)) if s.is_success()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        state.stage(Stage::Fetching, format!("pulling {}", cfg.model));
        let mut attempt = 0;
        loop {
            match fetch::ollama_pull(http, base, &cfg.model, state).await {
                Ok(()) => break,
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "pull failed; retrying");
                    state.update(|s| s.message = e);
                    tokio::time::sleep(Duration::from_secs(2 * attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
        if cfg.fetch_only {
            return Ok(());
        }
        state.stage(Stage::Starting, "model pulled; loading");
    }
    let models = format!("{base}{}/models", preset.openai_base);
    let mut failures = 0u32;
    let mut last_scrape = Instant::now() - Duration::from_secs(60);
    loop {
        let healthy = match cfg.runtime {
            // Ollama's root answers before a model exists: ready means the model is listed.
            RuntimeKind::Ollama => matches!(http.get_text(&format!("{base}/api/tags"), t).await,
                Ok((s, body)) if s.is_success() && lists(&body, &cfg.model)),
            _ => {
                matches!(http.get_text(&format!("{base}{}", preset.health_path), t).await, Ok((s, _)) if s.is_success())
                    && matches!(http.get_text(&models, t).await, Ok((s, _)) if s.is_success())
            }
        };
        probe.runtime_up.store(healthy, Ordering::Relaxed);
        let s = state.get();
        if healthy {
            failures = 0;
            // Stopping and failing are final: a runtime still answering during its grace period is not news.
            if !matches!(s.stage, Stage::Ready | Stage::ShuttingDown | Stage::Failed) {
                tracing::info!("model served; ready");
                state.complete();
                state.stage(Stage::Ready, "serving");
                state.note(false, "ModelServed", format!("{} serves model {}", cfg.runtime.preset().label, cfg.model));
            }
        } else if s.stage == Stage::Ready {
            failures += 1;
            if failures >= 3 {
                tracing::warn!("the runtime stopped answering its health check");
                state.stage(Stage::Unhealthy, "the runtime does not answer its health check");
                state.note(true, "RuntimeUnhealthy", "The runtime stopped answering its health check 3 times in a row");
            }
        }
        let scrape_due = healthy && last_scrape.elapsed() >= Duration::from_secs(5);
        if let Some(path) = metrics::path(cfg.runtime).filter(|_| scrape_due) {
            last_scrape = Instant::now();
            match http.get_text(&format!("{base}{path}"), t).await {
                Ok((st, body)) if st.is_success() => {
                    let raw = metrics::parse(&body);
                    probe.scraped.lock().unwrap_or_else(|e| e.into_inner()).take(cfg.runtime, &raw);
                }
                _ => probe.scraped.lock().unwrap_or_else(|e| e.into_inner()).scrapes_failed += 1,
            }
        }
        let pause = if state.get().ready() { 5 } else { 1 };
        tokio::time::sleep(Duration::from_secs(pause)).await;
    }
}

/// Whether Ollama's tag list has the model (a name without a tag means `:latest`).
fn lists(body: &str, model: &str) -> bool {
    let want = if model.contains(':') { model.to_string() } else { format!("{model}:latest") };
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["models"].as_array().cloned())
        .is_some_and(|ms| ms.iter().any(|m| m["name"] == want.as_str() || m["model"] == want.as_str()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ollama_tags() {
        let body = r#"{"models":[{"name":"llama3.2:1b","model":"llama3.2:1b"}]}"#;
        assert!(super::lists(body, "llama3.2:1b"));
        assert!(!super::lists(body, "llama3.2"));
        assert!(super::lists(r#"{"models":[{"name":"phi3:latest"}]}"#, "phi3"));
    }
}
