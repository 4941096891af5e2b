//! Several `hmas serve` processes on one database: exactly one leads (runs the reconcilers) on
//! PostgreSQL and another takes over when it dies; SQLite refuses a second process clearly.
mod common;

use common::sim::SimProcess;
use common::{call, login, Hmas};
use serde_json::json;
use std::collections::BTreeMap;
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

/// A fresh PostgreSQL database for one test: (server connection, the database's URL, its name).
async fn fresh_database(tag: &str) -> Option<(server::store::Store, String, String)> {
    let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
        assert!(std::env::var("HMAS_REQUIRE_POSTGRES").is_err(), "TEST_DATABASE_URL is required");
        eprintln!("postgres: TEST_DATABASE_URL not set, not run");
        return None;
    };
    let admin = server::store::Store::connect(&base).await.unwrap();
    let db = format!("hmas_{tag}_{}", std::process::id());
    admin.execute_raw(&format!("DROP DATABASE IF EXISTS {db}")).await.unwrap();
    admin.execute_raw(&format!("CREATE DATABASE {db}")).await.unwrap();
    let url = format!("{}/{db}", base.rsplit_once('/').unwrap().0);
    Some((admin, url, db))
}

/// The hub's writes so far, by verb and resource, as its `apiserver_request_total` counts them.
fn hub_writes(sim: &SimProcess) -> BTreeMap<(String, String), u64> {
    let out = sim.kubectl("hub", &["get", "--raw", "/metrics"]);
    assert!(out.status.success(), "{}", common::sim::text(&out));
    let mut writes = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with("apiserver_request_total{")) {
        let label = |name: &str| line.split(&format!("{name}=\"")).nth(1).and_then(|r| r.split('"').next());
        let (Some(verb), Some(resource), Some(code)) = (label("verb"), label("resource"), label("code")) else {
            continue;
        };
        if ["APPLY", "POST", "PUT", "PATCH", "DELETE"].contains(&verb) && code.starts_with('2') {
            let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
            *writes.entry((verb.to_string(), resource.to_string())).or_default() += n;
        }
    }
    writes
}

fn applied(writes: &BTreeMap<(String, String), u64>, resource: &str) -> u64 {
    writes.get(&("APPLY".to_string(), resource.to_string())).copied().unwrap_or(0)
}

