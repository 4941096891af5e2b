//! Usage and the request log, written off the request path: requests hand their row to a queue,
//! a task folds the queue into per-minute usage and writes both in one transaction, a few times a
//! second at most.
use crate::store::{KeyStore, LogRecord, Store, UsageDelta, UsageStore};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

const QUEUE: usize = 65_536;
const SETTLE: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<LogRecord>,
}

pub struct RecorderTask {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl RecorderTask {
    /// Writes what is queued, then ends.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

impl Recorder {
    pub fn start(store: Store) -> (Recorder, RecorderTask) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(store, rx, stopped));
        (Recorder { tx }, RecorderTask { stop, task })
    }

    /// False when the queue is full (the database is behind); the row is dropped and counted.
    pub fn record(&self, r: LogRecord) -> bool {
        self.tx.try_send(r).is_ok()
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<LogRecord>, mut stopped: oneshot::Receiver<()>) {
    let mut batch = Vec::new();
    loop {
        let stopping = tokio::select! {
            r = rx.recv() => match r {
                Some(r) => { batch.push(r); false }
                None => true,
            },
            _ = &mut stopped => true,
        };
        if !stopping {
            // Let a burst gather into one transaction.
            tokio::time::sleep(SETTLE).await;
        }
        while let Ok(r) = rx.try_recv() {
            batch.push(r);
        }
        if !batch.is_empty() {
            write(&store, std::mem::take(&mut batch)).await;
        }
        if stopping {
            return;
        }
    }
}

async fn write(store: &Store, rows: Vec<LogRecord>) {
    let usage = fold(&rows);
    let mut used: HashMap<String, i64> = HashMap::new();
    for r in rows.iter().filter(|r| !r.key_id.is_empty()) {
        let at = used.entry(r.key_id.clone()).or_default();
        *at = (*at).max(r.at);
    }
    if let Err(e) = store.record_usage(&usage, &rows).await {
        tracing::warn!(error = %e, rows = rows.len(), "writing gateway usage");
    }
    if let Err(e) = store.touch_keys(&used.into_iter().collect::<Vec<_>>()).await {
        tracing::warn!(error = %e, "recording key use");
    }
}

/// Per (minute, key, user, deployment) sums of the rows.
pub fn fold(rows: &[LogRecord]) -> Vec<UsageDelta> {
    let mut m: HashMap<(i64, &str, &str, &str), UsageDelta> = HashMap::new();
    for r in rows {
        let minute = r.at - r.at.rem_euclid(60_000);
        let d = m.entry((minute, &r.key_id, &r.user_id, &r.deployment)).or_insert_with(|| UsageDelta {
            minute,
            key_id: r.key_id.clone(),
            user_id: r.user_id.clone(),
            deployment: r.deployment.clone(),
            ..Default::default()
        });
        d.requests += 1;
        if r.status >= 400 || r.outcome == "upstream_error" {
            d.errors += 1;
        }
        d.prompt_tokens += r.prompt_tokens;
        d.completion_tokens += r.completion_tokens;
    }
    let mut v: Vec<UsageDelta> = m.into_values().collect();
    v.sort_by(|a, b| (a.minute, &a.key_id, &a.deployment).cmp(&(b.minute, &b.key_id, &b.deployment)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_by_minute_key_and_deployment() {
        let row = |at: i64, key: &str, status: u16, p: i64, c: i64| LogRecord {
            at,
            key_id: key.into(),
            user_id: "u".into(),
            deployment: "d".into(),
            status,
            prompt_tokens: p,
            completion_tokens: c,
            outcome: "ok".into(),
            ..Default::default()
        };
        let v = fold(&[row(60_001, "a", 200, 1, 2), row(119_999, "a", 500, 0, 0), row(120_000, "a", 200, 5, 5)]);
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].minute, v[0].requests, v[0].errors, v[0].completion_tokens), (60_000, 2, 1, 2));
        assert_eq!((v[1].minute, v[1].prompt_tokens), (120_000, 5));
    }
}
