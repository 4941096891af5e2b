//! Policies: validated and stored in the database, handed to the policy pass
//! (`crate::reconcile::policies`) that brings the hub in step, and the failover drill.
use crate::changes::Wake;
use crate::hub::hub_policies;
use crate::hub::KubeClient;
use crate::leader::Leadership;
use crate::members::Members;
use crate::placement::{read_live, Book};
use crate::reconcile::policies::PolicyPass;
use crate::services::deployments::check_clusters;
use crate::store::{now_ms, ClusterStore, DeploymentStore, PolicyRecord, PolicyStore, Store, StoreError};
use app::error::{AppError, ErrorCode};
use app::models::deployment::DeploySpec;
use app::models::policy::{
    default_set, DrillDeployment, DrillStatus, FailoverPolicy, PlacementPlan, PlacementStrategy, Policies, PolicyKind,
    PolicyView, ResourceProfile, SyncStatus,
};
use app::models::user::SessionUser;
use app::models::validate::shown;
use app::services::PoliciesService;
use async_trait::async_trait;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// How long a request that changed a policy waits for the pass that applies it.
const ANSWER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What a drill remembers while a cluster is down.
#[derive(Clone)]
struct Drill {
    since: i64,
    affected: Vec<String>,
    recovered: BTreeMap<String, i64>,
}

#[derive(Clone)]
pub struct PoliciesServiceImpl {
    store: Store,
    hub: KubeClient,
    members: Members,
    pass: PolicyPass,
    drills: Arc<Mutex<BTreeMap<String, Drill>>>,
    /// Only the leader writes policies to the hub; another replica wakes it.
    leadership: Leadership,
    wake: Wake,
}

impl PoliciesServiceImpl {
    pub fn new(
        store: Store,
        hub: KubeClient,
        members: Members,
        pass: PolicyPass,
        leadership: Leadership,
        wake: Wake,
    ) -> Self {
        Self { store, hub, members, pass, drills: Default::default(), leadership, wake }
    }

    /// Wakes the policy pass (here or on the replica that leads); when this replica leads, the
    /// answer waits for a pass that read the change. Failures are in the sync status, not the
    /// answer.
    async fn after_change(&self) {
        let ticket = self.pass.ticket();
        self.wake.changed(&self.store, crate::changes::POLICIES).await;
        if self.leadership.is_leader() {
            self.pass.wait(ticket, ANSWER_WAIT).await;
        }
    }

    async fn save(
        &self,
        actor: &SessionUser,
        kind: PolicyKind,
        name: &str,
        policy: &(impl serde::Serialize + Sync),
        create: bool,
    ) -> Result<(), AppError> {
        let spec = serde_json::to_string(policy).map_err(|e| AppError::internal(e.to_string()))?;
        let now = now_ms();
        if create {
            self.store
                .insert_policy(&PolicyRecord {
                    kind,
                    name: name.to_string(),
                    spec,
                    sync: SyncStatus::default(),
                    created_by: actor.username.clone(),
                    created_at: now,
                    updated_at: now,
                })
                .await
                .map_err(|e| match e {
                    StoreError::Conflict(m) => AppError { code: ErrorCode::Conflict, ..AppError::field("name", m) },
                    e => e.into(),
                })?;
        } else {
            self.store.update_policy(kind, name, &spec, now).await.map_err(|e| match e {
                StoreError::NotFound => AppError::not_found(format!("no {} named {}", kind.label(), shown(name))),
                e => e.into(),
            })?;
        }
        tracing::info!(by = %actor.username, kind = kind.as_str(), policy = name, created = create, "policy saved");
        Ok(())
    }

    /// The drill's view of a member on the simulated hub: its name there and whether it is down.
    async fn sim_member(&self, cluster: &str) -> Result<Option<(String, bool)>, AppError> {
        let Some(record) = self.store.cluster_by_name(cluster).await? else {
            return Err(AppError::not_found(format!("no cluster named {}", shown(cluster))));
        };
        let req =
            http::Request::get("/sim/v1/clusters").body(Vec::new()).map_err(|e| AppError::internal(e.to_string()))?;
        let Some(list) = self.hub.raw(req).await? else { return Ok(None) };
        let endpoint = record.api_endpoint.trim_end_matches('/');
        Ok(list["clusters"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["server"].as_str().map(|s| s.trim_end_matches('/')) == Some(endpoint))
            .map(|c| (c["name"].as_str().unwrap_or_default().to_string(), c["down"].as_bool().unwrap_or(false))))
    }

