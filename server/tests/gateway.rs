//! The inference gateway through a real `hmas` and its simulated hub: keys (wrong, revoked,
//! expired, out of scope), limits, usage and metrics; streams passed through, cancelled and cut;
//! balancing over two clusters and skipping one that died; the official `openai` package.
mod common;

use common::fleet::{register, running, sim_cluster, spec, wait_for};
use common::{call, login, Hmas};
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const PW: &str = "admin-password-1";

async fn deploy(c: &reqwest::Client, h: &Hmas, s: Value) -> String {
    let (st, v) = call(c, h, "/api/deployments/create", json!({"spec": s})).await;
    assert_eq!(st, 200, "{v}");
    let name = v["name"].as_str().unwrap().to_string();
    wait_for(c, h, &name, 60, running).await;
    name
}

async fn new_key(c: &reqwest::Client, h: &Hmas, input: Value) -> (String, String) {
    let (s, v) = call(c, h, "/api/keys/create", json!({"input": input})).await;
    assert_eq!(s, 200, "{v}");
    (v["key"]["id"].as_str().unwrap().to_string(), v["secret"].as_str().unwrap().to_string())
}

fn gw(h: &Hmas, key: Option<&str>, path: &str, body: Value) -> reqwest::RequestBuilder {
    let r = reqwest::Client::new().post(h.url(path)).json(&body);
    match key {
        Some(k) => r.bearer_auth(k),
        None => r,
    }
}

fn chat_body(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 8})
}

