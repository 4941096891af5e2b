//! The kube-rs hub client against the simulated hub, over HTTPS with the kubeconfigs it hands out:
//! round trips, error mapping, propagation by names and labels, overrides, unschedulable GPU
//! requests, scheduling without an estimator, the webhook, cluster and application failover as
//! Karmada does them, and a streamed chat through a member's NodePort.
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod, Service};
use kube::api::ObjectMeta;
use kube::ResourceExt;
use serde_json::json;
use server::hub::karmada::{Cluster, OverridePolicy, PropagationPolicy, ResourceBinding};
use server::hub::status::cluster_health;
use server::hub::{HubError, KubeClient};
use server::sim::{Sim, SimConfig, Topology};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

async fn start() -> (Sim, KubeClient) {
    let sim = Sim::start(Topology::default_three(), SimConfig::fast(), None, None).await.unwrap();
    sim.join_members().unwrap();
    let hub = KubeClient::from_kubeconfig(&sim.kubeconfig(&sim.hub), None).await.unwrap();
    (sim, hub)
}

async fn member(sim: &Sim, name: &str) -> KubeClient {
    KubeClient::from_kubeconfig(&sim.kubeconfig(&sim.member(name).unwrap().cluster), None).await.unwrap()
}

/// Polls until `f` gives Some, or fails the test naming `what`.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    secs: u64,
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(secs), "timed out after {secs}s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn deployment(name: &str, image: &str, args: &[&str], gpus: u32, replicas: i32) -> Deployment {
    let mut limits = json!({"cpu": "1", "memory": "2Gi"});
    if gpus > 0 {
        limits["nvidia.com/gpu"] = json!(gpus.to_string());
    }
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "main", "image": image, "args": args, "resources": {"limits": limits}}]}}}
    }))
    .unwrap()
}

fn policy(name: &str, kinds: &[(&str, &str, &str)], placement: serde_json::Value) -> PropagationPolicy {
    let selectors: Vec<_> = kinds.iter().map(|(av, k, n)| json!({"apiVersion": av, "kind": k, "name": n})).collect();
    serde_json::from_value(json!({
        "apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"resourceSelectors": selectors, "placement": placement}
    }))
    .unwrap()
}

#[tokio::test]
async fn round_trips_and_error_mapping() {
    let (_sim, hub) = start().await;
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("settings".into()),
            namespace: Some("default".into()),
            labels: Some(BTreeMap::from([("tier".into(), "a".into())])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".into(), "v".into()), ("old".into(), "x".into())])),
        ..Default::default()
    };
    let applied = hub.apply(&cm).await.unwrap();
    assert_eq!(applied.data.as_ref().unwrap()["k"], "v");
    assert_eq!(applied.managed_fields()[0].manager.as_deref(), Some("hmas"));

    // Re-apply without `old`: server-side apply removes what the manager no longer sets.
    let mut next = cm.clone();
    next.data = Some(BTreeMap::from([("k".into(), "w".into())]));
    let again = hub.apply(&next).await.unwrap();
    assert_eq!(again.data.unwrap(), BTreeMap::from([("k".into(), "w".into())]));

    let got: ConfigMap = hub.get(Some("default"), "settings").await.unwrap().unwrap();
    assert_eq!(got.metadata.resource_version, again.metadata.resource_version);
    assert_eq!(hub.list::<ConfigMap>(Some("default"), Some("tier=a")).await.unwrap().len(), 1);
    assert!(hub.list::<ConfigMap>(Some("default"), Some("tier=b")).await.unwrap().is_empty());

    // Stale resourceVersion → conflict; duplicate create → conflict; missing → not found.
    let mut stale = got.clone();
    stale.metadata.resource_version = Some("1".into());
    assert!(
        matches!(hub.replace(&stale).await, Err(HubError::Conflict(m)) if m.contains("the object has been modified"))
    );
    assert!(matches!(hub.create(&cm).await, Err(HubError::Conflict(m)) if m.contains("already exists")));
    assert_eq!(hub.get::<ConfigMap>(Some("default"), "nope").await.unwrap(), None);
    let mut missing = got.clone();
    missing.metadata.name = Some("nope".into());
    assert!(hub.replace(&missing).await.unwrap_err().is_not_found());

    // Invalid names come back as invalid, naming the field.
    let mut bad = cm.clone();
    bad.metadata.name = Some("Bad_Name".into());
    match hub.create(&bad).await {
        Err(HubError::Invalid { field, message }) => {
            assert_eq!(field.as_deref(), Some("metadata.name"));
            assert!(message.contains("RFC 1123"), "{message}");
        }
        other => panic!("expected invalid, got {other:?}"),
    }

    assert!(hub.delete::<ConfigMap>(Some("default"), "settings").await.unwrap());
    assert!(!hub.delete::<ConfigMap>(Some("default"), "settings").await.unwrap());
}

