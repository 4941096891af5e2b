//! Model servers as data: one row per runtime says which image to run, where it listens, how it
//! fetches and caches a model, and which advanced settings it takes and how they reach it. Adding
//! a runtime is adding a row; the form, the validation and the rendered container all follow.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeKind {
    /// What the deploy form starts with.
    #[default]
    Ollama,
    Vllm,
    Tgi,
    LlamaCpp,
    Sglang,
}

impl RuntimeKind {
    pub const ALL: [RuntimeKind; 5] =
        [RuntimeKind::Ollama, RuntimeKind::Vllm, RuntimeKind::Tgi, RuntimeKind::LlamaCpp, RuntimeKind::Sglang];

    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::Ollama => "ollama",
            RuntimeKind::Vllm => "vllm",
            RuntimeKind::Tgi => "tgi",
            RuntimeKind::LlamaCpp => "llama_cpp",
            RuntimeKind::Sglang => "sglang",
        }
    }

    pub fn parse(s: &str) -> Option<RuntimeKind> {
        RuntimeKind::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn preset(self) -> &'static RuntimePreset {
        PRESETS.iter().find(|p| p.kind == self).expect("every runtime has a preset")
    }
}

/// How the runtime gets its model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelSource {
    /// `ollama pull` once `ollama serve` answers (a start-up script).
    OllamaPull,
    /// A Hugging Face repository id passed with this flag.
    HfFlag(&'static str),
    /// A Hugging Face repository id as the first positional argument.
    HfPositional,
}

/// What a setting holds, which is also how it is checked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SettingKind {
    Int {
        min: i64,
        max: i64,
    },
    Float {
        min: f64,
        max: f64,
    },
    Choice(&'static [&'static str]),
    /// A Go-style duration (`30s`, `5m`, `1h`) or `-1` for "forever".
    Duration,
}

/// Where a setting goes in the container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Render {
    Flag(&'static str),
    Env(&'static str),
    /// Ollama has no server flag for it: the start-up script writes a Modelfile parameter.
    ModelfileParameter(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SettingDef {
    pub key: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    pub kind: SettingKind,
    pub render: Render,
}

#[derive(Debug)]
pub struct RuntimePreset {
    pub kind: RuntimeKind,
    pub label: &'static str,
    pub image: &'static str,
    /// The image to run when the replica has GPUs, where the runtime ships a separate one.
    pub gpu_image: Option<&'static str>,
    pub port: u16,
    /// The command the official image starts with (its ENTRYPOINT): what `hmas agent` runs.
    pub entrypoint: &'static [&'static str],
    /// Where its OpenAI-compatible API lives.
    pub openai_base: &'static str,
    /// Answers once the server is up (liveness and start-up).
    pub health_path: &'static str,
    pub model_source: ModelSource,
    /// Where models are cached inside the container: the cache volume is mounted here.
    pub cache_path: &'static str,
    /// Environment that points the runtime's downloads at the cache path.
    pub cache_env: &'static [(&'static str, &'static str)],
    /// Whether it can run without a GPU at all.
    pub cpu_capable: bool,
    pub default_gpus: u32,
    /// The setting that should follow the GPUs per replica unless set (tensor parallelism).
    pub gpus_setting: Option<&'static str>,
    /// What the model field expects.
    pub model_hint: &'static str,
    /// Flags H-MAS sets itself; extra arguments may not override them.
    pub reserved_flags: &'static [&'static str],
    /// How a pre-load Job fetches the model into the cache (None: the first start fills it).
    pub preload: Option<&'static [&'static str]>,
    pub settings: &'static [SettingDef],
}

const DTYPES: &[&str] = &["auto", "half", "float16", "bfloat16", "float32"];
const VLLM_QUANT: &[&str] = &["awq", "gptq", "fp8", "bitsandbytes", "gguf", "marlin"];
const TGI_QUANT: &[&str] =
    &["awq", "gptq", "eetq", "bitsandbytes", "bitsandbytes-nf4", "bitsandbytes-fp4", "fp8", "marlin"];
const SGLANG_QUANT: &[&str] = &["awq", "gptq", "fp8", "bitsandbytes", "gguf", "marlin"];

