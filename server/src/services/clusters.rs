use crate::auth::token::new_id;
use crate::hub::join::{self, HubRegistration};
use crate::hub::kubeconfig::{self, MemberAccess};
use crate::hub::status::{self, HubCluster};
use crate::hub::{HubError, KubeClient};
use crate::members::{Members, LIVE_READ};
use crate::secrets::Sealer;
use crate::services::deployments::DeploymentsServiceImpl;
use crate::store::{now_ms, ClusterRecord, ClusterState, ClusterStore, Store};
use app::error::{AppError, ErrorCode};
use app::models::cluster::{
    ClusterAccess, ClusterDetail, ClusterHealth, ClusterPhase, ClusterView, GpuGroup, KubeconfigContext, NodeInfo,
    RegisterCluster, ReleaseReport,
};
use app::models::user::SessionUser;
use app::models::validate::shown;
use app::services::ClustersService;
use async_trait::async_trait;
use std::collections::BTreeMap;

#[derive(Clone)]
pub struct ClustersServiceImpl {
    store: Store,
    hub: KubeClient,
    sealer: Sealer,
    members: Members,
}

/// An error about the access the operator gave, shown next to the field they gave it in.
/// How long a release waits for the hub to take a cluster's workloads off it.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

fn access_error(field: &str, code: ErrorCode, message: String) -> AppError {
    let mut e = AppError::new(code, message.clone());
    e.fields.insert(field.into(), message);
    e
}

fn gpu_groups(nodes: &[NodeInfo]) -> Vec<GpuGroup> {
    let mut groups: BTreeMap<String, GpuGroup> = BTreeMap::new();
    for n in nodes.iter().filter(|n| n.gpus > 0) {
        let g = groups.entry(n.gpu_product.clone()).or_insert_with(|| GpuGroup {
            product: n.gpu_product.clone(),
            count: 0,
            memory_mib: n.gpu_memory_mib,
            nvlink: false,
            mig_capable: false,
        });
        g.count += n.gpus;
        g.nvlink |= n.nvlink;
        g.mig_capable |= n.mig_capable;
    }
    groups.into_values().collect()
}

impl ClustersServiceImpl {
    pub fn new(store: Store, hub: KubeClient, sealer: Sealer, members: Members) -> Self {
        Self { store, hub, sealer, members }
    }

    fn view(
        &self,
        r: &ClusterRecord,
        health: Option<&ClusterHealth>,
        hub_error: Option<&str>,
        instances: i64,
    ) -> ClusterView {
        let (phase, message) = match (r.state, health) {
            (ClusterState::Registering, _) => (ClusterPhase::Registering, "registration in progress".to_string()),
            (ClusterState::Failed, _) => (ClusterPhase::Failed, r.state_message.clone()),
            (ClusterState::Registered, Some(h)) if !h.reported => {
                (ClusterPhase::Registering, "waiting for the hub's first status report".to_string())
            }
            (ClusterState::Registered, Some(h)) if h.ready => (ClusterPhase::Ready, h.message.clone()),
            (ClusterState::Registered, Some(h)) => (ClusterPhase::NotReady, h.message.clone()),
            (ClusterState::Registered, None) => (
                ClusterPhase::NotReady,
                hub_error.map(|e| format!("hub unreachable: {e}")).unwrap_or_else(|| "not found in the hub".into()),
            ),
        };
        let stored_gpus: i64 = r.nodes.iter().map(|n| n.gpus).sum();
        ClusterView {
            id: r.id.clone(),
            name: r.name.clone(),
            display_name: if r.display_name.is_empty() { r.name.clone() } else { r.display_name.clone() },
            api_endpoint: r.api_endpoint.clone(),
            zone_class: r.zone_class,
            region: r.region.clone(),
            zone: r.zone.clone(),
            phase,
            message,
            kubernetes_version: health
                .map(|h| h.kubernetes_version.clone())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| r.kubernetes_version.clone()),
            nodes_total: health.map(|h| h.nodes_total).filter(|n| *n > 0).unwrap_or(r.nodes.len() as i64),
            nodes_ready: health.map(|h| h.nodes_ready).unwrap_or(0),
            gpus: gpu_groups(&r.nodes),
            gpus_allocatable: health.map(|h| h.gpus_allocatable).filter(|g| *g > 0).unwrap_or(stored_gpus),
            gpus_allocated: health.map(|h| h.gpus_allocated).unwrap_or(0),
            instances,
            registered_at: r.created_at,
        }
    }

    /// Hub state for every cluster, or why it could not be read.
    async fn hub_state(&self) -> (BTreeMap<String, HubCluster>, BTreeMap<String, Vec<String>>, Option<String>) {
        let (clusters, workloads) = tokio::join!(status::clusters(&self.hub), join::workloads_by_cluster(&self.hub));
        match (clusters, workloads) {
            (Ok(cs), Ok(ws)) => (cs, ws, None),
            (Err(e), _) | (_, Err(e)) => (BTreeMap::new(), BTreeMap::new(), Some(e.to_string())),
        }
    }

    async fn fail(&self, name: &str, member: &KubeClient, err: AppError) -> AppError {
        // Undo on the member and the hub what may have been made; the row stays, marked failed,
        // so the operator sees what happened and can register again.
        let _ = join::unregister_from_hub(&self.hub, name, RELEASE_WAIT).await;
        let _ = join::clean_member(member, name).await;
        let _ = self.store.set_cluster_state(name, ClusterState::Failed, &err.message, now_ms()).await;
        tracing::warn!(cluster = name, error = %err.message, "registration failed; undone");
        err
    }
}

