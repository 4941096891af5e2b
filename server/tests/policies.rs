//! Policies end to end through a real `hmas` and its simulated hub: the default set, sync status,
//! edits reaching the hub, drift put back, an outage healed, deletion blocked while in use,
//! deployments placed by strategy as the preview said, and the failover drill.
mod common;

use common::fleet::{detail, hub, hub_failing, member, register, running, wait_for};
use common::{call, login, Hmas};
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{json, Value};
use server::hub::karmada::{OverridePolicy, PropagationPolicy};
use server::hub::KubeClient;
use std::future::Future;
use std::time::{Duration, Instant};

const PW: &str = "admin-password-1";
const NS: &str = "hmas-serving";

async fn eventually<T, F: Future<Output = Option<T>>>(secs: u64, what: &str, mut f: impl FnMut() -> F) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(secs), "{what} did not happen within {secs} s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn policies(c: &reqwest::Client, h: &Hmas) -> Value {
    let (s, v) = call(c, h, "/api/policies/list", json!({})).await;
    assert_eq!(s, 200, "{v}");
    v
}

/// A hand edit of a hub object, as `kubectl edit` makes it: read, change, write back, and read
/// again when the write lost a race with the hub's own status updates (409).
async fn hand_edit<K: server::hub::client::Object>(hub: &KubeClient, name: &str, edit: impl Fn(&mut K)) {
    for _ in 0..50 {
        let mut obj: K = hub.get(Some(NS), name).await.unwrap().unwrap();
        edit(&mut obj);
        obj.meta_mut().managed_fields = None;
        match hub.replace(&obj).await {
            Ok(_) => return,
            Err(server::hub::HubError::Conflict(_)) => continue,
            Err(e) => panic!("{name}: {e}"),
        }
    }
    panic!("{name}: every write lost to a concurrent update");
}

fn find<'a>(p: &'a Value, list: &str, name: &str) -> &'a Value {
    p[list].as_array().unwrap().iter().find(|x| x["policy"]["name"] == name).unwrap_or_else(|| panic!("{name} in {p}"))
}

async fn all_in_sync(c: &reqwest::Client, h: &Hmas) -> Value {
    eventually(20, "every policy in sync", || async {
        let p = policies(c, h).await;
        let all: Vec<&Value> =
            ["strategies", "profiles", "failovers"].iter().flat_map(|k| p[*k].as_array().unwrap().iter()).collect();
        all.iter().all(|x| x["sync"]["state"] == "in_sync").then_some(p.clone())
    })
    .await
}

