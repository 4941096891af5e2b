//! A model server stand-in for the gateway benchmark: a fixed chat completion, or (with
//! `"stream": true`) a stream of `--chunks` SSE events of `--chunk-bytes` bytes, `--interval-ms`
//! apart. `cargo run --release --example mock_upstream -- --addr 127.0.0.1:9100`
use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use std::time::Duration;

#[derive(Clone, Copy)]
struct Cfg {
    chunks: usize,
    interval: Duration,
    chunk_bytes: usize,
}

const FIXED: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"mock","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the benchmark upstream."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":7,"total_tokens":16}}"#;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).unwrap_or_else(|| default.to_string())
}

/// One SSE event of exactly `size` bytes (padding inside the JSON string).
fn event(i: usize, size: usize) -> Bytes {
    let head = format!(
        r#"data: {{"id":"chatcmpl-bench","object":"chat.completion.chunk","choices":[{{"index":0,"delta":{{"content":"t{i:05} "#
    );
    let tail = "\"}}]}\n\n";
    let pad = size.saturating_sub(head.len() + tail.len());
    Bytes::from(format!("{head}{}{tail}", "x".repeat(pad)))
}

async fn chat(axum::extract::State(cfg): axum::extract::State<Cfg>, body: Bytes) -> Response {
    let stream = memchr::memmem::find(&body, b"\"stream\":true").is_some();
    if !stream {
        return Response::builder().header(header::CONTENT_TYPE, "application/json").body(Body::from(FIXED)).unwrap();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(cfg.interval);
        for i in 0..cfg.chunks {
            tick.tick().await;
            if tx.send(Ok(event(i, cfg.chunk_bytes))).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)))
        .unwrap()
}

fn main() {
    let cfg = Cfg {
        chunks: arg("--chunks", "50").parse().expect("--chunks"),
        interval: Duration::from_millis(arg("--interval-ms", "20").parse().expect("--interval-ms")),
        chunk_bytes: arg("--chunk-bytes", "256").parse().expect("--chunk-bytes"),
    };
    let addr = arg("--addr", "127.0.0.1:9100");
    let threads: usize = arg("--threads", "1").parse().expect("--threads");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().unwrap();
    rt.block_on(async move {
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/models", get(|| async { r#"{"object":"list","data":[{"id":"mock","object":"model"}]}"# }))
            .with_state(cfg);
        let l = tokio::net::TcpListener::bind(&addr).await.expect("bind");
        println!("mock upstream on http://{}", l.local_addr().unwrap());
        let l = axum::serve::ListenerExt::tap_io(l, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(l, app).await.unwrap();
    });
}
