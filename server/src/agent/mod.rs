//! `hmas agent`: the entrypoint of H-MAS's wrapper images. It fetches the model with progress
//! (before the runtime, or through it for Ollama), starts the official runtime's command as its
//! child, answers one health and readiness endpoint whatever the runtime, exports the runtime's
//! metrics under uniform names, publishes progress and readiness on its pod, forwards signals
//! and stops the runtime cleanly.
mod endpoints;
mod fetch;
mod fetch_http;
mod metrics;
mod publish;
mod reap;
mod state;
mod supervise;

use crate::config::AgentArgs;
use app::models::runtime::{RuntimeKind, AGENT_MODEL_DIR, AGENT_PORT};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The agent's settings, resolved from flags and HMAS_* variables.
pub struct AgentConfig {
    pub runtime: RuntimeKind,
    pub model: String,
    pub runtime_port: u16,
    pub addr: SocketAddr,
    pub model_dir: PathBuf,
    pub hf_endpoint: String,
    pub hf_token: Option<String>,
    pub pod: Option<(String, String)>,
    pub kubeconfig: Option<PathBuf>,
    pub grace: Duration,
    pub fetch_only: bool,
    pub command: Vec<String>,
}

impl AgentConfig {
    pub fn resolve(a: &AgentArgs) -> Result<AgentConfig, String> {
        let runtime = RuntimeKind::parse(a.runtime.trim()).ok_or_else(|| {
            format!(
                "runtime: {:?} is not one of {}",
                a.runtime,
                RuntimeKind::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
            )
        })?;
        app::models::runtime::model_ref(a.model.trim()).map_err(|e| format!("model: {e}"))?;
        if a.command.is_empty() {
            return Err("command: give the runtime's command after `--`".into());
        }
        let pod = match (&a.pod_name, &a.pod_namespace) {
            (Some(n), Some(ns)) if !n.is_empty() && !ns.is_empty() => Some((ns.clone(), n.clone())),
            (None, None) => None,
            _ => return Err("pod-name and pod-namespace: give both or neither".into()),
        };
        let grace = a.shutdown_grace_secs.unwrap_or(50);
        if grace > 3600 {
            return Err("shutdown-grace-secs: must be at most 3600".into());
        }
        Ok(AgentConfig {
            runtime,
            model: a.model.trim().to_string(),
            runtime_port: a.runtime_port.unwrap_or(runtime.preset().port),
            addr: a.addr.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], AGENT_PORT))),
            model_dir: a.model_dir.clone().unwrap_or_else(|| PathBuf::from(AGENT_MODEL_DIR)),
            hf_endpoint: a.hf_endpoint.clone().unwrap_or_else(|| "https://huggingface.co".into()),
            hf_token: a.hf_token.clone().filter(|t| !t.is_empty()),
            pod,
            kubeconfig: a.kubeconfig.clone(),
            grace: Duration::from_secs(grace),
            fetch_only: a.fetch_only,
            command: a.command.clone(),
        })
    }
}

/// Runs the agent; the value is the process's exit code (the runtime's, when it ended it).
pub async fn run(cfg: AgentConfig) -> i32 {
    supervise::run(cfg).await
}
