//! The runtime's own Prometheus metrics, read every few seconds and renamed into one vocabulary
//! (`hmas_runtime_*`), so one dashboard and one alert work whatever the runtime. Ollama exports
//! none; the agent's own figures (`hmas_agent_*`) are there for every runtime.
use super::state::Status;
use app::models::runtime::RuntimeKind;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Instant;

/// Uniform name, help, type, and the runtime's source series (summed over their labels).
type Row = (&'static str, &'static str, &'static str, &'static [&'static str]);

fn table(runtime: RuntimeKind) -> &'static [Row] {
    match runtime {
        RuntimeKind::Vllm => &[
            ("requests_running", "Requests being generated now.", "gauge", &["vllm:num_requests_running"]),
            ("requests_waiting", "Requests queued.", "gauge", &["vllm:num_requests_waiting"]),
            (
                "kv_cache_usage_ratio",
                "KV cache in use (0-1).",
                "gauge",
                &["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"],
            ),
            ("requests_total", "Requests finished.", "counter", &["vllm:request_success_total"]),
            ("prompt_tokens_total", "Prompt tokens processed.", "counter", &["vllm:prompt_tokens_total"]),
            ("generation_tokens_total", "Tokens generated.", "counter", &["vllm:generation_tokens_total"]),
        ],
        RuntimeKind::Sglang => &[
            ("requests_running", "Requests being generated now.", "gauge", &["sglang:num_running_reqs"]),
            ("requests_waiting", "Requests queued.", "gauge", &["sglang:num_queue_reqs"]),
            ("kv_cache_usage_ratio", "KV cache in use (0-1).", "gauge", &["sglang:token_usage"]),
            ("requests_total", "Requests finished.", "counter", &["sglang:num_requests_total"]),
            ("prompt_tokens_total", "Prompt tokens processed.", "counter", &["sglang:prompt_tokens_total"]),
            ("generation_tokens_total", "Tokens generated.", "counter", &["sglang:generation_tokens_total"]),
        ],
        RuntimeKind::Tgi => &[
            ("requests_running", "Requests being generated now.", "gauge", &["tgi_batch_current_size"]),
            ("requests_waiting", "Requests queued.", "gauge", &["tgi_queue_size"]),
            ("requests_total", "Requests finished.", "counter", &["tgi_request_success"]),
            ("prompt_tokens_total", "Prompt tokens processed.", "counter", &["tgi_request_input_length_sum"]),
            ("generation_tokens_total", "Tokens generated.", "counter", &["tgi_request_generated_tokens_sum"]),
        ],
        RuntimeKind::LlamaCpp => &[
            ("requests_running", "Requests being generated now.", "gauge", &["llamacpp:requests_processing"]),
            ("requests_waiting", "Requests queued.", "gauge", &["llamacpp:requests_deferred"]),
            ("kv_cache_usage_ratio", "KV cache in use (0-1).", "gauge", &["llamacpp:kv_cache_usage_ratio"]),
            ("prompt_tokens_total", "Prompt tokens processed.", "counter", &["llamacpp:prompt_tokens_total"]),
            ("generation_tokens_total", "Tokens generated.", "counter", &["llamacpp:tokens_predicted_total"]),
        ],
        RuntimeKind::Ollama => &[],
    }
}

/// Where the runtime serves its metrics, if it has any to translate.
pub fn path(runtime: RuntimeKind) -> Option<&'static str> {
    (!table(runtime).is_empty()).then_some("/metrics")
}

/// Sums of each series name in a Prometheus text exposition (labels summed over).
pub fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        let rest = match line[name_end..].strip_prefix('{') {
            Some(r) => r.rsplit_once('}').map(|(_, v)| v).unwrap_or(""),
            None => &line[name_end..],
        };
        if let Some(v) = rest.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) {
            *out.entry(name.to_string()).or_insert(0.0) += v;
        }
    }
    out
}

/// The last scrape, translated, and what tokens/s needs: the previous generation count.
#[derive(Default)]
pub struct Scraped {
    pub values: BTreeMap<&'static str, f64>,
    pub tokens_per_second: Option<f64>,
    last: Option<(Instant, f64)>,
    pub scrapes_failed: u64,
}

