//! What answers on a Service's NodePort: the model server the ready pods run, speaking its
//! runtime's HTTP API and OpenAI's (chat and completions, streamed or not, with `usage`), at a
//! configured time-to-first-token and token rate.
use super::cluster::FaultyListener;
use super::config::SimConfig;
use super::member::Member;
use super::selectors::Selector;
use super::workload::{Runtime, Workload};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

#[derive(Default)]
struct Target {
    ns: String,
    selector: Option<Selector>,
}

/// A NodePort's listener; it closes when dropped.
pub struct NodePortServer {
    target: Arc<RwLock<Target>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for NodePortServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl NodePortServer {
    pub fn set_target(&self, ns: &str, selector: Option<Selector>) {
        let mut t = self.target.write().unwrap_or_else(|e| e.into_inner());
        t.ns = ns.to_string();
        t.selector = selector;
    }
}

#[derive(Clone)]
struct Ctx {
    member: Weak<Member>,
    target: Arc<RwLock<Target>>,
    cfg: Arc<SimConfig>,
    next: Arc<AtomicUsize>,
}

/// Binds a free port in the NodePort range on `ip` (trying, as other processes may hold some).
/// A listener for a NodePort: on `want` when the Service names its port, else on a free one.
pub fn allocate_node_port(
    ip: &str,
    want: Option<u16>,
    member: Weak<Member>,
    down: Arc<AtomicBool>,
    cfg: Arc<SimConfig>,
) -> Option<(u16, NodePortServer)> {
    use rand::Rng;
    for _ in 0..if want.is_some() { 1 } else { 500 } {
        let port: u16 = want.unwrap_or_else(|| rand::thread_rng().gen_range(30000..=32767));
        let Ok(std_listener) = std::net::TcpListener::bind((ip, port)) else { continue };
        if std_listener.set_nonblocking(true).is_err() {
            continue;
        }
        let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else { continue };
        let target = Arc::new(RwLock::new(Target::default()));
        let ctx = Ctx { member, target: target.clone(), cfg, next: Arc::new(AtomicUsize::new(0)) };
        let app = Router::new()
            .route("/", get(root))
            .route("/health", get(health))
            .route("/api/tags", get(tags))
            .route("/v1/models", get(models))
            .route("/v1/chat/completions", post(chat))
            .route("/v1/completions", post(completions))
            .route("/v1/embeddings", post(embeddings))
            .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found") })
            .with_state(ctx);
        let task = tokio::spawn(async move {
            let _ = axum::serve(FaultyListener { inner: listener, down }, app).await;
        });
        return Some((port, NodePortServer { target, task }));
    }
    None
}

/// An error in OpenAI's shape.
struct RtError(StatusCode, String, &'static str);

impl IntoResponse for RtError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": {"message": self.1, "type": self.2, "param": null, "code": null}})))
            .into_response()
    }
}

fn error(status: StatusCode, message: &str, kind: &'static str) -> Response {
    RtError(status, message.to_string(), kind).into_response()
}

/// The ready endpoint that takes this request (round robin), or an error as the runtime would give.
fn pick(ctx: &Ctx) -> Result<(String, Workload), RtError> {
    let Some(member) = ctx.member.upgrade() else {
        return Err(RtError(StatusCode::SERVICE_UNAVAILABLE, "cluster is gone".into(), "server_error"));
    };
    let (ns, selector) = {
        let t = ctx.target.read().unwrap_or_else(|e| e.into_inner());
        (t.ns.clone(), t.selector.clone())
    };
    let Some(selector) = selector else {
        return Err(RtError(StatusCode::SERVICE_UNAVAILABLE, "service has no selector".into(), "server_error"));
    };
    let eps = member.endpoints(&ns, &selector);
    if eps.is_empty() {
        return Err(RtError(
            StatusCode::SERVICE_UNAVAILABLE,
            "no ready endpoints behind this service".into(),
            "server_error",
        ));
    }
    let i = ctx.next.fetch_add(1, Ordering::Relaxed) % eps.len();
    Ok(eps[i].clone())
}

async fn root(State(ctx): State<Ctx>) -> Response {
    match pick(&ctx) {
        Ok((_, w)) if w.runtime == Runtime::Ollama => "Ollama is running".into_response(),
        Ok(_) => (StatusCode::NOT_FOUND, "404 page not found").into_response(),
        Err(e) => e.into_response(),
    }
}