pub static PRESETS: &[RuntimePreset] = &[
    RuntimePreset {
        kind: RuntimeKind::Ollama,
        label: "Ollama",
        image: "ollama/ollama:0.12.11",
        gpu_image: None,
        port: 11434,
        entrypoint: &["/bin/ollama", "serve"],
        openai_base: "/v1",
        health_path: "/",
        model_source: ModelSource::OllamaPull,
        cache_path: "/root/.ollama",
        cache_env: &[("OLLAMA_MODELS", "/root/.ollama/models")],
        cpu_capable: true,
        default_gpus: 1,
        gpus_setting: None,
        model_hint: "An Ollama library name, e.g. llama3.2:1b",
        reserved_flags: &[],
        preload: Some(&[
            "/bin/sh",
            "-c",
            "ollama serve & until ollama list >/dev/null 2>&1; do sleep 1; done; ollama pull \"$HMAS_MODEL\"",
        ]),
        settings: &[
            SettingDef {
                key: "context_length",
                label: "Context length",
                help: "Tokens of context per request (OLLAMA_CONTEXT_LENGTH).",
                kind: SettingKind::Int { min: 256, max: 1_048_576 },
                render: Render::Env("OLLAMA_CONTEXT_LENGTH"),
            },
            SettingDef {
                key: "num_parallel",
                label: "Parallel requests",
                help: "Requests each loaded model serves at once (OLLAMA_NUM_PARALLEL).",
                kind: SettingKind::Int { min: 1, max: 64 },
                render: Render::Env("OLLAMA_NUM_PARALLEL"),
            },
            SettingDef {
                key: "keep_alive",
                label: "Keep alive",
                help: "How long the model stays loaded when idle, e.g. 5m, 1h, or -1 for always.",
                kind: SettingKind::Duration,
                render: Render::Env("OLLAMA_KEEP_ALIVE"),
            },
            SettingDef {
                key: "gpu_layers",
                label: "GPU layers",
                help: "Layers offloaded to the GPU (num_gpu); 0 runs on the CPU.",
                kind: SettingKind::Int { min: 0, max: 999 },
                render: Render::ModelfileParameter("num_gpu"),
            },
        ],
    },
    RuntimePreset {
        kind: RuntimeKind::Vllm,
        label: "vLLM",
        image: "vllm/vllm-openai:v0.11.2",
        gpu_image: None,
        port: 8000,
        entrypoint: &["vllm", "serve"],
        openai_base: "/v1",
        health_path: "/health",
        model_source: ModelSource::HfPositional,
        cache_path: "/root/.cache/huggingface",
        cache_env: &[("HF_HOME", "/root/.cache/huggingface")],
        cpu_capable: false,
        default_gpus: 1,
        gpus_setting: Some("tensor_parallel_size"),
        model_hint: "A Hugging Face model id, e.g. Qwen/Qwen2.5-1.5B-Instruct",
        reserved_flags: &["--host", "--port", "--model", "--served-model-name", "--download-dir"],
        preload: Some(&["hf", "download", "$(HMAS_MODEL)"]),
        settings: &[
            SettingDef {
                key: "max_model_len",
                label: "Max model length",
                help: "Context length in tokens (--max-model-len).",
                kind: SettingKind::Int { min: 256, max: 1_048_576 },
                render: Render::Flag("--max-model-len"),
            },
            SettingDef {
                key: "gpu_memory_utilization",
                label: "GPU memory utilisation",
                help: "Fraction of each GPU's memory vLLM may take (--gpu-memory-utilization).",
                kind: SettingKind::Float { min: 0.1, max: 0.99 },
                render: Render::Flag("--gpu-memory-utilization"),
            },
            SettingDef {
                key: "tensor_parallel_size",
                label: "Tensor parallel size",
                help: "GPUs one replica shards the model over; defaults to the GPUs per replica.",
                kind: SettingKind::Int { min: 1, max: 16 },
                render: Render::Flag("--tensor-parallel-size"),
            },
            SettingDef {
                key: "dtype",
                label: "Data type",
                help: "Weights and activations precision (--dtype).",
                kind: SettingKind::Choice(DTYPES),
                render: Render::Flag("--dtype"),
            },
            SettingDef {
                key: "quantization",
                label: "Quantisation",
                help: "Quantisation method of the weights (--quantization).",
                kind: SettingKind::Choice(VLLM_QUANT),
                render: Render::Flag("--quantization"),
            },
        ],
    },
    RuntimePreset {
        kind: RuntimeKind::Tgi,
        label: "Text Generation Inference",
        image: "ghcr.io/huggingface/text-generation-inference:3.3.6",
        gpu_image: None,
        port: 80,
        entrypoint: &["text-generation-launcher"],
        openai_base: "/v1",
        health_path: "/health",
        model_source: ModelSource::HfFlag("--model-id"),
        cache_path: "/data",
        cache_env: &[("HUGGINGFACE_HUB_CACHE", "/data")],
        cpu_capable: false,
        default_gpus: 1,
        gpus_setting: Some("num_shard"),
        model_hint: "A Hugging Face model id, e.g. Qwen/Qwen2.5-1.5B-Instruct",
        reserved_flags: &["--hostname", "--port", "--model-id", "--huggingface-hub-cache"],
        preload: Some(&["text-generation-server", "download-weights", "$(HMAS_MODEL)"]),
        settings: &[
            SettingDef {
                key: "max_input_tokens",
                label: "Max input tokens",
                help: "Longest prompt accepted (--max-input-tokens).",
                kind: SettingKind::Int { min: 1, max: 1_048_576 },
                render: Render::Flag("--max-input-tokens"),
            },
            SettingDef {
                key: "max_total_tokens",
                label: "Max total tokens",
                help: "Prompt plus completion (--max-total-tokens); above max input tokens.",
                kind: SettingKind::Int { min: 2, max: 1_048_576 },
                render: Render::Flag("--max-total-tokens"),
            },
            SettingDef {
                key: "num_shard",
                label: "Shards",
                help: "GPUs one replica shards the model over; defaults to the GPUs per replica.",
                kind: SettingKind::Int { min: 1, max: 16 },
                render: Render::Flag("--num-shard"),
            },
            SettingDef {
                key: "quantize",
                label: "Quantize",
                help: "Quantisation method (--quantize).",
                kind: SettingKind::Choice(TGI_QUANT),
                render: Render::Flag("--quantize"),
            },
        ],
    },
    RuntimePreset {
        kind: RuntimeKind::LlamaCpp,
        label: "llama.cpp",
        image: "ghcr.io/ggml-org/llama.cpp:server-b11151",
        gpu_image: Some("ghcr.io/ggml-org/llama.cpp:server-cuda-b11151"),
        port: 8080,
        entrypoint: &["/app/llama-server"],
        openai_base: "/v1",
        health_path: "/health",
        model_source: ModelSource::HfFlag("-hf"),
        cache_path: "/models",
        cache_env: &[("LLAMA_CACHE", "/models")],
        cpu_capable: true,
        default_gpus: 1,
        gpus_setting: None,
        model_hint: "A GGUF repository and quantisation, e.g. bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
        reserved_flags: &["--host", "--port", "-hf", "--hf-repo", "-m", "--model", "-a", "--alias"],
        preload: None,
        settings: &[
            SettingDef {
                key: "ctx_size",
                label: "Context size",
                help: "Tokens of context shared by the slots (--ctx-size).",
                kind: SettingKind::Int { min: 256, max: 1_048_576 },
                render: Render::Flag("--ctx-size"),
            },
            SettingDef {
                key: "n_gpu_layers",
                label: "GPU layers",
                help: "Layers offloaded to the GPU (--n-gpu-layers); 0 runs on the CPU.",
                kind: SettingKind::Int { min: 0, max: 999 },
                render: Render::Flag("--n-gpu-layers"),
            },
            SettingDef {
                key: "parallel",
                label: "Parallel slots",
                help: "Requests served at once (--parallel).",
                kind: SettingKind::Int { min: 1, max: 64 },
                render: Render::Flag("--parallel"),
            },
        ],
    },
    RuntimePreset {
        kind: RuntimeKind::Sglang,
        label: "SGLang",
        image: "lmsysorg/sglang:v0.5.5",
        gpu_image: None,
        port: 30000,
        entrypoint: &["python3", "-m", "sglang.launch_server"],
        openai_base: "/v1",
        health_path: "/health",
        model_source: ModelSource::HfFlag("--model-path"),
        cache_path: "/root/.cache/huggingface",
        cache_env: &[("HF_HOME", "/root/.cache/huggingface")],
        cpu_capable: false,
        default_gpus: 1,
        gpus_setting: Some("tp_size"),
        model_hint: "A Hugging Face model id, e.g. Qwen/Qwen2.5-1.5B-Instruct",
        reserved_flags: &["--host", "--port", "--model-path", "--model", "--served-model-name"],
        preload: Some(&["hf", "download", "$(HMAS_MODEL)"]),
        settings: &[
            SettingDef {
                key: "context_length",
                label: "Context length",
                help: "Context length in tokens (--context-length).",
                kind: SettingKind::Int { min: 256, max: 1_048_576 },
                render: Render::Flag("--context-length"),
            },
            SettingDef {
                key: "mem_fraction_static",
                label: "Static memory fraction",
                help: "Fraction of GPU memory for weights and KV cache (--mem-fraction-static).",
                kind: SettingKind::Float { min: 0.1, max: 0.99 },
                render: Render::Flag("--mem-fraction-static"),
            },
            SettingDef {
                key: "tp_size",
                label: "Tensor parallel size",
                help: "GPUs one replica shards the model over; defaults to the GPUs per replica.",
                kind: SettingKind::Int { min: 1, max: 16 },
                render: Render::Flag("--tp-size"),
            },
            SettingDef {
                key: "dtype",
                label: "Data type",
                help: "Weights and activations precision (--dtype).",
                kind: SettingKind::Choice(DTYPES),
                render: Render::Flag("--dtype"),
            },
            SettingDef {
                key: "quantization",
                label: "Quantisation",
                help: "Quantisation method of the weights (--quantization).",
                kind: SettingKind::Choice(SGLANG_QUANT),
                render: Render::Flag("--quantization"),
            },
        ],
    },
];

