//! Load for the gateway benchmark: `--concurrency` connections, each sending requests back to
//! back (keep-alive) for `--requests` in total. Prints one JSON line: status counts, latency
//! percentiles, requests per second, and for streams time to first chunk, gaps between chunks
//! and whether every chunk arrived whole and in order.
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).unwrap_or_else(|| default.to_string())
}

#[derive(Default)]
struct Stats {
    statuses: BTreeMap<u16, u64>,
    latency: Vec<f64>,
    ttft: Vec<f64>,
    gaps: Vec<f64>,
    faithful: u64,
    streams: u64,
    errors: u64,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1]
}

fn main() {
    let url: hyper::Uri = arg("--url", "http://127.0.0.1:9100/v1/chat/completions").parse().expect("--url");
    let key = arg("--key", "");
    let concurrency: usize = arg("--concurrency", "1").parse().unwrap();
    let total: usize = arg("--requests", "1000").parse().unwrap();
    let stream = arg("--stream", "false") == "true";
    let chunks: usize = arg("--chunks", "50").parse().unwrap();
    let chunk_bytes: usize = arg("--chunk-bytes", "256").parse().unwrap();
    let threads: usize = arg("--threads", "1").parse().unwrap();
    let body = if stream {
        r#"{"model":"mock","stream":true,"messages":[{"role":"user","content":"hi"}]}"#
    } else {
        r#"{"model":"mock","messages":[{"role":"user","content":"hi"}]}"#
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().unwrap();
    let out = rt.block_on(async move {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).pool_max_idle_per_host(concurrency.max(1)).build(conn);
        let next = Arc::new(AtomicUsize::new(0));
        let stats = Arc::new(Mutex::new(Stats::default()));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (client, url, key, next, stats) =
                (client.clone(), url.clone(), key.clone(), next.clone(), stats.clone());
            tasks.push(tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < total {
                    let mut req = hyper::Request::post(url.clone()).header("content-type", "application/json");
                    if !key.is_empty() {
                        req = req.header("authorization", format!("Bearer {key}"));
                    }
                    let req = req.body(Full::new(Bytes::from_static(body.as_bytes()))).unwrap();
                    let t0 = Instant::now();
                    let res = match client.request(req).await {
                        Ok(r) => r,
                        Err(_) => {
                            stats.lock().unwrap().errors += 1;
                            continue;
                        }
                    };
                    let status = res.status().as_u16();
                    let mut b = res.into_body();
                    let (mut first, mut last, mut gaps): (Option<std::time::Duration>, Option<Instant>, Vec<f64>) =
                        (None, None, Vec::new());
                    let mut data = Vec::new();
                    let mut ok = true;
                    while let Some(f) = b.frame().await {
                        let Ok(f) = f else {
                            ok = false;
                            break;
                        };
                        if let Some(d) = f.data_ref() {
                            let now = Instant::now();
                            if first.is_none() {
                                first = Some(now - t0);
                            }
                            if let Some(l) = last {
                                gaps.push((now - l).as_secs_f64() * 1000.0);
                            }
                            last = Some(now);
                            data.extend_from_slice(d);
                        }
                    }
                    let latency = t0.elapsed().as_secs_f64() * 1000.0;
                    let mut s = stats.lock().unwrap();
                    *s.statuses.entry(status).or_default() += 1;
                    if !ok {
                        s.errors += 1;
                    }
                    s.latency.push(latency);
                    if stream {
                        s.streams += 1;
                        s.ttft.push(first.map(|f| f.as_secs_f64() * 1000.0).unwrap_or(latency));
                        s.gaps.extend(gaps);
                        // Every chunk whole and in order: N events of the size sent, then [DONE].
                        let events: Vec<&[u8]> =
                            data.split(|c| *c == b'\n').filter(|l| l.starts_with(b"data: ")).collect();
                        let whole = events.len() == chunks + 1
                            && events[..chunks].iter().enumerate().all(|(i, e)| {
                                e.len() + 2 == chunk_bytes && e.windows(6).any(|w| w == format!("t{i:05}").as_bytes())
                            });
                        if whole {
                            s.faithful += 1;
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        let mut s = Arc::try_unwrap(stats).ok().unwrap().into_inner().unwrap();
        let n = s.latency.len();
        serde_json::json!({
            "requests": n, "seconds": secs, "rps": n as f64 / secs, "statuses": s.statuses, "errors": s.errors,
            "p50_ms": pct(&mut s.latency, 0.50), "p99_ms": pct(&mut s.latency, 0.99),
            "ttft_p50_ms": pct(&mut s.ttft, 0.50), "ttft_p99_ms": pct(&mut s.ttft, 0.99),
            "gap_p50_ms": pct(&mut s.gaps, 0.50), "gap_p99_ms": pct(&mut s.gaps, 0.99),
            "streams": s.streams, "faithful_streams": s.faithful,
        })
    });
    println!("{out}");
}
