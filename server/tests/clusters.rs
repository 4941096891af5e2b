//! Registering, seeing and releasing member clusters through the API of a real `hmas` with its
//! simulated hub.
mod common;

use common::{call, login, Hmas};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use serde_json::{json, Value};
use server::hub::karmada::{Cluster, PropagationPolicy};
use server::hub::KubeClient;
use std::time::{Duration, Instant};

const PW: &str = "admin-password-1";

fn kubeconfig(h: &Hmas, name: &str) -> String {
    std::fs::read_to_string(h.data_dir.join("sim").join(format!("{name}.kubeconfig"))).unwrap()
}

fn field<'a>(kc: &'a str, key: &str) -> &'a str {
    kc.lines().find_map(|l| l.trim().strip_prefix(&format!("{key}: "))).unwrap()
}

fn register_body(name: &str, zone_class: &str, access: Value) -> Value {
    json!({"name": name, "display_name": format!("{name} cluster"), "zone_class": zone_class, "region": "us-east", "zone": "us-east-1a", "access": access})
}

async fn wait_ready(c: &reqwest::Client, h: &Hmas, name: &str) -> Value {
    let start = Instant::now();
    loop {
        let (_, list) = call(c, h, "/api/clusters/list", json!({})).await;
        if let Some(v) = list.as_array().and_then(|l| l.iter().find(|v| v["name"] == name && v["phase"] == "ready")) {
            return v.clone();
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{name} never turned ready: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn register_every_kind_of_access_and_see_gpus() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("hmas.log");
    let h = Hmas::start_logged(&tmp.path().join("data"), Some(PW), Some(&log));
    let admin = login(&h, "admin", PW).await;

    // Token kubeconfig.
    let hpc_kc = kubeconfig(&h, "gpu-hpc");
    let (s, v) = call(
        &admin,
        &h,
        "/api/clusters/register",
        register_body("gpu-hpc", "a", json!({"kind": "kubeconfig", "kubeconfig": hpc_kc})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // Client-certificate kubeconfig.
    let (s, v) = call(
        &admin,
        &h,
        "/api/clusters/register",
        register_body(
            "gpu-general",
            "b",
            json!({"kind": "kubeconfig", "kubeconfig": kubeconfig(&h, "gpu-general-cert")}),
        ),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // Endpoint, CA and token typed in.
    let edge = kubeconfig(&h, "edge-cpu");
    use base64::Engine;
    let ca = String::from_utf8(
        base64::engine::general_purpose::STANDARD.decode(field(&edge, "certificate-authority-data")).unwrap(),
    )
    .unwrap();
    let access =
        json!({"kind": "endpoint", "server": field(&edge, "server"), "ca_pem": ca, "token": field(&edge, "token")});
    let (s, v) = call(&admin, &h, "/api/clusters/register", register_body("edge-cpu", "b", access)).await;
    assert_eq!(s, 200, "{v}");

    let hpc = wait_ready(&admin, &h, "gpu-hpc").await;
    assert_eq!(hpc["kubernetes_version"], "v1.36.0");
    assert_eq!((hpc["nodes_total"].as_i64(), hpc["gpus_allocatable"].as_i64()), (Some(3), Some(20)));
    let gpus: Vec<(String, i64)> = hpc["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["product"].as_str().unwrap().to_string(), g["count"].as_i64().unwrap()))
        .collect();
    assert_eq!(gpus, [("NVIDIA-A100-SXM4-80GB".to_string(), 4), ("NVIDIA-H100-80GB-HBM3".to_string(), 16)]);
    assert_eq!(hpc["gpus"][1]["nvlink"], true);
    wait_ready(&admin, &h, "gpu-general").await;
    let edge_v = wait_ready(&admin, &h, "edge-cpu").await;
    assert_eq!(edge_v["gpus"].as_array().unwrap().len(), 0);

    // The detail: nodes with GPUs, conditions, events from the member.
    let (s, d) = call(&admin, &h, "/api/clusters/get", json!({"name": "gpu-hpc"})).await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(d["nodes"][0]["gpu_product"], "NVIDIA-A100-SXM4-80GB");
    assert_eq!(d["conditions"][0]["kind"], "Ready");

    // In the hub: a push-mode Cluster with its zone class, and Karmada's identity on the member.
    let hub = KubeClient::from_kubeconfig_file(&h.data_dir.join("sim/hub.kubeconfig"), None).await.unwrap();
    let c: Cluster = hub.get(None, "gpu-hpc").await.unwrap().unwrap();
    assert_eq!(c.spec.sync_mode, "Push");
    assert_eq!(c.metadata.labels.unwrap()["hmas.io/zone-class"], "a");
    let member = KubeClient::from_kubeconfig(&hpc_kc, None).await.unwrap();
    assert!(member.get::<ServiceAccount>(Some("karmada-cluster"), "karmada-gpu-hpc").await.unwrap().is_some());

    // Registering again updates; it never duplicates.
    let before = call(&admin, &h, "/api/clusters/list", json!({})).await.1;
    let id = before.as_array().unwrap().iter().find(|v| v["name"] == "gpu-hpc").unwrap()["id"].clone();
    let mut again = register_body("gpu-hpc", "a", json!({"kind": "kubeconfig", "kubeconfig": hpc_kc}));
    again["display_name"] = json!("HPC east");
    let (s, v) = call(&admin, &h, "/api/clusters/register", again).await;
    assert_eq!((s, v["id"].clone(), v["display_name"].as_str()), (200, id, Some("HPC east")));
    assert_eq!(call(&admin, &h, "/api/clusters/list", json!({})).await.1.as_array().unwrap().len(), 3);

    // Secrets stay secret: not in the database, not in the log, not in any answer.
    let member_token: String = {
        let s: Secret = member.get(Some("karmada-cluster"), "karmada-gpu-hpc").await.unwrap().unwrap();
        String::from_utf8(s.data.unwrap()["token"].0.clone()).unwrap()
    };
    let secrets = [field(&hpc_kc, "token").to_string(), field(&edge, "token").to_string(), member_token];
    let db = std::fs::read(h.data_dir.join("hmas.db")).unwrap();
    let wal = std::fs::read(h.data_dir.join("hmas.db-wal")).unwrap_or_default();
    let logged = std::fs::read_to_string(&log).unwrap();
    let answers = format!("{before}{d}");
    for t in &secrets {
        assert!(
            !db.windows(t.len()).any(|w| w == t.as_bytes()) && !wal.windows(t.len()).any(|w| w == t.as_bytes()),
            "a token is in the database"
        );
        assert!(!logged.contains(t.as_str()), "a token is in the log");
        assert!(!answers.contains(t.as_str()), "a token is in an answer");
    }
    assert!(logged.contains("cluster registered"), "the log says what happened");

    // Viewing is for every role; registering is not.
    call(&admin, &h, "/api/users/create", json!({"username": "viewer", "role": "user", "password": "viewer-password"}))
        .await;
    let viewer = login(&h, "viewer", "viewer-password").await;
    assert_eq!(call(&viewer, &h, "/api/clusters/list", json!({})).await.0, 200);
    assert_eq!(
        call(
            &viewer,
            &h,
            "/api/clusters/register",
            register_body("x", "a", json!({"kind": "kubeconfig", "kubeconfig": hpc_kc}))
        )
        .await
        .0,
        403
    );
}

#[tokio::test]
async fn a_kubeconfig_with_several_contexts() {
    let h = Hmas::start(Some(PW));
    let admin = login(&h, "admin", PW).await;
    // Merge two members' kubeconfigs into one file with two contexts.
    let a = kubeconfig(&h, "gpu-general");
    let b = kubeconfig(&h, "edge-cpu");
    let (ya, yb): (Value, Value) = (serde_yaml::from_str(&a).unwrap(), serde_yaml::from_str(&b).unwrap());
    let merged = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "gpu-general",
        "clusters": [ya["clusters"][0], yb["clusters"][0]],
        "contexts": [ya["contexts"][0], yb["contexts"][0]],
        "users": [ya["users"][0], yb["users"][0]],
    });
    let merged = serde_yaml::to_string(&merged).unwrap();
    let (s, ctxs) = call(&admin, &h, "/api/clusters/inspect_kubeconfig", json!({"kubeconfig": merged})).await;
    assert_eq!(s, 200, "{ctxs}");
    let names: Vec<&str> = ctxs.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["gpu-general", "edge-cpu"]);
    assert_eq!(ctxs[0]["current"], true);
    assert_eq!(ctxs[1]["auth"], "token");

    let (s, v) = call(
        &admin,
        &h,
        "/api/clusters/register",
        register_body("edge", "b", json!({"kind": "kubeconfig", "kubeconfig": merged, "context": "edge-cpu"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["api_endpoint"].as_str(), Some(field(&b, "server")));
    let (s, e) = call(
        &admin,
        &h,
        "/api/clusters/register",
        register_body("edge2", "b", json!({"kind": "kubeconfig", "kubeconfig": merged, "context": "nope"})),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        e["fields"]["kubeconfig"].as_str().unwrap().contains("no context \"nope\" (it has: gpu-general, edge-cpu)"),
        "{e}"
    );
    // The same API server under another name is refused.
    let (s, e) = call(
        &admin,
        &h,
        "/api/clusters/register",
        register_body("edge2", "b", json!({"kind": "kubeconfig", "kubeconfig": merged, "context": "edge-cpu"})),
    )
    .await;
    assert_eq!((s, e["code"].as_str()), (409, Some("conflict")), "{e}");
}

#[tokio::test]
async fn bad_access_is_explained_and_leaves_nothing() {
    let h = Hmas::start(Some(PW));
    let admin = login(&h, "admin", PW).await;
    let good = kubeconfig(&h, "gpu-general");

    // Unreachable.
    let (s, e) = call(
        &admin,
        &h,
        "/api/clusters/register",
        register_body("far", "b", json!({"kind": "endpoint", "server": "https://127.0.0.1:1", "token": "t"})),
    )
    .await;
    assert_eq!((s, e["code"].as_str()), (503, Some("unavailable")), "{e}");
    assert!(e["fields"]["server"].as_str().unwrap().contains("cannot reach https://127.0.0.1:1"), "{e}");

    // Reachable, wrong token: 401 from the member.
    let wrong = good.replace(field(&good, "token"), "not-the-token");
    let (s, e) = call(
        &admin,
        &h,
        "/api/clusters/register",
        register_body("wrong", "b", json!({"kind": "kubeconfig", "kubeconfig": wrong})),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    assert!(e["fields"]["kubeconfig"].as_str().unwrap().contains("refused the credentials (401 Unauthorized)"), "{e}");

    // Valid credentials without the right to list nodes: 403 from the member.
    let member = KubeClient::from_kubeconfig(&good, None).await.unwrap();
    let objs: Vec<Value> = vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader", "namespace": "default"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "ns-reader"}, "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "ns-reader"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ns-reader"}, "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "default"}]}),
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token", "metadata": {"name": "reader-token", "namespace": "default", "annotations": {"kubernetes.io/service-account.name": "reader"}}}),
    ];
    for o in objs {
        match o["kind"].as_str().unwrap() {
            "ServiceAccount" => {
                drop(member.apply(&serde_json::from_value::<ServiceAccount>(o).unwrap()).await.unwrap())
            }
            "ClusterRole" => drop(
                member
                    .apply(&serde_json::from_value::<k8s_openapi::api::rbac::v1::ClusterRole>(o).unwrap())
                    .await
                    .unwrap(),
            ),
            "ClusterRoleBinding" => drop(
                member
                    .apply(&serde_json::from_value::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>(o).unwrap())
                    .await
                    .unwrap(),
            ),
            _ => drop(member.apply(&serde_json::from_value::<Secret>(o).unwrap()).await.unwrap()),
        }
    }
    let token = {
        let start = Instant::now();
        loop {
            let s: Secret = member.get(Some("default"), "reader-token").await.unwrap().unwrap();
            if let Some(t) = s.data.and_then(|d| d.get("token").cloned()) {
                break String::from_utf8(t.0).unwrap();
            }
            assert!(start.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let limited = good.replace(field(&good, "token"), &token);
    let (s, e) = call(
        &admin,
        &h,
        "/api/clusters/register",
        register_body("limited", "b", json!({"kind": "kubeconfig", "kubeconfig": limited})),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    assert!(e["fields"]["kubeconfig"].as_str().unwrap().contains("may not list nodes (403 Forbidden)"), "{e}");

    // Malformed kubeconfigs.
    let cases = [
        ("{{{ not yaml", "is not valid YAML"),
        ("apiVersion: v1\nkind: Config\n", "is not a kubeconfig"),
        (
            &*good.replace(field(&good, "certificate-authority-data"), "not*base64"),
            "certificate-authority-data is not valid base64",
        ),
        (&*good.replace("    server:", "    nothing:"), "has no server"),
    ];
    for (kc, want) in cases {
        let (s, e) = call(
            &admin,
            &h,
            "/api/clusters/register",
            register_body("bad", "b", json!({"kind": "kubeconfig", "kubeconfig": kc})),
        )
        .await;
        assert_eq!(s, 400, "{want}: {e}");
        assert!(e["fields"]["kubeconfig"].as_str().unwrap().contains(want), "{want}: {e}");
    }
    let huge = "#".repeat(300 * 1024);
    let (s, e) = call(
        &admin,
        &h,
        "/api/clusters/register",
        register_body("bad", "b", json!({"kind": "kubeconfig", "kubeconfig": huge})),
    )
    .await;
    assert_eq!(s, 400);
    assert!(e["fields"]["kubeconfig"].as_str().unwrap().contains("larger than 256 KiB"));
    let (s, _) = call(
        &admin,
        &h,
        "/api/clusters/register",
        register_body("bad", "b", json!({"kind": "kubeconfig", "kubeconfig": "#".repeat(2 << 20)})),
    )
    .await;
    assert_eq!(s, 413);
    let (s, e) = call(
        &admin,
        &h,
        "/api/clusters/register",
        json!({"name": "Bad Name", "zone_class": "c", "access": {"kind": "kubeconfig", "kubeconfig": good}}),
    )
    .await;
    assert_eq!(s, 400, "{e}");

    // None of these left a cluster behind, in H-MAS or in the hub.
    let (_, list) = call(&admin, &h, "/api/clusters/list", json!({})).await;
    assert!(list.as_array().unwrap().is_empty(), "{list}");
    let hub = KubeClient::from_kubeconfig_file(&h.data_dir.join("sim/hub.kubeconfig"), None).await.unwrap();
    assert!(hub.list::<Cluster>(None, None).await.unwrap().is_empty());
}

#[tokio::test]
async fn release_with_and_without_running_workloads() {
    let h = Hmas::start(Some(PW));
    let admin = login(&h, "admin", PW).await;
    for name in ["gpu-general", "edge-cpu"] {
        let (s, v) = call(
            &admin,
            &h,
            "/api/clusters/register",
            register_body(name, "b", json!({"kind": "kubeconfig", "kubeconfig": kubeconfig(&h, name)})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        wait_ready(&admin, &h, name).await;
    }
    // Nothing runs on edge-cpu: released at once, its RBAC cleaned on the member.
    let (s, r) = call(&admin, &h, "/api/clusters/release", json!({"name": "edge-cpu"})).await;
    assert_eq!(s, 200, "{r}");
    assert!(r["leftovers"].as_array().unwrap().is_empty(), "{r}");
    let edge = KubeClient::from_kubeconfig(&kubeconfig(&h, "edge-cpu"), None).await.unwrap();
    assert!(edge.get::<ServiceAccount>(Some("karmada-cluster"), "karmada-edge-cpu").await.unwrap().is_none());
    let hub = KubeClient::from_kubeconfig_file(&h.data_dir.join("sim/hub.kubeconfig"), None).await.unwrap();
    assert!(hub.get::<Cluster>(None, "edge-cpu").await.unwrap().is_none());
    assert_eq!(call(&admin, &h, "/api/clusters/get", json!({"name": "edge-cpu"})).await.0, 404);

    // A workload on gpu-general: refused unless forced.
    let d: Deployment = serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})).unwrap();
    hub.apply(&d).await.unwrap();
    let pp: PropagationPolicy = serde_json::from_value(json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}], "placement": {"clusterAffinity": {"clusterNames": ["gpu-general"]}}}})).unwrap();
    hub.apply(&pp).await.unwrap();
    let start = Instant::now();
    loop {
        // Hub workloads of any origin count for release; `instances` counts H-MAS deployments.
        let (_, d) = call(&admin, &h, "/api/clusters/get", json!({"name": "gpu-general"})).await;
        if d["workloads"].as_array().is_some_and(|w| w.len() == 1) {
            assert_eq!(d["cluster"]["instances"], 0);
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, e) = call(&admin, &h, "/api/clusters/release", json!({"name": "gpu-general"})).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("conflict")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("default/web (Deployment)"), "{e}");
    assert!(hub.get::<Cluster>(None, "gpu-general").await.unwrap().is_some(), "refusal changes nothing");
    let (s, r) = call(&admin, &h, "/api/clusters/release", json!({"name": "gpu-general", "force": true})).await;
    assert_eq!(s, 200, "{r}");
    assert!(r["leftovers"].as_array().unwrap().is_empty(), "{r}");
    assert!(hub.get::<Cluster>(None, "gpu-general").await.unwrap().is_none());
    // The hub withdrew its copy through the Cluster's Secret before the Secret went.
    let general = KubeClient::from_kubeconfig(&kubeconfig(&h, "gpu-general"), None).await.unwrap();
    assert!(general.get::<Deployment>(Some("default"), "web").await.unwrap().is_none(), "withdrawn from the member");
    assert!(hub.get::<Secret>(Some("karmada-cluster"), "gpu-general").await.unwrap().is_none());
    assert_eq!(call(&admin, &h, "/api/clusters/release", json!({"name": "gpu-general"})).await.0, 404);
}

