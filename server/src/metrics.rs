//! Prometheus text exposition for HTTP traffic, by route template (never by raw path, so the
//! series count stays bounded).
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
pub(crate) struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// A histogram many threads observe without a lock: one counter per bucket (not cumulative
/// until read), the sum in microseconds.
#[derive(Default)]
pub(crate) struct AtomicHistogram {
    counts: [AtomicU64; BUCKETS.len()],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl AtomicHistogram {
    pub(crate) fn observe(&self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_us.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// What it holds now, as a histogram to render.
    pub(crate) fn snapshot(&self) -> Histogram {
        let mut h = Histogram::default();
        let mut below = 0;
        for (i, c) in self.counts.iter().enumerate() {
            below += c.load(Ordering::Relaxed);
            h.counts[i] = below;
        }
        h.sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        h.count = self.count.load(Ordering::Relaxed);
        h
    }
}

impl Histogram {
    pub(crate) fn observe(&mut self, seconds: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }

    /// The `_bucket`, `_sum` and `_count` lines of one series.
    pub(crate) fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {}", self.counts[i]);
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<(String, String), Histogram>,
    /// Failed reconcile passes by loop and error code.
    reconcile_failures: BTreeMap<(&'static str, &'static str), u64>,
}

#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Mutex<Inner>>,
    started: Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Self { inner: Arc::default(), started: Instant::now() }
    }
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *g.requests.entry((method.to_string(), route.to_string(), status)).or_default() += 1;
        g.latency.entry((method.to_string(), route.to_string())).or_default().observe(seconds);
    }

    pub fn reconcile_failed(&self, what: &'static str, reason: &'static str) {
        *self.inner.lock().unwrap_or_else(|e| e.into_inner()).reconcile_failures.entry((what, reason)).or_default() +=
            1;
    }

    pub fn render(&self) -> String {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let _ = writeln!(out, "# HELP hmas_build_info H-MAS version.\n# TYPE hmas_build_info gauge");
        let _ = writeln!(out, "hmas_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
        let _ = writeln!(
            out,
            "# HELP hmas_uptime_seconds Seconds since the process started.\n# TYPE hmas_uptime_seconds gauge"
        );
        let _ = writeln!(out, "hmas_uptime_seconds {:.3}", self.started.elapsed().as_secs_f64());
        let _ = writeln!(out, "# HELP hmas_http_requests_total HTTP requests by method, route and status.");
        let _ = writeln!(out, "# TYPE hmas_http_requests_total counter");
        for ((m, r, s), n) in &g.requests {
            let _ = writeln!(out, "hmas_http_requests_total{{method=\"{m}\",route=\"{}\",status=\"{s}\"}} {n}", esc(r));
        }
        let _ = writeln!(out, "# HELP hmas_http_request_duration_seconds HTTP request latency by method and route.");
        let _ = writeln!(out, "# TYPE hmas_http_request_duration_seconds histogram");
        for ((m, r), h) in &g.latency {
            h.render(&mut out, "hmas_http_request_duration_seconds", &format!("method=\"{m}\",route=\"{}\"", esc(r)));
        }
        let _ = writeln!(out, "# HELP hmas_reconcile_failures_total Failed reconcile passes by loop and reason.");
        let _ = writeln!(out, "# TYPE hmas_reconcile_failures_total counter");
        for ((what, reason), n) in &g.reconcile_failures {
            let _ = writeln!(out, "hmas_reconcile_failures_total{{loop=\"{what}\",reason=\"{reason}\"}} {n}");
        }
        out
    }
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

pub async fn track(State(m): State<Metrics>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path();
    // Server fns and static files are not axum routes of their own; name them by their stable
    // path (server fns) or a fixed label, never by an arbitrary raw path.
    let route = match req.extensions().get::<MatchedPath>() {
        Some(p) if !p.as_str().contains('*') => p.as_str().to_string(),
        _ if path.starts_with("/api/") && path.len() < 80 => path.to_string(),
        _ if path.starts_with("/pkg/") => "/pkg/*".to_string(),
        _ => "other".to_string(),
    };
    let res = next.run(req).await;
    m.observe(&method, &route, res.status().as_u16(), started.elapsed().as_secs_f64());
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.observe("GET", "/healthz", 200, 0.002);
        m.observe("GET", "/healthz", 200, 0.3);
        let t = m.render();
        assert!(t.contains("hmas_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"));
        assert!(
            t.contains("hmas_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"0.0025\"} 1")
        );
        assert!(
            t.contains("hmas_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"+Inf\"} 2")
        );
        assert!(t.contains("hmas_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\"} 2"));
    }
}
