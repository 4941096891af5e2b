//! Property tests over everything that reads untrusted input: the kubeconfig parser, the name
//! and settings validators, the API's body decoding (specs, policies, registrations, keys, users,
//! the field-path and unknown-field checks), and the gateway's reading of streamed answers.
//! Each target must never panic, and every refusal must be a clear error (code and, for input,
//! the field). `HMAS_FUZZ_CASES` sets the cases per target (the test command's default is small;
//! `scripts/fuzz` runs many more).
use app::error::ErrorCode;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

fn cases() -> u32 {
    std::env::var("HMAS_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
}

/// Runs `test` over `strategy`, and reports how many cases ran.
fn fuzz<S: Strategy>(target: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let n = cases();
    let mut runner = TestRunner::new(Config { cases: n, failure_persistence: None, ..Config::default() });
    let started = std::time::Instant::now();
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{target}: {e}");
    }
    eprintln!("fuzz {target}: {n} cases in {:.1} s", started.elapsed().as_secs_f64());
}

/// Any JSON value, nested a few levels, with the keys the API's types use mixed in so decoding
/// gets past the first field often enough to matter.
fn json() -> impl Strategy<Value = Value> {
    let keys = prop_oneof![
        Just("name".to_string()),
        Just("model".to_string()),
        Just("runtime".to_string()),
        Just("replicas".to_string()),
        Just("gpus_per_replica".to_string()),
        Just("clusters".to_string()),
        Just("settings".to_string()),
        Just("extra_args".to_string()),
        Just("cache".to_string()),
        Just("strategy".to_string()),
        Just("rules".to_string()),
        Just("kind".to_string()),
        Just("scope".to_string()),
        Just("rpm".to_string()),
        "[a-z_]{1,12}",
        ".{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u32>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![Just("ollama"), Just("vllm"), Just("llama3.2:1b"), Just("a"), Just(""), Just("x; rm -rf /")]
            .prop_map(|s| Value::String(s.to_string())),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Objects shaped like the API's inputs (every required key there, values from the edges), so
/// most cases get past decoding into validation.
fn input_like() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        Just(String::new()),
        Just("llama3.2:1b".to_string()),
        Just("Qwen/Qwen2.5-0.5B-Instruct".to_string()),
        Just("a".repeat(300)),
        Just("$(reboot)".to_string()),
        Just("gpu-general".to_string()),
        "[a-z0-9-]{1,70}",
        ".{0,20}",
    ];
    let number = prop_oneof![Just(0u64), Just(1), Just(64), Just(65), Just(u32::MAX as u64), 0u64..100];
    (
        text.clone(),
        text.clone(),
        prop_oneof![Just("ollama"), Just("vllm"), Just("tgi"), Just("llama-cpp")],
        number.clone(),
        number.clone(),
        prop::collection::vec(text.clone(), 0..4),
        prop::collection::btree_map(text.clone(), text.clone(), 0..4),
        prop::collection::vec(text, 0..4),
        number,
    )
        .prop_map(|(name, model, runtime, replicas, gpus, clusters, settings, args, limit)| {
            serde_json::json!({
                "name": name, "model": model, "runtime": runtime, "replicas": replicas,
                "gpus_per_replica": gpus, "clusters": clusters, "settings": settings, "extra_args": args,
                "username": model, "password": name, "role": "user", "display_name": name,
                "rpm": limit, "tpm": limit, "expires_in_days": limit, "scope": clusters,
                "zone_class": "a", "region": model, "zone": name,
                "access": {"kind": "endpoint", "server": model, "token": name},
            })
        })
}

/// A refusal must say what is wrong: an `invalid` code with at least one field and a message.
fn clear(e: &app::error::AppError) -> Result<(), TestCaseError> {
    prop_assert_eq!(e.code, ErrorCode::Invalid);
    prop_assert!(!e.fields.is_empty() && !e.message.is_empty(), "{:?}", e);
    for (k, v) in &e.fields {
        prop_assert!(!k.is_empty() && !v.is_empty(), "{:?}", e);
    }
    Ok(())
}