#[tokio::test]
async fn force_release_leaves_nothing_of_hmas_on_the_member() {
    use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Service};
    let h = Hmas::start(Some(PW));
    let admin = login(&h, "admin", PW).await;
    common::fleet::register(&admin, &h, "gpu-general", "b").await;
    let mut spec = common::fleet::spec("llama3.2:1b", "ollama", 1, &["gpu-general"]);
    spec["cache"] = json!({"enabled": true});
    let (s, v) = call(&admin, &h, "/api/deployments/create", json!({"spec": spec})).await;
    assert_eq!(s, 200, "{v}");
    let name = v["name"].as_str().unwrap().to_string();
    common::fleet::wait_for(&admin, &h, &name, 60, common::fleet::running).await;
    let general = common::fleet::member(&h, "gpu-general").await;
    let ns = "hmas-serving";
    assert!(!general.list::<PersistentVolumeClaim>(Some(ns), None).await.unwrap().is_empty(), "the cache volume");
    assert!(!general.list::<Service>(Some(ns), None).await.unwrap().is_empty());

    let (s, r) = call(&admin, &h, "/api/clusters/release", json!({"name": "gpu-general", "force": true})).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["leftovers"], json!([]), "what is really left on the member");
    assert!(general.get::<Namespace>(None, ns).await.unwrap().is_none(), "namespace {ns} withdrawn");
    for (kind, n) in [
        ("Deployment", general.list::<Deployment>(Some(ns), None).await.unwrap().len()),
        ("Service", general.list::<Service>(Some(ns), None).await.unwrap().len()),
        ("PersistentVolumeClaim", general.list::<PersistentVolumeClaim>(Some(ns), None).await.unwrap().len()),
    ] {
        assert_eq!(n, 0, "{kind}s left in {ns}");
    }
    assert!(general.get::<ServiceAccount>(Some("karmada-cluster"), "karmada-gpu-general").await.unwrap().is_none());
}

