//! Gateway series for Prometheus: requests by status, latency and time-to-first-token histograms,
//! tokens, and open streams, by deployment and key id (never by key name or user input).
use crate::metrics::{esc, AtomicHistogram};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// The statuses the gateway answers with, counted without a lock; any other in `other`.
const STATUSES: [u16; 16] = [200, 201, 204, 400, 401, 403, 404, 408, 413, 422, 429, 500, 502, 503, 504, 499];

/// One deployment and key's counters: every request updates them, so they are atomics and the
/// series is found under a read lock (a write lock only for a new series).
#[derive(Default)]
struct Series {
    by_status: [AtomicU64; STATUSES.len()],
    other: Mutex<BTreeMap<u16, u64>>,
    latency: AtomicHistogram,
    ttft: AtomicHistogram,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
}

impl Series {
    fn statuses(&self) -> BTreeMap<u16, u64> {
        let mut all = self.other.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (i, st) in STATUSES.iter().enumerate() {
            let n = self.by_status[i].load(Ordering::Relaxed);
            if n > 0 {
                all.insert(*st, n);
            }
        }
        all
    }
}

#[derive(Default)]
pub struct GatewayMetrics {
    /// By deployment, then key: looked up by `&str`, allocated only for a new series.
    series: RwLock<HashMap<String, HashMap<String, Arc<Series>>>>,
    streams: Mutex<BTreeMap<String, i64>>,
    pub dropped_records: AtomicU64,
}

