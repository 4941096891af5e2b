//! One simulated model server as its own process (`hmas sim-runtime`), for running `hmas agent`
//! without a GPU: the runtime's HTTP API, OpenAI's, metrics in the runtime's own names, and the
//! signals a runtime acts on. `hf-hub` serves a simulated Hugging Face Hub instead (model info
//! with file sizes, files behind a CDN redirect, range requests), so downloads can be watched.
use super::runtime::{answer, Generating, Pace, Tally};
use super::workload::model_size_mb;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Options {
    pub kind: String,
    pub port: u16,
    pub download_mb_per_second: f64,
    pub model_size_mb: Option<u64>,
    pub tokens_per_second: f64,
    pub args: Vec<String>,
}

#[derive(Clone)]
struct Rt {
    kind: String,
    /// The model the command line names (HF runtimes), or those pulled (Ollama).
    models: Arc<Mutex<BTreeSet<String>>>,
    rate: f64,
    size_mb: Option<u64>,
    pace: Pace,
    running: Arc<AtomicUsize>,
    tally: Arc<Tally>,
    models_dir: Option<std::path::PathBuf>,
}

fn flag(args: &[String], names: &[&str]) -> Option<String> {
    args.iter().position(|a| names.contains(&a.as_str())).and_then(|i| args.get(i + 1)).cloned()
}

/// The model an HF runtime's command line serves, checked against the local cache the way the
/// Hugging Face libraries do offline (`refs/main` → `snapshots/<commit>/config.json`).
fn served_model(kind: &str, args: &[String]) -> Result<String, String> {
    let model = match kind {
        "vllm" => args.first().filter(|a| !a.starts_with('-')).cloned().or_else(|| flag(args, &["--model"])),
        "tgi" => flag(args, &["--model-id"]),
        "sglang" => flag(args, &["--model-path", "--model"]),
        "llama_cpp" => flag(args, &["--alias", "-a"]).or_else(|| flag(args, &["--model", "-m"])),
        _ => None,
    }
    .ok_or_else(|| format!("{kind}: no model on the command line"))?;
    if kind == "llama_cpp" {
        let file = flag(args, &["--model", "-m"]).ok_or("llama_cpp: --model FILE is required")?;
        if !std::path::Path::new(&file).is_file() {
            return Err(format!("llama_cpp: failed to load model '{file}'"));
        }
        return Ok(model);
    }
    if std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1") {
        // Where the Hugging Face libraries look, as they resolve it.
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
        let hub = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .or_else(|| var("HF_HOME").map(|h| h.join("hub")))
            .ok_or_else(|| format!("{kind}: HF_HOME is not set"))?;
        let root = hub.join(format!("models--{}", model.replace('/', "--")));
        let commit = std::fs::read_to_string(root.join("refs").join("main"))
            .map_err(|_| format!("{kind}: {model} is not in the cache {} and HF_HUB_OFFLINE=1", hub.display()))?;
        if !root.join("snapshots").join(commit.trim()).join("config.json").is_file() {
            return Err(format!("{kind}: {model}: config.json missing from the cached snapshot"));
        }
    }
    Ok(model)
}

