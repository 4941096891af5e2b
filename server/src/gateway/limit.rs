//! Per-key limits on requests and tokens per minute: token buckets that refill continuously, so
//! a key that hit its limit recovers gradually instead of at the next minute boundary.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

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
}

/// Which limit refused a request, and when to retry.
#[derive(Debug, PartialEq, Eq)]
pub struct Limited {
    pub what: &'static str,
    pub retry_after: u64,
}

impl Limiter {
    /// Takes one request from the key's allowance; refuses while either bucket is empty. Tokens
    /// are only known after the answer, so the token bucket may go below zero and then refuses
    /// until it refills.
    pub fn admit(&self, key: &str, rpm: Option<u32>, tpm: Option<u32>) -> Result<(), Limited> {
        if rpm.is_none() && tpm.is_none() {
            return Ok(());
        }
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
            l.admit("k", Some(3), None).unwrap();
        }
        let e = l.admit("k", Some(3), None).unwrap_err();
        assert_eq!(e.what, "requests per minute");
        assert!((1..=20).contains(&e.retry_after), "{e:?}");
        assert!(l.admit("other", Some(3), None).is_ok(), "keys are separate");
        assert!(l.admit("k", None, None).is_ok(), "no limits, no refusal");
    }

    #[test]
    fn tokens_go_negative_then_refuse() {
        let l = Limiter::default();
        l.admit("k", None, Some(100)).unwrap();
        l.spend_tokens("k", Some(100), 250);
        let e = l.admit("k", None, Some(100)).unwrap_err();
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