/// A model the deploy form offers, with what it costs to fetch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelPreset {
    pub runtime: RuntimeKind,
    pub model: String,
    pub label: String,
    pub size_gb: f64,
    pub gpus: u32,
}

/// Common models per runtime, small to large.
pub fn model_presets() -> Vec<ModelPreset> {
    const ROWS: &[(RuntimeKind, &str, &str, f64, u32)] = &[
        (RuntimeKind::Ollama, "llama3.2:1b", "Llama 3.2 1B", 1.3, 0),
        (RuntimeKind::Ollama, "llama3.2:3b", "Llama 3.2 3B", 2.0, 1),
        (RuntimeKind::Ollama, "qwen2.5:7b", "Qwen 2.5 7B", 4.7, 1),
        (RuntimeKind::Ollama, "llama3.1:8b", "Llama 3.1 8B", 4.9, 1),
        (RuntimeKind::Ollama, "llama3.1:70b", "Llama 3.1 70B", 40.0, 2),
        (RuntimeKind::Vllm, "Qwen/Qwen2.5-1.5B-Instruct", "Qwen 2.5 1.5B Instruct", 3.1, 1),
        (RuntimeKind::Vllm, "meta-llama/Llama-3.2-1B-Instruct", "Llama 3.2 1B Instruct", 2.5, 1),
        (RuntimeKind::Vllm, "Qwen/Qwen2.5-7B-Instruct", "Qwen 2.5 7B Instruct", 15.2, 1),
        (RuntimeKind::Vllm, "meta-llama/Llama-3.1-70B-Instruct", "Llama 3.1 70B Instruct", 141.0, 4),
        (RuntimeKind::Tgi, "Qwen/Qwen2.5-1.5B-Instruct", "Qwen 2.5 1.5B Instruct", 3.1, 1),
        (RuntimeKind::Tgi, "Qwen/Qwen2.5-7B-Instruct", "Qwen 2.5 7B Instruct", 15.2, 1),
        (RuntimeKind::LlamaCpp, "bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "Llama 3.2 1B Q4_K_M", 0.8, 0),
        (RuntimeKind::LlamaCpp, "Qwen/Qwen2.5-7B-Instruct-GGUF:Q4_K_M", "Qwen 2.5 7B Q4_K_M", 4.7, 1),
        (RuntimeKind::Sglang, "Qwen/Qwen2.5-1.5B-Instruct", "Qwen 2.5 1.5B Instruct", 3.1, 1),
        (RuntimeKind::Sglang, "Qwen/Qwen2.5-7B-Instruct", "Qwen 2.5 7B Instruct", 15.2, 1),
    ];
    ROWS.iter()
        .map(|(r, m, l, s, g)| ModelPreset {
            runtime: *r,
            model: m.to_string(),
            label: l.to_string(),
            size_gb: *s,
            gpus: *g,
        })
        .collect()
}

/// A generous cold start in seconds: a first image pull (~4 min for a GPU runtime image), the
/// weights at ~100 MB/s, then loading. What application failover must wait out before it may
/// call a starting replica unhealthy.
pub fn cold_start_seconds(runtime: RuntimeKind, model: &str) -> u32 {
    (240.0 + model_size_gb(runtime, model) * 10.0 + 60.0).ceil() as u32
}

/// The model's weights in GB: the preset's figure, else estimated from a parameter count in the
/// name (`7B` at 16 bits, GGUF and Ollama tags quantised to about 4.5 bits), else 20 GB.
pub fn model_size_gb(runtime: RuntimeKind, model: &str) -> f64 {
    if let Some(p) = model_presets().into_iter().find(|m| m.runtime == runtime && m.model == model) {
        return p.size_gb;
    }
    let lower = model.to_ascii_lowercase();
    let quantised = runtime == RuntimeKind::Ollama || lower.contains("gguf") || lower.contains(":q");
    let bytes_per_param = if quantised { 0.6 } else { 2.0 };
    let chars: Vec<char> = lower.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if *c != 'b' || i == 0 || chars.get(i + 1).is_some_and(|n| n.is_ascii_alphanumeric()) {
            continue;
        }
        let start = chars[..i].iter().rposition(|c| !(c.is_ascii_digit() || *c == '.')).map_or(0, |p| p + 1);
        if start > 0 && chars[start - 1].is_ascii_alphabetic() {
            continue;
        }
        if let Ok(n) = chars[start..i].iter().collect::<String>().parse::<f64>() {
            if n > 0.0 {
                return (n * bytes_per_param * 10.0).round() / 10.0;
            }
        }
    }
    20.0
}