#[tokio::test]
async fn watches_see_changes_and_resume() {
    use futures::StreamExt;
    use kube::api::{Api, WatchEvent, WatchParams};
    let (_sim, hub) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(hub.kube().clone(), "default");
    let list = api.list(&Default::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let mut stream = api.watch(&WatchParams::default().labels("w=1").timeout(10), &rv).await.unwrap().boxed();
    let mut cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("watched".into()),
            namespace: Some("default".into()),
            labels: Some(BTreeMap::from([("w".into(), "1".into())])),
            ..Default::default()
        },
        ..Default::default()
    };
    hub.apply(&cm).await.unwrap();
    cm.data = Some(BTreeMap::from([("a".into(), "b".into())]));
    hub.apply(&cm).await.unwrap();
    hub.delete::<ConfigMap>(Some("default"), "watched").await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("watch event").unwrap().unwrap()
        {
            WatchEvent::Added(o) => seen.push(("added", o.name_any())),
            WatchEvent::Modified(o) => seen.push(("modified", o.name_any())),
            WatchEvent::Deleted(o) => seen.push(("deleted", o.name_any())),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        seen,
        [("added", "watched".to_string()), ("modified", "watched".to_string()), ("deleted", "watched".to_string())]
    );
}

#[tokio::test]
async fn credentials_are_checked() {
    let (sim, _hub) = start().await;
    let good = sim.kubeconfig(&sim.member("edge-cpu").unwrap().cluster);
    let bad = good
        .lines()
        .map(|l| if l.trim_start().starts_with("token:") { "    token: wrong" } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    let client = KubeClient::from_kubeconfig(&bad, None).await.unwrap();
    assert!(matches!(client.nodes().await, Err(HubError::Unauthorized(_))));
    // Client certificates authenticate as well.
    let cert = sim.kubeconfig_with_cert(&sim.member("edge-cpu").unwrap().cluster).unwrap();
    let client = KubeClient::from_kubeconfig(&cert, None).await.unwrap();
    assert_eq!(client.nodes().await.unwrap().len(), 2);
    assert_eq!(client.version().await.unwrap(), "v1.36.0");
}

#[tokio::test]
async fn clusters_report_health_and_gpus() {
    let (_sim, hub) = start().await;
    let clusters = eventually(10, "three ready clusters", || async {
        let cs = hub.list::<Cluster>(None, None).await.ok()?;
        (cs.len() == 3 && cs.iter().all(|c| cluster_health(c).ready)).then_some(cs)
    })
    .await;
    let hpc = clusters.iter().map(cluster_health).find(|c| c.name == "gpu-hpc").unwrap();
    assert_eq!((hpc.nodes_total, hpc.gpus_allocatable, hpc.gpus_allocated), (3, 20, 0));
    assert_eq!(hpc.kubernetes_version, "v1.36.0");
}

#[tokio::test]
async fn propagation_by_names_and_labels_with_overrides() {
    let (sim, hub) = start().await;
    // Label the clusters, as H-MAS will from their zone class.
    for (name, class) in [("gpu-hpc", "a"), ("gpu-general", "b"), ("edge-cpu", "b")] {
        let mut c: Cluster = hub.get(None, name).await.unwrap().unwrap();
        c.metadata.labels.get_or_insert_with(BTreeMap::new).insert("hmas.io/zone-class".into(), class.into());
        c.metadata.managed_fields = None;
        // Karmada's controllers write the Cluster too (its finalizer, taints): no optimistic lock.
        c.metadata.resource_version = None;
        c.status = None;
        hub.apply(&c).await.unwrap();
    }
    hub.apply(&deployment("by-name", "nginx:1.27", &[], 0, 1)).await.unwrap();
    hub.apply(&policy(
        "by-name",
        &[("apps/v1", "Deployment", "by-name")],
        json!({"clusterAffinity": {"clusterNames": ["gpu-hpc"]}}),
    ))
    .await
    .unwrap();
    hub.apply(&deployment("by-label", "nginx:1.27", &[], 0, 2)).await.unwrap();
    hub.apply(&policy(
        "by-label",
        &[("apps/v1", "Deployment", "by-label")],
        json!({"clusterAffinity": {"labelSelector": {"matchLabels": {"hmas.io/zone-class": "b"}}}, "replicaScheduling": {"replicaSchedulingType": "Duplicated"}}),
    ))
    .await
    .unwrap();
    let op: OverridePolicy = serde_json::from_value(json!({
        "apiVersion": "policy.karmada.io/v1alpha1", "kind": "OverridePolicy",
        "metadata": {"name": "edge-image", "namespace": "default"},
        "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "by-label"}],
                 "overrideRules": [{"targetCluster": {"clusterNames": ["edge-cpu"]},
                                    "overriders": {"imageOverrider": [{"component": "Registry", "operator": "replace", "value": "mirror.edge.local"}],
                                                   "argsOverrider": [{"containerName": "main", "operator": "add", "value": ["--edge"]}],
                                                   "labelsOverrider": [{"operator": "add", "value": {"site": "edge"}}]}}]}
    }))
    .unwrap();
    hub.apply(&op).await.unwrap();

    let hpc = member(&sim, "gpu-hpc").await;
    let general = member(&sim, "gpu-general").await;
    let edge = member(&sim, "edge-cpu").await;
    let copy: Deployment =
        eventually(10, "by-name on gpu-hpc", || async { hpc.get(Some("default"), "by-name").await.ok().flatten() })
            .await;
    assert_eq!(copy.labels().get("karmada.io/managed").map(String::as_str), Some("true"));
    assert!(general.get::<Deployment>(Some("default"), "by-name").await.unwrap().is_none());

    let on_general: Deployment = eventually(10, "by-label on gpu-general", || async {
        general.get(Some("default"), "by-label").await.ok().flatten()
    })
    .await;
    let on_edge: Deployment =
        eventually(10, "by-label on edge-cpu", || async { edge.get(Some("default"), "by-label").await.ok().flatten() })
            .await;
    assert!(
        hpc.get::<Deployment>(Some("default"), "by-label").await.unwrap().is_none(),
        "zone class a is not selected"
    );
    assert_eq!(on_general.spec.as_ref().unwrap().replicas, Some(2), "Duplicated: full replicas everywhere");
    let image =
        |d: &Deployment| d.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0].image.clone().unwrap();
    let args = |d: &Deployment| {
        d.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0].args.clone().unwrap_or_default()
    };
    assert_eq!(image(&on_general), "nginx:1.27");
    assert_eq!(image(&on_edge), "mirror.edge.local/nginx:1.27");
    assert_eq!(args(&on_edge), ["--edge"]);
    assert_eq!(on_edge.labels().get("site").map(String::as_str), Some("edge"));

    // The binding says where it went; the template's status adds up the members'.
    let rb: ResourceBinding = hub.get(Some("default"), "by-label-deployment").await.unwrap().unwrap();
    let mut names: Vec<_> = rb.spec.clusters.iter().map(|c| c.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["edge-cpu", "gpu-general"]);
    eventually(10, "4 ready replicas aggregated on the hub", || async {
        let d: Deployment = hub.get(Some("default"), "by-label").await.ok().flatten()?;
        (d.status?.ready_replicas == Some(4)).then_some(())
    })
    .await;

    // Deleting the template removes the copies.
    hub.delete::<Deployment>(Some("default"), "by-label").await.unwrap();
    eventually(10, "copies removed", || async {
        let a = general.get::<Deployment>(Some("default"), "by-label").await.ok()?;
        let b = edge.get::<Deployment>(Some("default"), "by-label").await.ok()?;
        (a.is_none() && b.is_none()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn too_many_gpus_stay_pending_with_the_reason() {
    let (sim, hub) = start().await;
    hub.apply(&deployment("huge", "vllm/vllm-openai:v0.6", &["--model", "meta-llama/Llama-3.1-70B"], 8, 1))
        .await
        .unwrap();
    hub.apply(&policy(
        "huge",
        &[("apps/v1", "Deployment", "huge")],
        json!({"clusterAffinity": {"clusterNames": ["gpu-general"]}}),
    ))
    .await
    .unwrap();
    let general = member(&sim, "gpu-general").await;
    let pod: Pod = eventually(10, "an unschedulable pod", || async {
        let pods: Vec<Pod> = general.list(Some("default"), Some("app=huge")).await.ok()?;
        pods.into_iter().find(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "PodScheduled" && c.status == "False"))
        })
    })
    .await;
    let status = pod.status.clone().unwrap();
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    let cond = status.conditions.unwrap().into_iter().find(|c| c.type_ == "PodScheduled").unwrap();
    assert_eq!(cond.reason.as_deref(), Some("Unschedulable"));
    assert!(
        cond.message.as_deref().unwrap().contains("0/4 nodes are available: 4 Insufficient nvidia.com/gpu"),
        "{cond:?}"
    );
    let events: Vec<Event> = general.list(Some("default"), None).await.unwrap();
    assert!(events.iter().any(|e| e.reason.as_deref() == Some("FailedScheduling")
        && e.involved_object.name.as_deref() == Some(pod.name_any().as_str())));
}