async fn health(State(ctx): State<Ctx>) -> Response {
    match pick(&ctx) {
        Ok((_, w)) if w.runtime == Runtime::LlamaCpp => Json(json!({"status": "ok"})).into_response(),
        Ok((_, w)) if w.runtime == Runtime::Ollama => (StatusCode::NOT_FOUND, "404 page not found").into_response(),
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn tags(State(ctx): State<Ctx>) -> Response {
    match pick(&ctx) {
        Ok((_, w)) if w.runtime == Runtime::Ollama => {
            let m = w.model.unwrap_or_default();
            Json(json!({"models": [{"name": m, "model": m, "size": super::workload::model_size_mb(&m) * 1_000_000, "details": {"format": "gguf"}}]})).into_response()
        }
        Ok(_) => (StatusCode::NOT_FOUND, "404 page not found").into_response(),
        Err(e) => e.into_response(),
    }
}

async fn models(State(ctx): State<Ctx>) -> Response {
    match pick(&ctx) {
        Ok((_, w)) => {
            let owner = owner(w.runtime);
            Json(json!({"object": "list", "data": [{"id": w.model.unwrap_or_default(), "object": "model", "created": 1_700_000_000, "owned_by": owner}]})).into_response()
        }
        Err(e) => e.into_response(),
    }
}

fn owner(r: Runtime) -> &'static str {
    match r {
        Runtime::Ollama => "library",
        Runtime::Vllm => "vllm",
        Runtime::Tgi => "tgi",
        Runtime::LlamaCpp => "llamacpp",
        Runtime::Sglang => "sglang",
        Runtime::Other => "unknown",
    }
}

/// The model a request names must be the one served (Ollama accepts a missing `:latest`).
fn check_model(w: &Workload, body: &Value) -> Result<String, RtError> {
    let served = w.model.clone().unwrap_or_default();
    let asked = body.get("model").and_then(Value::as_str).unwrap_or("");
    let same = asked == served || (w.runtime == Runtime::Ollama && format!("{asked}:latest") == served);
    if asked.is_empty() || same {
        Ok(served)
    } else {
        Err(RtError(StatusCode::NOT_FOUND, format!("The model `{asked}` does not exist."), "NotFoundError"))
    }
}

fn count_tokens(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

/// The answer's words; with `ignore_eos` (as vLLM and SGLang take it) the text repeats until
/// `max_tokens`, for long generations on demand.
fn reply_words(model: &str, pod: &str, prompt: &str, max_tokens: u64, ignore_eos: bool) -> Vec<String> {
    let echo: String = prompt.split_whitespace().take(24).collect::<Vec<_>>().join(" ");
    let text = format!("Hello from {model} (simulated, {pod}). You said: {echo}. This answer is generated by the H-MAS simulator to exercise streaming, usage accounting and routing end to end.");
    let words = text.split_whitespace().map(String::from);
    let n = max_tokens.max(1) as usize;
    if ignore_eos {
        words.cycle().take(n).collect()
    } else {
        words.take(n).collect()
    }
}

/// Counts an answer in progress until dropped (finished, or the client left).
pub struct Generating(Arc<AtomicUsize>);

impl Generating {
    fn new(ctx: &Ctx) -> Option<Self> {
        let m = ctx.member.upgrade()?;
        Some(Self::on(m.cluster.generating.clone()))
    }

    pub fn on(counter: Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

/// What a standalone runtime reports in its metrics: tokens in and out, answers finished.
#[derive(Default)]
pub struct Tally {
    pub prompt_tokens: std::sync::atomic::AtomicU64,
    pub generated_tokens: std::sync::atomic::AtomicU64,
    pub finished: std::sync::atomic::AtomicU64,
}

/// How fast a simulated model server answers.
#[derive(Clone, Copy)]
pub struct Pace {
    pub tokens_per_second: f64,
    pub ttft_ms: u64,
}

impl Drop for Generating {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn request_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

async fn chat(State(ctx): State<Ctx>, body: Bytes) -> Response {
    generate(ctx, body, true).await
}

async fn completions(State(ctx): State<Ctx>, body: Bytes) -> Response {
    generate(ctx, body, false).await
}

/// The endpoint that takes a request, the request, and the model it may name.
fn accept(ctx: &Ctx, body: &Bytes) -> Result<(String, Value, String), RtError> {
    let (pod, w) = pick(ctx)?;
    let req = serde_json::from_slice::<Value>(body)
        .map_err(|_| RtError(StatusCode::BAD_REQUEST, "request body is not valid JSON".into(), "BadRequestError"))?;
    let model = check_model(&w, &req)?;
    Ok((pod, req, model))
}

async fn generate(ctx: Ctx, body: Bytes, chat: bool) -> Response {
    let (pod, req, model) = match accept(&ctx, &body) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let pace = Pace { tokens_per_second: ctx.cfg.tokens_per_second, ttft_ms: ctx.cfg.ttft_ms };
    answer(req, model, pod, chat, pace, Generating::new(&ctx), None).await
}

/// An OpenAI-shaped answer to a checked request, streamed or whole.
pub async fn answer(
    req: Value,
    model: String,
    pod: String,
    chat: bool,
    pace: Pace,
    generating: Option<Generating>,
    tally: Option<Arc<Tally>>,
) -> Response {
    let prompt = if chat {
        let Some(msgs) = req.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty()) else {
            return error(StatusCode::BAD_REQUEST, "messages: field required", "BadRequestError");
        };
        msgs.iter().filter_map(|m| m.get("content").and_then(Value::as_str)).collect::<Vec<_>>().join(" ")
    } else {
        req.get("prompt").and_then(Value::as_str).unwrap_or("").to_string()
    };
    let max_tokens =
        req.get("max_tokens").or_else(|| req.get("max_completion_tokens")).and_then(Value::as_u64).unwrap_or(256);
    let ignore_eos = req.get("ignore_eos").and_then(Value::as_bool).unwrap_or(false);
    let words = reply_words(&model, &pod, &prompt, max_tokens, ignore_eos);
    let prompt_tokens = count_tokens(&prompt);
    let count = move |t: &Option<Arc<Tally>>, f: fn(&Tally) -> &std::sync::atomic::AtomicU64, n: u64| {
        if let Some(t) = t {
            f(t).fetch_add(n, Ordering::Relaxed);
        }
    };
    count(&tally, |t| &t.prompt_tokens, prompt_tokens);
    let completion_tokens = words.len() as u64;
    let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens});
    let id = format!("{}-{}", if chat { "chatcmpl" } else { "cmpl" }, request_id());
    let created = now_secs();
    let per_token = Duration::from_secs_f64(1.0 / pace.tokens_per_second.max(0.001));
    let ttft = Duration::from_millis(pace.ttft_ms);
    let stream = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let finish = if completion_tokens >= max_tokens { "length" } else { "stop" };

    if !stream {
        tokio::time::sleep(ttft + per_token * completion_tokens as u32).await;
        count(&tally, |t| &t.generated_tokens, completion_tokens);
        count(&tally, |t| &t.finished, 1);
        drop(generating);
        let text = words.join(" ");
        let choice = if chat {
            json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish})
        } else {
            json!({"index": 0, "text": text, "finish_reason": finish})
        };
        return Json(json!({"id": id, "object": if chat { "chat.completion" } else { "text_completion" }, "created": created, "model": model, "choices": [choice], "usage": usage})).into_response();
    }

    let include_usage = req.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        let _generating = generating;
        let object = if chat { "chat.completion.chunk" } else { "text_completion" };
        let chunk = |choice: Value, usage: Option<&Value>| {
            let mut c = json!({"id": id, "object": object, "created": created, "model": model, "choices": [choice]});
            if let Some(u) = usage {
                c["choices"] = json!([]);
                c["usage"] = u.clone();
            }
            Bytes::from(format!("data: {c}\n\n"))
        };
        tokio::time::sleep(ttft).await;
        if chat
            && tx
                .send(Ok(chunk(
                    json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}),
                    None,
                )))
                .await
                .is_err()
        {
            return;
        }
        for (i, word) in words.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(per_token).await;
            }
            let piece = if i == 0 { word.clone() } else { format!(" {word}") };
            let choice = if chat {
                json!({"index": 0, "delta": {"content": piece}, "finish_reason": null})
            } else {
                json!({"index": 0, "text": piece, "finish_reason": null})
            };
            // A client that went away ends the generation.
            if tx.send(Ok(chunk(choice, None))).await.is_err() {
                return;
            }
            count(&tally, |t| &t.generated_tokens, 1);
        }
        count(&tally, |t| &t.finished, 1);
        let last = if chat {
            json!({"index": 0, "delta": {}, "finish_reason": finish})
        } else {
            json!({"index": 0, "text": "", "finish_reason": finish})
        };
        let _ = tx.send(Ok(chunk(last, None))).await;
        if include_usage {
            let _ = tx.send(Ok(chunk(Value::Null, Some(&usage)))).await;
        }
        let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)))
        .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "stream", "server_error"))
}

async fn embeddings(State(ctx): State<Ctx>, body: Bytes) -> Response {
    let (_, req, model) = match accept(&ctx, &body) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let inputs: Vec<String> = match req.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
        _ => return error(StatusCode::BAD_REQUEST, "input: field required", "BadRequestError"),
    };
    // A deterministic 16-dimensional vector per input: equal texts embed equally.
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut v = [0f64; 16];
            for (j, b) in s.bytes().enumerate() {
                v[j % 16] += (b as f64) / 255.0;
            }
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-9);
            json!({"object": "embedding", "index": i, "embedding": v.iter().map(|x| x / norm).collect::<Vec<_>>()})
        })
        .collect();
    let tokens: u64 = inputs.iter().map(|s| count_tokens(s)).sum();
    Json(json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})).into_response()
}