/// Decodes `v` as `T` and validates it; any outcome but a panic or a vague refusal is fine.
fn decode_and_validate<T: serde::de::DeserializeOwned>(
    v: &Value,
    validate: impl Fn(&T) -> Result<(), app::error::AppError>,
) -> Result<(), TestCaseError> {
    if let Ok(t) = serde_json::from_value::<T>(v.clone()) {
        if let Err(e) = validate(&t) {
            clear(&e)?;
        }
    }
    Ok(())
}

#[test]
fn api_bodies_decode_validate_and_name_their_fields() {
    use app::models::{apikey::NewApiKey, cluster::RegisterCluster, deployment::DeploySpec, policy, user::NewUser};
    fuzz("api-bodies", prop_oneof![json(), input_like()], |v| {
        decode_and_validate::<DeploySpec>(&v, |s| s.validate())?;
        decode_and_validate::<RegisterCluster>(&v, |s| s.validate())?;
        decode_and_validate::<NewApiKey>(&v, |s| s.validate())?;
        decode_and_validate::<NewUser>(&v, |s| s.validate())?;
        decode_and_validate::<policy::PlacementStrategy>(&v, |s| s.validate())?;
        decode_and_validate::<policy::ResourceProfile>(&v, |s| s.validate())?;
        decode_and_validate::<policy::FailoverPolicy>(&v, |s| s.validate())?;
        // What the server makes of a body that does not decode: a path inside what was sent.
        let text = v.to_string();
        if let Err(e) = serde_json::from_str::<DeploySpec>(&text) {
            let at = format!("{e}");
            let mut err = app::error::AppError::new(ErrorCode::Invalid, format!("invalid request body: {at}"));
            server::http::errors::name_the_field(&mut err, text.as_bytes());
            clear(&err).or_else(|_| {
                // Only positions serde could not tie to a key (the top, a syntax error) have no field.
                prop_assert!(err.fields.is_empty());
                Ok(())
            })?;
        }
        let mut unknown = Vec::new();
        app::models::validate::unknown_keys(&v, &Value::Null, "", &mut unknown);
        app::models::validate::unknown_keys(&v, &v, "", &mut unknown);
        prop_assert!(unknown.is_empty(), "a body has no keys unknown to itself: {:?}", unknown);
        Ok(())
    });
}

#[test]
fn the_json_path_of_any_prefix_of_any_bytes() {
    fuzz("json-path", prop::collection::vec(any::<u8>(), 0..300), |bytes| {
        let p = server::http::errors::json_path_at(&bytes, false);
        let q = server::http::errors::json_path_at(&bytes, true);
        prop_assert!(p.len() <= bytes.len() * 4 + 8 && q.len() <= p.len() + 1);
        Ok(())
    });
}

#[test]
fn names_and_labels() {
    use app::models::validate::{clip, dns1035_label, dns1123_label, shown};
    fuzz("names", ".{0,80}", |s: String| {
        if dns1035_label(&s).is_ok() {
            prop_assert!(s.len() <= 63 && s.starts_with(|c: char| c.is_ascii_lowercase()));
            prop_assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        }
        if dns1123_label(&s, 63).is_ok() {
            prop_assert!(!s.is_empty() && !s.starts_with('-') && !s.ends_with('-'));
        }
        for r in [dns1035_label(&s), dns1123_label(&s, 20), app::models::user::validate_username(&s)] {
            if let Err(m) = r {
                prop_assert!(!m.is_empty());
            }
        }
        prop_assert!(shown(&s).chars().count() <= app::models::validate::SHOWN_MAX + 20);
        prop_assert!(s.starts_with(clip(&s, 7)));
        Ok(())
    });
}

