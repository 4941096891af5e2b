//! Tells Kubernetes how the replica is doing, through its own pod: the download percentage in
//! the annotation H-MAS's status reader shows as the progress bar, the model-ready readiness
//! gate, and Events on the pod (downloading, downloaded, served, failures) for `kubectl describe`
//! and H-MAS's events panel. Needs `get`/`patch` on pods and pods/status and `create` on events
//! in its namespace (the `hmas-agent` Role).
use super::state::{Note, Shared, Stage, Status};
use crate::hub::names::PROGRESS_ANNOTATION;
use app::models::runtime::MODEL_READY_CONDITION;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Config};
use serde_json::json;
use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

/// Shown as the source of the agent's events.
const COMPONENT: &str = "hmas-agent";

pub struct Publisher {
    pods: Api<Pod>,
    events: Api<Event>,
    namespace: String,
    name: String,
    /// The pod's uid, read once, so events attach to this pod and not a namesake.
    uid: Option<String>,
}

impl Publisher {
    pub async fn connect(kubeconfig: Option<&Path>, namespace: &str, name: &str) -> Result<Publisher, String> {
        let config = match kubeconfig {
            Some(p) => {
                let kc = kube::config::Kubeconfig::read_from(p).map_err(|e| format!("{}: {e}", p.display()))?;
                Config::from_custom_kubeconfig(kc, &Default::default()).await.map_err(|e| e.to_string())?
            }
            None => Config::incluster().map_err(|e| format!("in-cluster service account: {e}"))?,
        };
        let client = Client::try_from(config).map_err(|e| e.to_string())?;
        Ok(Publisher {
            pods: Api::namespaced(client.clone(), namespace),
            events: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid: None,
        })
    }

    async fn event(&mut self, note: &Note) -> Result<(), kube::Error> {
        if self.uid.is_none() {
            self.uid = self.pods.get(&self.name).await?.metadata.uid;
        }
        let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let ev: Event = serde_json::from_value(json!({
            "metadata": {"generateName": format!("{}.", self.name), "namespace": self.namespace},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": self.name, "namespace": self.namespace, "uid": self.uid},
            "type": if note.warning { "Warning" } else { "Normal" },
            "reason": note.reason, "message": note.message, "count": 1,
            "firstTimestamp": now, "lastTimestamp": now,
            "source": {"component": COMPONENT}, "reportingComponent": COMPONENT, "reportingInstance": self.name,
        }))
        .expect("an Event built from its own fields");
        self.events.create(&PostParams::default(), &ev).await.map(|_| ())
    }

    async fn progress(&self, pct: u8) -> Result<(), kube::Error> {
        let patch = json!({"metadata": {"annotations": {PROGRESS_ANNOTATION: pct.to_string()}}});
        self.pods.patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch)).await.map(|_| ())
    }

    async fn ready(&self, s: &Status) -> Result<(), kube::Error> {
        let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let (status, reason) = if s.ready() { ("True", "ModelServed") } else { ("False", reason(s.stage)) };
        // Conditions merge by type in a strategic merge patch: the kubelet's own stay.
        let patch = json!({"status": {"conditions": [{
            "type": MODEL_READY_CONDITION, "status": status, "reason": reason,
            "message": s.message, "lastTransitionTime": now,
        }]}});
        self.pods.patch_status(&self.name, &PatchParams::default(), &Patch::Strategic(&patch)).await.map(|_| ())
    }

    /// Publishes every change: progress at most once a second (and always its last value),
    /// readiness at once. Failures are logged once per kind of failure and retried.
    pub async fn run(mut self, state: Shared) {
        let mut rx = state.subscribe();
        let mut notes: VecDeque<Note> = VecDeque::new();
        let mut sent_pct: Option<u8> = None;
        let mut sent_ready: Option<(bool, Stage)> = None;
        let mut last_sent = Instant::now() - Duration::from_secs(10);
        let mut last_error = String::new();
        loop {
            let s = state.get();
            let mut failed = None;
            let due = last_sent.elapsed() >= Duration::from_secs(1) || s.progress == 100;
            if sent_pct != Some(s.progress) && due {
                match self.progress(s.progress).await {
                    Ok(()) => {
                        sent_pct = Some(s.progress);
                        last_sent = Instant::now();
                    }
                    Err(e) => failed = Some(e.to_string()),
                }
            }
            let want = (s.ready(), s.stage);
            if sent_ready != Some(want) {
                match self.ready(&s).await {
                    Ok(()) => sent_ready = Some(want),
                    Err(e) => failed = Some(e.to_string()),
                }
            }
            notes.extend(state.take_notes());
            while let Some(note) = notes.front() {
                match self.event(note).await {
                    Ok(()) => {}
                    // Refused (an older Role without events, say): retrying cannot help.
                    Err(e @ kube::Error::Api(_)) => failed = Some(format!("event {}: {e}", note.reason)),
                    Err(e) => {
                        failed = Some(e.to_string());
                        break;
                    }
                }
                notes.pop_front();
            }
            let had_failure = failed.is_some();
            match failed {
                Some(e) if e != last_error => {
                    tracing::warn!(pod = %self.name, error = %e, "cannot publish status on the pod; retrying");
                    last_error = e;
                }
                Some(_) => {}
                None => last_error.clear(),
            }
            let pending = sent_pct != Some(state.get().progress) || had_failure || !notes.is_empty();
            let wait = if pending { Duration::from_millis(500) } else { Duration::from_secs(30) };
            let _ = tokio::time::timeout(wait, rx.changed()).await;
        }
    }
}

fn reason(stage: Stage) -> &'static str {
    match stage {
        Stage::Fetching => "FetchingModel",
        Stage::Starting => "LoadingModel",
        Stage::Ready => "ModelServed",
        Stage::Unhealthy => "RuntimeUnhealthy",
        Stage::ShuttingDown => "ShuttingDown",
        Stage::Failed => "Failed",
    }
}
