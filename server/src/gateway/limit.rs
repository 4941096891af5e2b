//! Per-key limits on requests and tokens per minute: token buckets that refill continuously, so
//! a key that hit its limit recovers gradually instead of at the next minute boundary.
//!
//! One process (SQLite) keeps the buckets in memory. Replicas on PostgreSQL share one bucket per
//! key in the database and lease from it in small pieces (a hundredth of the limit, at least
//! one): a replica spends its lease locally and goes back to the database only when it is used
//! up, so a busy key costs one query per lease, not per request, and the replicas together never
//! exceed the limit by more than their unspent leases.
use crate::store::{Backend, LimitStore, Store};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// An unspent lease older than this goes back unused (it is forgotten, not returned): a replica
/// that stopped seeing a key does not sit on its allowance.
const LEASE_TTL: Duration = Duration::from_secs(10);

struct Bucket {
    level: f64,
    at: Instant,
}

impl Bucket {
    fn full(limit: u32, now: Instant) -> Self {
        Self { level: limit as f64, at: now }
    }

    fn refill(&mut self, limit: u32, now: Instant) {
        let rate = limit as f64 / 60.0;
        self.level = (self.level + rate * now.duration_since(self.at).as_secs_f64()).min(limit as f64);
        self.at = now;
    }

    /// Seconds until the level reaches `need`.
    fn wait(&self, limit: u32, need: f64) -> u64 {
        let rate = limit as f64 / 60.0;
        ((need - self.level) / rate).ceil().max(1.0) as u64
    }
}

#[derive(Default)]
struct KeyBuckets {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

#[derive(Default)]
pub struct Limiter {
    keys: Mutex<HashMap<String, KeyBuckets>>,
    /// PostgreSQL: the buckets are the database's, and this replica holds leases on them.
    shared: Option<Shared>,
}

struct Shared {
    store: Store,
    held: Mutex<HashMap<String, Held>>,
    /// When a database failure was last logged (seconds since start), so an outage logs once.
    warned: AtomicU64,
    started: Instant,
}

#[derive(Default)]
struct Held {
    requests: Allowance,
    tokens: Allowance,
}

/// What this replica may still spend of a shared bucket; below zero, what it owes (tokens
/// counted after an answer).
#[derive(Default)]
struct Allowance {
    have: f64,
    at: Option<Instant>,
}

impl Allowance {
    fn fresh(&mut self, now: Instant) -> &mut Self {
        if self.have > 0.0 && self.at.is_some_and(|at| now.duration_since(at) > LEASE_TTL) {
            self.have = 0.0;
        }
        self
    }
}

#[derive(Clone, Copy, PartialEq)]
enum What {
    Requests,
    Tokens,
}

impl What {
    fn label(self) -> &'static str {
        match self {
            What::Requests => "requests per minute",
            What::Tokens => "tokens per minute",
        }
    }

    fn column(self) -> &'static str {
        match self {
            What::Requests => "requests",
            What::Tokens => "tokens",
        }
    }

    /// Whether `have` lets a request through: a whole request, or any token left.
    fn enough(self, have: f64) -> bool {
        match self {
            What::Requests => have >= 1.0,
            What::Tokens => have > 0.0,
        }
    }
}

impl Held {
    fn of(&mut self, what: What) -> &mut Allowance {
        match what {
            What::Requests => &mut self.requests,
            What::Tokens => &mut self.tokens,
        }
    }
}

impl Shared {
    /// Lets one request through on `what`'s allowance (taking one request from it), leasing
    /// more from the database when the allowance is spent.
    async fn pass(&self, key: &str, what: What, limit: u32) -> Result<(), Limited> {
        let take = if what == What::Requests { 1.0 } else { 0.0 };
        let now = Instant::now();
        let have = {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            let a = held.entry(key.to_string()).or_default().of(what).fresh(now);
            if what.enough(a.have) {
                a.have -= take;
                return Ok(());
            }
            a.have
        };
        let chunk = (f64::from(limit) / 100.0).floor().max(1.0);
        // What is owed first, then a whole lease.
        let want = (1.0 - have).ceil().max(1.0) - 1.0 + chunk;
        let lease = match self.store.lease(key, what.column(), limit, want).await {
            Ok(l) => l,
            Err(e) => {
                // An unreachable database does not stop the gateway: the limit is not enforced
                // until it answers again, and the log says so once.
                let at = self.started.elapsed().as_secs() + 1;
                let last = self.warned.load(Ordering::Relaxed);
                if (last == 0 || at >= last + 60)
                    && self.warned.compare_exchange(last, at, Ordering::Relaxed, Ordering::Relaxed).is_ok()
                {
                    tracing::warn!(error = %e, "shared rate limits unavailable; not enforced until the database answers");
                }
                return Ok(());
            }
        };
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let a = held.entry(key.to_string()).or_default().of(what);
        a.have += lease.granted;
        a.at = Some(Instant::now());
        if what.enough(a.have) {
            a.have -= take;
            return Ok(());
        }
        let rate = f64::from(limit) / 60.0;
        let missing = 1.0 - a.have - lease.left;
        Err(Limited { what: what.label(), retry_after: (missing / rate).ceil().max(1.0) as u64 })
    }
}