pub async fn run(o: Options) -> Result<(), String> {
    const KINDS: [&str; 6] = ["ollama", "vllm", "tgi", "llama_cpp", "sglang", "hf-hub"];
    if !KINDS.contains(&o.kind.as_str()) {
        return Err(format!("kind: {:?} is not one of {}", o.kind, KINDS.join(", ")));
    }
    if !(0.001..=100_000.0).contains(&o.download_mb_per_second) {
        return Err("download-mb-per-second: must be between 0.001 and 100000".into());
    }
    let app = if o.kind == "hf-hub" {
        hub_router(o.download_mb_per_second, o.model_size_mb)
    } else {
        let mut models = BTreeSet::new();
        let models_dir = std::env::var("OLLAMA_MODELS").ok().map(std::path::PathBuf::from);
        if o.kind == "ollama" {
            // Pulled models survive a restart, as Ollama's own store does.
            if let Some(dir) = &models_dir {
                if let Ok(rd) = std::fs::read_dir(dir.join("sim-manifests")) {
                    models.extend(rd.flatten().map(|e| e.file_name().to_string_lossy().replace('%', "/")));
                }
            }
        } else {
            models.insert(served_model(&o.kind, &o.args)?);
        }
        let rt = Rt {
            kind: o.kind.clone(),
            models: Arc::new(Mutex::new(models)),
            rate: o.download_mb_per_second,
            size_mb: o.model_size_mb,
            pace: Pace { tokens_per_second: o.tokens_per_second, ttft_ms: 50 },
            running: Arc::default(),
            tally: Arc::default(),
            models_dir,
        };
        runtime_router(rt)
    };
    let listener =
        tokio::net::TcpListener::bind(("127.0.0.1", o.port)).await.map_err(|e| format!("port {}: {e}", o.port))?;
    eprintln!(
        "sim-runtime {}: listening on {}",
        o.kind,
        listener.local_addr().map(|a| a.to_string()).unwrap_or_default()
    );
    let stop = async {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
            (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
        else {
            return;
        };
        loop {
            tokio::select! {
                _ = term.recv() => { eprintln!("sim-runtime: SIGTERM received, finishing requests"); return }
                _ = int.recv() => { eprintln!("sim-runtime: SIGINT received"); return }
                _ = hup.recv() => eprintln!("sim-runtime: SIGHUP received"),
            }
        }
    };
    axum::serve(listener, app).with_graceful_shutdown(stop).await.map_err(|e| e.to_string())?;
    eprintln!("sim-runtime: stopped");
    Ok(())
}

fn runtime_router(rt: Rt) -> Router {
    let health = if rt.kind == "ollama" { "/api/version" } else { "/health" };
    Router::new()
        .route(
            "/",
            get(|State(rt): State<Rt>| async move {
                if rt.kind == "ollama" {
                    "Ollama is running".into_response()
                } else {
                    StatusCode::NOT_FOUND.into_response()
                }
            }),
        )
        .route(health, get(|| async { Json(json!({"status": "ok", "version": "sim"})) }))
        .route("/api/tags", get(tags))
        .route("/api/pull", post(pull))
        .route("/api/create", post(create))
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(|s, b| generate(s, b, true)))
        .route("/v1/completions", post(|s, b| generate(s, b, false)))
        .route("/metrics", get(metrics))
        .with_state(rt)
}

async fn tags(State(rt): State<Rt>) -> Response {
    let ms: Vec<Value> =
        rt.models.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|m| json!({"name": m, "model": m})).collect();
    Json(json!({"models": ms})).into_response()
}

async fn models(State(rt): State<Rt>) -> Response {
    let ms: Vec<Value> = rt
        .models
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|m| json!({"id": m, "object": "model", "owned_by": rt.kind}))
        .collect();
    Json(json!({"object": "list", "data": ms})).into_response()
}