/// Which of `replicas` leads, once exactly one does (within 15 s).
async fn the_leader(replicas: &[Option<Hmas>], since: Instant) -> usize {
    loop {
        let mut leaders = Vec::new();
        for (i, h) in replicas.iter().enumerate() {
            if let Some(h) = h {
                if leading(h).await == Some(true) {
                    leaders.push(i);
                }
            }
        }
        assert!(leaders.len() <= 1, "two leaders at once: {leaders:?}");
        if let [one] = leaders[..] {
            return one;
        }
        assert!(since.elapsed() < Duration::from_secs(15), "no replica led within 15 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether `h` routes `model` and a replica of it is ready.
async fn serves(h: &Hmas, key: &str, model: &str) -> bool {
    let Ok(r) = reqwest::Client::new().get(h.url("/v1/models")).bearer_auth(key).send().await else { return false };
    let v: serde_json::Value = r.json().await.unwrap_or_default();
    v["data"].as_array().is_some_and(|d| d.iter().any(|m| m["id"] == model && m["ready"] == true))
}

#[tokio::test]
async fn three_replicas_drive_one_hub_once_and_share_keys_and_limits() {
    let Some((admin, url, db)) = fresh_database("three").await else { return };
    let sim = SimProcess::start(&["--sim-time-scale", "0.01"]);
    let hub_kubeconfig = sim.kubeconfig("hub").display().to_string();
    let master = "cd".repeat(32);
    let env = [
        ("HMAS_DATABASE_URL", url.as_str()),
        ("HMAS_MASTER_KEY", master.as_str()),
        ("HMAS_HUB_KUBECONFIG", hub_kubeconfig.as_str()),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let mut replicas: Vec<Option<Hmas>> =
        (0..3).map(|i| Some(Hmas::start_with_env(&tmp.path().join(format!("r{i}")), Some(PW), &env))).collect();
    let leader = the_leader(&replicas, Instant::now()).await;
    let others: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    macro_rules! at {
        ($i:expr) => {
            replicas[$i].as_ref().unwrap()
        };
    }
    let (b, c) = (others[0], others[1]);
    let admin_c = login(at!(b), "admin", PW).await;

    // Every replica answers /v1 with a key made on any of them.
    let (s, v) = call(&admin_c, at!(c), "/api/keys/create", json!({"input": {"name": "all"}})).await;
    assert_eq!(s, 200, "{v}");
    let key = v["secret"].as_str().unwrap().to_string();
    for h in replicas.iter().flatten() {
        answers(h, &key, 200).await;
    }

    // A cluster, a policy and a deployment, each submitted to a replica that does not lead.
    let member = std::fs::read_to_string(sim.kubeconfig("gpu-general")).unwrap();
    let body =
        json!({"name": "gpu-general", "zone_class": "b", "access": {"kind": "kubeconfig", "kubeconfig": member}});
    let (s, v) = call(&admin_c, at!(b), "/api/clusters/register", body).await;
    assert_eq!(s, 200, "{v}");
    let before = hub_writes(&sim);
    let strategy = json!({"name": "general", "mode": "manual", "target": "names", "clusters": ["gpu-general"],
                          "replica_mode": "aggregated"});
    let (s, v) =
        call(&admin_c, at!(b), "/api/policies/strategy/save", json!({"strategy": strategy, "create": true})).await;
    assert_eq!(s, 200, "{v}");
    let spec = json!({"name": "one", "model": "llama3.2:1b", "runtime": "ollama", "replicas": 1,
                      "gpus_per_replica": 0, "strategy": "general", "cache": {"enabled": false}});
    let (s, v) = call(&admin_c, at!(c), "/api/deployments/create", json!({"spec": spec})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["phase"].as_str().map(|p| p != "applying"), Some(true), "answered after the leader's pass: {v}");
    let t = Instant::now();
    while !serves(at!(leader), &key, "llama3.2:1b").await {
        assert!(t.elapsed() < Duration::from_secs(60), "the deployment never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in others.iter().copied() {
        let t = Instant::now();
        while !serves(at!(i), &key, "llama3.2:1b").await {
            assert!(t.elapsed() < Duration::from_secs(1), "replica {i} does not route it within 1 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Settled: the leader's policy pass has seen the deployment in step with the strategy.
    let t = Instant::now();
    loop {
        let (_, list) = call(&admin_c, at!(b), "/api/policies/list", json!({})).await;
        let s =
            list["strategies"].as_array().unwrap().iter().find(|p| p["policy"]["name"] == "general").unwrap().clone();
        if s["sync"]["message"].as_str().is_some_and(|m| m.contains("1 deployment(s) in step")) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "the strategy never synced: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = hub_writes(&sim);
    for resource in ["propagationpolicies", "deployments", "services"] {
        assert_eq!(
            applied(&after, resource) - applied(&before, resource),
            1,
            "{resource} applied once: {before:?} → {after:?}"
        );
    }

    // An rpm limit holds across the replicas: 90 calls spread over three replicas, 30 pass.
    let (_, v) = call(&admin_c, at!(b), "/api/keys/create", json!({"input": {"name": "limited", "rpm": 30}})).await;
    let limited = v["secret"].as_str().unwrap().to_string();
    for h in replicas.iter().flatten() {
        answers(h, &limited, 200).await;
    }
    let mut passed = 0;
    for n in 0..90 {
        let r = reqwest::Client::new()
            .post(at!(n % 3).url("/v1/chat/completions"))
            .bearer_auth(&limited)
            .json(&json!({"model": "no-such-model", "messages": []}))
            .send()
            .await
            .unwrap();
        passed += u32::from(r.status() != 429);
    }
    eprintln!("rpm 30 across three replicas: {passed} of 90 calls passed");
    assert!((27..=33).contains(&passed), "{passed} calls passed a 30 rpm limit");

    // Kill -9 of the leader while it applies a deployment submitted to another replica.
    let db_store = server::store::Store::connect(&url).await.unwrap();
    let spec = json!({"name": "two", "model": "qwen2.5:0.5b", "runtime": "ollama", "replicas": 1,
                      "gpus_per_replica": 0, "strategy": "general", "cache": {"enabled": false}});
    let submit = {
        let (client, url) = (admin_c.clone(), at!(c).url("/api/deployments/create"));
        tokio::spawn(async move { client.post(url).json(&json!({"spec": spec})).send().await.map(|r| r.status()) })
    };
    let t = Instant::now();
    while server::store::DeploymentStore::deployment_by_name(&db_store, "two").await.unwrap().is_none() {
        assert!(t.elapsed() < Duration::from_secs(10), "the deployment was never stored");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let killed = Instant::now();
    replicas[leader].as_mut().unwrap().child.kill().unwrap();
    replicas[leader].as_mut().unwrap().child.wait().unwrap();
    replicas[leader] = None;
    let next = the_leader(&replicas, killed).await;
    let failover = killed.elapsed();
    assert!(submit.await.unwrap().is_ok_and(|s| s.is_success()), "the request was answered");
    let t = Instant::now();
    for i in others.iter().copied() {
        while !serves(at!(i), &key, "qwen2.5:0.5b").await {
            assert!(t.elapsed() < Duration::from_secs(60), "the deployment did not converge after the failover");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let names: Vec<String> = server::store::DeploymentStore::list_deployments(&db_store)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names.len(), 2, "nothing lost, nothing doubled: {names:?}");
    let end = hub_writes(&sim);
    assert_eq!(
        applied(&end, "propagationpolicies") - applied(&before, "propagationpolicies"),
        2,
        "each deployment's policy applied once across the failover: {before:?} → {end:?}"
    );
    eprintln!("failover: replica {next} led {:.2} s after the leader was killed mid-deploy", failover.as_secs_f64());

    // A revocation on one replica is refused by the others within a second.
    let id = call(&admin_c, at!(b), "/api/keys/list", json!({}))
        .await
        .1
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "all")
        .unwrap()["id"]
        .clone();
    assert_eq!(call(&admin_c, at!(b), "/api/keys/revoke", json!({"id": id})).await.0, 200);
    let revoked = answers(at!(c), &key, 401).await;
    eprintln!("a revocation reached another replica in {revoked:?}");

    db_store.close().await;
    drop(replicas);
    admin.execute_raw(&format!("DROP DATABASE {db} WITH (FORCE)")).await.unwrap();
}