impl Scraped {
    pub fn take(&mut self, runtime: RuntimeKind, raw: &BTreeMap<String, f64>) {
        self.values.clear();
        for (name, _, _, sources) in table(runtime) {
            if let Some(v) = sources.iter().find_map(|s| raw.get(*s)) {
                self.values.insert(name, *v);
            }
        }
        if let Some(total) = self.values.get("generation_tokens_total").copied() {
            let now = Instant::now();
            if let Some((t, before)) = self.last {
                let dt = now.duration_since(t).as_secs_f64();
                if dt > 0.0 && total >= before {
                    self.tokens_per_second = Some((total - before) / dt);
                }
            }
            self.last = Some((now, total));
        }
    }
}

/// The agent's exposition: its own state, then the runtime's figures in H-MAS's names.
pub fn render(runtime: RuntimeKind, s: &Status, scraped: &Scraped, runtime_up: bool) -> String {
    let mut out = String::new();
    let labels = format!("runtime=\"{}\",model=\"{}\"", runtime.as_str(), s.model.replace(['"', '\\', '\n'], "_"));
    let mut metric = |name: &str, help: &str, kind: &str, value: f64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{{labels}}} {value}");
    };
    metric(
        "hmas_agent_model_fetch_progress_ratio",
        "Share of the model downloaded (0-1).",
        "gauge",
        s.progress as f64 / 100.0,
    );
    metric("hmas_agent_model_fetch_bytes", "Bytes of the model downloaded.", "gauge", s.bytes_done as f64);
    metric("hmas_agent_model_size_bytes", "Bytes of the model to download.", "gauge", s.bytes_total as f64);
    metric("hmas_agent_ready", "1 when the model is served.", "gauge", if s.ready() { 1.0 } else { 0.0 });
    metric(
        "hmas_agent_runtime_up",
        "1 when the runtime answers its health check.",
        "gauge",
        if runtime_up { 1.0 } else { 0.0 },
    );
    metric(
        "hmas_agent_runtime_scrape_failures_total",
        "Failed reads of the runtime's metrics.",
        "counter",
        scraped.scrapes_failed as f64,
    );
    for (name, help, kind, _) in table(runtime) {
        if let Some(v) = scraped.values.get(name) {
            metric(&format!("hmas_runtime_{name}"), help, kind, *v);
        }
    }
    if let Some(tps) = scraped.tokens_per_second {
        metric(
            "hmas_runtime_generation_tokens_per_second",
            "Tokens generated per second since the last scrape.",
            "gauge",
            tps,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_vllm_and_computes_rate() {
        let text = "# HELP vllm:num_requests_running x\n# TYPE vllm:num_requests_running gauge\n\
vllm:num_requests_running{model_name=\"m\"} 2.0\nvllm:num_requests_waiting{model_name=\"m\"} 1\n\
vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.25\nvllm:generation_tokens_total{model_name=\"m\"} 100\n\
vllm:request_success_total{finished_reason=\"stop\",model_name=\"m\"} 3\nvllm:request_success_total{finished_reason=\"length\",model_name=\"m\"} 1\n";
        let mut s = Scraped::default();
        s.take(RuntimeKind::Vllm, &parse(text));
        assert_eq!(s.values["requests_running"], 2.0);
        assert_eq!(s.values["kv_cache_usage_ratio"], 0.25);
        assert_eq!(s.values["requests_total"], 4.0);
        assert!(s.tokens_per_second.is_none());
        std::thread::sleep(std::time::Duration::from_millis(50));
        s.take(RuntimeKind::Vllm, &parse(&text.replace("} 100", "} 110")));
        assert!(s.tokens_per_second.unwrap() > 10.0);
        let status = super::super::state::Shared::new("vllm", "org/m").get();
        let out = render(RuntimeKind::Vllm, &status, &s, true);
        assert!(out.contains("hmas_runtime_requests_running{runtime=\"vllm\",model=\"org/m\"} 2"), "{out}");
        assert!(out.contains("hmas_runtime_generation_tokens_per_second{"), "{out}");
        assert!(out.contains("hmas_agent_ready{runtime=\"vllm\",model=\"org/m\"} 0"), "{out}");
    }
}