/// A valid kubeconfig with any of its values replaced by something else.
fn kubeconfig() -> impl Strategy<Value = String> {
    let base = "apiVersion: v1\nkind: Config\ncurrent-context: CTX\nclusters:\n- name: c\n  cluster:\n    server: SERVER\n    certificate-authority-data: CA\ncontexts:\n- name: a\n  context: {cluster: CLUSTER, user: u}\nusers:\n- name: u\n  user:\n    token: TOKEN\n    client-certificate-data: CERT\n";
    let value = prop_oneof![
        Just("a".to_string()),
        Just("https://127.0.0.1:6443".to_string()),
        Just("http://x".to_string()),
        Just("\"\"".to_string()),
        Just("[1, 2]".to_string()),
        Just("{exec: {command: sh}}".to_string()),
        Just("&a [*a, *a]".to_string()),
        Just("!!binary aGVsbG8=".to_string()),
        "[ -~]{0,30}",
    ];
    (value.clone(), value.clone(), value.clone(), value.clone(), value.clone(), value).prop_map(
        move |(ctx, server, ca, cluster, token, cert)| {
            base.replace("CTX", &ctx)
                .replace("SERVER", &server)
                .replace("CA", &ca)
                .replace("CLUSTER", &cluster)
                .replace("TOKEN", &token)
                .replace("CERT", &cert)
        },
    )
}

#[test]
fn kubeconfigs_parse_or_say_why() {
    use server::hub::kubeconfig::{access, contexts};
    let any_text = prop_oneof![
        kubeconfig(),
        ".{0,200}",
        prop::collection::vec(any::<u8>(), 0..200).prop_map(|b| String::from_utf8_lossy(&b).into_owned())
    ];
    fuzz("kubeconfig", any_text, |yaml| {
        if let Err(m) = contexts(&yaml) {
            prop_assert!(!m.is_empty());
        }
        match access(&yaml, None) {
            Ok(a) => prop_assert!(a.server.starts_with("https://"), "only https members: {}", a.server),
            Err(m) => prop_assert!(!m.is_empty()),
        }
        let _ = access(&yaml, Some("a"));
        Ok(())
    });
}

fn recorded(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/runtime-streams/llama-cpp-python-0.3.36")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Feeds `bytes` to the gateway's meter in pieces cut at `cuts`.
fn metered(bytes: &[u8], cuts: &[usize], sse: bool) -> (Option<(u64, u64)>, u64) {
    let mut scan = server::gateway::tap::Scan::new(sse);
    let mut at = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    for c in cuts.into_iter().chain([bytes.len()]) {
        scan.feed(&bytes[at..c.max(at)]);
        at = c.max(at);
    }
    scan.finish();
    scan.counts()
}

#[test]
fn streamed_answers_meter_the_same_however_they_are_cut() {
    let streams =
        [(recorded("stream.sse"), 12), (recorded("stream-usage.sse"), 12), (recorded("completions-stream.sse"), 8)];
    fuzz("sse-recorded", (0..3usize, prop::collection::vec(any::<usize>(), 0..40)), |(i, cuts)| {
        let (bytes, tokens) = &streams[i];
        prop_assert_eq!(metered(bytes, &cuts, true), (None, *tokens));
        Ok(())
    });
    fuzz(
        "sse-any-bytes",
        (prop::collection::vec(any::<u8>(), 0..600), prop::collection::vec(any::<usize>(), 0..10), any::<bool>()),
        |(bytes, cuts, sse)| {
            let (_, pieces) = metered(&bytes, &cuts, sse);
            prop_assert!(pieces <= bytes.len() as u64);
            Ok(())
        },
    );
    // Events in any spacing and key order, as different servers write them.
    let event = (any::<bool>(), ".{0,6}", any::<bool>(), any::<bool>()).prop_map(|(role, text, done, spaced)| {
        let mut delta = serde_json::Map::new();
        if role {
            delta.insert("role".into(), "assistant".into());
        }
        delta.insert("content".into(), text.into());
        let v = serde_json::json!({"choices": [{"index": 0, "finish_reason": if done { Value::from("stop") } else { Value::Null }, "delta": delta}]});
        let line = if spaced { serde_json::to_string_pretty(&v).unwrap().replace('\n', " ") } else { v.to_string() };
        format!("data: {line}\n\n")
    });
    fuzz("sse-spacing", prop::collection::vec(event, 0..20), |events| {
        let compact: String = events
            .iter()
            .map(|e| {
                let v: Value = serde_json::from_str(e.trim_start_matches("data: ").trim()).unwrap();
                format!("data: {v}\n\n")
            })
            .collect();
        let spaced: String = events.concat();
        prop_assert_eq!(metered(compact.as_bytes(), &[], true), metered(spaced.as_bytes(), &[], true));
        Ok(())
    });
}
