//! H-MAS as an attacker and a careless client meet it: sign-in floods, accounts switched off,
//! oversized names, slow and idle connections, forged log lines, specs create would refuse,
//! undecodable and misspelt bodies, cross-site writes, plain-HTTP members, file modes, page
//! headers, and metering of answers recorded from a real runtime.
mod common;

use common::{call, client, login, Hmas};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PW: &str = "admin-password-1";

/// The recorded answers of llama-cpp-python's server (see ../shared/runtime-streams/README.md).
fn recorded(name: &str) -> Vec<u8> {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/runtime-streams/llama-cpp-python-0.3.36").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A model server that answers with the recorded bytes: the chat answer, its stream, or the
/// completions stream, by what the request asks. `pause` is waited between streamed events.
struct Replay {
    base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Replay {
    async fn start(pause: Duration) -> Replay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else { return };
                tokio::spawn(async move {
                    let Some((path, body)) = read_request(&mut s).await else { return };
                    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
                    let stream = v["stream"] == json!(true);
                    let (kind, answer) = match (path.as_str(), stream) {
                        ("/v1/completions", _) => ("text/event-stream", recorded("completions-stream.sse")),
                        (_, true) if v.get("stream_options").is_some() => {
                            ("text/event-stream", recorded("stream-usage.sse"))
                        }
                        (_, true) => ("text/event-stream", recorded("stream.sse")),
                        _ => ("application/json", recorded("chat.json")),
                    };
                    let head = format!("HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\nconnection: close\r\n\r\n");
                    let _ = s.write_all(head.as_bytes()).await;
                    if kind == "application/json" {
                        let _ = s.write_all(&answer).await;
                        return;
                    }
                    let text = String::from_utf8(answer).unwrap();
                    for event in text.split_inclusive("\n\n") {
                        if s.write_all(event.as_bytes()).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(pause).await;
                    }
                });
            }
        });
        Replay { base, task }
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let path = head.split_whitespace().nth(1)?.to_string();
    let len = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0usize);
    while buf.len() < end + len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((path, buf[end..].to_vec()))
}

fn start(env: &[(&str, &str)]) -> (Hmas, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let h = Hmas::start_with_env(&tmp.path().join("data"), Some(PW), env);
    (h, tmp)
}

async fn new_key(c: &reqwest::Client, h: &Hmas, input: Value) -> String {
    let (s, v) = call(c, h, "/api/keys/create", json!({"input": input})).await;
    assert_eq!(s, 200, "{v}");
    v["secret"].as_str().unwrap().to_string()
}

fn chat(h: &Hmas, key: &str, body: Value) -> reqwest::RequestBuilder {
    reqwest::Client::new().post(h.url("/v1/chat/completions")).bearer_auth(key).json(&body)
}

fn rss_peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

async fn login_status(c: &reqwest::Client, h: &Hmas, user: &str, pw: &str) -> (u16, Option<u64>, Value) {
    let r = c.post(h.url("/api/auth/login")).json(&json!({"username": user, "password": pw})).send().await.unwrap();
    let status = r.status().as_u16();
    let retry = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    (status, retry, r.json().await.unwrap_or_default())
}

#[tokio::test]
async fn a_sign_in_flood_stays_small_and_never_slows_the_rest() {
    // Throttling off (limits far away), so every one of the 128 reaches the password check.
    let (h, _tmp) =
        start(&[("HMAS_SIGN_IN_ACCOUNT_FAILURES", "1000000"), ("HMAS_SIGN_IN_ADDRESS_FAILURES", "1000000")]);
    let admin = login(&h, "admin", PW).await;
    let before = rss_peak_kib(h.child.id());
    let c = reqwest::Client::new();
    let flood = (0..128).map(|i| {
        let (c, url) = (c.clone(), h.url("/api/auth/login"));
        async move {
            let body = json!({"username": "admin", "password": format!("wrong-{i}")});
            c.post(url).json(&body).send().await.unwrap().status().as_u16()
        }
    });
    let flood = tokio::spawn(futures::future::join_all(flood));
    // Pages stay usable while it runs.
    let started = Instant::now();
    let (s, me) = call(&admin, &h, "/api/auth/me", json!({})).await;
    assert_eq!((s, me["username"].as_str()), (200, Some("admin")));
    let me_took = started.elapsed();
    let statuses = flood.await.unwrap();
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429), "{statuses:?}");
    assert!(statuses.contains(&401));
    let peak = rss_peak_kib(h.child.id());
    eprintln!(
        "RSS peak before {before} KiB, after 128 concurrent wrong passwords {peak} KiB; /api/auth/me took {me_took:?}"
    );
    assert!(peak < 150 * 1024, "peak RSS {peak} KiB");
    assert!(me_took < Duration::from_secs(2), "/api/auth/me took {me_took:?} during the flood");
}

