//! What the simulated runtimes accept, so they fail the way the real ones do: the model
//! registries they pull from (the Ollama library, Hugging Face) know only real-looking models, and
//! each server's command line takes only its own flags. Unknown ones end the way the real
//! processes end, with the message they print.
use super::workload::Runtime;

/// Model families in the Ollama library (`family[:tag]`).
const OLLAMA_LIBRARY: &[&str] = &[
    "llama2",
    "llama3",
    "llama3.1",
    "llama3.2",
    "llama3.3",
    "llama4",
    "qwen",
    "qwen2",
    "qwen2.5",
    "qwen2.5-coder",
    "qwen3",
    "qwq",
    "mistral",
    "mistral-nemo",
    "mistral-small",
    "mixtral",
    "gemma",
    "gemma2",
    "gemma3",
    "phi3",
    "phi3.5",
    "phi4",
    "deepseek-r1",
    "deepseek-v3",
    "deepseek-coder",
    "deepseek-coder-v2",
    "tinyllama",
    "smollm",
    "smollm2",
    "codellama",
    "llava",
    "starcoder2",
    "granite3.1-dense",
    "granite3.3",
    "nomic-embed-text",
    "mxbai-embed-large",
    "all-minilm",
    "bge-m3",
    "command-r",
    "olmo2",
    "orca-mini",
    "vicuna",
    "neural-chat",
    "yi",
];

/// Organisations on Hugging Face whose repositories the simulated hub serves.
const HF_ORGS: &[&str] = &[
    "meta-llama",
    "Qwen",
    "mistralai",
    "google",
    "microsoft",
    "TinyLlama",
    "HuggingFaceTB",
    "HuggingFaceH4",
    "deepseek-ai",
    "bartowski",
    "TheBloke",
    "ggml-org",
    "unsloth",
    "NousResearch",
    "BAAI",
    "sentence-transformers",
    "intfloat",
    "ibm-granite",
    "allenai",
    "openai",
    "nvidia",
    "tiiuae",
    "01-ai",
    "facebook",
    "lmstudio-community",
];

/// Whether the registry the runtime pulls from has `model`.
pub fn has_model(runtime: Runtime, model: &str) -> bool {
    match runtime {
        Runtime::Ollama => {
            let family = model.split(':').next().unwrap_or("");
            let family = family.rsplit('/').next().unwrap_or(family);
            OLLAMA_LIBRARY.contains(&family)
        }
        Runtime::Other => true,
        _ => {
            // A path inside the container (a mounted GGUF or weights) is not fetched.
            if model.starts_with('/') {
                return true;
            }
            let repo = model.split(':').next().unwrap_or("");
            match repo.split_once('/') {
                Some((org, name)) => HF_ORGS.contains(&org) && !name.is_empty() && !name.contains('/'),
                None => false,
            }
        }
    }
}

/// The message and exit code with which the runtime gives up on a model it cannot fetch; `None`
/// for Ollama, whose server keeps running after a failed pull (and never serves the model).
pub fn fetch_failure(runtime: Runtime, model: &str) -> (String, Option<i32>) {
    let repo = model.split(':').next().unwrap_or(model);
    match runtime {
        Runtime::Ollama => ("Error: pull model manifest: file does not exist".to_string(), None),
        Runtime::LlamaCpp => (
            format!("common_download_file_single: invalid http status code received: 401 for https://huggingface.co/v2/{repo}/manifests/latest"),
            Some(1),
        ),
        _ => (
            format!("huggingface_hub.errors.RepositoryNotFoundError: 401 Client Error. Repository Not Found for url: https://huggingface.co/api/models/{repo}/revision/main."),
            Some(1),
        ),
    }
}