    async fn drill_view(&self, cluster: &str, available: bool, down: bool) -> Result<DrillStatus, AppError> {
        let rows = self.store.list_deployments().await?;
        let book = Book::load(&self.store, None).await?;
        let stuck = if down { hub_policies::failover_problem(&self.hub, false).await.unwrap_or(None) } else { None };
        let now = now_ms();
        let mut drills = self.drills.lock().unwrap_or_else(|e| e.into_inner());
        let drill = drills.get_mut(cluster);
        let mut affected = Vec::new();
        let names: Vec<String> = match &drill {
            Some(d) => d.affected.clone(),
            None => rows
                .iter()
                .filter(|r| r.observed.placements.iter().any(|p| p.cluster == cluster && p.desired > 0))
                .map(|r| r.name.clone())
                .collect(),
        };
        let mut recovered = drill.as_ref().map(|d| d.recovered.clone()).unwrap_or_default();
        for name in names {
            let Some(r) = rows.iter().find(|r| r.name == name) else { continue };
            let elsewhere: i64 = r.observed.placements.iter().filter(|p| p.cluster != cluster).map(|p| p.ready).sum();
            if drill.is_some() && down && !recovered.contains_key(&name) && elsewhere >= r.spec.replicas.max(1) as i64 {
                recovered.insert(name.clone(), now);
            }
            affected.push(DrillDeployment {
                name: name.clone(),
                replicas: r.spec.replicas,
                failover: book.failover(&r.spec.failover).cloned(),
                placements: r.observed.placements.iter().map(|p| (p.cluster.clone(), p.desired, p.ready)).collect(),
                recovered_at: recovered.get(&name).copied(),
            });
        }
        let since = drill.as_ref().map(|d| d.since);
        if let Some(d) = drill {
            d.recovered = recovered;
        }
        Ok(DrillStatus { cluster: cluster.to_string(), available, down, since, now, affected, stuck })
    }
}

#[async_trait]
impl PoliciesService for PoliciesServiceImpl {
    async fn list(&self) -> Result<Policies, AppError> {
        let live = read_live(&self.hub, None).await;
        let book = Book::load(&self.store, live.as_ref()).await?;
        let rows = self.store.list_deployments().await?;
        let view = |kind: PolicyKind, name: &str| {
            let r = book.records.iter().find(|r| r.kind == kind && r.name == name).expect("loaded together");
            (r.sync.clone(), book.used_by(kind, name, &rows), r.created_at, r.updated_at)
        };
        macro_rules! views {
            ($list:expr, $kind:expr) => {
                $list
                    .iter()
                    .map(|p| {
                        let (sync, used_by, created_at, updated_at) = view($kind, &p.name);
                        PolicyView { policy: p.clone(), sync, used_by, created_at, updated_at }
                    })
                    .collect()
            };
        }
        Ok(Policies {
            strategies: views!(book.strategies, PolicyKind::Strategy),
            profiles: views!(book.profiles, PolicyKind::Profile),
            failovers: views!(book.failovers, PolicyKind::Failover),
            clusters: book.clusters.clone(),
        })
    }

    async fn save_strategy(&self, actor: &SessionUser, p: PlacementStrategy, create: bool) -> Result<(), AppError> {
        p.validate()?;
        let book = Book::load(&self.store, None).await?;
        if !p.default_profile.is_empty() && book.profile(&p.default_profile).is_none() {
            return Err(AppError::field("default_profile", format!("no resource profile named {}", p.default_profile)));
        }
        for c in p.clusters.iter().chain(p.rules.iter().flat_map(|r| r.clusters.iter())) {
            if !book.clusters.iter().any(|k| &k.name == c) {
                let field = if p.clusters.contains(c) { "clusters" } else { "rules" };
                return Err(AppError::field(field, format!("no registered cluster named {c}")));
            }
        }
        self.save(actor, PolicyKind::Strategy, &p.name, &p, create).await?;
        if p.is_default {
            // One default: the others step down.
            for other in book.strategies.iter().filter(|s| s.is_default && s.name != p.name) {
                let mut o = other.clone();
                o.is_default = false;
                let spec = serde_json::to_string(&o).map_err(|e| AppError::internal(e.to_string()))?;
                self.store.update_policy(PolicyKind::Strategy, &o.name, &spec, now_ms()).await?;
            }
        }
        self.after_change().await;
        Ok(())
    }

    async fn save_profile(&self, actor: &SessionUser, p: ResourceProfile, create: bool) -> Result<(), AppError> {
        p.validate()?;
        self.save(actor, PolicyKind::Profile, &p.name, &p, create).await?;
        self.after_change().await;
        Ok(())
    }