async fn op_cpu(hub: &KubeClient, name: &str) -> Option<Value> {
    let op: OverridePolicy = hub.get(Some(NS), name).await.unwrap()?;
    let v = serde_json::to_value(&op.spec).unwrap();
    v["overrideRules"][0]["overriders"]["plaintext"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"].as_str().unwrap().ends_with("/requests/cpu"))
        .map(|o| o["value"].clone())
}

#[tokio::test]
async fn policies_sync_heal_drift_survive_an_outage_and_place_deployments() {
    let h = Hmas::start(Some(PW));
    let admin = login(&h, "admin", PW).await;
    register(&admin, &h, "gpu-general", "b").await;
    register(&admin, &h, "gpu-hpc", "a").await;
    let hub = hub(&h).await;

    // Empty, then the default set in one call; a second call creates nothing.
    let p = policies(&admin, &h).await;
    assert_eq!(p["strategies"].as_array().unwrap().len(), 0);
    let (s, created) = call(&admin, &h, "/api/policies/defaults", json!({})).await;
    assert_eq!(s, 200, "{created}");
    assert_eq!(created.as_array().unwrap().len(), 7, "{created}");
    assert_eq!(call(&admin, &h, "/api/policies/defaults", json!({})).await.1, json!([]));
    let p = all_in_sync(&admin, &h).await;
    assert_eq!(find(&p, "strategies", "auto-by-model-size")["policy"]["is_default"], true);
    assert!(find(&p, "profiles", "general-1gpu")["used_by"]
        .as_array()
        .unwrap()
        .contains(&json!("strategy auto-by-model-size")));
    for name in ["profile-a100-nvlink-4gpu", "profile-general-1gpu", "profile-shared-gpu-be"] {
        assert!(hub.get::<OverridePolicy>(Some(NS), name).await.unwrap().is_some(), "{name}");
    }

    // Bad input names the field and changes nothing.
    let bad = json!({"profile": {"name": "mig-nvlink", "zone": "a", "gpus": 1, "mig_profile": "1g.10gb", "nvlink": true}, "create": true});
    let (s, v) = call(&admin, &h, "/api/policies/profile/save", bad).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["fields"]["mig_profile"].as_str().unwrap().contains("NVLink"), "{v}");
    let bad = json!({"failover": {"name": "f", "enabled": true, "toleration_seconds": 30, "purge_mode": "Never", "grace_period_seconds": 60}, "create": true});
    let (s, v) = call(&admin, &h, "/api/policies/failover/save", bad).await;
    assert_eq!((s, v["fields"]["grace_period_seconds"].is_string()), (400, true), "{v}");
    let dup = json!({"failover": {"name": "standard-failover", "enabled": true, "toleration_seconds": 30, "purge_mode": "Immediately"}, "create": true});
    assert_eq!(call(&admin, &h, "/api/policies/failover/save", dup).await.0, 409);
    assert_eq!(policies(&admin, &h).await["profiles"].as_array().unwrap().len(), 3);

    // Viewers see policies; only admins change them.
    let (s, _) = call(
        &admin,
        &h,
        "/api/users/create",
        json!({"username": "viewer", "role": "user", "password": "viewer-password-1"}),
    )
    .await;
    assert_eq!(s, 200);
    let viewer = login(&h, "viewer", "viewer-password-1").await;
    assert_eq!(call(&viewer, &h, "/api/policies/list", json!({})).await.0, 200);
    assert_eq!(call(&viewer, &h, "/api/policies/defaults", json!({})).await.0, 403);

    // The preview: a 1.3 GB model goes to Zone B by rule 2 of the default strategy.
    let spec = json!({"model": "llama3.2:1b", "runtime": "ollama", "replicas": 1, "gpus_per_replica": 1,
                      "failover": "standard-failover"});
    let (s, plan) = call(&admin, &h, "/api/deployments/preview", json!({"spec": spec.clone()})).await;
    assert_eq!(s, 200, "{plan}");
    assert_eq!(plan["strategy"], "auto-by-model-size");
    assert_eq!(plan["clusters"], json!(["gpu-general"]), "{plan}");
    assert!(plan["rule"].as_str().unwrap().starts_with("rule 2"), "{plan}");
    let hpc = plan["candidates"].as_array().unwrap().iter().find(|c| c["cluster"] == "gpu-hpc").unwrap();
    assert!(hpc["reasons"][0].as_str().unwrap().contains("wants Zone B"), "{hpc}");
    let (s, v) = call(&admin, &h, "/api/deployments/create", json!({"spec": spec})).await;
    assert_eq!(s, 200, "{v}");
    let name = v["name"].as_str().unwrap().to_string();
    let (d, _) = wait_for(&admin, &h, &name, 60, running).await;
    assert_eq!(d["spec"]["strategy"], "auto-by-model-size", "the default is written down");
    let placed: Vec<&str> = d["placements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["ready"].as_i64() > Some(0))
        .map(|p| p["cluster"].as_str().unwrap())
        .collect();
    assert_eq!(placed, ["gpu-general"], "landed where the preview said");

    // The hub: the template carries its profile, the policy the strategy's placement and failover.
    let dep: Deployment = hub.get(Some(NS), &name).await.unwrap().unwrap();
    assert_eq!(dep.metadata.labels.unwrap()["hmas.io/resource-profile"], "general-1gpu");
    let pp: PropagationPolicy = hub.get(Some(NS), &name).await.unwrap().unwrap();
    let ppv = serde_json::to_value(&pp.spec).unwrap();
    assert_eq!(ppv["placement"]["clusterAffinity"]["clusterNames"], json!(["gpu-general"]));
    // H-MAS divides (the hub cannot count GPUs without an estimator): static weights, the preview's.
    assert_eq!(
        ppv["placement"]["replicaScheduling"]["weightPreference"],
        json!({"staticWeightList": [{"targetCluster": {"clusterNames": ["gpu-general"]}, "weight": 1}]})
    );
    // A cluster failure moves it through the NotReady NoExecute taint; no application failover
    // (which would evict a replica still downloading), so no propagateDeps needed.
    assert_eq!(
        ppv["placement"]["clusterTolerations"],
        json!([{"key": "cluster.karmada.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}])
    );
    assert_eq!(ppv["failover"], json!({"cluster": {"purgeMode": "Gracefully"}}), "{ppv}");
    let rb: server::hub::karmada::ResourceBinding =
        hub.get(Some(NS), &format!("{name}-deployment")).await.unwrap().unwrap();
    let scheduled = rb.status.unwrap().conditions.into_iter().find(|c| c.type_ == "Scheduled").unwrap();
    assert_eq!((scheduled.status.as_str(), scheduled.reason.as_str()), ("True", "Success"));
    // The hub's failover is switched on and the taint policy in place.
    assert!(hub
        .get::<server::hub::karmada::ClusterTaintPolicy>(None, "hmas-not-ready-noexecute")
        .await
        .unwrap()
        .is_some());

    // An edit reaches the hub and, through the OverridePolicy, the member's copy.
    let mut general = find(&policies(&admin, &h).await, "profiles", "general-1gpu")["policy"].clone();
    general["cpu"] = json!(6.0);
    let (s, v) = call(&admin, &h, "/api/policies/profile/save", json!({"profile": general})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(op_cpu(&hub, "profile-general-1gpu").await, Some(json!("6")));
    let m = member(&h, "gpu-general").await;
    eventually(15, "the member's copy has 6 CPUs", || async {
        let d: Deployment = m.get(Some(NS), &name).await.unwrap()?;
        let c = &d.spec?.template.spec?.containers[0];
        (c.resources.as_ref()?.requests.as_ref()?.get("cpu")?.0 == "6").then_some(())
    })
    .await;

    // Drift: hand edits on the hub are put back.
    hand_edit(&hub, "profile-general-1gpu", |op: &mut OverridePolicy| {
        op.spec.override_rules[0].overriders.plaintext.retain(|o| !o.path.ends_with("/requests/cpu"))
    })
    .await;
    assert_eq!(op_cpu(&hub, "profile-general-1gpu").await, None);
    eventually(15, "the OverridePolicy healed", || async {
        op_cpu(&hub, "profile-general-1gpu").await.filter(|v| v == "6")
    })
    .await;
    hub.delete::<OverridePolicy>(Some(NS), "profile-shared-gpu-be").await.unwrap();
    eventually(15, "the deleted OverridePolicy back", || async {
        hub.get::<OverridePolicy>(Some(NS), "profile-shared-gpu-be").await.unwrap()
    })
    .await;
    hand_edit(&hub, &name, |pp: &mut PropagationPolicy| {
        pp.spec.placement.cluster_affinity.as_mut().unwrap().cluster_names = vec!["gpu-hpc".into()]
    })
    .await;
    eventually(15, "the PropagationPolicy healed", || async {
        let pp: PropagationPolicy = hub.get(Some(NS), &name).await.unwrap()?;
        (pp.spec.placement.cluster_affinity?.cluster_names == ["gpu-general"]).then_some(())
    })
    .await;

    // Every object H-MAS owns on the hub: a changed image in the template, a deleted Service.
    let dep: Deployment = hub.get(Some(NS), &name).await.unwrap().unwrap();
    let image = dep.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0].image.clone();
    hand_edit(&hub, &name, |dep: &mut Deployment| {
        dep.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[0].image =
            Some("evil/ollama:latest".into())
    })
    .await;
    hub.delete::<k8s_openapi::api::core::v1::Service>(Some(NS), &name).await.unwrap();
    eventually(15, "the template's image and the Service put back", || async {
        let d: Deployment = hub.get(Some(NS), &name).await.unwrap()?;
        let back = d.spec?.template.spec?.containers[0].image == image;
        let svc = hub.get::<k8s_openapi::api::core::v1::Service>(Some(NS), &name).await.unwrap();
        (back && svc.is_some()).then_some(())
    })
    .await;
    eventually(15, "the member's copy has the image again", || async {
        let d: Deployment = m.get(Some(NS), &name).await.unwrap()?;
        (d.spec?.template.spec?.containers[0].image == image).then_some(())
    })
    .await;

    // Deleting what is in use is refused and names the users; unused policies go, hub objects too.
    let (s, v) =
        call(&admin, &h, "/api/policies/delete", json!({"kind": "strategy", "name": "auto-by-model-size"})).await;
    assert_eq!(s, 409, "{v}");
    assert!(v["message"].as_str().unwrap().contains(&format!("deployment {name}")), "{v}");
    let (s, v) = call(&admin, &h, "/api/policies/delete", json!({"kind": "profile", "name": "a100-nvlink-4gpu"})).await;
    assert_eq!(s, 409, "{v}");
    assert!(v["message"].as_str().unwrap().contains("strategy performance-zone-a"), "{v}");
    assert_eq!(
        call(&admin, &h, "/api/policies/delete", json!({"kind": "strategy", "name": "performance-zone-a"})).await.0,
        200
    );
    assert_eq!(
        call(&admin, &h, "/api/policies/delete", json!({"kind": "profile", "name": "a100-nvlink-4gpu"})).await.0,
        200
    );
    assert!(hub.get::<OverridePolicy>(Some(NS), "profile-a100-nvlink-4gpu").await.unwrap().is_none());

    // Hub outage: the change is kept, the status says why it is not on the hub, then it heals.
    hub_failing(&h, true).await;
    let mut f = find(&policies(&admin, &h).await, "failovers", "standard-failover")["policy"].clone();
    f["toleration_seconds"] = json!(120);
    assert_eq!(call(&admin, &h, "/api/policies/failover/save", json!({"failover": f})).await.0, 200);
    eventually(15, "an error status", || async {
        let p = policies(&admin, &h).await;
        let s = &find(&p, "failovers", "standard-failover")["sync"];
        (s["state"] == "error" && s["message"].as_str().unwrap().contains("hub unreachable")).then_some(())
    })
    .await;
    hub_failing(&h, false).await;
    all_in_sync(&admin, &h).await;
    let pp: PropagationPolicy = hub.get(Some(NS), &name).await.unwrap().unwrap();
    let ppv = serde_json::to_value(&pp.spec).unwrap();
    assert!(ppv["failover"]["application"].is_null(), "{ppv}");
    assert_eq!(ppv["placement"]["clusterTolerations"][0]["tolerationSeconds"], 120, "{ppv}");
    assert_eq!(detail(&admin, &h, &name).await["deployment"]["phase"], "running");
}

#[tokio::test]
async fn failover_drill_moves_the_instance_after_its_toleration() {
    // HMAS_DRILL_TIME_SCALE=1 runs the simulated members in real time (image pulls, downloads).
    let scale: f64 = std::env::var("HMAS_DRILL_TIME_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(0.01);
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("hmas.log");
    let h = Hmas::start_with(&tmp.path().join("data"), Some(PW), Some(&log), scale);
    let admin = login(&h, "admin", PW).await;
    register(&admin, &h, "gpu-general", "b").await;
    register(&admin, &h, "edge-cpu", "b").await;
    // HMAS_DRILL_TOLERATION_S measures other tolerations with the same test.
    let toleration: i64 = std::env::var("HMAS_DRILL_TOLERATION_S").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let strategy = json!({"name": "two-sites", "mode": "manual", "target": "names", "clusters": ["gpu-general", "edge-cpu"],
                          "replica_mode": "aggregated"});
    assert_eq!(
        call(&admin, &h, "/api/policies/strategy/save", json!({"strategy": strategy, "create": true})).await.0,
        200
    );
    let failover =
        json!({"name": "fast", "enabled": true, "toleration_seconds": toleration, "purge_mode": "Immediately"});
    assert_eq!(
        call(&admin, &h, "/api/policies/failover/save", json!({"failover": failover, "create": true})).await.0,
        200
    );
    let spec = json!({"model": "llama3.2:1b", "runtime": "ollama", "replicas": 1, "gpus_per_replica": 0,
                      "strategy": "two-sites", "failover": "fast"});
    let (_, plan) = call(&admin, &h, "/api/deployments/preview", json!({"spec": spec.clone()})).await;
    let landing = plan["candidates"].as_array().unwrap().iter().find(|c| c["replicas"] == 1).unwrap()["cluster"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(plan["clusters"].as_array().unwrap().len(), 2, "{plan}");
    let (s, v) = call(&admin, &h, "/api/deployments/create", json!({"spec": spec})).await;
    assert_eq!(s, 200, "{v}");
    let name = v["name"].as_str().unwrap().to_string();
    // A second one held to the landing cluster: once evicted it has nowhere to go.
    let pinned = json!({"model": "llama3.2:3b", "runtime": "ollama", "replicas": 1, "gpus_per_replica": 0,
                        "clusters": [landing], "failover": "fast"});
    let (s, v) = call(&admin, &h, "/api/deployments/create", json!({"spec": pinned})).await;
    assert_eq!(s, 200, "{v}");
    let stranded = v["name"].as_str().unwrap().to_string();
    let ready_on = |d: &Value| -> Vec<String> {
        d["placements"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["ready"].as_i64() > Some(0))
            .map(|p| p["cluster"].as_str().unwrap().to_string())
            .collect()
    };
    let limit = (toleration as f64 * 2.0 + 3000.0 * scale + 60.0) as u64;
    let (d, _) = wait_for(&admin, &h, &name, limit, running).await;
    assert_eq!(ready_on(&d), std::slice::from_ref(&landing), "landed where the preview said");
    let other = if landing == "edge-cpu" { "gpu-general" } else { "edge-cpu" };

    // A viewer cannot switch clusters off.
    let (s, v) = call(&admin, &h, "/api/policies/drill", json!({})).await;
    assert!(s >= 400, "{v}");
    let started = Instant::now();
    let (s, drill) = call(&admin, &h, "/api/clusters/drill", json!({"name": landing, "down": true})).await;
    assert_eq!(s, 200, "{drill}");
    assert_eq!(drill["down"], true);
    assert_eq!(drill["affected"][0]["name"], name.as_str(), "{drill}");
    let (d, _) = wait_for(&admin, &h, &name, limit, |d| ready_on(d) == [other.to_string()]).await;
    let moved = started.elapsed().as_secs_f64();
    // The pinned one says what the hub says: evicted, and no cluster left for it.
    let (s, _) = wait_for(&admin, &h, &stranded, 30, |d| d["deployment"]["phase"] == "unschedulable").await;
    let message = s["deployment"]["message"].as_str().unwrap();
    assert!(message.starts_with("the hub cannot schedule it (NoClusterFit): 0/2 clusters are available"), "{message}");
    assert!(message.contains("is in the process of eviction"), "{message}");
    let endpoint = d["deployment"]["endpoints"][0].as_str().unwrap().to_string();
    let r = reqwest::Client::new()
        .post(format!("{endpoint}/v1/chat/completions"))
        .json(&json!({"model": "llama3.2:1b", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "served from {other}");
    // The pages of a member that does not answer come back at once with what was last read.
    for (endpoint, body) in
        [("/api/clusters/get", json!({"name": landing})), ("/api/deployments/get", json!({"name": name}))]
    {
        let asked = Instant::now();
        let (s, v) = call(&admin, &h, endpoint, body).await;
        assert_eq!(s, 200, "{v}");
        assert!(asked.elapsed() < Duration::from_secs(10), "{endpoint} took {:?} with {landing} down", asked.elapsed());
    }
    let (_, detail) = call(&admin, &h, "/api/clusters/get", json!({"name": landing})).await;
    assert!(!detail["nodes"].as_array().unwrap().is_empty(), "the nodes last read: {detail}");
    println!("failover drill: toleration {toleration} s, served again from {other} after {moved:.1} s");
    assert!(moved >= toleration as f64, "moved before the toleration ran out: {moved:.1} s");
    assert!(moved < limit as f64, "took {moved:.1} s");
    // The drill notes the recovery from the observer's copy, so within a few seconds.
    let status = eventually(10, "the drill recording the recovery", || async {
        let (_, s) = call(&admin, &h, "/api/clusters/drill-status", json!({"name": landing})).await;
        s["affected"][0]["recovered_at"].as_i64().map(|_| s)
    })
    .await;
    let recovered = status["affected"][0]["recovered_at"].as_i64().unwrap();
    assert!(recovered >= status["since"].as_i64().unwrap() + toleration * 1000, "{status}");
    assert_eq!(status["affected"][0]["failover"]["toleration_seconds"], toleration);
    let (s, back) = call(&admin, &h, "/api/clusters/drill", json!({"name": landing, "down": false})).await;
    assert_eq!((s, back["down"].as_bool()), (200, Some(false)), "{back}");
    eventually(20, "the cluster ready again", || async {
        let (_, list) = call(&admin, &h, "/api/clusters/list", json!({})).await;
        list.as_array().unwrap().iter().any(|c| c["name"] == landing.as_str() && c["phase"] == "ready").then_some(())
    })
    .await;

    // The outage is in the log once when it starts and once when it ends, not on every poll.
    let text = eventually(10, "the member answering again in the log", || async {
        let text = std::fs::read_to_string(&log).unwrap();
        text.contains("member cluster answers again").then_some(text)
    })
    .await;
    let lines = |what: &str| text.lines().filter(|l| l.contains(what) && l.contains(landing.as_str())).count();
    assert_eq!(lines("member cluster does not answer"), 1, "{text}");
    assert_eq!(lines("member cluster answers again"), 1, "{text}");
    assert!(!text.contains("kube_client"), "{text}");
    // Neither the outage nor the move re-divided the deployment behind the hub's back: what H-MAS
    // wrote once held throughout.
    assert!(!text.contains("hub objects differ"), "{text}");
}

#[tokio::test]
async fn with_karmadactl_init_defaults_failover_says_why_nothing_moves() {
    let tmp = tempfile::tempdir().unwrap();
    let h = Hmas::start_with_env(&tmp.path().join("data"), Some(PW), &[("HMAS_SIM_HUB_DEFAULTS", "1")]);
    let admin = login(&h, "admin", PW).await;
    register(&admin, &h, "gpu-general", "b").await;
    register(&admin, &h, "edge-cpu", "b").await;
    let strategy =
        json!({"name": "two-sites", "mode": "manual", "target": "names", "clusters": ["gpu-general", "edge-cpu"]});
    assert_eq!(
        call(&admin, &h, "/api/policies/strategy/save", json!({"strategy": strategy, "create": true})).await.0,
        200
    );
    let failover = json!({"name": "fast", "enabled": true, "toleration_seconds": 1, "purge_mode": "Directly"});
    assert_eq!(
        call(&admin, &h, "/api/policies/failover/save", json!({"failover": failover, "create": true})).await.0,
        200
    );
    // The hub's webhook refuses the NoExecute taint policy: the failover policy is not "in sync".
    let sync = eventually(15, "the failover policy's error", || async {
        let p = policies(&admin, &h).await;
        let s = find(&p, "failovers", "fast")["sync"].clone();
        (s["state"] == "error").then_some(s)
    })
    .await;
    let m = sync["message"].as_str().unwrap();
    assert!(m.contains("refused ClusterTaintPolicy hmas-not-ready-noexecute"), "{m}");
    assert!(m.contains("Configuring taint with NoExecute effect is not allowed"), "{m}");

    let spec = json!({"model": "llama3.2:1b", "runtime": "ollama", "replicas": 1, "gpus_per_replica": 0,
                      "strategy": "two-sites", "failover": "fast"});
    let (s, v) = call(&admin, &h, "/api/deployments/create", json!({"spec": spec})).await;
    assert_eq!(s, 200, "{v}");
    let name = v["name"].as_str().unwrap().to_string();
    let (d, _) = wait_for(&admin, &h, &name, 60, running).await;
    let landing = d["placements"].as_array().unwrap().iter().find(|p| p["ready"].as_i64() > Some(0)).unwrap()
        ["cluster"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = call(&admin, &h, "/api/clusters/drill", json!({"name": landing, "down": true})).await;
    assert_eq!(s, 200);
    // The drill says the hub will not move it, and why; and it does not move.
    let status = eventually(15, "the drill saying why nothing moves", || async {
        let (_, s) = call(&admin, &h, "/api/clusters/drill-status", json!({"name": landing})).await;
        s["stuck"].is_string().then_some(s)
    })
    .await;
    assert!(status["stuck"].as_str().unwrap().contains("no ClusterTaintPolicy"), "{status}");
    let hub = hub(&h).await;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let rb: server::hub::karmada::ResourceBinding =
            hub.get(Some(NS), &format!("{name}-deployment")).await.unwrap().unwrap();
        assert_eq!(rb.spec.clusters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), [landing.as_str()]);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let c: server::hub::karmada::Cluster = hub.get(None, &landing).await.unwrap().unwrap();
    assert!(c.spec.taints.iter().all(|t| t.effect == "NoSchedule"), "{:?}", c.spec.taints);
}

#[tokio::test]
async fn the_preview_fits_gpus_by_the_profiles_type_node_by_node() {
    let h = Hmas::start(Some(PW));
    let admin = login(&h, "admin", PW).await;
    register(&admin, &h, "gpu-hpc", "a").await;
    for (name, kind) in [("a100-4", "A100"), ("h100-4", "H100")] {
        let profile = json!({"name": name, "zone": "a", "gpus": 4, "gpu_type": kind});
        let (s, v) = call(&admin, &h, "/api/policies/profile/save", json!({"profile": profile, "create": true})).await;
        assert_eq!(s, 200, "{v}");
    }
    // gpu-hpc: one A100 node with 4 GPUs, two H100 nodes with 8 each. One replica fills the A100s.
    let spec = |profile: &str| {
        json!({"model": "llama3.2:1b", "runtime": "ollama", "replicas": 1, "gpus_per_replica": 4,
               "clusters": ["gpu-hpc"], "profile": profile})
    };
    let (s, v) = call(&admin, &h, "/api/deployments/create", json!({"spec": spec("a100-4")})).await;
    assert_eq!(s, 200, "{v}");
    wait_for(&admin, &h, v["name"].as_str().unwrap(), 60, running).await;
    let reasons = |plan: &Value| plan["candidates"][0]["reasons"].to_string();
    // 16 GPUs are free, none of them an A100: the next A100 replica does not fit, as the member's
    // scheduler would say.
    let (_, plan) = call(&admin, &h, "/api/deployments/preview", json!({"spec": spec("a100-4")})).await;
    assert!(reasons(&plan).contains("room for 0 replica(s) of 4 A100 GPUs"), "{plan}");
    let (_, plan) = call(&admin, &h, "/api/deployments/preview", json!({"spec": spec("h100-4")})).await;
    assert!(reasons(&plan).contains("room for 4 replica(s) of 4 H100 GPUs"), "{plan}");
}

#[tokio::test]
async fn a_cluster_joined_again_gets_its_share_back() {
    use server::hub::karmada::{Cluster, ResourceBinding, WorkloadRebalancer};
    let h = Hmas::start(Some(PW));
    let admin = login(&h, "admin", PW).await;
    register(&admin, &h, "gpu-general", "b").await;
    register(&admin, &h, "edge-cpu", "b").await;
    let strategy = json!({"name": "two-sites", "mode": "manual", "target": "names", "clusters": ["gpu-general", "edge-cpu"],
                          "replica_mode": "divided"});
    assert_eq!(
        call(&admin, &h, "/api/policies/strategy/save", json!({"strategy": strategy, "create": true})).await.0,
        200
    );
    let spec = json!({"model": "llama3.2:1b", "runtime": "ollama", "replicas": 2, "gpus_per_replica": 0, "strategy": "two-sites"});
    let (s, v) = call(&admin, &h, "/api/deployments/create", json!({"spec": spec})).await;
    assert_eq!(s, 200, "{v}");
    let name = v["name"].as_str().unwrap().to_string();
    wait_for(&admin, &h, &name, 60, running).await;
    let hub = hub(&h).await;
    let split = |rb: &ResourceBinding| {
        let mut v: Vec<(String, i32)> =
            rb.spec.clusters.iter().map(|c| (c.name.clone(), c.replicas.unwrap_or(0))).collect();
        v.sort();
        v
    };
    let one_each = vec![("edge-cpu".to_string(), 1), ("gpu-general".to_string(), 1)];
    let rb: ResourceBinding = hub.get(Some(NS), &format!("{name}-deployment")).await.unwrap().unwrap();
    assert_eq!(split(&rb), one_each);
    let edge = member(&h, "edge-cpu").await;
    let old = edge.get::<Deployment>(Some(NS), &name).await.unwrap().unwrap().metadata.uid;

    // The Cluster deleted by hand: Karmada withdraws its copy and puts both replicas on gpu-general;
    // H-MAS joins it again; Karmada would leave it empty, so H-MAS asks for a fresh round.
    hub.delete::<Cluster>(None, "edge-cpu").await.unwrap();
    eventually(30, "one replica on each cluster again, the edge copy a new one", || async {
        let rb: ResourceBinding = hub.get(Some(NS), &format!("{name}-deployment")).await.ok()??;
        let copy = edge.get::<Deployment>(Some(NS), &name).await.ok()??;
        (split(&rb) == one_each && copy.metadata.uid != old).then_some(())
    })
    .await;
    assert!(hub.get::<WorkloadRebalancer>(None, &format!("hmas-{name}")).await.unwrap().is_some(), "asked the hub");
    wait_for(&admin, &h, &name, 60, |d| {
        running(d) && d["placements"].as_array().unwrap().iter().all(|p| p["ready"] == 1)
    })
    .await;
}