fn scheduled(rb: &ResourceBinding) -> Option<(String, String, String)> {
    let c = rb.status.as_ref()?.conditions.iter().find(|c| c.type_ == "Scheduled")?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Two members, the workload on whichever the hub picked first, that member cut off.
async fn place_and_cut(sim: &Sim, hub: &KubeClient, pp: PropagationPolicy) -> (String, String, Instant) {
    hub.apply(&deployment("web", "nginx:1.27", &[], 0, 2)).await.unwrap();
    hub.apply(&pp).await.unwrap();
    let first = eventually(10, "the first placement", || async {
        let rb: ResourceBinding = hub.get(Some("default"), "web-deployment").await.ok().flatten()?;
        rb.spec.clusters.first().map(|c| c.name.clone())
    })
    .await;
    let first_client = member(sim, &first).await;
    eventually(10, "ready on the first cluster", || async {
        let d: Deployment = first_client.get(Some("default"), "web").await.ok().flatten()?;
        (d.status?.ready_replicas == Some(2)).then_some(())
    })
    .await;
    let other = if first == "gpu-general" { "edge-cpu" } else { "gpu-general" }.to_string();
    assert!(sim.set_down(&first, true));
    (first, other, Instant::now())
}

fn two_sites(tolerations: serde_json::Value) -> PropagationPolicy {
    policy(
        "web",
        &[("apps/v1", "Deployment", "web")],
        json!({"clusterAffinity": {"clusterNames": ["gpu-general", "edge-cpu"]},
               "clusterTolerations": tolerations,
               "spreadConstraints": [{"spreadByField": "cluster", "maxGroups": 1, "minGroups": 1}],
               "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted"}}),
    )
}