#[tokio::test]
async fn a_registration_cut_short_by_a_restart_shows_as_failed() {
    use server::store::{ClusterRecord, ClusterState, ClusterStore, Store};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut h = Hmas::start_in(&dir, Some(PW));
    assert!(h.terminate());
    // As if the process had died between writing the row and finishing the registration.
    let store = Store::connect(&format!("sqlite://{}", dir.join("hmas.db").display())).await.unwrap();
    store
        .upsert_cluster(&ClusterRecord {
            id: "x1".into(),
            name: "half".into(),
            display_name: "Half".into(),
            api_endpoint: "https://127.0.0.1:9".into(),
            zone_class: app::models::cluster::ZoneClass::B,
            region: String::new(),
            zone: String::new(),
            credentials: "v1:AAAA".into(),
            kubernetes_version: String::new(),
            nodes: vec![],
            state: ClusterState::Registering,
            state_message: String::new(),
            created_at: 1,
            updated_at: 1,
        })
        .await
        .unwrap();
    store.close().await;
    let h = Hmas::start_in(&dir, Some(PW));
    let admin = login(&h, "admin", PW).await;
    let (_, list) = call(&admin, &h, "/api/clusters/list", json!({})).await;
    assert_eq!(list[0]["phase"], "failed", "{list}");
    assert!(list[0]["message"].as_str().unwrap().contains("interrupted by a restart"));
}

#[tokio::test]
async fn registered_clusters_survive_a_restart_of_the_embedded_hub() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut h = Hmas::start_in(&dir, Some(PW));
    let admin = login(&h, "admin", PW).await;
    let kc = kubeconfig(&h, "gpu-general");
    let (s, v) = call(
        &admin,
        &h,
        "/api/clusters/register",
        register_body("gpu-general", "b", json!({"kind": "kubeconfig", "kubeconfig": kc})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    wait_ready(&admin, &h, "gpu-general").await;
    assert!(h.terminate());

    // The simulated clusters come back on the same ports with the same credentials; the hub
    // lost its objects, and the reconciler joins the cluster again from the database.
    let h = Hmas::start_in(&dir, Some(PW));
    let again = kubeconfig(&h, "gpu-general");
    assert_eq!(
        (field(&again, "server"), field(&again, "token")),
        (field(&kc, "server"), field(&kc, "token")),
        "same endpoint and token"
    );
    let admin = login(&h, "admin", PW).await;
    let v = wait_ready(&admin, &h, "gpu-general").await;
    assert_eq!(v["gpus_allocatable"], 10);
}
