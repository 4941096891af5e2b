//! Gateway series for Prometheus: requests by status, latency and time-to-first-token histograms,
//! tokens, and open streams, by deployment and key id (never by key name or user input).
use crate::metrics::{esc, Histogram};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Default)]
struct Series {
    by_status: BTreeMap<u16, u64>,
    latency: Histogram,
    ttft: Histogram,
    prompt_tokens: u64,
    completion_tokens: u64,
}

#[derive(Default)]
pub struct GatewayMetrics {
    /// By deployment, then key: looked up by `&str`, allocated only for a new series.
    series: Mutex<BTreeMap<String, BTreeMap<String, Series>>>,
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
    pub fn observe(&self, o: &Observation) {
        let mut g = self.series.lock().unwrap_or_else(|e| e.into_inner());
        if !g.contains_key(o.deployment) {
            g.insert(o.deployment.to_string(), BTreeMap::new());
        }
        let by_key = g.get_mut(o.deployment).expect("inserted above");
        if !by_key.contains_key(o.key) {
            by_key.insert(o.key.to_string(), Series::default());
        }
        let s = by_key.get_mut(o.key).expect("inserted above");
        *s.by_status.entry(o.status).or_default() += 1;
        s.latency.observe(o.seconds);
        if let Some(t) = o.ttft {
            s.ttft.observe(t);
        }
        s.prompt_tokens += o.prompt_tokens;
        s.completion_tokens += o.completion_tokens;
    }

    pub fn stream_opened(&self, deployment: &str) {
        *self.streams.lock().unwrap_or_else(|e| e.into_inner()).entry(deployment.to_string()).or_default() += 1;
    }

    pub fn stream_closed(&self, deployment: &str) {
        *self.streams.lock().unwrap_or_else(|e| e.into_inner()).entry(deployment.to_string()).or_default() -= 1;
    }

    pub fn render(&self, out: &mut String) {
        let g = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let all = || g.iter().flat_map(|(d, ks)| ks.iter().map(move |(k, s)| ((d, k), s)));
        let labels = |d: &str, k: &str| format!("deployment=\"{}\",key=\"{}\"", esc(d), esc(k));
        let _ = writeln!(out, "# HELP hmas_gateway_requests_total Gateway requests by deployment, key id and status.");
        let _ = writeln!(out, "# TYPE hmas_gateway_requests_total counter");
        for ((d, k), s) in all() {
            for (status, n) in &s.by_status {
                let _ = writeln!(out, "hmas_gateway_requests_total{{{},status=\"{status}\"}} {n}", labels(d, k));
            }
        }
        let _ = writeln!(out, "# HELP hmas_gateway_errors_total Gateway requests answered with 4xx or 5xx.");
        let _ = writeln!(out, "# TYPE hmas_gateway_errors_total counter");
        for ((d, k), s) in all() {
            let n: u64 = s.by_status.iter().filter(|(st, _)| **st >= 400).map(|(_, n)| n).sum();
            let _ = writeln!(out, "hmas_gateway_errors_total{{{}}} {n}", labels(d, k));
        }
        let _ = writeln!(
            out,
            "# HELP hmas_gateway_request_duration_seconds Gateway request latency to the last byte.\n# TYPE hmas_gateway_request_duration_seconds histogram"
        );
        for ((d, k), s) in all() {
            s.latency.render(out, "hmas_gateway_request_duration_seconds", &labels(d, k));
        }
        let _ = writeln!(
            out,
            "# HELP hmas_gateway_ttft_seconds Time to the first streamed byte.\n# TYPE hmas_gateway_ttft_seconds histogram"
        );
        for ((d, k), s) in all() {
            s.ttft.render(out, "hmas_gateway_ttft_seconds", &labels(d, k));
        }
        let _ = writeln!(out, "# HELP hmas_gateway_tokens_total Tokens by kind (prompt, completion).");
        let _ = writeln!(out, "# TYPE hmas_gateway_tokens_total counter");
        for ((d, k), s) in all() {
            let l = labels(d, k);
            let _ = writeln!(out, "hmas_gateway_tokens_total{{{l},kind=\"prompt\"}} {}", s.prompt_tokens);
            let _ = writeln!(out, "hmas_gateway_tokens_total{{{l},kind=\"completion\"}} {}", s.completion_tokens);
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
        m.stream_opened("llama");
        let mut t = String::new();
        m.render(&mut t);
        assert!(t.contains("hmas_gateway_requests_total{deployment=\"llama\",key=\"k1\",status=\"200\"} 1"), "{t}");
        assert!(t.contains("hmas_gateway_errors_total{deployment=\"llama\",key=\"k1\"} 1"));
        assert!(t.contains("hmas_gateway_ttft_seconds_count{deployment=\"llama\",key=\"k1\"} 1"));
        assert!(t.contains("hmas_gateway_tokens_total{deployment=\"llama\",key=\"k1\",kind=\"completion\"} 14"));
        assert!(t.contains("hmas_gateway_streams_open{deployment=\"llama\"} 1"));
    }
}