#[tokio::test]
async fn cluster_failover_moves_through_the_no_execute_taint_after_the_toleration() {
    let (sim, hub) = start().await;
    // Application failover without propagateDeps is refused by the webhook, as invalid input.
    let mut bad = two_sites(json!([]));
    bad.spec.failover = serde_json::from_value(
        json!({"application": {"decisionConditions": {"tolerationSeconds": 1}, "purgeMode": "Directly"}}),
    )
    .unwrap();
    match hub.apply(&bad).await.unwrap_err() {
        HubError::Invalid { message, field } => {
            assert_eq!(message, "admission webhook \"propagationpolicy.karmada.io\" denied the request: spec.propagateDeps: Invalid value: false: application failover is set, propagateDeps must be true");
            assert_eq!(field.as_deref(), Some("spec.propagateDeps"));
        }
        e => panic!("{e:?}"),
    }
    assert!(hub.get::<PropagationPolicy>(Some("default"), "web").await.unwrap().is_none(), "nothing stored");

    // Karmada's way: the taint policy, a 1 s NoExecute toleration, a direct purge.
    hub.apply(&server::hub::policy::taint_policy()).await.unwrap();
    let mut pp = two_sites(
        json!([{"key": "cluster.karmada.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}]),
    );
    pp.spec.failover = serde_json::from_value(json!({"cluster": {"purgeMode": "Directly"}})).unwrap();
    let (first, other, cut) = place_and_cut(&sim, &hub, pp).await;
    let other_client = member(&sim, &other).await;
    eventually(15, "the workload on the other cluster", || async {
        let d: Deployment = other_client.get(Some("default"), "web").await.ok().flatten()?;
        (d.status?.ready_replicas == Some(2)).then_some(())
    })
    .await;
    // NotReady after the failure threshold (40 s scaled by 0.01), then the toleration.
    let moved = cut.elapsed();
    println!("cluster failover: moved after {:.2} s (threshold 0.4 s + toleration 1 s)", moved.as_secs_f64());
    assert!(moved >= Duration::from_millis(1400), "not before the threshold and the toleration: {moved:?}");
    let c: Cluster = hub.get(None, &first).await.unwrap().unwrap();
    assert!(!cluster_health(&c).ready);
    let taints: Vec<(&str, &str)> = c.spec.taints.iter().map(|t| (t.key.as_str(), t.effect.as_str())).collect();
    assert!(taints.contains(&("cluster.karmada.io/not-ready", "NoSchedule")), "{taints:?}");
    assert!(taints.contains(&("cluster.karmada.io/not-ready", "NoExecute")), "{taints:?}");

    // When the failed cluster comes back, the evicted copy is purged and the taints go.
    let first_client = member(&sim, &first).await;
    sim.set_down(&first, false);
    eventually(15, "the evicted copy purged", || async {
        first_client.get::<Deployment>(Some("default"), "web").await.ok()?.is_none().then_some(())
    })
    .await;
    let rb: ResourceBinding = hub.get(Some("default"), "web-deployment").await.unwrap().unwrap();
    assert_eq!(rb.spec.clusters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), [other.as_str()]);
    let c: Cluster = eventually(10, "the taints gone", || async {
        let c: Cluster = hub.get(None, &first).await.ok()??;
        c.spec.taints.is_empty().then_some(c)
    })
    .await;
    assert!(cluster_health(&c).ready);
}

#[tokio::test]
async fn with_karmadactl_init_defaults_nothing_moves() {
    let cfg = SimConfig { hub_failover: false, ..SimConfig::fast() };
    let sim = Sim::start(Topology::default_three(), cfg, None, None).await.unwrap();
    sim.join_members().unwrap();
    let hub = KubeClient::from_kubeconfig(&sim.kubeconfig(&sim.hub), None).await.unwrap();
    // The webhook refuses a NoExecute taint policy without --allow-no-execute-taint-policy.
    match hub.apply(&server::hub::policy::taint_policy()).await.unwrap_err() {
        HubError::Invalid { message, .. } => assert!(
            message.ends_with("spec.taints[0]: Forbidden: Configuring taint with NoExecute effect is not allowed"),
            "{message}"
        ),
        e => panic!("{e:?}"),
    }
    let pp = two_sites(
        json!([{"key": "cluster.karmada.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}]),
    );
    let (first, _, cut) = place_and_cut(&sim, &hub, pp).await;
    let c: Cluster = eventually(10, "the cluster NotReady", || async {
        let c: Cluster = hub.get(None, &first).await.ok()??;
        (!cluster_health(&c).ready).then_some(c)
    })
    .await;
    let taints: Vec<(&str, &str)> = c.spec.taints.iter().map(|t| (t.key.as_str(), t.effect.as_str())).collect();
    assert_eq!(taints, [("cluster.karmada.io/not-ready", "NoSchedule")], "only NoSchedule, never NoExecute");
    // Past the toleration (three times over), the binding still points at the dead cluster.
    while cut.elapsed() < Duration::from_secs(3) {
        let rb: ResourceBinding = hub.get(Some("default"), "web-deployment").await.unwrap().unwrap();
        assert_eq!(rb.spec.clusters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), [first.as_str()]);
        assert!(rb.spec.graceful_eviction_tasks.is_empty());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn gpu_replicas_need_static_weights_without_an_estimator() {
    let (_sim, hub) = start().await;
    hub.apply(&deployment("gpu", "vllm/vllm-openai:v0.6", &["--model", "Qwen/Qwen2.5-0.5B-Instruct"], 1, 3))
        .await
        .unwrap();
    let two = json!({"clusterNames": ["gpu-general", "gpu-hpc"]});
    // Dynamic weights: Karmada estimates from CPU and memory only, so a GPU replica fits nowhere.
    hub.apply(&policy(
        "gpu",
        &[("apps/v1", "Deployment", "gpu")],
        json!({"clusterAffinity": two, "replicaScheduling": {"replicaSchedulingType": "Divided",
               "replicaDivisionPreference": "Weighted", "weightPreference": {"dynamicWeight": "AvailableReplicas"}}}),
    ))
    .await
    .unwrap();
    let (status, reason, message) = eventually(10, "the scheduler's verdict", || async {
        let rb: ResourceBinding = hub.get(Some("default"), "gpu-deployment").await.ok()??;
        scheduled(&rb)
    })
    .await;
    assert_eq!((status.as_str(), reason.as_str()), ("False", "SchedulerError"));
    assert_eq!(
        message,
        "failed to assign replicas: failed to scale up: Clusters available replicas 0 are not enough to schedule."
    );
    let events: Vec<Event> = hub.list(Some("default"), None).await.unwrap();
    assert!(events.iter().any(|e| e.reason.as_deref() == Some("ScheduleBindingFailed")), "hub events");
    // Static weights schedule whatever the template asks for, exactly as weighted.
    hub.apply(&policy(
        "gpu",
        &[("apps/v1", "Deployment", "gpu")],
        json!({"clusterAffinity": two, "replicaScheduling": {"replicaSchedulingType": "Divided",
               "replicaDivisionPreference": "Weighted", "weightPreference": {"staticWeightList": [
                   {"targetCluster": {"clusterNames": ["gpu-hpc"]}, "weight": 2},
                   {"targetCluster": {"clusterNames": ["gpu-general"]}, "weight": 1}]}}}),
    ))
    .await
    .unwrap();
    let rb = eventually(10, "scheduled by weight", || async {
        let rb: ResourceBinding = hub.get(Some("default"), "gpu-deployment").await.ok()??;
        (scheduled(&rb)?.0 == "True").then_some(rb)
    })
    .await;
    let mut got: Vec<(String, i32)> =
        rb.spec.clusters.iter().map(|c| (c.name.clone(), c.replicas.unwrap_or(0))).collect();
    got.sort();
    assert_eq!(got, [("gpu-general".to_string(), 1), ("gpu-hpc".to_string(), 2)]);
}

#[tokio::test]
async fn application_failover_evicts_a_copy_that_stays_unhealthy() {
    let (sim, hub) = start().await;
    // Eight GPUs per replica: gpu-general's nodes cannot hold it, its copy never gets ready.
    hub.apply(&deployment("stuck", "vllm/vllm-openai:v0.6", &[], 8, 1)).await.unwrap();
    let mut pp = policy(
        "stuck",
        &[("apps/v1", "Deployment", "stuck")],
        json!({"clusterAffinity": {"clusterNames": ["gpu-general", "gpu-hpc"]},
               "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
                   "weightPreference": {"staticWeightList": [{"targetCluster": {"clusterNames": ["gpu-general"]}, "weight": 1}]}}}),
    );
    pp.spec.propagate_deps = Some(true);
    pp.spec.failover = serde_json::from_value(
        json!({"application": {"decisionConditions": {"tolerationSeconds": 1}, "purgeMode": "Directly"}}),
    )
    .unwrap();
    hub.apply(&pp).await.unwrap();
    let rb = eventually(15, "evicted from gpu-general and rescheduled", || async {
        let rb: ResourceBinding = hub.get(Some("default"), "stuck-deployment").await.ok()??;
        (rb.spec.clusters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>() == ["gpu-hpc"]).then_some(rb)
    })
    .await;
    assert_eq!(rb.spec.clusters[0].replicas, Some(1));
    let events: Vec<Event> = hub.list(Some("default"), None).await.unwrap();
    assert!(
        events.iter().any(|e| e.reason.as_deref() == Some("EvictWorkloadFromClusterSucceed")
            && e.message.as_deref().is_some_and(|m| m.contains("gpu-general") && m.contains("ApplicationFailure"))),
        "an eviction event on the hub"
    );
    // Purged directly: the stuck copy is gone from gpu-general.
    let general = member(&sim, "gpu-general").await;
    eventually(10, "the copy purged", || async {
        general.get::<Deployment>(Some("default"), "stuck").await.ok()?.is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn streaming_chat_through_a_node_port() {
    let (sim, hub) = start().await;
    let script = "ollama serve & sleep 1; ollama pull llama3.2:1b; wait";
    let mut d = deployment("llama", "ollama/ollama:0.5.7", &[], 1, 1);
    let c = &mut d.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[0];
    c.command = Some(vec!["/bin/sh".into(), "-c".into()]);
    c.args = Some(vec![script.into()]);
    hub.apply(&d).await.unwrap();
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "llama", "namespace": "default"},
        "spec": {"type": "NodePort", "selector": {"app": "llama"}, "ports": [{"name": "http", "port": 11434, "targetPort": 11434}]}
    }))
    .unwrap();
    hub.apply(&svc).await.unwrap();
    hub.apply(&policy(
        "llama",
        &[("apps/v1", "Deployment", "llama"), ("v1", "Service", "llama")],
        json!({"clusterAffinity": {"clusterNames": ["gpu-general"]}}),
    ))
    .await
    .unwrap();

    let general = member(&sim, "gpu-general").await;
    // The model download is visible while it runs, then the pod turns Ready.
    eventually(20, "a Ready pod that downloaded its model", || async {
        let pods: Vec<Pod> = general.list(Some("default"), Some("app=llama")).await.ok()?;
        let p = pods.into_iter().next()?;
        let ready = p.status.as_ref()?.conditions.as_ref()?.iter().any(|c| c.type_ == "Ready" && c.status == "True");
        let progress = p.annotations().get("sim.hmas.io/model-progress").cloned();
        (ready && progress.as_deref() == Some("100")).then_some(())
    })
    .await;
    let node_port = eventually(10, "a NodePort", || async {
        let s: Service = general.get(Some("default"), "llama").await.ok().flatten()?;
        s.spec?.ports?.first()?.node_port
    })
    .await;
    let base = format!("http://127.0.0.1:{node_port}");
    let http = reqwest::Client::new();
    assert_eq!(http.get(&base).send().await.unwrap().text().await.unwrap(), "Ollama is running");
    let tags: serde_json::Value = http.get(format!("{base}/api/tags")).send().await.unwrap().json().await.unwrap();
    assert_eq!(tags["models"][0]["name"], "llama3.2:1b");

    let mut res = http
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({"model": "llama3.2:1b", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "Say hello to the cluster"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut body = String::new();
    let mut chunks = 0;
    while let Some(c) = res.chunk().await.unwrap() {
        chunks += 1;
        body.push_str(&String::from_utf8_lossy(&c));
    }
    assert!(chunks > 5, "streamed in pieces, got {chunks}");
    let events: Vec<serde_json::Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(body.trim_end().ends_with("data: [DONE]"));
    let text: String =
        events.iter().filter_map(|e| e.pointer("/choices/0/delta/content").and_then(|c| c.as_str())).collect();
    assert!(text.contains("llama3.2:1b") && text.contains("Say hello to the cluster"), "{text}");
    let usage = events.iter().find_map(|e| e.get("usage")).unwrap();
    assert_eq!(usage["prompt_tokens"], 5);
    assert_eq!(usage["completion_tokens"].as_u64().unwrap() as usize, text.split_whitespace().count());

    let wrong = http
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({"model": "other", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 404);
}

#[tokio::test]
async fn injected_latency_errors_and_outages() {
    use std::sync::atomic::Ordering;
    let (sim, _hub) = start().await;
    let m = sim.member("edge-cpu").unwrap();
    let client = member(&sim, "edge-cpu").await;
    m.cluster.faults.error_per_mille.store(1000, Ordering::Relaxed);
    let t = Instant::now();
    assert!(matches!(client.nodes().await, Err(HubError::Unavailable(_))));
    assert!(t.elapsed() < Duration::from_secs(2), "no hidden retries");
    m.cluster.faults.error_per_mille.store(0, Ordering::Relaxed);
    m.cluster.faults.latency_ms.store(300, Ordering::Relaxed);
    let t = Instant::now();
    assert_eq!(client.nodes().await.unwrap().len(), 2);
    assert!(t.elapsed() >= Duration::from_millis(300));
    m.cluster.faults.latency_ms.store(0, Ordering::Relaxed);
    sim.set_down("edge-cpu", true);
    let t = Instant::now();
    assert!(matches!(client.nodes().await, Err(HubError::Unavailable(_))), "an open connection is cut too");
    assert!(t.elapsed() < Duration::from_secs(6), "a cut cluster is reported, not waited on");
    sim.set_down("edge-cpu", false);
    assert_eq!(client.nodes().await.unwrap().len(), 2);
}

#[tokio::test]
async fn deleting_a_cluster_withdraws_its_copies_unless_its_secret_went_first() {
    let (sim, hub) = start().await;
    hub.apply(&deployment("web", "nginx:1.27", &[], 0, 1)).await.unwrap();
    let names = json!({"clusterNames": ["gpu-general", "edge-cpu"]});
    hub.apply(&policy(
        "web",
        &[("apps/v1", "Deployment", "web")],
        json!({"clusterAffinity": names, "replicaScheduling": {"replicaSchedulingType": "Duplicated"}}),
    ))
    .await
    .unwrap();
    let (general, edge) = (member(&sim, "gpu-general").await, member(&sim, "edge-cpu").await);
    for m in [&general, &edge] {
        eventually(10, "a copy on each member", || async {
            m.get::<Deployment>(Some("default"), "web").await.ok()?.map(|_| ())
        })
        .await;
    }
    // The right order: the Cluster goes, its copies with it; then the Secret.
    hub.delete::<Cluster>(None, "gpu-general").await.unwrap();
    eventually(10, "the copy withdrawn", || async {
        general.get::<Deployment>(Some("default"), "web").await.ok()?.is_none().then_some(())
    })
    .await;
    eventually(10, "the Cluster gone", || async {
        hub.get::<Cluster>(None, "gpu-general").await.ok()?.is_none().then_some(())
    })
    .await;
    // The wrong order: without its Secret Karmada cannot reach the member; the copy stays.
    hub.delete::<k8s_openapi::api::core::v1::Secret>(Some("karmada-cluster"), "edge-cpu").await.unwrap();
    hub.delete::<Cluster>(None, "edge-cpu").await.unwrap();
    eventually(10, "the Cluster gone", || async {
        hub.get::<Cluster>(None, "edge-cpu").await.ok()?.is_none().then_some(())
    })
    .await;
    let events: Vec<Event> = hub.list(None, None).await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.message.as_deref() == Some("Failed to delete work: Secret \"edge-cpu\" not found")));
    assert!(edge.get::<Deployment>(Some("default"), "web").await.unwrap().is_some(), "left on the member for good");
}

#[tokio::test]
async fn a_node_port_allocated_on_the_hub_is_copied_to_members_and_can_collide_there() {
    let (sim, hub) = start().await;
    hub.apply(&deployment("web", "nginx:1.27", &[], 0, 1)).await.unwrap();
    let svc: Service = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]}}))
    .unwrap();
    let created = hub.apply(&svc).await.unwrap();
    // The hub is an API server: it allocates the port.
    let port = created.spec.unwrap().ports.unwrap()[0].node_port.unwrap();
    assert!((30000..=32767).contains(&port), "{port}");
    // On edge-cpu another Service holds that port already.
    let edge = member(&sim, "edge-cpu").await;
    let mut squatter = svc.clone();
    squatter.metadata.name = Some("squatter".into());
    squatter.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].node_port = Some(port);
    edge.apply(&squatter).await.unwrap();
    // A second Service asking a member for a port in use is refused there, as the API server does.
    let mut twin = squatter.clone();
    twin.metadata.name = Some("twin".into());
    match edge.apply(&twin).await.unwrap_err() {
        HubError::Invalid { message, field } => {
            assert!(
                message.ends_with(&format!(
                    "spec.ports[0].nodePort: Invalid value: {port}: provided port is already allocated"
                )),
                "{message}"
            );
            assert_eq!(field.as_deref(), Some("spec.ports[0].nodePort"));
        }
        e => panic!("{e:?}"),
    }
    hub.apply(&policy(
        "web",
        &[("apps/v1", "Deployment", "web"), ("v1", "Service", "web")],
        json!({"clusterAffinity": {"clusterNames": ["gpu-general", "edge-cpu"]}, "replicaScheduling": {"replicaSchedulingType": "Duplicated"}}),
    ))
    .await
    .unwrap();
    let general = member(&sim, "gpu-general").await;
    let copied = eventually(10, "the copy on gpu-general", || async {
        general.get::<Service>(Some("default"), "web").await.ok()?
    })
    .await;
    assert_eq!(copied.spec.unwrap().ports.unwrap()[0].node_port, Some(port), "the hub's port, copied");
    let rb = eventually(10, "the collision on edge-cpu", || async {
        let rb: ResourceBinding = hub.get(Some("default"), "web-service").await.ok()??;
        let s = rb.status.clone()?;
        s.aggregated_status.iter().any(|a| a.cluster_name == "edge-cpu" && !a.applied).then_some(rb)
    })
    .await;
    let item =
        rb.status.as_ref().unwrap().aggregated_status.iter().find(|a| a.cluster_name == "edge-cpu").unwrap().clone();
    assert!(item.applied_message.unwrap().ends_with("provided port is already allocated"));
    let full = rb.status.unwrap().conditions.into_iter().find(|c| c.type_ == "FullyApplied").unwrap();
    assert_eq!(full.status, "False");
}