/// Ollama's pull: NDJSON progress per layer at the download rate, then success.
async fn pull(State(rt): State<Rt>, Json(req): Json<Value>) -> Response {
    let Some(model) = req.get("model").or_else(|| req.get("name")).and_then(Value::as_str).map(String::from) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "model is required"}))).into_response();
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::spawn(async move {
        let line = |v: Value| Ok(Bytes::from(format!("{v}\n")));
        let _ = tx.send(line(json!({"status": "pulling manifest"}))).await;
        let have = rt.models.lock().unwrap_or_else(|e| e.into_inner()).contains(&model);
        let total = rt.size_mb.unwrap_or_else(|| model_size_mb(&model)) * 1_000_000;
        let layers = [("sha256:7462734796d6", total - total / 100), ("sha256:966de95ca8a6", total / 100)];
        for (digest, size) in layers {
            let mut done = if have { size } else { 0 };
            let step = ((rt.rate * 1_000_000.0) / 10.0).max(1.0) as u64;
            loop {
                let status = format!("pulling {}", &digest[7..19]);
                if tx
                    .send(line(json!({"status": status, "digest": digest, "total": size, "completed": done})))
                    .await
                    .is_err()
                {
                    return;
                }
                if done >= size {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                done = (done + step).min(size);
            }
        }
        for s in ["verifying sha256 digest", "writing manifest"] {
            let _ = tx.send(line(json!({"status": s}))).await;
        }
        if let Some(dir) = &rt.models_dir {
            let marker = dir.join("sim-manifests").join(model.replace('/', "%"));
            let _ = std::fs::create_dir_all(dir.join("sim-manifests")).and_then(|_| std::fs::write(marker, b"pulled"));
        }
        rt.models.lock().unwrap_or_else(|e| e.into_inner()).insert(model);
        let _ = tx.send(line(json!({"status": "success"}))).await;
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn create(State(rt): State<Rt>, Json(req): Json<Value>) -> Response {
    let from = req.get("from").and_then(Value::as_str).unwrap_or_default();
    if !rt.models.lock().unwrap_or_else(|e| e.into_inner()).contains(from) {
        return (StatusCode::NOT_FOUND, Json(json!({"error": format!("model '{from}' not found")}))).into_response();
    }
    eprintln!("sim-runtime: created {} with {}", req["model"], req["parameters"]);
    Json(json!({"status": "success"})).into_response()
}

async fn generate(State(rt): State<Rt>, body: Bytes, chat: bool) -> Response {
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": {"message": "request body is not valid JSON"}})))
            .into_response();
    };
    let asked = req.get("model").and_then(Value::as_str).unwrap_or_default().to_string();
    let known = rt.models.lock().unwrap_or_else(|e| e.into_inner()).contains(&asked);
    if !known {
        return (
            StatusCode::NOT_FOUND,
            Json(
                json!({"error": {"message": format!("The model `{asked}` does not exist."), "type": "NotFoundError"}}),
            ),
        )
            .into_response();
    }
    let generating = Generating::on(rt.running.clone());
    answer(req, asked, "sim-runtime".into(), chat, rt.pace, Some(generating), Some(rt.tally.clone())).await
}

/// The runtime's metrics under its own names (what `hmas agent` translates).
async fn metrics(State(rt): State<Rt>) -> Response {
    let running = rt.running.load(Ordering::Relaxed);
    let t = &rt.tally;
    let (p, g, f) = (
        t.prompt_tokens.load(Ordering::Relaxed),
        t.generated_tokens.load(Ordering::Relaxed),
        t.finished.load(Ordering::Relaxed),
    );
    let m = rt.models.lock().unwrap_or_else(|e| e.into_inner()).iter().next().cloned().unwrap_or_default();
    let body = match rt.kind.as_str() {
        "vllm" => format!("vllm:num_requests_running{{model_name=\"{m}\"}} {running}\nvllm:num_requests_waiting{{model_name=\"{m}\"}} 0\nvllm:kv_cache_usage_perc{{model_name=\"{m}\"}} {:.3}\nvllm:prompt_tokens_total{{model_name=\"{m}\"}} {p}\nvllm:generation_tokens_total{{model_name=\"{m}\"}} {g}\nvllm:request_success_total{{finished_reason=\"stop\",model_name=\"{m}\"}} {f}\n", running as f64 * 0.05),
        "sglang" => format!("sglang:num_running_reqs {running}\nsglang:num_queue_reqs 0\nsglang:token_usage {:.3}\nsglang:prompt_tokens_total {p}\nsglang:generation_tokens_total {g}\nsglang:num_requests_total {f}\n", running as f64 * 0.05),
        "tgi" => format!("tgi_batch_current_size {running}\ntgi_queue_size 0\ntgi_request_success {f}\ntgi_request_input_length_sum {p}\ntgi_request_generated_tokens_sum {g}\n"),
        "llama_cpp" => format!("llamacpp:requests_processing {running}\nllamacpp:requests_deferred 0\nllamacpp:kv_cache_usage_ratio {:.3}\nllamacpp:prompt_tokens_total {p}\nllamacpp:tokens_predicted_total {g}\n", running as f64 * 0.05),
        _ => return (StatusCode::NOT_FOUND, "404 page not found").into_response(),
    };
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

#[derive(Clone)]
struct Hub {
    rate: f64,
    size_mb: Option<u64>,
}

/// A repository's files: small configuration and tokenizer, two weight shards (or GGUF files
/// per quantisation); the weights add up to the model's size.
fn repo_files(repo: &str, size_mb: Option<u64>) -> Vec<(String, u64)> {
    let total = size_mb.unwrap_or_else(|| model_size_mb(repo)) * 1_000_000;
    if repo.to_ascii_lowercase().contains("gguf") {
        let base = repo.rsplit('/').next().unwrap_or(repo).trim_end_matches("-GGUF").to_string();
        return vec![
            (format!("{base}-Q4_K_M.gguf"), total),
            (format!("{base}-Q8_0.gguf"), total * 2),
            ("README.md".into(), 2_000),
        ];
    }
    vec![
        ("config.json".into(), 700),
        ("tokenizer.json".into(), 7_000),
        ("tokenizer_config.json".into(), 1_200),
        ("model-00001-of-00002.safetensors".into(), total / 2),
        ("model-00002-of-00002.safetensors".into(), total - total / 2),
        ("README.md".into(), 2_000),
    ]
}

fn commit(repo: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(repo.as_bytes()))[..40].to_string()
}

fn hub_router(rate: f64, size_mb: Option<u64>) -> Router {
    Router::new()
        .route("/api/models/{org}/{name}/revision/{rev}", get(hub_info))
        .route("/{org}/{name}/resolve/{rev}/{*file}", get(hub_resolve))
        .route("/cdn/{org}/{name}/{*file}", get(hub_file))
        .with_state(Hub { rate, size_mb })
}

async fn hub_info(
    State(h): State<Hub>,
    Path((org, name, _rev)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let repo = format!("{org}/{name}");
    if name.starts_with("gated") && !headers.contains_key(header::AUTHORIZATION) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "Access to model is restricted"}))).into_response();
    }
    let siblings: Vec<Value> =
        repo_files(&repo, h.size_mb).into_iter().map(|(f, s)| json!({"rfilename": f, "size": s})).collect();
    Json(json!({"id": repo, "sha": commit(&repo), "siblings": siblings})).into_response()
}