    async fn save_failover(&self, actor: &SessionUser, p: FailoverPolicy, create: bool) -> Result<(), AppError> {
        p.validate()?;
        self.save(actor, PolicyKind::Failover, &p.name, &p, create).await?;
        self.after_change().await;
        Ok(())
    }

    async fn delete(&self, actor: &SessionUser, kind: PolicyKind, name: &str) -> Result<(), AppError> {
        let book = Book::load(&self.store, None).await?;
        let rows = self.store.list_deployments().await?;
        if !book.records.iter().any(|r| r.kind == kind && r.name == name) {
            return Err(AppError::not_found(format!("no {} named {}", kind.label(), shown(name))));
        }
        let users = book.used_by(kind, name, &rows);
        if !users.is_empty() {
            return Err(AppError::conflict(format!("{name} is in use by {}; change them first", users.join(", "))));
        }
        self.store.delete_policy(kind, name).await?;
        tracing::info!(by = %actor.username, kind = kind.as_str(), policy = name, "policy deleted");
        self.after_change().await;
        Ok(())
    }

    async fn create_defaults(&self, actor: &SessionUser) -> Result<Vec<String>, AppError> {
        let book = Book::load(&self.store, None).await?;
        let (strategies, profiles, failovers) = default_set();
        let has_default = book.default_strategy().is_some();
        let mut created = Vec::new();
        // Profiles first: strategies name them.
        for p in profiles.into_iter().filter(|p| book.profile(&p.name).is_none()) {
            self.save(actor, PolicyKind::Profile, &p.name, &p, true).await?;
            created.push(format!("profile {}", p.name));
        }
        for mut s in strategies.into_iter().filter(|s| book.strategy(&s.name).is_none()) {
            s.is_default &= !has_default;
            self.save(actor, PolicyKind::Strategy, &s.name, &s, true).await?;
            created.push(format!("strategy {}", s.name));
        }
        for f in failovers.into_iter().filter(|f| book.failover(&f.name).is_none()) {
            self.save(actor, PolicyKind::Failover, &f.name, &f, true).await?;
            created.push(format!("failover {}", f.name));
        }
        self.after_change().await;
        Ok(created)
    }

    async fn preview(&self, mut spec: DeploySpec) -> Result<PlacementPlan, AppError> {
        let live = read_live(&self.hub, Some(&self.members)).await;
        let book = Book::load(&self.store, live.as_ref()).await?;
        if spec.strategy.is_empty() && spec.clusters.is_empty() {
            spec.strategy = book.default_strategy().map(|s| s.name.clone()).unwrap_or_default();
        }
        // What create would refuse, the preview refuses the same way: no plan for a spec that
        // cannot be deployed. (A plan where no cluster qualifies is still a plan: it says why.)
        spec.validate()?;
        check_clusters(&self.store, &spec).await?;
        Ok(book.resolve(&spec)?.plan)
    }

    async fn drill(&self, actor: &SessionUser, cluster: &str, down: bool) -> Result<DrillStatus, AppError> {
        let Some((sim_name, _)) = self.sim_member(cluster).await? else {
            return Err(AppError::conflict(
                "failover drills switch members of the simulated hub; on a real hub, stop the member's API server or cordon it",
            ));
        };
        let req = http::Request::post(format!("/sim/v1/clusters/{sim_name}"))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&json!({"down": down})).unwrap_or_default())
            .map_err(|e| AppError::internal(e.to_string()))?;
        self.hub.raw(req).await?;
        if down {
            // What the hub has scheduled there now (the observer's copy may be seconds old).
            let affected = crate::hub::deploy::schedules(&self.hub)
                .await?
                .into_iter()
                .filter(|(_, placed)| placed.on(cluster))
                .map(|(name, _)| name)
                .collect();
            self.drills.lock().unwrap_or_else(|e| e.into_inner()).entry(cluster.to_string()).or_insert(Drill {
                since: now_ms(),
                affected,
                recovered: BTreeMap::new(),
            });
        } else {
            self.drills.lock().unwrap_or_else(|e| e.into_inner()).remove(cluster);
        }
        tracing::info!(by = %actor.username, cluster, down, "failover drill");
        self.drill_view(cluster, true, down).await
    }

    async fn drill_status(&self, cluster: &str) -> Result<DrillStatus, AppError> {
        let member = self.sim_member(cluster).await.unwrap_or(None);
        let (available, down) = match &member {
            Some((_, down)) => (true, *down),
            None => (false, false),
        };
        self.drill_view(cluster, available, down).await
    }
}
