//! The routing table: which model and deployment names lead to which ready endpoints. Rebuilt from
//! the observer's view every tick; an endpoint's load and health outlive the rebuilds.
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest an endpoint that stopped answering is left out before it is tried again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct Endpoint {
    /// `http://host:port`, without a trailing slash.
    pub base: String,
    outstanding: AtomicUsize,
    down_until_ms: AtomicI64,
    failures: AtomicU32,
}

impl Endpoint {
    fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            outstanding: AtomicUsize::new(0),
            down_until_ms: AtomicI64::new(0),
            failures: AtomicU32::new(0),
        }
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    fn is_down(&self, now: i64) -> bool {
        self.down_until_ms.load(Ordering::Relaxed) > now
    }

    /// It did not answer: leave it out for 1 s, doubling per consecutive failure.
    pub fn mark_failed(&self) {
        let n = self.failures.fetch_add(1, Ordering::Relaxed).min(5);
        let backoff = (Duration::from_secs(1) * 2u32.pow(n)).min(MAX_BACKOFF);
        self.down_until_ms.store(now_ms() + backoff.as_millis() as i64, Ordering::Relaxed);
    }

    pub fn mark_ok(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
            self.down_until_ms.store(0, Ordering::Relaxed);
        }
    }
}

/// Counts a request against its endpoint for as long as it lives (to the end of the response).
pub struct InFlight(pub Arc<Endpoint>);

impl InFlight {
    pub fn new(e: Arc<Endpoint>) -> Self {
        e.outstanding.fetch_add(1, Ordering::Relaxed);
        Self(e)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One deployment (or a configured upstream) as the gateway sees it.
pub struct Route {
    pub deployment: String,
    /// The model id the runtime serves, what clients put in `model`.
    pub model: String,
    pub runtime: String,
    pub endpoints: Vec<Arc<Endpoint>>,
    pub created: i64,
}

/// What a route is made from.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteSpec {
    pub deployment: String,
    pub model: String,
    pub runtime: String,
    pub endpoints: Vec<String>,
    pub created: i64,
}

#[derive(Default)]
pub struct RouteTable {
    pub by_deployment: HashMap<String, Arc<Route>>,
    by_model: HashMap<String, Vec<Arc<Route>>>,
}

impl RouteTable {
    /// Routes serving `model`: by model id first, then by deployment name.
    pub fn for_model(&self, model: &str) -> Option<Vec<Arc<Route>>> {
        if let Some(r) = self.by_model.get(model) {
            return Some(r.clone());
        }
        // Ollama answers to `name` for `name:latest`.
        if !model.contains(':') {
            if let Some(r) = self.by_model.get(&format!("{model}:latest")) {
                return Some(r.clone());
            }
        }
        self.by_deployment.get(model).map(|r| vec![r.clone()])
    }

    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.by_deployment.values()
    }
}

/// Keeps endpoint state across table rebuilds.
#[derive(Default)]
pub struct Registry {
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
}

impl Registry {
    pub fn build(&self, specs: &[RouteSpec]) -> RouteTable {
        let mut known = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        let mut used = HashMap::new();
        let mut table = RouteTable::default();
        for s in specs {
            let endpoints = s
                .endpoints
                .iter()
                .map(|b| {
                    let e = known.get(b).cloned().unwrap_or_else(|| Arc::new(Endpoint::new(b)));
                    used.insert(b.clone(), e.clone());
                    e
                })
                .collect();
            let route = Arc::new(Route {
                deployment: s.deployment.clone(),
                model: s.model.clone(),
                runtime: s.runtime.clone(),
                endpoints,
                created: s.created,
            });
            table.by_model.entry(s.model.clone()).or_default().push(route.clone());
            table.by_deployment.insert(s.deployment.clone(), route);
        }
        *known = used;
        table
    }
}

/// The endpoint to try next among `candidates`, skipping `tried`: the least loaded that is not
/// left out; if every one is left out, the least loaded anyway (better than refusing untried).
pub fn pick(candidates: &[Arc<Endpoint>], tried: &[Arc<Endpoint>], rotate: usize) -> Option<Arc<Endpoint>> {
    let now = now_ms();
    let open: Vec<&Arc<Endpoint>> = candidates.iter().filter(|c| !tried.iter().any(|t| Arc::ptr_eq(t, c))).collect();
    if open.is_empty() {
        return None;
    }
    let n = open.len();
    // Start at a rotating offset so ties spread instead of piling on the first.
    let ordered = (0..n).map(|i| open[(i + rotate) % n]);
    let up = ordered.clone().filter(|e| !e.is_down(now)).min_by_key(|e| e.outstanding());
    up.or_else(|| ordered.min_by_key(|e| e.outstanding())).cloned()
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(d: &str, m: &str, eps: &[&str]) -> RouteSpec {
        RouteSpec {
            deployment: d.into(),
            model: m.into(),
            runtime: "vllm".into(),
            endpoints: eps.iter().map(|s| s.to_string()).collect(),
            created: 0,
        }
    }

    #[test]
    fn resolves_by_model_then_name_and_keeps_state() {
        let reg = Registry::default();
        let t = reg.build(&[spec("llama", "llama3.2:1b", &["http://a:1"]), spec("q", "Qwen/Q", &["http://b:1/"])]);
        assert_eq!(t.for_model("llama3.2:1b").unwrap()[0].deployment, "llama");
        assert_eq!(t.for_model("q").unwrap()[0].model, "Qwen/Q");
        assert!(t.for_model("nope").is_none());
        assert_eq!(t.by_deployment["q"].endpoints[0].base, "http://b:1");
        let a = t.by_deployment["llama"].endpoints[0].clone();
        let _f = InFlight::new(a.clone());
        let t2 = reg.build(&[spec("llama", "llama3.2:1b", &["http://a:1"])]);
        assert_eq!(t2.by_deployment["llama"].endpoints[0].outstanding(), 1);
        let t = reg.build(&[spec("o", "phi3:latest", &[])]);
        assert_eq!(t.for_model("phi3").unwrap()[0].deployment, "o");
    }

    #[test]
    fn picks_least_loaded_and_skips_failed() {
        let reg = Registry::default();
        let t = reg.build(&[spec("d", "m", &["http://a:1", "http://b:1"])]);
        let eps = t.by_deployment["d"].endpoints.clone();
        let _busy = InFlight::new(eps[0].clone());
        for r in 0..4 {
            assert_eq!(pick(&eps, &[], r).unwrap().base, "http://b:1");
        }
        eps[1].mark_failed();
        assert_eq!(pick(&eps, &[], 0).unwrap().base, "http://a:1");
        assert_eq!(pick(&eps, &[eps[0].clone()], 0).unwrap().base, "http://b:1", "all left out: try anyway");
        assert!(pick(&eps, &eps, 0).is_none());
        eps[1].mark_ok();
        assert_eq!(pick(&eps, &[], 0).unwrap().base, "http://b:1");
        drop(_busy);
        let firsts: std::collections::HashSet<String> =
            (0..2).map(|r| pick(&eps, &[], r).unwrap().base.clone()).collect();
        assert_eq!(firsts.len(), 2, "ties spread");
    }
}