pub struct Observation<'a> {
    pub deployment: &'a str,
    pub key: &'a str,
    pub status: u16,
    pub seconds: f64,
    pub ttft: Option<f64>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl GatewayMetrics {
    fn series(&self, deployment: &str, key: &str) -> Arc<Series> {
        if let Some(s) = self.series.read().unwrap_or_else(|e| e.into_inner()).get(deployment).and_then(|k| k.get(key))
        {
            return s.clone();
        }
        let mut g = self.series.write().unwrap_or_else(|e| e.into_inner());
        if !g.contains_key(deployment) {
            g.insert(deployment.to_string(), HashMap::new());
        }
        let by_key = g.get_mut(deployment).expect("inserted above");
        if !by_key.contains_key(key) {
            by_key.insert(key.to_string(), Arc::default());
        }
        by_key[key].clone()
    }

    pub fn observe(&self, o: &Observation) {
        let s = self.series(o.deployment, o.key);
        match STATUSES.iter().position(|st| *st == o.status) {
            Some(i) => {
                s.by_status[i].fetch_add(1, Ordering::Relaxed);
            }
            None => *s.other.lock().unwrap_or_else(|e| e.into_inner()).entry(o.status).or_default() += 1,
        }
        s.latency.observe(o.seconds);
        if let Some(t) = o.ttft {
            s.ttft.observe(t);
        }
        s.prompt_tokens.fetch_add(o.prompt_tokens, Ordering::Relaxed);
        s.completion_tokens.fetch_add(o.completion_tokens, Ordering::Relaxed);
    }

    pub fn stream_opened(&self, deployment: &str) {
        *self.streams.lock().unwrap_or_else(|e| e.into_inner()).entry(deployment.to_string()).or_default() += 1;
    }

    pub fn stream_closed(&self, deployment: &str) {
        *self.streams.lock().unwrap_or_else(|e| e.into_inner()).entry(deployment.to_string()).or_default() -= 1;
    }

    pub fn render(&self, out: &mut String) {
        // Sorted, so the exposition is stable from one scrape to the next.
        let g: BTreeMap<(String, String), Arc<Series>> = self
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .flat_map(|(d, ks)| ks.iter().map(move |(k, s)| ((d.clone(), k.clone()), s.clone())))
            .collect();
        let all = || g.iter().map(|((d, k), s)| ((d.as_str(), k.as_str()), s));
        let labels = |d: &str, k: &str| format!("deployment=\"{}\",key=\"{}\"", esc(d), esc(k));
        let _ = writeln!(out, "# HELP hmas_gateway_requests_total Gateway requests by deployment, key id and status.");
        let _ = writeln!(out, "# TYPE hmas_gateway_requests_total counter");
        for ((d, k), s) in all() {
            for (status, n) in &s.statuses() {
                let _ = writeln!(out, "hmas_gateway_requests_total{{{},status=\"{status}\"}} {n}", labels(d, k));
            }
        }
        let _ = writeln!(out, "# HELP hmas_gateway_errors_total Gateway requests answered with 4xx or 5xx.");
        let _ = writeln!(out, "# TYPE hmas_gateway_errors_total counter");
        for ((d, k), s) in all() {
            let n: u64 = s.statuses().iter().filter(|(st, _)| **st >= 400).map(|(_, n)| n).sum();
            let _ = writeln!(out, "hmas_gateway_errors_total{{{}}} {n}", labels(d, k));
        }
        let _ = writeln!(
            out,
            "# HELP hmas_gateway_request_duration_seconds Gateway request latency to the last byte.\n# TYPE hmas_gateway_request_duration_seconds histogram"
        );
        for ((d, k), s) in all() {
            s.latency.snapshot().render(out, "hmas_gateway_request_duration_seconds", &labels(d, k));
        }
        let _ = writeln!(
            out,
            "# HELP hmas_gateway_ttft_seconds Time to the first streamed byte.\n# TYPE hmas_gateway_ttft_seconds histogram"
        );
        for ((d, k), s) in all() {
            s.ttft.snapshot().render(out, "hmas_gateway_ttft_seconds", &labels(d, k));
        }
        let _ = writeln!(out, "# HELP hmas_gateway_tokens_total Tokens by kind (prompt, completion).");
        let _ = writeln!(out, "# TYPE hmas_gateway_tokens_total counter");
        for ((d, k), s) in all() {
            let l = labels(d, k);
            let (p, c) = (s.prompt_tokens.load(Ordering::Relaxed), s.completion_tokens.load(Ordering::Relaxed));
            let _ = writeln!(out, "hmas_gateway_tokens_total{{{l},kind=\"prompt\"}} {p}");
            let _ = writeln!(out, "hmas_gateway_tokens_total{{{l},kind=\"completion\"}} {c}");
        }
        drop(g);
        let _ = writeln!(out, "# HELP hmas_gateway_streams_open Streaming responses in flight.");
        let _ = writeln!(out, "# TYPE hmas_gateway_streams_open gauge");
        for (d, n) in self.streams.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "hmas_gateway_streams_open{{deployment=\"{}\"}} {n}", esc(d));
        }
        let _ = writeln!(
            out,
            "# HELP hmas_gateway_records_dropped_total Request log rows dropped because the database fell behind."
        );
        let _ = writeln!(out, "# TYPE hmas_gateway_records_dropped_total counter");
        let _ = writeln!(out, "hmas_gateway_records_dropped_total {}", self.dropped_records.load(Ordering::Relaxed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_series() {
        let m = GatewayMetrics::default();
        let o = Observation {
            deployment: "llama",
            key: "k1",
            status: 200,
            seconds: 0.2,
            ttft: Some(0.05),
            prompt_tokens: 3,
            completion_tokens: 7,
        };
        m.observe(&o);
        m.observe(&Observation { status: 429, ttft: None, ..o });
        m.observe(&Observation { status: 418, ttft: None, seconds: 20.0, ..o });
        m.stream_opened("llama");
        let mut t = String::new();
        m.render(&mut t);
        assert!(t.contains("hmas_gateway_requests_total{deployment=\"llama\",key=\"k1\",status=\"200\"} 1"), "{t}");
        assert!(t.contains("hmas_gateway_requests_total{deployment=\"llama\",key=\"k1\",status=\"418\"} 1"), "{t}");
        assert!(t.contains("hmas_gateway_errors_total{deployment=\"llama\",key=\"k1\"} 2"));
        // Cumulative buckets: 0.2 s in le=0.25 and up; 20 s only in +Inf.
        let bucket = |le: &str| {
            format!("hmas_gateway_request_duration_seconds_bucket{{deployment=\"llama\",key=\"k1\",le=\"{le}\"}}")
        };
        assert!(t.contains(&format!("{} 2", bucket("0.25"))) && t.contains(&format!("{} 2", bucket("10"))), "{t}");
        assert!(t.contains(&format!("{} 3", bucket("+Inf"))), "{t}");
        assert!(t.contains("hmas_gateway_request_duration_seconds_sum{deployment=\"llama\",key=\"k1\"} 20.4"), "{t}");
        assert!(t.contains("hmas_gateway_ttft_seconds_count{deployment=\"llama\",key=\"k1\"} 1"));
        assert!(t.contains("hmas_gateway_tokens_total{deployment=\"llama\",key=\"k1\",kind=\"completion\"} 21"));
        assert!(t.contains("hmas_gateway_streams_open{deployment=\"llama\"} 1"));
    }
}