/// A model reference as runtimes accept it: a library name with tag, or a repository id, never
/// anything a shell or an argument parser could read as more than one word or as a flag.
pub fn model_ref(v: &str) -> Result<(), String> {
    if v.trim().is_empty() {
        return Err("is required".into());
    }
    if v.len() > 200 {
        return Err("must be at most 200 characters".into());
    }
    if !v.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b':' | b'/')) {
        return Err("may contain only letters, digits, '.', '_', '-', ':' and '/'".into());
    }
    if !v.as_bytes()[0].is_ascii_alphanumeric() {
        return Err("must start with a letter or digit".into());
    }
    if v.contains("..") || v.contains("//") {
        return Err("must not contain '..' or '//'".into());
    }
    Ok(())
}

/// Checks one setting's text against its definition.
pub fn check_setting(def: &SettingDef, value: &str) -> Result<(), String> {
    let v = value.trim();
    match def.kind {
        SettingKind::Int { min, max } => match v.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(()),
            _ => Err(format!("must be a whole number from {min} to {max}")),
        },
        SettingKind::Float { min, max } => match v.parse::<f64>() {
            Ok(x) if x.is_finite() && x >= min && x <= max => Ok(()),
            _ => Err(format!("must be a number from {min} to {max}")),
        },
        SettingKind::Choice(options) => {
            if options.contains(&v) {
                Ok(())
            } else {
                Err(format!("must be one of {}", options.join(", ")))
            }
        }
        SettingKind::Duration => {
            let digits = v.strip_prefix('-').unwrap_or(v);
            let num = digits.trim_end_matches(['s', 'm', 'h']);
            let unit_ok = digits.len() - num.len() <= 1;
            if v == "-1"
                || (!v.starts_with('-') && unit_ok && !num.is_empty() && num.bytes().all(|c| c.is_ascii_digit()))
            {
                Ok(())
            } else {
                Err("must be a duration like 30s, 5m or 1h, or -1 to keep the model loaded".into())
            }
        }
    }
}