/// Like the Hub: large files redirect to the CDN, small ones answer directly.
async fn hub_resolve(
    State(h): State<Hub>,
    Path((org, name, _rev, file)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let repo = format!("{org}/{name}");
    if repo_files(&repo, h.size_mb).iter().any(|(f, size)| *f == file && *size > 1_000_000) {
        return (StatusCode::FOUND, [(header::LOCATION, format!("/cdn/{org}/{name}/{file}"))]).into_response();
    }
    serve_bytes(&h, &repo, &file, &headers)
}

async fn hub_file(
    State(h): State<Hub>,
    Path((org, name, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    serve_bytes(&h, &format!("{org}/{name}"), &file, &headers)
}

/// The file's bytes (JSON files are valid JSON), from a `Range` start if asked, at the rate.
fn serve_bytes(h: &Hub, repo: &str, file: &str, headers: &HeaderMap) -> Response {
    let Some((_, size)) = repo_files(repo, h.size_mb).into_iter().find(|(f, _)| f == file) else {
        return (StatusCode::NOT_FOUND, "Entry not found").into_response();
    };
    let start = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse::<u64>().ok())
        .filter(|s| *s < size)
        .unwrap_or(0);
    let content: Option<Vec<u8>> = file.ends_with(".json").then(|| {
        let mut v = format!("{{\"model\": \"{repo}\", \"file\": \"{file}\"}}").into_bytes();
        v.resize(size as usize, b' ');
        v
    });
    let rate = (h.rate * 1_000_000.0).max(1.0);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let chunk = 64 * 1024u64;
    tokio::spawn(async move {
        let mut pos = start;
        while pos < size {
            let n = chunk.min(size - pos);
            let bytes = match &content {
                Some(c) => Bytes::copy_from_slice(&c[pos as usize..(pos + n) as usize]),
                None => Bytes::from(vec![0u8; n as usize]),
            };
            tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate)).await;
            if tx.send(Ok(bytes)).await.is_err() {
                return;
            }
            pos += n;
        }
    });
    let mut resp = Response::builder()
        .header(header::CONTENT_LENGTH, (size - start).to_string())
        .header(header::CONTENT_TYPE, "application/octet-stream");
    if start > 0 {
        resp = resp
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {start}-{}/{size}", size - 1));
    }
    resp.body(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