#[async_trait]
impl ClustersService for ClustersServiceImpl {
    async fn inspect_kubeconfig(&self, kubeconfig: &str) -> Result<Vec<KubeconfigContext>, AppError> {
        if kubeconfig.len() > app::models::cluster::MAX_KUBECONFIG_BYTES {
            return Err(AppError::field("kubeconfig", "is larger than 256 KiB"));
        }
        kubeconfig::contexts(kubeconfig).map_err(|m| AppError::field("kubeconfig", format!("the file {m}")))
    }

    async fn register(&self, actor: &SessionUser, input: RegisterCluster) -> Result<ClusterView, AppError> {
        input.validate()?;
        let (field, access) = match &input.access {
            ClusterAccess::Kubeconfig { kubeconfig, context } => (
                "kubeconfig",
                kubeconfig::access(kubeconfig, context.as_deref())
                    .map_err(|m| AppError::field("kubeconfig", format!("the kubeconfig {m}")))?,
            ),
            ClusterAccess::Endpoint { server, ca_pem, token, client_cert_pem, client_key_pem } => (
                "server",
                MemberAccess {
                    server: server.trim().to_string(),
                    ca_pem: ca_pem.trim().to_string(),
                    token: token.trim().to_string(),
                    client_cert_pem: client_cert_pem.clone(),
                    client_key_pem: client_key_pem.clone(),
                },
            ),
        };
        if let Some(other) = self
            .store
            .list_clusters()
            .await?
            .into_iter()
            .find(|c| c.api_endpoint == access.server && c.name != input.name)
        {
            return Err(AppError {
                code: ErrorCode::Conflict,
                ..AppError::field("name", format!("this API server is already registered as {}", other.name))
            });
        }

        // Prove the credentials and RBAC by listing nodes, not just by reaching the server.
        let member = join::member_client(&input.name, &access)
            .await
            .map_err(|e| AppError::field(field, format!("cannot use these credentials: {e}")))?;
        let nodes = join::nodes(&member).await.map_err(|e| match e {
            HubError::Unavailable(m) | HubError::Other(m) => {
                access_error(field, ErrorCode::Unavailable, format!("cannot reach {}: {m}", access.server))
            }
            HubError::Unauthorized(m) => access_error(
                field,
                ErrorCode::Invalid,
                format!("{} refused the credentials (401 Unauthorized): {m}", access.server),
            ),
            HubError::Forbidden(m) => access_error(
                field,
                ErrorCode::Invalid,
                format!("the credentials are valid but may not list nodes (403 Forbidden): {m}"),
            ),
            other => access_error(field, ErrorCode::Invalid, format!("{} answered: {other}", access.server)),
        })?;
        let version = member.version().await.unwrap_or_default();

        let now = now_ms();
        let sealed = self.sealer.seal(&serde_json::to_string(&access).map_err(|e| AppError::internal(e.to_string()))?);
        let record = ClusterRecord {
            id: new_id(),
            name: input.name.clone(),
            display_name: input.display_name.trim().to_string(),
            api_endpoint: access.server.clone(),
            zone_class: input.zone_class,
            region: input.region.clone(),
            zone: input.zone.clone(),
            credentials: sealed,
            kubernetes_version: version,
            nodes,
            state: ClusterState::Registering,
            state_message: String::new(),
            created_at: now,
            updated_at: now,
        };
        // The row first: whatever happens next, the database knows about this cluster.
        let record = self.store.upsert_cluster(&record).await?;

        let token = match join::provision_member(&member, &input.name).await {
            Ok(t) => t,
            Err(e) => {
                let err = access_error(
                    field,
                    ErrorCode::Invalid,
                    format!("could not set up Karmada's access on the member: {e}"),
                );
                return Err(self.fail(&input.name, &member, err).await);
            }
        };
        let reg = HubRegistration {
            name: &input.name,
            server: &access.server,
            ca_pem: &access.ca_pem,
            token: &token,
            zone_class: input.zone_class,
            region: &input.region,
            zone: &input.zone,
        };
        if let Err(e) = join::register_in_hub(&self.hub, &reg).await {
            let mut err: AppError = e.into();
            err.message = format!("could not register in the hub: {}", err.message);
            return Err(self.fail(&input.name, &member, err).await);
        }
        self.store.set_cluster_state(&input.name, ClusterState::Registered, "", now_ms()).await?;
        tracing::info!(by = %actor.username, cluster = %input.name, server = %access.server, "cluster registered");
        let health = status::clusters(&self.hub).await.ok().and_then(|mut c| c.remove(&input.name)).map(|c| c.health);
        let record = ClusterRecord { state: ClusterState::Registered, ..record };
        Ok(self.view(&record, health.as_ref(), None, 0))
    }

