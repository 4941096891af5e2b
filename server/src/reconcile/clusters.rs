//! Registered clusters follow the database: a registration the previous leader did not live to
//! finish is marked failed, and a registered cluster missing from the hub (a hub that lost its
//! state, a Cluster deleted by hand) is joined again with the stored credentials.
use super::requeue::Requeue;
use crate::hub::join::{self, HubRegistration};
use crate::hub::status;
use crate::hub::KubeClient;
use crate::members::Members;
use crate::store::{now_ms, ClusterRecord, ClusterState, ClusterStore, Store};
use app::error::AppError;

#[derive(Clone)]
pub struct ClusterPass {
    store: Store,
    hub: KubeClient,
    members: Members,
    requeue: Requeue,
}

impl ClusterPass {
    pub fn new(store: Store, hub: KubeClient, members: Members, requeue: Requeue) -> Self {
        Self { store, hub, members, requeue }
    }

    /// On taking the lead: registrations left halfway are marked failed (what they made is undone
    /// on the next registration or release), so they never show as healthy.
    pub async fn recover(&self) -> Result<(), AppError> {
        for r in self.store.list_clusters().await?.into_iter().filter(|r| r.state == ClusterState::Registering) {
            self.store
                .set_cluster_state(
                    &r.name,
                    ClusterState::Failed,
                    "interrupted by a restart of H-MAS; register again",
                    now_ms(),
                )
                .await?;
            tracing::warn!(cluster = %r.name, "registration was interrupted; marked failed");
        }
        Ok(())
    }

    /// Joins again every registered cluster the hub does not have.
    pub async fn reconcile(&self) -> Result<(), AppError> {
        let on_hub = status::clusters(&self.hub).await.map_err(AppError::from)?;
        for r in self.store.list_clusters().await?.into_iter().filter(|r| r.state == ClusterState::Registered) {
            if on_hub.contains_key(&r.name) {
                self.requeue.forget(&r.name);
                continue;
            }
            // Clusters have no generation: the stored update time stands for one.
            if !self.requeue.due(&r.name, r.updated_at) {
                continue;
            }
            let result = self.join(&r).await;
            if result.is_ok() {
                tracing::info!(cluster = %r.name, "cluster was missing from the hub; joined again");
            }
            self.requeue.record(&r.name, r.updated_at, &result);
        }
        Ok(())
    }

    async fn join(&self, r: &ClusterRecord) -> Result<(), AppError> {
        let access = self.members.access_of(r)?;
        let member = join::member_client(&r.name, &access).await?;
        let token = join::provision_member(&member, &r.name).await?;
        let reg = HubRegistration {
            name: &r.name,
            server: &access.server,
            ca_pem: &access.ca_pem,
            token: &token,
            zone_class: r.zone_class,
            region: &r.region,
            zone: &r.zone,
        };
        join::register_in_hub(&self.hub, &reg).await?;
        Ok(())
    }
}
