//! The reconcile functions against a real store (SQLite in a temporary directory) and the
//! simulated hub in this process: what one call writes to the hub, that a second call writes
//! nothing, that what the hub lost is put back, and that a deletion leaves nothing behind.
use super::deployments::Deployer;
use super::observer::{Freshness, Observer};
use super::policies::PolicyPass;
use super::requeue::Requeue;
use crate::hub::names::SERVING_NS;
use crate::hub::KubeClient;
use crate::members::Members;
use crate::metrics::Metrics;
use crate::secrets::Sealer;
use crate::services::clusters::ClustersServiceImpl;
use crate::sim::{Sim, SimConfig, Topology};
use crate::store::{now_ms, ApplyState, DeploymentRecord, DeploymentStore, Store};
use app::models::cluster::{ClusterAccess, RegisterCluster, ZoneClass};
use app::models::deployment::{DeploySpec, ObservedStatus};
use app::models::runtime::RuntimeKind;
use app::models::user::{Role, SessionUser};
use app::services::ClustersService;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use std::time::{Duration, Instant};

struct Fixture {
    sim: Sim,
    _dir: tempfile::TempDir,
    store: Store,
    hub: KubeClient,
    deployer: Deployer,
    observer: Observer,
    policies: PolicyPass,
}

async fn fixture() -> Fixture {
    let sim = Sim::start(Topology::default_three(), SimConfig::fast(), None, None).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("hmas.db").display())).await.unwrap();
    store.migrate().await.unwrap();
    let sealer = Sealer::load(Some(&"ab".repeat(32)), dir.path()).unwrap();
    let hub = KubeClient::from_kubeconfig(&sim.kubeconfig(&sim.hub), None).await.unwrap();
    let members = Members::new(store.clone(), sealer.clone());
    let admin =
        SessionUser { id: "u1".into(), username: "admin".into(), display_name: String::new(), role: Role::Admin };
    let member = sim.kubeconfig(&sim.member("gpu-general").unwrap().cluster);
    ClustersServiceImpl::new(store.clone(), hub.clone(), sealer, members.clone())
        .register(
            &admin,
            RegisterCluster {
                name: "gpu-general".into(),
                display_name: String::new(),
                zone_class: ZoneClass::B,
                region: String::new(),
                zone: String::new(),
                access: ClusterAccess::Kubeconfig { kubeconfig: member, context: None },
            },
        )
        .await
        .unwrap();
    let metrics = Metrics::default();
    let deployer = Deployer::new(store.clone(), hub.clone(), members.clone(), Requeue::new("deployments", &metrics));
    let observer = Observer::new(store.clone(), hub.clone(), members, deployer.clone(), Freshness::default());
    let policies = PolicyPass::new(store.clone(), hub.clone(), deployer.clone());
    Fixture { sim, _dir: dir, store, hub, deployer, observer, policies }
}

