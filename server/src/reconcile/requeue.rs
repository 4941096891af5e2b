//! What a reconciler does with a failure: a pass that fails is logged at warn when the failure
//! starts or changes (not on every tick of an outage) and counted by reason; one object that
//! fails is tried again after a delay that doubles with each failure, so a deployment the hub
//! keeps refusing neither floods the hub nor holds up the others.
use crate::metrics::Metrics;
use app::error::AppError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The first retry of a failed object, doubled per further failure up to `MAX_DELAY`.
const FIRST_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(30);

/// A whole pass's failures, for the loop that runs it.
pub struct Failing {
    what: &'static str,
    metrics: Metrics,
    last: Option<String>,
}

impl Failing {
    pub fn new(what: &'static str, metrics: &Metrics) -> Self {
        Self { what, metrics: metrics.clone(), last: None }
    }

    pub fn failed(&mut self, e: &AppError) {
        self.metrics.reconcile_failed(self.what, e.code.as_str());
        if self.last.as_deref() != Some(e.message.as_str()) {
            tracing::warn!(reconciler = self.what, error = %e, "reconcile pass failed; retrying");
            self.last = Some(e.message.clone());
        }
    }

    pub fn outcome<T>(&mut self, r: Result<T, AppError>) -> Option<T> {
        match r {
            Ok(v) => {
                if self.last.take().is_some() {
                    tracing::info!(reconciler = self.what, "reconcile pass succeeded again");
                }
                Some(v)
            }
            Err(e) => {
                self.failed(&e);
                None
            }
        }
    }
}

struct Attempt {
    generation: i64,
    failures: u32,
    not_before: Instant,
    error: String,
}

/// Per-object backoff of one reconciler, keyed by object name. A new generation of an object (the
/// operator changed it) is tried at once whatever its predecessor's failures.
#[derive(Clone)]
pub struct Requeue {
    what: &'static str,
    metrics: Metrics,
    attempts: Arc<Mutex<HashMap<String, Attempt>>>,
}

impl Requeue {
    pub fn new(what: &'static str, metrics: &Metrics) -> Self {
        Self { what, metrics: metrics.clone(), attempts: Default::default() }
    }

    /// Whether `name` at `generation` is due: never failed, changed since, or its delay is over.
    pub fn due(&self, name: &str, generation: i64) -> bool {
        let g = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        g.get(name).is_none_or(|a| a.generation != generation || Instant::now() >= a.not_before)
    }

    /// Records the outcome of one attempt: a failure is logged at warn with the object named
    /// when it is new or different, counted by reason, and delays the next attempt.
    pub fn record(&self, name: &str, generation: i64, r: &Result<(), AppError>) {
        let mut g = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        match r {
            Ok(()) => {
                if g.remove(name).is_some() {
                    tracing::info!(reconciler = self.what, object = name, "reconciled after failing");
                }
            }
            Err(e) => {
                self.metrics.reconcile_failed(self.what, e.code.as_str());
                let prev = g.remove(name).filter(|a| a.generation == generation);
                let failures = prev.as_ref().map_or(0, |a| a.failures) + 1;
                let delay = FIRST_DELAY.saturating_mul(1 << (failures - 1).min(16)).min(MAX_DELAY);
                if prev.as_ref().is_none_or(|a| a.error != e.message) {
                    tracing::warn!(reconciler = self.what, object = name, error = %e.message, retry_in_s = delay.as_secs(), "reconcile failed; will retry");
                }
                g.insert(
                    name.to_string(),
                    Attempt { generation, failures, not_before: Instant::now() + delay, error: e.message.clone() },
                );
            }
        }
    }

    /// Forgets an object that is gone.
    pub fn forget(&self, name: &str) {
        self.attempts.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
    }

    /// How many times in a row `name` has failed (0: not failing).
    pub fn failures(&self, name: &str) -> u32 {
        self.attempts.lock().unwrap_or_else(|e| e.into_inner()).get(name).map_or(0, |a| a.failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_object_waits_longer_each_time_and_a_new_generation_does_not() {
        let q = Requeue::new("deployments", &Metrics::default());
        assert!(q.due("a", 1));
        let refused = Err(AppError::new(app::error::ErrorCode::Invalid, "refused"));
        q.record("a", 1, &refused);
        assert!(!q.due("a", 1), "backing off after a failure");
        assert!(q.due("a", 2), "a changed object is tried at once");
        assert!(q.due("b", 1), "others are not held up");
        q.record("a", 1, &refused);
        assert_eq!(q.failures("a"), 2);
        let waits = q.attempts.lock().unwrap()["a"].not_before - Instant::now();
        assert!(waits > Duration::from_millis(1500) && waits <= Duration::from_secs(2), "{waits:?}");
        q.record("a", 1, &Ok(()));
        assert!(q.due("a", 1) && q.failures("a") == 0);
    }

    #[test]
    fn failures_are_counted_by_reason() {
        let m = Metrics::default();
        let q = Requeue::new("deployments", &m);
        q.record("a", 1, &Err(AppError::new(app::error::ErrorCode::Invalid, "refused")));
        assert!(m.render().contains("hmas_reconcile_failures_total{loop=\"deployments\",reason=\"invalid\"} 1"));
    }
}