    async fn list(&self) -> Result<Vec<ClusterView>, AppError> {
        let rows = self.store.list_clusters().await?;
        let (clusters, _, hub_error) = self.hub_state().await;
        let deployments = DeploymentsServiceImpl::per_cluster(&self.store).await?;
        Ok(rows
            .iter()
            .map(|r| {
                let health = clusters.get(&r.name).map(|c| &c.health);
                let n = deployments.get(&r.name).map(|w| w.len()).unwrap_or(0) as i64;
                self.view(r, health, hub_error.as_deref(), n)
            })
            .collect())
    }

    async fn detail(&self, name: &str) -> Result<ClusterDetail, AppError> {
        let r = self
            .store
            .cluster_by_name(name)
            .await?
            .ok_or_else(|| AppError::not_found(format!("no cluster named {}", shown(name))))?;
        let (clusters, workloads, hub_error) = self.hub_state().await;
        let hub_cluster = clusters.get(name);
        let list = workloads.get(name).cloned().unwrap_or_default();
        let deployments = DeploymentsServiceImpl::per_cluster(&self.store).await?.remove(name).unwrap_or_default();
        let view = self.view(&r, hub_cluster.map(|c| &c.health), hub_error.as_deref(), deployments.len() as i64);
        // Live from the member when it answers, else what was read at registration. A member
        // known to be down is not asked (the observer tells when it answers again), and a slow
        // one gets a few seconds: the page must not hang on it.
        let down = self.members.unanswered().contains(&r.name);
        let live = async {
            let m = self.members.client(&r).await.ok()?;
            let (nodes, events) = tokio::join!(join::nodes(&m), join::recent_events(&m, 25));
            Some((nodes.ok()?, events.unwrap_or_default()))
        };
        let live = if down { None } else { tokio::time::timeout(LIVE_READ, live).await.ok().flatten() };
        let (nodes, events) = live.unwrap_or_else(|| (r.nodes.clone(), vec![]));
        Ok(ClusterDetail {
            cluster: view,
            nodes,
            conditions: hub_cluster.map(|c| c.conditions.clone()).unwrap_or_default(),
            events,
            workloads: list,
        })
    }

    async fn release(&self, actor: &SessionUser, name: &str, force: bool) -> Result<ReleaseReport, AppError> {
        let r = self
            .store
            .cluster_by_name(name)
            .await?
            .ok_or_else(|| AppError::not_found(format!("no cluster named {}", shown(name))))?;
        let workloads =
            join::workloads_by_cluster(&self.hub).await.map_err(AppError::from)?.remove(name).unwrap_or_default();
        if !workloads.is_empty() && !force {
            return Err(AppError::conflict(format!(
                "{} workload(s) run on {name} ({}); release with force to let their policies move or remove them",
                workloads.len(),
                workloads.join(", ")
            )));
        }
        // Out of the reconciler's hands first, so it does not join the cluster again mid-release.
        self.store.set_cluster_state(name, ClusterState::Failed, "being released", now_ms()).await?;
        // Karmada's order: the Cluster (its copies leave the member through the Secret), then the
        // Secret, then Karmada's identity on the member.
        let withdrawn = join::unregister_from_hub(&self.hub, name, RELEASE_WAIT).await.map_err(AppError::from)?;
        let mut leftovers = Vec::new();
        if !withdrawn {
            leftovers.push(format!(
                "the hub had not withdrawn the workloads within {} s (the member did not answer?)",
                RELEASE_WAIT.as_secs()
            ));
        }
        match self.members.client(&r).await {
            Ok(m) => {
                leftovers.extend(join::member_leftovers(&m).await);
                leftovers.extend(join::clean_member(&m, name).await);
            }
            Err(e) => leftovers.push(format!("member not reachable with the stored credentials: {e}")),
        }
        self.store.delete_cluster(name).await?;
        self.members.forget(name);
        tracing::info!(by = %actor.username, cluster = name, forced = force, leftovers = leftovers.len(), "cluster released");
        Ok(ReleaseReport { name: name.to_string(), leftovers })
    }
}