/// Writes the hub answered, by resource: what `apiserver_request_total` counts.
fn writes(sim: &Sim, resource: &str) -> u64 {
    sim.hub
        .metrics_text()
        .lines()
        .filter(|l| l.contains(&format!("resource=\"{resource}\"")))
        .filter(|l| ["APPLY", "POST", "PUT", "PATCH", "DELETE"].iter().any(|v| l.contains(&format!("verb=\"{v}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn pending(name: &str) -> DeploymentRecord {
    let now = now_ms();
    DeploymentRecord {
        id: format!("id-{name}"),
        name: name.into(),
        spec: DeploySpec {
            name: name.into(),
            model: "llama3.2:1b".into(),
            runtime: RuntimeKind::Ollama,
            replicas: 1,
            clusters: vec!["gpu-general".into()],
            ..Default::default()
        },
        state: ApplyState::Applying,
        state_message: String::new(),
        stopped: false,
        observed: ObservedStatus::default(),
        created_by: "admin".into(),
        created_at: now,
        updated_at: now,
        applied_at: 0,
        generation: 1,
        delete_cache: false,
    }
}

async fn row(f: &Fixture, name: &str) -> Option<DeploymentRecord> {
    f.store.deployment_by_name(name).await.unwrap()
}

#[tokio::test]
async fn a_pending_deployment_is_applied_once_and_a_second_pass_writes_nothing() {
    let f = fixture().await;
    f.store.insert_deployment(&pending("one")).await.unwrap();
    let before = writes(&f.sim, "propagationpolicies");
    assert!(f.deployer.reconcile(&row(&f, "one").await.unwrap()).await.unwrap());
    let r = row(&f, "one").await.unwrap();
    assert_eq!(r.state, ApplyState::Applied, "{}", r.state_message);
    assert!(f.hub.get::<Deployment>(Some(SERVING_NS), "one").await.unwrap().is_some());
    // The deployment's policy, and those of what it brings (its cache volume, agent access).
    let applied = writes(&f.sim, "propagationpolicies") - before;
    assert!(applied >= 1);

    // Applied rows are the policy pass's: the deployment pass leaves them alone, and the policy
    // pass finds the hub in step and writes nothing.
    let deployments = writes(&f.sim, "deployments");
    assert!(!f.deployer.reconcile(&r).await.unwrap());
    f.policies.reconcile().await.unwrap();
    f.policies.reconcile().await.unwrap();
    assert_eq!(writes(&f.sim, "deployments"), deployments, "nothing written for a deployment in step");
    assert_eq!(writes(&f.sim, "propagationpolicies") - before, applied, "no policy written again");
}

#[tokio::test]
async fn a_row_left_applying_whose_objects_the_hub_holds_is_recorded_without_writing() {
    let f = fixture().await;
    f.store.insert_deployment(&pending("one")).await.unwrap();
    f.deployer.reconcile(&row(&f, "one").await.unwrap()).await.unwrap();
    // As a leader killed between applying and recording would leave it.
    let mut r = row(&f, "one").await.unwrap();
    r.state = ApplyState::Applying;
    let before = writes(&f.sim, "deployments");
    assert!(f.deployer.reconcile(&r).await.unwrap());
    assert_eq!(writes(&f.sim, "deployments"), before);
}

#[tokio::test]
async fn what_the_hub_lost_is_put_back_and_a_deletion_leaves_nothing() {
    let f = fixture().await;
    f.store.insert_deployment(&pending("one")).await.unwrap();
    f.deployer.reconcile(&row(&f, "one").await.unwrap()).await.unwrap();
    assert!(f.hub.delete::<Service>(Some(SERVING_NS), "one").await.unwrap());
    f.policies.reconcile().await.unwrap();
    assert!(f.hub.get::<Service>(Some(SERVING_NS), "one").await.unwrap().is_some(), "the Service is back");

    // The observer stores what it sees once the member runs it.
    let t = Instant::now();
    loop {
        let rows = f.observer.observe(f.store.list_deployments().await.unwrap()).await.unwrap();
        if rows[0].observed.ready_replicas == 1 {
            assert_eq!(row(&f, "one").await.unwrap().observed, rows[0].observed, "stored as seen");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "never ready: {:?}", rows[0].observed);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    f.store.mark_deleting("one", false, "removing from the hub", now_ms()).await.unwrap();
    assert!(f.deployer.reconcile(&row(&f, "one").await.unwrap()).await.unwrap());
    assert!(row(&f, "one").await.is_none(), "the row goes once the hub let go");
    assert!(f.hub.get::<Deployment>(Some(SERVING_NS), "one").await.unwrap().is_none());
}

#[tokio::test]
async fn a_deletion_the_hub_does_not_answer_waits_with_why_and_backs_off() {
    let f = fixture().await;
    f.store.insert_deployment(&pending("one")).await.unwrap();
    f.deployer.reconcile(&row(&f, "one").await.unwrap()).await.unwrap();
    f.store.mark_deleting("one", false, "removing from the hub", now_ms()).await.unwrap();
    // Every API request answered 503.
    f.sim.hub.faults.error_per_mille.store(1000, std::sync::atomic::Ordering::SeqCst);
    assert!(f.deployer.reconcile(&row(&f, "one").await.unwrap()).await.unwrap());
    let r = row(&f, "one").await.unwrap();
    assert!(r.state_message.starts_with("deletion continues when the hub answers"), "{}", r.state_message);
    // Backing off: the next pass leaves it alone for now.
    assert!(!f.deployer.reconcile(&r).await.unwrap());
    f.sim.hub.faults.error_per_mille.store(0, std::sync::atomic::Ordering::SeqCst);
}