#[tokio::test]
async fn wrong_passwords_back_off_and_an_admin_sees_and_clears_the_lock() {
    let (h, _tmp) = start(&[("HMAS_SIGN_IN_LOCK_SECS", "1")]);
    let admin = login(&h, "admin", PW).await;
    let (s, v) =
        call(&admin, &h, "/api/users/create", json!({"username": "ana", "role": "user", "password": "ana-password-1"}))
            .await;
    assert_eq!(s, 200, "{v}");
    let c = client();
    for _ in 0..5 {
        assert_eq!(login_status(&c, &h, "ana", "nope").await.0, 401);
    }
    // Locked: even the right password waits, and the answer says how long.
    let (s, retry, v) = login_status(&c, &h, "ana", "ana-password-1").await;
    assert_eq!((s, v["code"].as_str(), retry), (429, Some("too_many_requests"), Some(1)), "{v}");
    assert!(v["message"].as_str().unwrap().contains("this account"), "{v}");
    // After the window the right password works.
    let started = Instant::now();
    loop {
        let (s, _, v) = login_status(&c, &h, "ana", "ana-password-1").await;
        if s == 200 {
            break;
        }
        assert_eq!(s, 429, "{v}");
        assert!(started.elapsed() < Duration::from_secs(5), "still locked: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Failing again after the lock costs more (the lock doubles), and an admin can lift it.
    for _ in 0..6 {
        login_status(&c, &h, "ana", "nope").await;
    }
    let (s, locks) = call(&admin, &h, "/api/users/lockouts", json!({})).await;
    assert_eq!(s, 200, "{locks}");
    let ana = locks.as_array().unwrap().iter().find(|l| l["subject"] == "ana").cloned().expect("ana is locked");
    assert_eq!(ana["kind"], "account");
    assert_eq!(login_status(&c, &h, "ana", "ana-password-1").await.0, 429);
    let (s, v) = call(&admin, &h, "/api/users/clear_lockout", json!({"kind": "account", "subject": "ana"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(login_status(&c, &h, "ana", "ana-password-1").await.0, 200);
    let (s, _) = call(&admin, &h, "/api/users/clear_lockout", json!({"kind": "account", "subject": "ana"})).await;
    assert_eq!(s, 404);
    let ana_client = login(&h, "ana", "ana-password-1").await;
    assert_eq!(call(&ana_client, &h, "/api/users/lockouts", json!({})).await.0, 403, "admins only");
}

#[tokio::test]
async fn account_state_reaches_the_gateway_at_once_and_metering_reads_real_streams() {
    let replay = Replay::start(Duration::ZERO).await;
    let upstream = format!("tiny-llama={}", replay.base);
    let (h, _tmp) = start(&[("HMAS_GATEWAY_UPSTREAMS", upstream.as_str())]);
    let admin = login(&h, "admin", PW).await;
    let (_, ana) =
        call(&admin, &h, "/api/users/create", json!({"username": "ana", "role": "user", "password": "ana-password-1"}))
            .await;
    let ana_id = ana["id"].as_str().unwrap().to_string();
    let ana_c = login(&h, "ana", "ana-password-1").await;
    let key = new_key(&ana_c, &h, json!({"name": "ana-key"})).await;
    let ask = json!({"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 12});
    let r = chat(&h, &key, ask.clone()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Read to the end: an answer dropped unread is a cancelled request, metered by estimate.
    assert_eq!(r.bytes().await.unwrap(), recorded("chat.json"));

    // Metering: the recorded answers, whatever their spacing, count what they carry.
    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    let text = chat(&h, &key, streamed.clone()).send().await.unwrap().text().await.unwrap();
    assert_eq!(text.as_bytes(), recorded("stream.sse"), "passed through byte for byte");
    streamed["stream_options"] = json!({"include_usage": true});
    chat(&h, &key, streamed).send().await.unwrap().text().await.unwrap();
    let r = reqwest::Client::new()
        .post(h.url("/v1/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "tiny-llama", "prompt": "a", "max_tokens": 8, "stream": true}))
        .send()
        .await
        .unwrap();
    r.text().await.unwrap();
    let started = Instant::now();
    let rows = loop {
        let (_, log) = call(&admin, &h, "/api/keys/requests", json!({"limit": 50})).await;
        let rows = log.as_array().unwrap().clone();
        if rows.len() >= 4 {
            break rows;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let tokens = |path: &str, stream: bool| -> Vec<i64> {
        rows.iter()
            .filter(|r| r["path"] == path && r["stream"] == stream)
            .map(|r| r["completion_tokens"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(tokens("/v1/chat/completions", false), [12], "from usage");
    assert_eq!(tokens("/v1/chat/completions", true), [12, 12], "12 streamed tokens, two of them empty text");
    assert_eq!(tokens("/v1/completions", true), [8]);

    // Disabling the owner refuses the key on the next call, and the keys page says why.
    let (s, v) = call(&admin, &h, "/api/users/set_disabled", json!({"id": ana_id, "disabled": true})).await;
    assert_eq!(s, 200, "{v}");
    let r = chat(&h, &key, ask.clone()).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("disabled"));
    let (_, keys) = call(&admin, &h, "/api/keys/list", json!({})).await;
    assert_eq!(keys[0]["status"], "owner_disabled", "{keys}");
    call(&admin, &h, "/api/users/set_disabled", json!({"id": ana_id, "disabled": false})).await;
    assert_eq!(chat(&h, &key, ask.clone()).send().await.unwrap().status(), 200, "enabled again");

    // A session's gateway access ends with the session, at once: the cookie, replayed after
    // signing out or being disabled, is refused on the very next call.
    let session = || async {
        let r = reqwest::Client::new()
            .post(h.url("/api/auth/login"))
            .json(&json!({"username": "ana", "password": "ana-password-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string()
    };
    let with_cookie = |cookie: &str, path: &str, body: &Value| {
        reqwest::Client::new().post(h.url(path)).header("cookie", cookie).json(body).send()
    };
    let cookie = session().await;
    assert_eq!(with_cookie(&cookie, "/v1/chat/completions", &ask).await.unwrap().status(), 200);
    assert_eq!(with_cookie(&cookie, "/api/auth/logout", &json!({})).await.unwrap().status(), 200);
    assert_eq!(with_cookie(&cookie, "/v1/chat/completions", &ask).await.unwrap().status(), 401, "signed out");
    let cookie = session().await;
    assert_eq!(with_cookie(&cookie, "/v1/chat/completions", &ask).await.unwrap().status(), 200);
    call(&admin, &h, "/api/users/set_disabled", json!({"id": ana_id, "disabled": true})).await;
    assert_eq!(with_cookie(&cookie, "/v1/chat/completions", &ask).await.unwrap().status(), 401, "disabled");
}

#[tokio::test]
async fn untrusted_sizes_are_bounded_and_refusals_spend_the_key() {
    let replay = Replay::start(Duration::ZERO).await;
    let upstream = format!("tiny-llama={}", replay.base);
    let (h, _tmp) = start(&[("HMAS_GATEWAY_UPSTREAMS", upstream.as_str())]);
    let admin = login(&h, "admin", PW).await;
    let key = new_key(&admin, &h, json!({"name": "limited", "rpm": 3})).await;
    let huge = "m".repeat(2 << 20);
    let r = chat(&h, &key, json!({"model": huge, "messages": []})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(text.len() < 1024 && text.contains("invalid_model"), "{} bytes", text.len());
    for _ in 0..2 {
        let r = chat(&h, &key, json!({"model": "no-such-model", "messages": []})).send().await.unwrap();
        assert_eq!(r.status(), 404);
    }
    // Three refusals later the key's minute is spent.
    let r = chat(&h, &key, json!({"model": "tiny-llama", "messages": []})).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let started = Instant::now();
    let log = loop {
        let (_, log) = call(&admin, &h, "/api/keys/requests", json!({"limit": 50})).await;
        if log.as_array().unwrap().len() >= 4 {
            break log;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(log.to_string().len() < 4096, "log rows are capped: {} bytes", log.to_string().len());
    // Lookups by name echo at most a short piece of it.
    let (s, v) = call(&admin, &h, "/api/deployments/get", json!({"name": "d".repeat(900_000)})).await;
    assert!(s == 404 || s == 400, "{s}");
    assert!(v.to_string().len() < 1024, "{} bytes", v.to_string().len());
}

/// Reads until the server closes the connection; how long that took.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<(Duration, Vec<u8>)> {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some((started.elapsed(), got)),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed_but_long_streams_are_not() {
    let replay = Replay::start(Duration::from_millis(1500)).await;
    let upstream = format!("tiny-llama={}", replay.base);
    let (h, _tmp) = start(&[
        ("HMAS_GATEWAY_UPSTREAMS", upstream.as_str()),
        ("HMAS_HTTP_HEADER_TIMEOUT_SECS", "1"),
        ("HMAS_HTTP_BODY_TIMEOUT_SECS", "1"),
        ("HMAS_HTTP_IDLE_TIMEOUT_SECS", "1"),
    ]);
    let addr = h.base.trim_start_matches("http://").to_string();
    let limit = Duration::from_secs(10);
    // Idle from the start.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    assert!(closed_within(&mut idle, limit).await.is_some(), "an idle connection stays open");
    // Headers that never end.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    assert!(closed_within(&mut slow, limit).await.is_some(), "slow headers are held");
    // A body that stops arriving.
    let mut body = TcpStream::connect(&addr).await.unwrap();
    body.write_all(
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user",
    )
    .await
    .unwrap();
    assert!(closed_within(&mut body, limit).await.is_some(), "a stalled body is held");
    // A keep-alive connection is closed once idle after its answer.
    let mut kept = TcpStream::connect(&addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let (_, got) = closed_within(&mut kept, limit).await.expect("closed after idling");
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"), "answered first");

    // A stream that pauses 1.5 s between tokens (longer than every timeout) arrives whole.
    let admin = login(&h, "admin", PW).await;
    let key = new_key(&admin, &h, json!({"name": "k"})).await;
    let started = Instant::now();
    let r = chat(&h, &key, json!({"model": "tiny-llama", "messages": [], "stream": true})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert_eq!(text.as_bytes(), recorded("stream.sse"));
    assert!(started.elapsed() > Duration::from_secs(15), "the pauses were real");
}

#[tokio::test]
async fn the_connection_cap_holds_new_connections_until_one_closes() {
    let (h, _tmp) = start(&[("HMAS_HTTP_MAX_CONNECTIONS", "2"), ("HMAS_HTTP_IDLE_TIMEOUT_SECS", "600")]);
    let addr = h.base.trim_start_matches("http://").to_string();
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        open.push(s);
    }
    // The third is accepted by the kernel but not served while two are open.
    let third = tokio::spawn(reqwest::get(h.url("/healthz")));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!third.is_finished(), "a third connection was served past the cap");
    drop(open.pop());
    let r = tokio::time::timeout(Duration::from_secs(10), third).await.expect("served once a slot freed");
    assert_eq!(r.unwrap().unwrap().status(), 200);
}

#[tokio::test]
async fn user_input_cannot_forge_log_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("hmas.log");
    let mut h = Hmas::start_logged(&tmp.path().join("data"), Some(PW), Some(&log));
    let c = client();
    let forged = "eve\nINFO hmas: signed in user=admin\u{1b}[2J\u{0}";
    assert_eq!(login_status(&c, &h, forged, "wrong-password").await.0, 401);
    assert!(h.terminate());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("sign-in refused"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("INFO hmas: signed in")), "a forged line: {text}");
    assert!(!text.contains('\u{1b}') && !text.contains('\u{0}'), "raw control characters: {text:?}");
}

#[tokio::test]
async fn preview_refuses_what_create_refuses_and_bodies_are_read_strictly() {
    let (h, _tmp) = start(&[]);
    let admin = login(&h, "admin", PW).await;
    let base = json!({"runtime": "ollama", "model": "llama3.2:1b", "replicas": 1, "gpus_per_replica": 0,
                      "clusters": ["zone-a"]});
    let with = |k: &str, v: Value| {
        let mut s = base.clone();
        s[k] = v;
        s
    };
    for (spec, field) in [
        (with("replicas", json!(100_000)), "replicas"),
        (with("model", json!("llama; rm -rf /")), "model"),
        (with("clusters", json!(["no-such-cluster"])), "clusters"),
        (with("replicas", json!(-1)), "spec.replicas"),
        (with("replicas", json!("two")), "spec.replicas"),
        (with("replcias", json!(2)), "spec.replcias"),
    ] {
        let (ps, pv) = call(&admin, &h, "/api/deployments/preview", json!({"spec": spec})).await;
        let (cs, cv) = call(&admin, &h, "/api/deployments/create", json!({"spec": spec})).await;
        assert_eq!((ps, cs), (400, 400), "{spec}: preview {pv} create {cv}");
        assert!(pv["fields"].get(field).is_some(), "preview names {field}: {pv}");
        assert_eq!(pv["fields"], cv["fields"], "the same refusal");
    }
    // Unknown top-level fields too.
    let (s, v) = call(&admin, &h, "/api/users/list", json!({"verbose": true})).await;
    assert_eq!((s, v["fields"]["verbose"].as_str()), (400, Some("unknown field")), "{v}");
}

#[tokio::test]
async fn writes_must_come_from_this_origin_as_json() {
    let (h, _tmp) = start(&[]);
    let host = h.base.trim_start_matches("http://").to_string();
    let c = client();
    let post = |origin: Option<&str>, ctype: &str, body: &str| {
        let mut r = c.post(h.url("/api/auth/login")).header("content-type", ctype).body(body.to_string());
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send()
    };
    let body = json!({"username": "admin", "password": PW}).to_string();
    let ok = post(Some(&format!("http://{host}")), "application/json", &body).await.unwrap();
    assert_eq!(ok.status(), 200);
    for origin in [format!("https://{host}"), "http://evil.example".into(), "null".into()] {
        let r = post(Some(&origin), "application/json", &body).await.unwrap();
        assert_eq!(r.status(), 403, "{origin}");
    }
    for ctype in ["text/plain", "application/x-www-form-urlencoded"] {
        let r = post(None, ctype, &body).await.unwrap();
        assert_eq!(r.status(), 400, "{ctype}");
        let v: Value = r.json().await.unwrap();
        assert!(v["fields"].get("Content-Type").is_some(), "{v}");
    }
    // The playground's cookie path on the gateway holds to the same rule.
    let admin = login(&h, "admin", PW).await;
    let r = admin
        .post(h.url("/v1/chat/completions"))
        .header("origin", "http://evil.example")
        .json(&json!({"model": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn pages_carry_security_headers_and_files_are_private() {
    let (h, tmp) = start(&[]);
    let r = client().get(h.url("/login")).send().await.unwrap();
    let hd = r.headers();
    assert_eq!(hd["x-frame-options"], "DENY");
    assert_eq!(hd["x-content-type-options"], "nosniff");
    assert!(hd["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert!(hd.contains_key("referrer-policy"));
    // Something written, so the WAL exists.
    login(&h, "admin", PW).await;
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let data = tmp.path().join("data");
    for f in ["hmas.db", "hmas.db-wal", "hmas.db-shm"] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    let backup = tmp.path().join("backup.db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hmas"))
        .args(["backup", "--data-dir"])
        .arg(&data)
        .arg("--to")
        .arg(&backup)
        .env_remove("HMAS_DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode(&backup), 0o600);
}

#[tokio::test]
async fn members_are_reached_over_https_only() {
    let (h, _tmp) = start(&[]);
    let admin = login(&h, "admin", PW).await;
    let kubeconfig = "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:8080\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\nusers:\n- name: u\n  user:\n    token: secret-token\n";
    for access in [
        json!({"kind": "kubeconfig", "kubeconfig": kubeconfig}),
        json!({"kind": "endpoint", "server": "http://127.0.0.1:8080", "token": "secret-token"}),
    ] {
        let body = json!({"name": "plain", "zone_class": "a", "access": access});
        let (s, v) = call(&admin, &h, "/api/clusters/register", body).await;
        assert_eq!(s, 400, "{v}");
        assert!(v.to_string().contains("https://"), "{v}");
        assert!(!v.to_string().contains("secret-token"));
    }
    let (_, list) = call(&admin, &h, "/api/clusters/list", json!({})).await;
    assert!(!list.to_string().contains("\"plain\""), "nothing registered: {list}");
}

#[tokio::test]
async fn access_tokens_let_scripts_call_the_api_without_a_session() {
    let (h, _tmp) = start(&[]);
    let admin = login(&h, "admin", PW).await;
    let (_, op) = call(
        &admin,
        &h,
        "/api/users/create",
        json!({"username": "otto", "role": "operator", "password": "otto-password-1"}),
    )
    .await;
    let otto = login(&h, "otto", "otto-password-1").await;
    // For your own role or less, never more.
    let (s, v) =
        call(&otto, &h, "/api/tokens/create", json!({"input": {"name": "ci", "role": "admin", "expires_in_days": 7}}))
            .await;
    assert_eq!((s, v["fields"]["role"].is_string()), (400, true), "{v}");
    let (s, v) = call(&otto, &h, "/api/tokens/create", json!({"input": {"name": "ci", "expires_in_days": 7}})).await;
    assert_eq!(s, 200, "{v}");
    let secret = v["secret"].as_str().unwrap().to_string();
    let id = v["token"]["id"].as_str().unwrap().to_string();
    assert_eq!(v["token"]["role"], "operator");
    assert!(secret.starts_with("hmas-at-") && !v["token"].to_string().contains(&secret));
    // No cookie jar: the bearer token is the caller.
    let script =
        |token: &str, path: &str| reqwest::Client::new().post(h.url(path)).bearer_auth(token).json(&json!({})).send();
    let r = script(&secret, "/api/deployments/options").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(script(&secret, "/api/users/list").await.unwrap().status(), 403, "an operator's token");
    let r = script("hmas-at-not-a-token", "/api/deployments/options").await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("access token"));
    // Not an API key: the gateway refuses it.
    let r = reqwest::Client::new()
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&secret)
        .json(&json!({"model": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Listed with its last use, stored only as a hash.
    let (_, list) = call(&otto, &h, "/api/tokens/list", json!({})).await;
    assert_eq!(list[0]["status"], "active");
    assert!(list[0]["last_used_at"].is_i64(), "{list}");
    let (_, all) = call(&admin, &h, "/api/tokens/list", json!({})).await;
    assert_eq!(all[0]["owner"], "otto");
    let store =
        server::store::Store::connect(&format!("sqlite://{}", h.data_dir.join("hmas.db").display())).await.unwrap();
    use server::store::TokenStore;
    let rows = store.list_tokens(None).await.unwrap();
    assert!(!format!("{rows:?}").contains(&secret[10..]), "the secret is not stored");
    // Demoting the owner demotes the token; disabling or revoking ends it.
    call(&admin, &h, "/api/users/set_role", json!({"id": op["id"], "role": "user"})).await;
    assert_eq!(script(&secret, "/api/deployments/options").await.unwrap().status(), 200);
    assert_eq!(script(&secret, "/api/deployments/create").await.unwrap().status(), 403, "now a user's");
    let (s, v) = call(&otto, &h, "/api/tokens/revoke", json!({"id": id})).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("revoked")), "{v}");
    assert_eq!(script(&secret, "/api/deployments/options").await.unwrap().status(), 401);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_address_is_throttled_on_its_own() {
    let (h, _tmp) = start(&[
        ("HMAS_TRUSTED_PROXIES", "127.0.0.1"),
        ("HMAS_SIGN_IN_ADDRESS_FAILURES", "3"),
        ("HMAS_SIGN_IN_ACCOUNT_FAILURES", "100"),
    ]);
    let c = reqwest::Client::new();
    let try_from = |addr: &'static str, user: String| {
        c.post(h.url("/api/auth/login"))
            .header("x-forwarded-for", addr)
            .json(&json!({"username": user, "password": "wrong-password"}))
            .send()
    };
    for i in 0..3 {
        assert_eq!(try_from("198.51.100.1", format!("u{i}")).await.unwrap().status(), 401);
    }
    let r = try_from("198.51.100.1", "someone".into()).await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.text().await.unwrap().contains("this address"));
    assert_eq!(try_from("198.51.100.2", "someone".into()).await.unwrap().status(), 401, "another client is not locked");
    let admin = login(&h, "admin", PW).await;
    let (_, locks) = call(&admin, &h, "/api/users/lockouts", json!({})).await;
    assert!(
        locks.as_array().unwrap().iter().any(|l| l["kind"] == "address" && l["subject"] == "198.51.100.1"),
        "{locks}"
    );
}
