//! Several `hmas serve` processes on one database: exactly one leads (runs the reconcilers) on
//! PostgreSQL and another takes over when it dies; SQLite refuses a second process clearly.
mod common;

use common::{call, login, Hmas};
use std::time::{Duration, Instant};

const PW: &str = "admin-password-1";

async fn leading(h: &Hmas) -> Option<bool> {
    let text = reqwest::get(h.url("/metrics")).await.ok()?.text().await.ok()?;
    let line = text.lines().find(|l| l.starts_with("hmas_leader "))?;
    Some(line.ends_with(" 1"))
}

/// How long until `h` answers `/v1/models` with `key` by `want` (at most a second).
async fn answers(h: &Hmas, key: &str, want: u16) -> Duration {
    let t = Instant::now();
    loop {
        let got = reqwest::Client::new().get(h.url("/v1/models")).bearer_auth(key).send().await.unwrap().status();
        if got.as_u16() == want {
            return t.elapsed();
        }
        assert!(t.elapsed() < Duration::from_secs(1), "the other replica still answers {got}, not {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_second_process_on_the_same_sqlite_database_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let first = Hmas::start_in(&data, Some(PW));
    assert_eq!(leading(&first).await, Some(true), "the only process leads");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hmas"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env_remove("HMAS_DATABASE_URL")
        .env_remove("HMAS_CONFIG")
        .env("HMAS_ADMIN_PASSWORD", PW)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another `hmas serve`") && err.contains("PostgreSQL"), "{err}");
    assert!(err.contains(&first.child.id().to_string()), "names the holder: {err}");
}

#[tokio::test]
async fn one_replica_leads_on_postgresql_and_another_takes_over_when_it_dies() {
    let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
        assert!(std::env::var("HMAS_REQUIRE_POSTGRES").is_err(), "TEST_DATABASE_URL is required");
        eprintln!("postgres: TEST_DATABASE_URL not set, not run");
        return;
    };
    let admin = server::store::Store::connect(&base).await.unwrap();
    let db = format!("hmas_replicas_{}", std::process::id());
    admin.execute_raw(&format!("DROP DATABASE IF EXISTS {db}")).await.unwrap();
    admin.execute_raw(&format!("CREATE DATABASE {db}")).await.unwrap();
    let url = format!("{}/{db}", base.rsplit_once('/').unwrap().0);
    let env = [("HMAS_DATABASE_URL", url.as_str()), ("HMAS_MASTER_KEY", &"ab".repeat(32))];
    let (ta, tb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = Hmas::start_with_env(&ta.path().join("data"), Some(PW), &env);
    let started = Instant::now();
    while leading(&a).await != Some(true) {
        assert!(started.elapsed() < Duration::from_secs(15), "the first replica never led");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let b = Hmas::start_with_env(&tb.path().join("data"), Some(PW), &env);
    // Both answer; only one leads.
    for _ in 0..3 {
        assert_eq!((leading(&a).await, leading(&b).await), (Some(true), Some(false)));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A key made on one replica works on the other within a second, and so does its revocation.
    let admin_a = login(&a, "admin", PW).await;
    let (s, v) = call(&admin_a, &a, "/api/keys/create", serde_json::json!({"input": {"name": "k"}})).await;
    assert_eq!(s, 200, "{v}");
    let (id, secret) = (v["key"]["id"].clone(), v["secret"].as_str().unwrap().to_string());
    let created = answers(&b, &secret, 200).await;
    let (s, _) = call(&admin_a, &a, "/api/keys/revoke", serde_json::json!({"id": id})).await;
    assert_eq!(s, 200);
    let revoked = answers(&b, &secret, 401).await;
    eprintln!("a key reached the other replica in {created:?}; its revocation in {revoked:?}");

    // A deployment submitted to the other replica is stored there and applied by the leader (the
    // other replica's own simulated hub has no cluster to run it on); the routes the leader stores
    // reach the other replica within a second of the leader routing them.
    common::fleet::register(&admin_a, &a, "gpu-general", "b").await;
    let admin_b = login(&b, "admin", PW).await;
    let (s, v) = call(
        &admin_b,
        &b,
        "/api/deployments/create",
        serde_json::json!({"spec": common::fleet::spec("llama3.2:1b", "ollama", 0, &["gpu-general"])}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let key = call(&admin_a, &a, "/api/keys/create", serde_json::json!({"input": {"name": "k2"}})).await.1["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let ready = |h: &Hmas| {
        let (url, key) = (h.url("/v1/models"), key.clone());
        async move {
            let v: serde_json::Value =
                reqwest::Client::new().get(url).bearer_auth(key).send().await.unwrap().json().await.unwrap();
            v["data"].as_array().is_some_and(|d| d.iter().any(|m| m["ready"] == true))
        }
    };
    let t = Instant::now();
    while !ready(&a).await {
        assert!(t.elapsed() < Duration::from_secs(60), "the deployment never became ready on the leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let routed = Instant::now();
    while !ready(&b).await {
        assert!(routed.elapsed() < Duration::from_secs(1), "the other replica did not route it within 1 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("routes reached the other replica {:?} after the leader's", routed.elapsed());
    // Applied once, by the leader: the replica that took the request wrote nothing to a hub.
    let name = v["name"].as_str().unwrap();
    let b_hub = common::fleet::hub(&b).await;
    let on_b: Option<server::hub::karmada::PropagationPolicy> = b_hub.get(Some("hmas-serving"), name).await.unwrap();
    assert!(on_b.is_none(), "the replica that took the request applied it too");
    let on_a: Option<server::hub::karmada::PropagationPolicy> =
        common::fleet::hub(&a).await.get(Some("hmas-serving"), name).await.unwrap();
    assert!(on_a.is_some());

    let killed = Instant::now();
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    while leading(&b).await != Some(true) {
        assert!(killed.elapsed() < Duration::from_secs(15), "no replica took over within 15 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("failover: the second replica led {:.1} s after the leader was killed", killed.elapsed().as_secs_f64());
    drop(b);
    drop(a);
    admin.execute_raw(&format!("DROP DATABASE {db} WITH (FORCE)")).await.unwrap();
}