/// Waits until the gateway routes `model` (the observer publishes every 2 s).
async fn routed(h: &Hmas, key: &str, model: &str) {
    let start = Instant::now();
    loop {
        let r = gw(h, Some(key), "/v1/chat/completions", chat_body(model)).send().await.unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        if status == 200 {
            return;
        }
        assert!(matches!(error_code(&v), "model_not_ready" | "model_not_found"), "{v}");
        assert!(start.elapsed() < Duration::from_secs(20), "{model} never routed: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn keys_scopes_limits_usage_and_metrics() {
    let h = Hmas::start(Some(PW));
    let admin = login(&h, "admin", PW).await;
    register(&admin, &h, "gpu-general", "b").await;
    let llama = deploy(&admin, &h, spec("llama3.2:1b", "ollama", 1, &["gpu-general"])).await;
    let qwen = deploy(&admin, &h, spec("qwen2.5:0.5b", "ollama", 1, &["gpu-general"])).await;

    // No key, a wrong key: 401 in OpenAI's shape, before anything else is looked at.
    let r = gw(&h, None, "/v1/chat/completions", chat_body("llama3.2:1b")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(error_code(&r.json().await.unwrap()), "missing_api_key");
    let r = gw(&h, Some("hmas-notakey"), "/v1/chat/completions", chat_body("llama3.2:1b")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!((v["error"]["type"].as_str(), error_code(&v)), (Some("authentication_error"), "invalid_api_key"));

    // Bad input names the field and creates nothing.
    let (s, v) = call(&admin, &h, "/api/keys/create", json!({"input": {"name": "", "rpm": 0}})).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["fields"]["name"].is_string() && v["fields"]["rpm"].is_string(), "{v}");
    let (s, v) = call(&admin, &h, "/api/keys/create", json!({"input": {"name": "x", "scope": ["nope"]}})).await;
    assert_eq!((s, v["fields"]["scope"].as_str()), (400, Some("no deployment named nope")));
    assert_eq!(call(&admin, &h, "/api/keys/list", json!({})).await.1, json!([]));

    // A key scoped to one deployment: shown once, listed by prefix only.
    let (scoped_id, scoped) = new_key(&admin, &h, json!({"name": "scoped", "scope": [llama]})).await;
    let (_, list) = call(&admin, &h, "/api/keys/list", json!({})).await;
    assert!(!list.to_string().contains(&scoped), "the secret is never listed");
    assert!(scoped.starts_with(list[0]["prefix"].as_str().unwrap()));
    routed(&h, &scoped, "llama3.2:1b").await;
    let r = gw(&h, Some(&scoped), "/v1/chat/completions", chat_body("llama3.2:1b")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v["choices"][0]["message"]["content"].as_str().unwrap().starts_with("Hello from llama3.2:1b"), "{v}");
    // The deployment's name works as the model too.
    let r = gw(&h, Some(&scoped), "/v1/chat/completions", chat_body(&llama)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Out of scope is answered exactly as "does not exist": a scoped key cannot probe what else runs.
    let r = gw(&h, Some(&scoped), "/v1/chat/completions", chat_body("qwen2.5:0.5b")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let out_of_scope: Value = r.json().await.unwrap();
    let r = gw(&h, Some(&scoped), "/v1/chat/completions", chat_body("qwen2.5:7b")).send().await.unwrap();
    let missing: Value = r.json().await.unwrap();
    assert_eq!(out_of_scope["error"]["code"], missing["error"]["code"]);
    assert_eq!(
        out_of_scope["error"]["message"].as_str().unwrap().replace("qwen2.5:0.5b", "M"),
        missing["error"]["message"].as_str().unwrap().replace("qwen2.5:7b", "M")
    );
    let r = gw(&h, Some(&scoped), &format!("/api/inference/{qwen}/v1/chat/completions"), chat_body("qwen2.5:0.5b"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = gw(&h, Some(&scoped), "/v1/chat/completions", chat_body("gpt-4o")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(&r.json().await.unwrap()), "model_not_found");
    let models: Value = reqwest::Client::new()
        .get(h.url("/v1/models"))
        .bearer_auth(&scoped)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["llama3.2:1b"], "{models}");

    // By deployment name, the path passes through as is.
    let r = gw(&h, Some(&scoped), &format!("/api/inference/{llama}/v1/chat/completions"), chat_body("llama3.2:1b"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Revoked and expired keys stop at once.
    let (_, all) = new_key(&admin, &h, json!({"name": "all"})).await;
    let (s, v) = call(&admin, &h, "/api/keys/revoke", json!({"id": scoped_id})).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("revoked")), "{v}");
    let r = gw(&h, Some(&scoped), "/v1/chat/completions", chat_body("llama3.2:1b")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("revoked"));
    let (exp_id, expiring) = new_key(&admin, &h, json!({"name": "expiring", "expires_in_days": 1})).await;
    let store =
        server::store::Store::connect(&format!("sqlite://{}", h.data_dir.join("hmas.db").display())).await.unwrap();
    store.execute_raw(&format!("UPDATE api_keys SET expires_at = 1 WHERE id = '{exp_id}'")).await.unwrap();
    // Any key change reloads the table from the database.
    new_key(&admin, &h, json!({"name": "reload"})).await;
    let r = gw(&h, Some(&expiring), "/v1/chat/completions", chat_body("llama3.2:1b")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("expired"));
    let (_, list) = call(&admin, &h, "/api/keys/list", json!({})).await;
    let status_of = |id: &str| list.as_array().unwrap().iter().find(|k| k["id"] == id).unwrap()["status"].clone();
    assert_eq!((status_of(&exp_id), status_of(&scoped_id)), (json!("expired"), json!("revoked")));
    let hashes: Value = json!(store_hashes(&store).await);
    assert!(!hashes.to_string().contains(&all), "only hashes are stored");

    // Requests per minute: 60 pass, the 61st gets 429 with Retry-After, and a second later it passes.
    let (_, limited) = new_key(&admin, &h, json!({"name": "limited", "rpm": 60})).await;
    let embed = json!({"model": "llama3.2:1b", "input": "hello"});
    let statuses: Vec<u16> = futures::stream::iter(0..60)
        .map(|_| {
            let r = gw(&h, Some(&limited), "/v1/embeddings", embed.clone());
            async move { r.send().await.unwrap().status().as_u16() }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let r = gw(&h, Some(&limited), "/v1/embeddings", embed.clone()).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(error_code(&r.json().await.unwrap()), "rate_limit_exceeded");
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(gw(&h, Some(&limited), "/v1/embeddings", embed.clone()).send().await.unwrap().status(), 200);

    // Tokens per minute: the answer that overdraws passes, the next one waits.
    let (_, tpm) = new_key(&admin, &h, json!({"name": "tpm", "tpm": 20})).await;
    let long =
        json!({"model": "llama3.2:1b", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 30});
    assert_eq!(gw(&h, Some(&tpm), "/v1/chat/completions", long.clone()).send().await.unwrap().status(), 200);
    let r = gw(&h, Some(&tpm), "/v1/chat/completions", long).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.text().await.unwrap().contains("tokens per minute"));

    // A stream with usage: tokens are the upstream's count.
    let mut body = chat_body("llama3.2:1b");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    body["max_tokens"] = json!(12);
    let text = gw(&h, Some(&all), "/v1/chat/completions", body).send().await.unwrap().text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(text.contains("\"completion_tokens\":12"), "{text}");

    // Usage, the request log and the metrics catch up within a second or so.
    let start = Instant::now();
    let usage = loop {
        let (s, u) = call(&admin, &h, "/api/keys/usage", json!({"hours": 1})).await;
        assert_eq!(s, 200, "{u}");
        let all_row = u["by_key"].as_array().unwrap().iter().find(|k| k["label"] == "all").cloned();
        if all_row.as_ref().is_some_and(|r| r["completion_tokens"] == 12) {
            break u;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{u}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let limited_row = usage["by_key"].as_array().unwrap().iter().find(|k| k["label"] == "limited").unwrap();
    assert_eq!((limited_row["requests"].as_i64(), limited_row["errors"].as_i64()), (Some(62), Some(1)), "{usage}");
    let total: i64 = usage["points"].as_array().unwrap().iter().map(|p| p["requests"].as_i64().unwrap()).sum();
    assert!(total >= 70, "{usage}");
    assert_eq!(usage["points"].as_array().unwrap().len(), 60);
    let (_, log) = call(&admin, &h, "/api/keys/requests", json!({"limit": 500})).await;
    let streamed = log.as_array().unwrap().iter().find(|r| r["stream"] == true).unwrap();
    assert_eq!((streamed["status"].as_u64(), streamed["outcome"].as_str()), (Some(200), Some("ok")));
    assert!(streamed["ttft_ms"].as_i64().unwrap() >= 100, "the simulated TTFT is 120 ms: {streamed}");
    assert!(log.as_array().unwrap().iter().any(|r| r["status"] == 429));
    let whole = log.as_array().unwrap().iter().filter(|r| r["status"] == 200 && r["stream"] == false);
    assert!(whole.clone().count() > 60 && whole.clone().all(|r| r["outcome"] == "ok"), "{log}");
    assert!(!log.to_string().contains("Say hello"), "no prompt bodies in the log");
    let metrics = reqwest::get(h.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(&format!(
            "hmas_gateway_requests_total{{deployment=\"{llama}\",key=\"{scoped_id}\",status=\"200\"}}"
        )),
        "{metrics}"
    );
    assert!(metrics.contains("hmas_gateway_ttft_seconds_bucket"));
    assert!(metrics.contains("kind=\"completion\""));

    // A user sees only their own keys and cannot revoke someone else's.
    call(&admin, &h, "/api/users/create", json!({"username": "ana", "role": "user", "password": "ana-password-1"}))
        .await;
    let ana = login(&h, "ana", "ana-password-1").await;
    assert_eq!(call(&ana, &h, "/api/keys/list", json!({})).await.1, json!([]));
    let (s, _) = call(&ana, &h, "/api/keys/revoke", json!({"id": exp_id})).await;
    assert_eq!(s, 404);
    let (s, u) = call(&ana, &h, "/api/keys/usage", json!({"hours": 1})).await;
    assert_eq!((s, u["by_key"].as_array().unwrap().len()), (200, 0));
    assert_eq!(call(&ana, &h, "/api/keys/usage", json!({"hours": 5})).await.0, 400);
}

async fn store_hashes(store: &server::store::Store) -> Vec<String> {
    use server::store::KeyStore;
    store.list_keys(None).await.unwrap().into_iter().map(|k| format!("{} {}", k.key_hash, k.prefix)).collect()
}

/// Reads SSE from a response until `until` holds for what came so far.
async fn read_until(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    got: &mut String,
    until: impl Fn(&str) -> bool,
) {
    let start = Instant::now();
    while !until(got) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("stream stalled");
        got.push_str(&String::from_utf8_lossy(&chunk.expect("stream ended").expect("stream failed")));
        assert!(start.elapsed() < Duration::from_secs(20));
    }
}

async fn generating(h: &Hmas) -> u64 {
    let mut n = 0;
    for c in ["gpu-general", "gpu-hpc"] {
        n += sim_cluster(h, c, None).await["generating"].as_u64().unwrap();
    }
    n
}

#[tokio::test]
async fn streams_balance_cancel_and_survive_endpoint_failures() {
    let h = Hmas::start(Some(PW));
    let admin = login(&h, "admin", PW).await;
    register(&admin, &h, "gpu-general", "b").await;
    register(&admin, &h, "gpu-hpc", "a").await;
    let mut s = spec("llama3.2:1b", "ollama", 1, &["gpu-general", "gpu-hpc"]);
    s["replicas"] = json!(2);
    let name = deploy(&admin, &h, s).await;
    let (_, key) = new_key(&admin, &h, json!({"name": "k"})).await;
    let (d, _) = wait_for(&admin, &h, &name, 30, |d| d["deployment"]["endpoints"].as_array().unwrap().len() == 2).await;
    let pod_cluster: Vec<(String, String)> = d["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["pod"].as_str().unwrap().to_string(), r["cluster"].as_str().unwrap().to_string()))
        .collect();
    let cluster_of = |text: &str| pod_cluster.iter().find(|(p, _)| text.contains(p.as_str())).map(|(_, c)| c.clone());

    // Least outstanding requests: concurrent answers come from both clusters.
    let start = Instant::now();
    loop {
        let answers: Vec<String> = futures::stream::iter(0..8)
            .map(|_| {
                let r = gw(&h, Some(&key), "/v1/chat/completions", chat_body("llama3.2:1b"));
                async move { r.send().await.unwrap().text().await.unwrap() }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        let clusters: BTreeSet<String> = answers.iter().filter_map(|a| cluster_of(a)).collect();
        if clusters.len() == 2 {
            break;
        }
        // The gateway learns the second endpoint on the observer's next round.
        assert!(start.elapsed() < Duration::from_secs(15), "answers came from {clusters:?}: {answers:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // A client that goes away mid-stream ends the generation upstream.
    let long = |n: u64| {
        json!({"model": "llama3.2:1b", "messages": [{"role": "user", "content": "Tell a long story"}],
               "max_tokens": n, "ignore_eos": true, "stream": true})
    };
    assert_eq!(generating(&h).await, 0);
    let r = gw(&h, Some(&key), "/v1/chat/completions", long(400)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut stream = r.bytes_stream();
    let mut got = String::new();
    read_until(&mut stream, &mut got, |g| g.matches("data: ").count() >= 4).await;
    assert_eq!(generating(&h).await, 1);
    drop(stream);
    let start = Instant::now();
    while generating(&h).await != 0 {
        assert!(start.elapsed() < Duration::from_secs(2), "the upstream kept generating after the client left");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The model server dies mid-stream: the client gets an error event and a clean end.
    let r = gw(&h, Some(&key), "/v1/chat/completions", long(400)).send().await.unwrap();
    let mut stream = r.bytes_stream();
    let mut got = String::new();
    read_until(&mut stream, &mut got, |g| cluster_of(g).is_some()).await;
    let victim = cluster_of(&got).unwrap();
    let survivor = if victim == "gpu-hpc" { "gpu-general" } else { "gpu-hpc" };
    sim_cluster(&h, &victim, Some(json!({"down": true}))).await;
    let mut rest = String::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("stalled") {
        rest.push_str(&String::from_utf8_lossy(&chunk.expect("the stream must end cleanly, not break")));
    }
    let last = rest.trim_end().rsplit("\n\n").next().unwrap();
    let v: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(error_code(&v), "upstream_error", "{rest}");

    // With one cluster down, every request is served by the other, without errors.
    for _ in 0..6 {
        let r = gw(&h, Some(&key), "/v1/chat/completions", chat_body("llama3.2:1b")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(cluster_of(&r.text().await.unwrap()).as_deref(), Some(survivor));
    }
    sim_cluster(&h, &victim, Some(json!({"down": false}))).await;

    let start = Instant::now();
    loop {
        let (_, log) = call(&admin, &h, "/api/keys/requests", json!({})).await;
        let outcomes: Vec<&str> = log.as_array().unwrap().iter().map(|r| r["outcome"].as_str().unwrap()).collect();
        if outcomes.contains(&"cancelled") && outcomes.contains(&"upstream_error") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{outcomes:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The official `openai` package, unchanged, against `/v1` with an H-MAS key.
#[tokio::test]
async fn the_openai_python_package_works_unchanged() {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/pyenv/bin/python");
    if !python.exists() {
        assert!(
            std::env::var("HMAS_REQUIRE_OPENAI").is_err(),
            "{} is missing (scripts/test installs it)",
            python.display()
        );
        eprintln!("openai: {} not found (scripts/test installs it), not run", python.display());
        return;
    }
    let h = Hmas::start(Some(PW));
    let admin = login(&h, "admin", PW).await;
    register(&admin, &h, "gpu-general", "b").await;
    deploy(&admin, &h, spec("llama3.2:1b", "ollama", 1, &["gpu-general"])).await;
    let (_, key) = new_key(&admin, &h, json!({"name": "python"})).await;
    routed(&h, &key, "llama3.2:1b").await;
    let script = r#"
import os, openai
client = openai.OpenAI(base_url=os.environ["BASE"] + "/v1", api_key=os.environ["KEY"])
ids = [m.id for m in client.models.list()]
assert ids == ["llama3.2:1b"], ids
r = client.chat.completions.create(model="llama3.2:1b", messages=[{"role": "user", "content": "Say hello"}], max_tokens=16)
assert r.choices[0].message.content.startswith("Hello from llama3.2:1b"), r
assert r.usage.completion_tokens > 0, r.usage
pieces = []
for chunk in client.chat.completions.create(model="llama3.2:1b", messages=[{"role": "user", "content": "Say hello"}],
                                            max_tokens=16, stream=True, stream_options={"include_usage": True}):
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)
    if chunk.usage:
        assert chunk.usage.completion_tokens == 16, chunk.usage
assert len(pieces) == 16 and "".join(pieces).startswith("Hello from"), pieces
try:
    client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    raise SystemExit("expected NotFoundError")
except openai.NotFoundError as e:
    assert "nope" in str(e)
bad = openai.OpenAI(base_url=os.environ["BASE"] + "/v1", api_key="hmas-wrong")
try:
    bad.models.list()
    raise SystemExit("expected AuthenticationError")
except openai.AuthenticationError:
    pass
print("openai ok", openai.__version__)
"#;
    let (base, py) = (h.base.clone(), python.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(py).args(["-c", script]).env("BASE", base).env("KEY", key).output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("openai ok"), "{stdout}");
    eprintln!("{stdout}");
}
