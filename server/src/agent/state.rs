//! What the agent knows about its replica, shared by the fetcher, the supervisor, the publisher
//! and the HTTP endpoints.
use serde::Serialize;
use std::collections::VecDeque;
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

/// Something worth a Kubernetes Event on the pod: what `kubectl describe` and H-MAS's events
/// panel show. Told where it happens, so none is lost between two looks at the status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

/// Notes kept while nobody publishes them (no API access yet): the oldest go first.
const NOTES_KEPT: usize = 32;

/// The status and a channel that wakes whoever publishes it.
#[derive(Clone)]
pub struct Shared {
    inner: Arc<Mutex<Status>>,
    notes: Arc<Mutex<VecDeque<Note>>>,
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
            notes: Arc::default(),
            changed,
        }
    }

    pub fn note(&self, warning: bool, reason: &'static str, message: impl Into<String>) {
        {
            let mut q = self.notes.lock().unwrap_or_else(|e| e.into_inner());
            if q.len() == NOTES_KEPT {
                q.pop_front();
            }
            q.push_back(Note { warning, reason, message: message.into() });
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// The notes not yet taken, oldest first.
    pub fn take_notes(&self) -> Vec<Note> {
        self.notes.lock().unwrap_or_else(|e| e.into_inner()).drain(..).collect()
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

    /// A final failure, told as a Warning event too.
    pub fn fail(&self, reason: &'static str, message: impl Into<String>) {
        let message = message.into();
        self.note(true, reason, message.clone());
        self.stage(Stage::Failed, message);
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

/// Bytes as people read sizes of models: `48 MB`, `1.3 GB`.
pub fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000_000 => format!("{:.1} GB", b as f64 / 1e9),
        b if b >= 1_000_000 => format!("{} MB", b / 1_000_000),
        b => format!("{} kB", b.div_ceil(1000)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_the_hub_shows_them() {
        assert_eq!(size_text(48_000_000), "48 MB");
        assert_eq!(size_text(1_320_000_000), "1.3 GB");
        assert_eq!(size_text(1), "1 kB");
    }

    #[test]
    fn notes_wait_for_the_publisher_and_the_oldest_give_way() {
        let s = Shared::new("vllm", "m");
        for i in 0..NOTES_KEPT + 3 {
            s.note(false, "N", i.to_string());
        }
        let notes = s.take_notes();
        assert_eq!(notes.len(), NOTES_KEPT);
        assert_eq!(notes[0].message, "3");
        assert!(s.take_notes().is_empty());
        s.fail("ModelFetchFailed", "no such model");
        assert_eq!(s.get().stage, Stage::Failed);
        assert_eq!(
            s.take_notes(),
            [Note { warning: true, reason: "ModelFetchFailed", message: "no such model".into() }]
        );
    }
}
