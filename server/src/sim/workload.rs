//! What a pod runs, read the way the real runtime would read it: the image says which model
//! server, the command line and environment say which model.
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Ollama,
    Vllm,
    Tgi,
    LlamaCpp,
    Sglang,
    /// Any other image: runs, serves nothing.
    Other,
}

impl Runtime {
    pub fn from_image(image: &str) -> Runtime {
        let i = image.to_ascii_lowercase();
        if i.contains("ollama") {
            Runtime::Ollama
        } else if i.contains("vllm") {
            Runtime::Vllm
        } else if i.contains("text-generation-inference") {
            Runtime::Tgi
        } else if i.contains("llama.cpp") || i.contains("llama-cpp") || i.contains("llamacpp") {
            Runtime::LlamaCpp
        } else if i.contains("sglang") {
            Runtime::Sglang
        } else {
            Runtime::Other
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    pub runtime: Runtime,
    pub model: Option<String>,
    pub image: String,
    /// Whether this pod runs to completion (a Job's pod, e.g. a cache pre-load).
    pub completes: bool,
    pub gpus: u64,
    /// The server's own command-line words (its arguments, when no shell stands in between).
    pub flags: Vec<String>,
    /// The container's script gives up when the model pull fails (`pull … || exit`).
    pub exits_on_failed_pull: bool,
    /// An H-MAS agent wraps the server (it fetches the model and starts the server itself).
    pub wrapped: bool,
}

fn words(c: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["command", "args"] {
        if let Some(a) = c.get(key).and_then(Value::as_array) {
            for w in a.iter().filter_map(Value::as_str) {
                // A shell script in one argument: split it into words too.
                out.extend(
                    w.split(|ch: char| ch.is_whitespace() || ch == ';' || ch == '&')
                        .filter(|s| !s.is_empty())
                        .map(String::from),
                );
            }
        }
    }
    out
}

fn env(c: &Value, name: &str) -> Option<String> {
    c.get("env")?.as_array()?.iter().find(|e| e["name"] == name)?.get("value")?.as_str().map(String::from)
}

fn expand(word: &str, c: &Value) -> String {
    let w = word.trim_matches('"');
    let var = w
        .strip_prefix("$(")
        .and_then(|v| v.strip_suffix(')'))
        .or_else(|| w.strip_prefix("${").and_then(|v| v.strip_suffix('}')))
        .or_else(|| w.strip_prefix('$'));
    match var {
        Some(v) => env(c, v).unwrap_or_default(),
        None => w.to_string(),
    }
}

fn after(words: &[String], flags: &[&str]) -> Option<String> {
    words.iter().position(|w| flags.contains(&w.as_str())).and_then(|i| words.get(i + 1)).cloned().or_else(|| {
        words.iter().find_map(|w| flags.iter().find_map(|f| w.strip_prefix(&format!("{f}="))).map(String::from))
    })
}

pub fn read(pod: &Value) -> Workload {
    let c = pod.pointer("/spec/containers/0").cloned().unwrap_or(Value::Null);
    let image = c.get("image").and_then(Value::as_str).unwrap_or("").to_string();
    // H-MAS's wrapper images say what they run in the environment (the agent reads the same).
    let agent_runtime = env(&c, "HMAS_RUNTIME").map(|r| match r.as_str() {
        "ollama" => Runtime::Ollama,
        "vllm" => Runtime::Vllm,
        "tgi" => Runtime::Tgi,
        "llama_cpp" => Runtime::LlamaCpp,
        "sglang" => Runtime::Sglang,
        _ => Runtime::Other,
    });
    let runtime = agent_runtime.unwrap_or_else(|| Runtime::from_image(&image));
    let w = words(&c);
    // A download command (`hf download M`, `text-generation-server download-weights M`) fetches
    // the model whatever the image.
    let from_agent = agent_runtime.and_then(|_| env(&c, "HMAS_MODEL"));
    let model = from_agent.or_else(|| after(&w, &["download", "download-weights"])).or_else(|| match runtime {
        Runtime::Ollama => after(&w, &["pull", "run"]).or_else(|| env(&c, "OLLAMA_MODEL")),
        Runtime::Vllm => after(&w, &["--model", "serve"]).or_else(|| env(&c, "MODEL")),
        Runtime::Tgi => after(&w, &["--model-id"]).or_else(|| env(&c, "MODEL_ID")),
        Runtime::LlamaCpp => after(&w, &["-hf", "--hf-repo", "-m", "--model"]),
        Runtime::Sglang => after(&w, &["--model-path", "--model"]),
        Runtime::Other => None,
    });
    // As the kubelet (`$(VAR)`) and a shell (`$VAR`, `"${VAR}"`) would expand it.
    let model = model.map(|m| expand(&m, &c));
    let completes = matches!(pod.pointer("/spec/restartPolicy").and_then(Value::as_str), Some("Never" | "OnFailure"));
    let gpus = super::member::pod_requests(pod).get("nvidia.com/gpu").copied().unwrap_or(0).max(0) as u64 / 1000;
    let shell = c
        .get("command")
        .and_then(Value::as_array)
        .is_some_and(|cmd| cmd.iter().filter_map(Value::as_str).any(|w| w.ends_with("sh")));
    let flags = if shell {
        vec![]
    } else {
        c.get("args")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect()
    };
    let script = c.get("args").map(|a| a.to_string()).unwrap_or_default();
    let exits_on_failed_pull = script.contains("pull") && script.contains("|| exit");
    Workload { runtime, model, image, completes, gpus, flags, exits_on_failed_pull, wrapped: agent_runtime.is_some() }
}

/// Download size in MB for known models; unknown ones count as 2 GB.
pub fn model_size_mb(model: &str) -> u64 {
    let m = model.to_ascii_lowercase();
    const KNOWN: &[(&str, u64)] = &[
        ("70b", 40_000),
        ("72b", 41_000),
        ("32b", 19_000),
        ("14b", 9_000),
        ("8b", 4_900),
        ("7b", 4_700),
        ("3b", 2_000),
        ("1.5b", 1_100),
        ("1b", 1_300),
        ("0.5b", 400),
    ];
    KNOWN.iter().find(|(k, _)| m.contains(k)).map(|(_, s)| *s).unwrap_or(2_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(image: &str, command: Value, args: Value) -> Value {
        json!({"spec": {"containers": [{"image": image, "command": command, "args": args}]}})
    }

    #[test]
    fn reads_each_runtime() {
        let o = read(&pod(
            "ollama/ollama:0.5",
            json!(["/bin/sh", "-c"]),
            json!(["ollama serve & sleep 2; ollama pull llama3.2:1b; wait"]),
        ));
        assert_eq!((o.runtime, o.model.as_deref()), (Runtime::Ollama, Some("llama3.2:1b")));
        let v = read(&pod(
            "vllm/vllm-openai:v0.6",
            json!(null),
            json!(["--model", "Qwen/Qwen2.5-7B-Instruct", "--port", "8000"]),
        ));
        assert_eq!((v.runtime, v.model.as_deref()), (Runtime::Vllm, Some("Qwen/Qwen2.5-7B-Instruct")));
        let t = read(&pod(
            "ghcr.io/huggingface/text-generation-inference:2",
            json!(null),
            json!(["--model-id=google/gemma-2b"]),
        ));
        assert_eq!(t.model.as_deref(), Some("google/gemma-2b"));
        let l = read(&pod(
            "ghcr.io/ggml-org/llama.cpp:server-cuda",
            json!(null),
            json!(["-hf", "bartowski/Llama-3.2-1B-GGUF:Q4_K_M"]),
        ));
        assert_eq!((l.runtime, l.model.as_deref()), (Runtime::LlamaCpp, Some("bartowski/Llama-3.2-1B-GGUF:Q4_K_M")));
        assert_eq!(read(&pod("nginx", json!(null), json!(null))).runtime, Runtime::Other);
        let mut from_env =
            pod("ollama/ollama", json!(["/bin/sh", "-c"]), json!(["ollama serve & ollama pull \"$HMAS_MODEL\"; wait"]));
        from_env["spec"]["containers"][0]["env"] = json!([{"name": "HMAS_MODEL", "value": "qwen2.5:7b"}]);
        assert_eq!(read(&from_env).model.as_deref(), Some("qwen2.5:7b"));
        let mut job = pod("vllm/vllm-openai", json!(["hf", "download", "$(HMAS_MODEL)"]), json!(null));
        job["spec"]["containers"][0]["env"] = json!([{"name": "HMAS_MODEL", "value": "Qwen/Qwen2.5-1.5B-Instruct"}]);
        assert_eq!(read(&job).model.as_deref(), Some("Qwen/Qwen2.5-1.5B-Instruct"));
    }

    #[test]
    fn sizes() {
        assert_eq!(model_size_mb("llama3.2:1b"), 1_300);
        assert_eq!(model_size_mb("llama3.1:70b"), 40_000);
        assert_eq!(model_size_mb("Qwen/Qwen2.5-1.5B"), 1_100);
        assert_eq!(model_size_mb("something"), 2_000);
    }
}