const VLLM_FLAGS: &[&str] = &[
    "--model",
    "--host",
    "--port",
    "--served-model-name",
    "--max-model-len",
    "--gpu-memory-utilization",
    "--tensor-parallel-size",
    "--pipeline-parallel-size",
    "--dtype",
    "--quantization",
    "--download-dir",
    "--enable-prefix-caching",
    "--enforce-eager",
    "--trust-remote-code",
    "--max-num-seqs",
    "--max-num-batched-tokens",
    "--kv-cache-dtype",
    "--seed",
    "--tokenizer",
    "--revision",
    "--api-key",
    "--chat-template",
    "--swap-space",
    "--disable-log-requests",
    "--enable-chunked-prefill",
    "--uvicorn-log-level",
    "--load-format",
    "--task",
    "--generation-config",
    "--enable-auto-tool-choice",
    "--tool-call-parser",
    "--reasoning-parser",
];
const TGI_FLAGS: &[&str] = &[
    "--model-id",
    "--hostname",
    "--port",
    "--num-shard",
    "--quantize",
    "--max-input-tokens",
    "--max-total-tokens",
    "--max-batch-prefill-tokens",
    "--max-concurrent-requests",
    "--dtype",
    "--revision",
    "--trust-remote-code",
    "--huggingface-hub-cache",
    "--sharded",
    "--max-best-of",
    "--max-stop-sequences",
    "--json-output",
    "--disable-custom-kernels",
    "--cuda-memory-fraction",
    "--rope-scaling",
    "--rope-factor",
];
const LLAMA_CPP_FLAGS: &[&str] = &[
    "-hf",
    "--hf-repo",
    "-m",
    "--model",
    "--host",
    "--port",
    "-c",
    "--ctx-size",
    "-ngl",
    "--n-gpu-layers",
    "--gpu-layers",
    "-np",
    "--parallel",
    "-a",
    "--alias",
    "--metrics",
    "--embeddings",
    "--embedding",
    "-t",
    "--threads",
    "-b",
    "--batch-size",
    "-ub",
    "--ubatch-size",
    "--flash-attn",
    "-fa",
    "--jinja",
    "--api-key",
    "--cont-batching",
    "--mlock",
    "--no-mmap",
    "-hff",
    "--hf-file",
    "--temp",
    "--n-predict",
    "-n",
    "--slots",
    "--chat-template",
    "--cache-type-k",
    "--cache-type-v",
    "-sm",
    "--split-mode",
    "-ts",
    "--tensor-split",
];
const SGLANG_FLAGS: &[&str] = &[
    "--model-path",
    "--model",
    "--host",
    "--port",
    "--tp-size",
    "--tp",
    "--dp-size",
    "--mem-fraction-static",
    "--context-length",
    "--dtype",
    "--quantization",
    "--served-model-name",
    "--enable-metrics",
    "--download-dir",
    "--trust-remote-code",
    "--chunked-prefill-size",
    "--max-running-requests",
    "--api-key",
    "--attention-backend",
    "--kv-cache-dtype",
    "--chat-template",
    "--log-level",
];

/// The first command-line flag the runtime does not take, with the message it prints and its
/// exit code. Ollama's server takes none of these (it is configured through its environment).
pub fn bad_flag(runtime: Runtime, words: &[String]) -> Option<(String, i32)> {
    let known = match runtime {
        Runtime::Vllm => VLLM_FLAGS,
        Runtime::Tgi => TGI_FLAGS,
        Runtime::LlamaCpp => LLAMA_CPP_FLAGS,
        Runtime::Sglang => SGLANG_FLAGS,
        Runtime::Ollama | Runtime::Other => return None,
    };
    let bad = words.iter().find(|w| {
        let flag = w.split('=').next().unwrap_or(w);
        flag.starts_with('-') && flag.len() > 1 && !known.contains(&flag)
    })?;
    let flag = bad.split('=').next().unwrap_or(bad).to_string();
    Some(match runtime {
        Runtime::Vllm => (format!("vllm: error: unrecognized arguments: {bad}"), 2),
        Runtime::Tgi => (format!("error: unexpected argument '{flag}' found"), 2),
        Runtime::LlamaCpp => (format!("error: invalid argument: {flag}"), 1),
        _ => (format!("launch_server.py: error: unrecognized arguments: {bad}"), 2),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_know_real_models_only() {
        assert!(has_model(Runtime::Ollama, "llama3.2:1b"));
        assert!(has_model(Runtime::Ollama, "qwen2.5:7b"));
        assert!(!has_model(Runtime::Ollama, "no-such-model:1b"));
        assert!(has_model(Runtime::Vllm, "Qwen/Qwen2.5-7B-Instruct"));
        assert!(has_model(Runtime::LlamaCpp, "bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"));
        assert!(has_model(Runtime::LlamaCpp, "/models/llama.gguf"));
        assert!(!has_model(Runtime::Vllm, "nobody/does-not-exist"));
        assert!(!has_model(Runtime::Vllm, "plainname"));
        assert_eq!(fetch_failure(Runtime::Ollama, "x").1, None);
    }

    #[test]
    fn each_server_takes_its_own_flags() {
        let w = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(bad_flag(Runtime::Vllm, &w(&["serve", "--model", "m", "--port", "8000"])), None);
        assert_eq!(
            bad_flag(Runtime::Vllm, &w(&["--model", "m", "--bogus=1"])),
            Some(("vllm: error: unrecognized arguments: --bogus=1".into(), 2))
        );
        assert_eq!(bad_flag(Runtime::Tgi, &w(&["--model-id=x", "--num-shard", "2"])), None);
        assert_eq!(bad_flag(Runtime::LlamaCpp, &w(&["-hf", "a/b", "--nope"])).unwrap().1, 1);
        assert_eq!(bad_flag(Runtime::Ollama, &w(&["--anything"])), None);
    }
}