/// Which limit refused a request, and when to retry.
#[derive(Debug, PartialEq, Eq)]
pub struct Limited {
    pub what: &'static str,
    pub retry_after: u64,
}

impl Limiter {
    /// Shared buckets on PostgreSQL, this process's own on SQLite.
    pub fn for_store(store: &Store) -> Self {
        let shared = (store.backend() == Backend::Postgres).then(|| Shared {
            store: store.clone(),
            held: Mutex::default(),
            warned: AtomicU64::new(0),
            started: Instant::now(),
        });
        Self { keys: Mutex::default(), shared }
    }

    /// Takes one request from the key's allowance; refuses while either bucket is empty. Tokens
    /// are only known after the answer, so the token bucket may go below zero and then refuses
    /// until it refills.
    pub async fn admit(&self, key: &str, rpm: Option<u32>, tpm: Option<u32>) -> Result<(), Limited> {
        if rpm.is_none() && tpm.is_none() {
            return Ok(());
        }
        if let Some(s) = &self.shared {
            if let Some(limit) = tpm {
                s.pass(key, What::Tokens, limit).await?;
            }
            if let Some(limit) = rpm {
                s.pass(key, What::Requests, limit).await?;
            }
            return Ok(());
        }
        self.admit_here(key, rpm, tpm)
    }

    fn admit_here(&self, key: &str, rpm: Option<u32>, tpm: Option<u32>) -> Result<(), Limited> {
        let now = Instant::now();
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if !keys.contains_key(key) {
            keys.insert(key.to_string(), KeyBuckets::default());
        }
        let b = keys.get_mut(key).expect("inserted above");
        if let Some(limit) = tpm {
            let t = b.tokens.get_or_insert_with(|| Bucket::full(limit, now));
            t.refill(limit, now);
            if t.level <= 0.0 {
                return Err(Limited { what: "tokens per minute", retry_after: t.wait(limit, 1.0) });
            }
        }
        if let Some(limit) = rpm {
            let r = b.requests.get_or_insert_with(|| Bucket::full(limit, now));
            r.refill(limit, now);
            if r.level < 1.0 {
                return Err(Limited { what: "requests per minute", retry_after: r.wait(limit, 1.0) });
            }
            r.level -= 1.0;
        }
        Ok(())
    }

    pub fn spend_tokens(&self, key: &str, tpm: Option<u32>, tokens: u64) {
        let Some(limit) = tpm else { return };
        if let Some(s) = &self.shared {
            let mut held = s.held.lock().unwrap_or_else(|e| e.into_inner());
            held.entry(key.to_string()).or_default().tokens.have -= tokens as f64;
            return;
        }
        let now = Instant::now();
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let t = keys.entry(key.to_string()).or_default().tokens.get_or_insert_with(|| Bucket::full(limit, now));
        t.refill(limit, now);
        t.level -= tokens as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_then_refusal_with_retry_after() {
        let l = Limiter::default();
        for _ in 0..3 {
            l.admit_here("k", Some(3), None).unwrap();
        }
        let e = l.admit_here("k", Some(3), None).unwrap_err();
        assert_eq!(e.what, "requests per minute");
        assert!((1..=20).contains(&e.retry_after), "{e:?}");
        assert!(l.admit_here("other", Some(3), None).is_ok(), "keys are separate");
        assert!(l.admit_here("k", None, None).is_ok(), "no limits, no refusal");
    }

    #[test]
    fn tokens_go_negative_then_refuse() {
        let l = Limiter::default();
        l.admit_here("k", None, Some(100)).unwrap();
        l.spend_tokens("k", Some(100), 250);
        let e = l.admit_here("k", None, Some(100)).unwrap_err();
        assert_eq!(e.what, "tokens per minute");
        assert!(e.retry_after >= 90, "{e:?}");
    }

    #[test]
    fn refills_over_time() {
        let mut b = Bucket { level: 0.0, at: Instant::now() - std::time::Duration::from_secs(30) };
        b.refill(60, Instant::now());
        assert!((29.0..=31.0).contains(&b.level), "{}", b.level);
        b.refill(60, Instant::now() + std::time::Duration::from_secs(600));
        assert_eq!(b.level, 60.0);
    }
}