/// Checks every setting: known for this runtime, and well-formed. Errors are keyed
/// `settings.<key>` so the form shows them next to their input.
pub fn check_settings(runtime: RuntimeKind, settings: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let preset = runtime.preset();
    let mut out = Vec::new();
    for (k, v) in settings {
        match preset.settings.iter().find(|d| d.key == k) {
            None => out.push((format!("settings.{k}"), format!("is not a setting of {}", preset.label))),
            Some(d) => {
                if let Err(e) = check_setting(d, v) {
                    out.push((format!("settings.{k}"), e));
                }
            }
        }
    }
    if runtime == RuntimeKind::Tgi {
        let n = |k: &str| settings.get(k).and_then(|v| v.trim().parse::<i64>().ok());
        if let (Some(i), Some(t)) = (n("max_input_tokens"), n("max_total_tokens")) {
            if t <= i {
                out.push(("settings.max_total_tokens".into(), "must be larger than max input tokens".into()));
            }
        }
    }
    out
}

/// Extra server arguments: passed as separate argv words (never through a shell), and still
/// held to plain characters, no flag H-MAS sets itself, and no flag a setting already covers.
pub fn check_extra_args(runtime: RuntimeKind, args: &[String]) -> Result<(), String> {
    let preset = runtime.preset();
    if args.is_empty() {
        return Ok(());
    }
    if preset.model_source == ModelSource::OllamaPull {
        return Err("Ollama takes no server arguments; use the settings above".into());
    }
    if args.len() > 32 {
        return Err("at most 32 arguments".into());
    }
    for a in args {
        if a.is_empty() || a.len() > 256 {
            return Err("each argument must be 1 to 256 characters".into());
        }
        if let Some(c) = a.chars().find(|c| c.is_control() || "`$;|&<>\\\"'(){}".contains(*c) || c.is_whitespace()) {
            return Err(format!("{a:?}: the character {c:?} is not allowed"));
        }
        let flag = a.split('=').next().unwrap_or(a);
        if preset.reserved_flags.contains(&flag) {
            return Err(format!("{flag} is set by H-MAS and cannot be overridden"));
        }
        if let Some(d) = preset.settings.iter().find(|d| matches!(d.render, Render::Flag(f) if f == flag)) {
            return Err(format!("{flag} is the {} setting; set it there", d.label));
        }
    }
    Ok(())
}

/// The container a replica runs: what the server turns into a Pod template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerPlan {
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub port: u16,
}

/// The Ollama start-up script: the server first, then the model once it answers, then the
/// server in the foreground. The model name travels in `$HMAS_MODEL`, never spliced into the text.
fn ollama_script(parameters: &[(&str, String)]) -> String {
    let mut s = String::from(
        "ollama serve & pid=$!\nuntil ollama list >/dev/null 2>&1; do sleep 1; done\nollama pull \"$HMAS_MODEL\" || exit 1\n",
    );
    if !parameters.is_empty() {
        s.push_str("printf 'FROM %s\\n' \"$HMAS_MODEL\" > /tmp/Modelfile\n");
        for (p, _) in parameters {
            let var = format!("HMAS_PARAM_{}", p.to_ascii_uppercase());
            s.push_str(&format!("printf 'PARAMETER {p} %s\\n' \"${var}\" >> /tmp/Modelfile\n"));
        }
        s.push_str("ollama create \"$HMAS_MODEL\" -f /tmp/Modelfile || exit 1\n");
    }
    s.push_str("wait $pid\n");
    s
}

