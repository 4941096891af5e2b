//! What the agent knows about its replica, shared by the fetcher, the supervisor, the publisher
//! and the HTTP endpoints.
use serde::Serialize;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Downloading the model (the runtime may already run: Ollama pulls through it).
    Fetching,
    /// The model is there; the runtime starts and loads it.
    Starting,
    Ready,
    /// Was ready, the runtime stopped answering its health check.
    Unhealthy,
    ShuttingDown,
    Failed,
}

#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub stage: Stage,
    /// Percent of the model downloaded.
    pub progress: u8,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub message: String,
    pub runtime: String,
    pub model: String,
}

impl Status {
    pub fn ready(&self) -> bool {
        self.stage == Stage::Ready
    }
}

/// The status and a channel that wakes whoever publishes it.
#[derive(Clone)]
pub struct Shared {
    inner: Arc<Mutex<Status>>,
    changed: watch::Sender<u64>,
}

impl Shared {
    pub fn new(runtime: &str, model: &str) -> Shared {
        let (changed, _) = watch::channel(0);
        Shared {
            inner: Arc::new(Mutex::new(Status {
                stage: Stage::Fetching,
                progress: 0,
                bytes_done: 0,
                bytes_total: 0,
                message: "starting".into(),
                runtime: runtime.into(),
                model: model.into(),
            })),
            changed,
        }
    }

    pub fn get(&self) -> Status {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn update(&self, f: impl FnOnce(&mut Status)) {
        {
            let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut s);
        }
        self.changed.send_modify(|n| *n += 1);
    }

    pub fn stage(&self, stage: Stage, message: impl Into<String>) {
        let message = message.into();
        self.update(|s| {
            // Shutting down and failing are final.
            if !matches!(s.stage, Stage::ShuttingDown | Stage::Failed) {
                s.stage = stage;
                s.message = message;
            }
        });
    }

    /// The model is all there (also when the runtime fetched it without reporting bytes).
    pub fn complete(&self) {
        self.update(|s| {
            s.progress = 100;
            s.bytes_done = s.bytes_total;
        });
    }

    /// Bytes fetched so far of the total; the percentage never goes back.
    pub fn progress(&self, done: u64, total: u64) {
        self.update(|s| {
            s.bytes_done = done;
            s.bytes_total = total;
            let pct = (done.min(total) * 100).checked_div(total).unwrap_or(0) as u8;
            s.progress = s.progress.max(pct);
        });
    }
}