/// Renders runtime, model, GPUs, settings and extra arguments into one container. Inputs are
/// expected to be valid (see `DeploySpec::validate`).
pub fn container_plan(
    runtime: RuntimeKind,
    image: &str,
    model: &str,
    gpus: u32,
    settings: &BTreeMap<String, String>,
    extra_args: &[String],
) -> ContainerPlan {
    let p = runtime.preset();
    let image = if !image.trim().is_empty() {
        image.trim().to_string()
    } else if gpus > 0 {
        p.gpu_image.unwrap_or(p.image).to_string()
    } else {
        p.image.to_string()
    };
    let mut env: Vec<(String, String)> = vec![("HMAS_MODEL".into(), model.into())];
    env.extend(p.cache_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut flags: Vec<String> = Vec::new();
    let mut parameters: Vec<(&str, String)> = Vec::new();
    let mut effective = settings.clone();
    if let Some(k) = p.gpus_setting {
        if gpus > 1 && !effective.contains_key(k) {
            effective.insert(k.to_string(), gpus.to_string());
        }
    }
    // In the table's order, so the same spec always renders the same container.
    for d in p.settings {
        let Some(v) = effective.get(d.key).map(|v| v.trim().to_string()) else { continue };
        match d.render {
            Render::Flag(f) => {
                flags.push(f.into());
                flags.push(v);
            }
            Render::Env(e) => env.push((e.into(), v)),
            Render::ModelfileParameter(name) => {
                env.push((format!("HMAS_PARAM_{}", name.to_ascii_uppercase()), v.clone()));
                parameters.push((name, v));
            }
        }
    }
    let port = p.port.to_string();
    let (command, args) = match (runtime, p.model_source) {
        (_, ModelSource::OllamaPull) => {
            env.push(("OLLAMA_HOST".into(), format!("0.0.0.0:{port}")));
            (vec!["/bin/sh".into(), "-c".into()], vec![ollama_script(&parameters)])
        }
        (RuntimeKind::Vllm, _) => {
            let mut a = vec![model.to_string(), "--host".into(), "0.0.0.0".into(), "--port".into(), port];
            a.extend(flags);
            (vec!["vllm".into(), "serve".into()], a)
        }
        (RuntimeKind::Sglang, ModelSource::HfFlag(f)) => {
            let mut a = vec![f.into(), model.into(), "--host".into(), "0.0.0.0".into(), "--port".into(), port];
            a.extend(flags);
            (vec!["python3".into(), "-m".into(), "sglang.launch_server".into()], a)
        }
        (RuntimeKind::Tgi, ModelSource::HfFlag(f)) => {
            let mut a = vec![f.into(), model.into(), "--hostname".into(), "0.0.0.0".into(), "--port".into(), port];
            a.extend(flags);
            (vec![], a)
        }
        (_, ModelSource::HfFlag(f)) => {
            let mut a = vec![f.into(), model.into(), "--host".into(), "0.0.0.0".into(), "--port".into(), port];
            if runtime == RuntimeKind::LlamaCpp {
                // The OpenAI `model` field then names the model as the operator wrote it.
                a.extend(["--alias".to_string(), model.to_string()]);
            }
            a.extend(flags);
            (vec![], a)
        }
        (_, ModelSource::HfPositional) => {
            let mut a = vec![model.to_string(), "--port".into(), port];
            a.extend(flags);
            (vec![], a)
        }
    };
    let mut args = args;
    args.extend(extra_args.iter().cloned());
    ContainerPlan { image, command, args, env, port: p.port }
}

/// Where `hmas agent` serves health, readiness and metrics inside a wrapper image.
pub const AGENT_PORT: u16 = 9400;
/// Where wrapper images keep models: one path for every runtime (the cache volume mounts here).
pub const AGENT_MODEL_DIR: &str = "/models";
/// The pod condition the agent sets once the model is served (a readiness gate).
pub const MODEL_READY_CONDITION: &str = "hmas.io/model-ready";

/// H-MAS's wrapper image for a runtime, released with this version (the `agent-*` stages of the
/// Dockerfile). llama.cpp has a CUDA variant, as its official images do.
pub fn agent_image(runtime: RuntimeKind, gpus: u32) -> String {
    let flavour = match runtime {
        RuntimeKind::LlamaCpp if gpus > 0 => "llama-cpp-cuda".to_string(),
        r => r.as_str().replace('_', "-"),
    };
    format!("ghcr.io/hmas-io/hmas-agent:{}-{flavour}", env!("CARGO_PKG_VERSION"))
}

/// The same replica run by `hmas agent` in a wrapper image: the agent fetches the model (with
/// progress), so the runtime starts plainly — Ollama without its pull script, llama.cpp given the
/// downloaded file by the agent instead of `-hf`. The cache paths move under `AGENT_MODEL_DIR`
/// with the layout the official image uses below its own path, so one cache volume serves both.
pub fn agent_plan(runtime: RuntimeKind, image: &str, gpus: u32, plain: ContainerPlan) -> ContainerPlan {
    let p = runtime.preset();
    let image = if image.trim().is_empty() { agent_image(runtime, gpus) } else { image.trim().to_string() };
    let mut runtime_args: Vec<String> = match runtime {
        RuntimeKind::Ollama => Vec::new(),
        // vLLM and SGLang carry their entrypoint as the command already.
        RuntimeKind::Vllm | RuntimeKind::Sglang => plain.args.clone(),
        RuntimeKind::Tgi => plain.args.clone(),
        RuntimeKind::LlamaCpp => {
            let mut a = plain.args.clone();
            if let Some(i) = a.iter().position(|w| w == "-hf") {
                a.drain(i..(i + 2).min(a.len()));
            }
            a
        }
    };
    // The metrics the agent translates are off by default in these two.
    match runtime {
        RuntimeKind::LlamaCpp => runtime_args.push("--metrics".into()),
        RuntimeKind::Sglang => runtime_args.push("--enable-metrics".into()),
        _ => {}
    }
    let mut args: Vec<String> = vec!["--".into()];
    args.extend(p.entrypoint.iter().map(|w| w.to_string()));
    args.append(&mut runtime_args);
    let moved = |v: &str| match v.strip_prefix(p.cache_path) {
        Some(rest) => format!("{AGENT_MODEL_DIR}{rest}"),
        None => v.to_string(),
    };
    let mut env: Vec<(String, String)> = plain.env.iter().map(|(k, v)| (k.clone(), moved(v))).collect();
    env.push(("HMAS_RUNTIME".into(), runtime.as_str().into()));
    env.push(("HMAS_RUNTIME_PORT".into(), p.port.to_string()));
    env.push(("HMAS_MODEL_DIR".into(), AGENT_MODEL_DIR.into()));
    // Named although it is the image's entrypoint: the pod says what runs, and an operator's own
    // wrapper image (built on the same stage) needs no entrypoint of its own.
    let command = AGENT_COMMAND.iter().map(|w| w.to_string()).collect();
    ContainerPlan { image, command, args, env, port: p.port }
}

/// How wrapper images start the agent (their ENTRYPOINT).
pub const AGENT_COMMAND: [&str; 2] = ["/usr/local/bin/hmas", "agent"];

/// The command line as a person would type it, for the form's preview.
pub fn command_line(plan: &ContainerPlan) -> String {
    plan.command
        .iter()
        .chain(plan.args.iter())
        .map(|w| if w.contains(char::is_whitespace) { format!("'{w}'") } else { w.clone() })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_runtime_has_one_preset_and_unique_setting_keys() {
        for r in RuntimeKind::ALL {
            assert_eq!(PRESETS.iter().filter(|p| p.kind == r).count(), 1, "{r:?}");
            assert_eq!(RuntimeKind::parse(r.as_str()), Some(r));
            let keys: std::collections::BTreeSet<_> = r.preset().settings.iter().map(|d| d.key).collect();
            assert_eq!(keys.len(), r.preset().settings.len());
            if let Some(k) = r.preset().gpus_setting {
                assert!(keys.contains(k), "{r:?} {k}");
            }
        }
    }

    #[test]
    fn model_refs() {
        for ok in ["llama3.2:1b", "Qwen/Qwen2.5-7B-Instruct", "bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"] {
            assert!(model_ref(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-rf", "a b", "x;rm -rf /", "$(id)", "a/../b", &"a".repeat(201), "`x`"] {
            assert!(model_ref(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_are_typed() {
        assert!(check_settings(RuntimeKind::Vllm, &map(&[("gpu_memory_utilization", "0.9"), ("dtype", "bfloat16")]))
            .is_empty());
        let e = check_settings(
            RuntimeKind::Vllm,
            &map(&[("gpu_memory_utilization", "1.5"), ("dtype", "int3"), ("num_ctx", "1")]),
        );
        let keys: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["settings.dtype", "settings.gpu_memory_utilization", "settings.num_ctx"]);
        let tgi = check_settings(RuntimeKind::Tgi, &map(&[("max_input_tokens", "4096"), ("max_total_tokens", "4096")]));
        assert_eq!(tgi[0].0, "settings.max_total_tokens");
        for (v, ok) in
            [("5m", true), ("-1", true), ("30s", true), ("10", true), ("5x", false), ("-5m", false), ("m", false)]
        {
            assert_eq!(check_setting(&RuntimeKind::Ollama.preset().settings[2], v).is_ok(), ok, "{v}");
        }
    }

    #[test]
    fn extra_args_cannot_inject_or_override() {
        let ok = vec!["--enable-prefix-caching".to_string(), "--max-num-seqs=64".to_string()];
        assert!(check_extra_args(RuntimeKind::Vllm, &ok).is_ok());
        for bad in [
            vec!["--port=9000".to_string()],
            vec!["--port".to_string(), "9000".to_string()],
            vec!["--x;id".to_string()],
            vec!["$(id)".to_string()],
            vec!["a b".to_string()],
            vec!["--dtype=half".to_string()],
        ] {
            assert!(check_extra_args(RuntimeKind::Vllm, &bad).is_err(), "{bad:?}");
        }
        assert!(check_extra_args(RuntimeKind::Ollama, &ok).is_err());
    }

    #[test]
    fn the_agent_runs_the_plain_runtime_and_fetches_the_model_itself() {
        let plan = |r, model: &str, gpus| {
            agent_plan(
                r,
                "",
                gpus,
                container_plan(
                    r,
                    "",
                    model,
                    gpus,
                    &map(&[("gpu_layers", "20")]).into_iter().filter(|_| r == RuntimeKind::Ollama).collect(),
                    &[],
                ),
            )
        };
        let o = plan(RuntimeKind::Ollama, "llama3.2:1b", 1);
        assert_eq!(o.command, AGENT_COMMAND);
        assert_eq!(o.args, ["--", "/bin/ollama", "serve"]);
        assert!(o.image.ends_with(&format!("{}-ollama", env!("CARGO_PKG_VERSION"))), "{}", o.image);
        for kv in [("OLLAMA_MODELS", "/models/models"), ("HMAS_RUNTIME", "ollama"), ("HMAS_PARAM_NUM_GPU", "20")] {
            assert!(o.env.contains(&(kv.0.into(), kv.1.into())), "{kv:?} in {:?}", o.env);
        }
        let v = plan(RuntimeKind::Vllm, "Qwen/Qwen2.5-7B-Instruct", 1);
        assert_eq!(v.args[..4], ["--", "vllm", "serve", "Qwen/Qwen2.5-7B-Instruct"]);
        assert!(v.env.contains(&("HF_HOME".into(), "/models".into())));
        let l = plan(RuntimeKind::LlamaCpp, "bartowski/X-GGUF:Q4_K_M", 1);
        assert!(!l.args.contains(&"-hf".to_string()), "the agent passes the downloaded file: {:?}", l.args);
        assert!(l.args.contains(&"--metrics".to_string()) && l.image.ends_with("-llama-cpp-cuda"));
        assert_eq!(plan(RuntimeKind::LlamaCpp, "bartowski/X-GGUF:Q4_K_M", 0).image.rsplit('-').next(), Some("cpp"));
        let t = plan(RuntimeKind::Tgi, "org/m", 1);
        assert_eq!(t.args[..4], ["--", "text-generation-launcher", "--model-id", "org/m"]);
        assert!(t.env.contains(&("HUGGINGFACE_HUB_CACHE".into(), "/models".into())));
        let s = plan(RuntimeKind::Sglang, "org/m", 1);
        assert_eq!(s.args[..4], ["--", "python3", "-m", "sglang.launch_server"]);
        assert!(s.args.contains(&"--enable-metrics".to_string()));
    }

    #[test]
    fn ollama_starts_the_server_before_pulling() {
        let p = container_plan(
            RuntimeKind::Ollama,
            "",
            "llama3.2:1b",
            1,
            &map(&[("gpu_layers", "20"), ("keep_alive", "1h")]),
            &[],
        );
        assert_eq!(p.command, ["/bin/sh", "-c"]);
        let script = &p.args[0];
        assert!(script.find("ollama serve").unwrap() < script.find("ollama pull").unwrap());
        assert!(!script.contains("llama3.2:1b"), "the model travels in the environment");
        assert!(script.contains("PARAMETER num_gpu"));
        assert!(p.env.contains(&("HMAS_MODEL".into(), "llama3.2:1b".into())));
        assert!(p.env.contains(&("OLLAMA_KEEP_ALIVE".into(), "1h".into())));
        assert!(p.env.contains(&("HMAS_PARAM_NUM_GPU".into(), "20".into())));
        assert!(p.env.contains(&("OLLAMA_HOST".into(), "0.0.0.0:11434".into())));
    }

    #[test]
    fn flags_follow_the_table_and_gpus_set_parallelism() {
        let p = container_plan(
            RuntimeKind::Vllm,
            "",
            "Qwen/Qwen2.5-7B-Instruct",
            2,
            &map(&[("dtype", "half")]),
            &["--enforce-eager".into()],
        );
        assert_eq!(p.command, ["vllm", "serve"]);
        assert_eq!(
            p.args,
            [
                "Qwen/Qwen2.5-7B-Instruct",
                "--host",
                "0.0.0.0",
                "--port",
                "8000",
                "--tensor-parallel-size",
                "2",
                "--dtype",
                "half",
                "--enforce-eager"
            ]
        );
        let l = container_plan(RuntimeKind::LlamaCpp, "", "bartowski/X-GGUF:Q4_K_M", 0, &BTreeMap::new(), &[]);
        assert_eq!(l.image, "ghcr.io/ggml-org/llama.cpp:server-b11151");
        assert_eq!(
            container_plan(RuntimeKind::LlamaCpp, "", "m", 1, &BTreeMap::new(), &[]).image,
            "ghcr.io/ggml-org/llama.cpp:server-cuda-b11151"
        );
        assert_eq!(container_plan(RuntimeKind::Tgi, "my/tgi:1", "m", 1, &BTreeMap::new(), &[]).image, "my/tgi:1");
        assert!(command_line(&p).starts_with("vllm serve Qwen/Qwen2.5-7B-Instruct --host"));
    }
}
