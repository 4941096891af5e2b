//! What the hub holds of H-MAS's deployments, read once for a pass, and whether it says what the
//! database implies. The reconcilers ask these questions in H-MAS's terms; the Kubernetes objects
//! stay here.
use super::client::KubeClient;
use super::error::HubError;
use super::karmada::{PropagationPolicy, ResourceBinding, WorkloadRebalancer};
use super::names::{MANAGED_BY_LABEL, SERVING_NS};
use super::policy::{self, holds};
use super::render::{self, HubObjects, RenderInput};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
use kube::ResourceExt;
use std::collections::{BTreeMap, BTreeSet};

/// The hub's copies of H-MAS's deployment objects, by name.
#[derive(Default)]
pub struct Held {
    policies: BTreeMap<String, PropagationPolicy>,
    deployments: BTreeMap<String, Deployment>,
    services: BTreeMap<String, Service>,
    volumes: BTreeSet<String>,
    bindings: BTreeMap<String, ResourceBinding>,
    /// The clusters the hub reports ready, when known.
    ready: Option<BTreeSet<String>>,
}

fn by_name<K: ResourceExt>(v: Vec<K>) -> BTreeMap<String, K> {
    v.into_iter().map(|o| (o.name_any(), o)).collect()
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

impl Held {
    /// Everything H-MAS made in the serving namespace: one list per kind for the whole pass.
    pub async fn list(hub: &KubeClient) -> Result<Held, HubError> {
        let selector = format!("{MANAGED_BY_LABEL}=hmas");
        let ns = Some(SERVING_NS);
        let (pps, deps, svcs, pvcs, rbs) = tokio::try_join!(
            hub.list::<PropagationPolicy>(ns, Some(&selector)),
            hub.list::<Deployment>(ns, Some(&selector)),
            hub.list::<Service>(ns, Some(&selector)),
            hub.list::<PersistentVolumeClaim>(ns, Some(&selector)),
            hub.list::<ResourceBinding>(ns, None),
        )?;
        Ok(Held {
            policies: by_name(pps),
            deployments: by_name(deps),
            services: by_name(svcs),
            volumes: pvcs.into_iter().map(|p| p.name_any()).collect(),
            bindings: by_name(rbs),
            ready: None,
        })
    }

    /// One deployment's objects (and its cache volume's, when it has one), read by name.
    pub async fn of(hub: &KubeClient, name: &str, cache: Option<&str>) -> Result<Held, HubError> {
        let ns = Some(SERVING_NS);
        let (pp, d, svc) = tokio::try_join!(
            hub.get::<PropagationPolicy>(ns, name),
            hub.get::<Deployment>(ns, name),
            hub.get::<Service>(ns, name),
        )?;
        let mut held = Held::default();
        if let Some(c) = cache {
            let (pvc, cpp) =
                tokio::try_join!(hub.get::<PersistentVolumeClaim>(ns, c), hub.get::<PropagationPolicy>(ns, c))?;
            if pvc.is_some() {
                held.volumes.insert(c.to_string());
            }
            held.policies.extend(cpp.map(|p| (c.to_string(), p)));
        }
        held.policies.extend(pp.map(|p| (name.to_string(), p)));
        held.deployments.extend(d.map(|d| (name.to_string(), d)));
        held.services.extend(svc.map(|s| (name.to_string(), s)));
        Ok(held)
    }

    /// The clusters the hub reports ready, for deciding whether a split strayed.
    pub fn with_ready(mut self, ready: Option<BTreeSet<String>>) -> Held {
        self.ready = ready;
        self
    }

    /// Renders a deployment's objects, keeping the division of the policy the hub holds while
    /// it still fits the plan: free GPUs moving (this deployment's own, for one) or a cluster
    /// failing never re-divide a running deployment behind the hub's back.
    pub fn render(&self, input: &RenderInput<'_>, replicas: i64) -> HubObjects {
        match self.policies.get(input.name) {
            Some(pp) => {
                let mut plan = input.plan.clone();
                policy::keep_division(&mut plan, &pp.spec.placement, replicas);
                render::render(&RenderInput { plan: &plan, ..*input })
            }
            None => render::render(input),
        }
    }

    /// Whether the hub holds what `objs` says: everything H-MAS sets must be there (defaults the
    /// hub adds are fine), the cache volume and its policy too when the deployment has one.
    pub fn holds(&self, objs: &HubObjects) -> bool {
        let name = objs.deployment.name_any();
        let cache = objs.cache.as_ref().is_none_or(|(pvc, _)| {
            let c = pvc.name_any();
            self.volumes.contains(&c) && self.policies.contains_key(&c)
        });
        match (self.policies.get(&name), self.deployments.get(&name), self.services.get(&name)) {
            (Some(pp), Some(d), Some(svc)) => {
                holds(&json(&pp.spec), &json(&objs.policy.spec))
                    && holds(&json(&d.spec), &json(&objs.deployment.spec))
                    && holds(&json(&d.metadata.labels), &json(&objs.deployment.metadata.labels))
                    && holds(&json(&svc.spec), &json(&objs.service.spec))
                    && cache
            }
            _ => false,
        }
    }

    /// Whether the hub's schedule of a deployment has left the division its policy gives while
    /// every weighted cluster is ready (a cluster came back and Karmada does not move replicas
    /// back by itself).
    pub fn strayed(&self, name: &str) -> bool {
        match (self.policies.get(name), self.bindings.get(&format!("{name}-deployment")), self.ready.as_ref()) {
            (Some(pp), Some(rb), Some(ready)) => policy::strayed_from_division(&pp.spec.placement, rb, ready),
            _ => false,
        }
    }
}

/// Asks the hub for a fresh scheduling round of a deployment, once at a time: a finished request
/// still there is cleared first, the next pass asks again if still needed.
pub async fn rebalance(hub: &KubeClient, name: &str) -> Result<(), HubError> {
    let wr = policy::rebalancer(name);
    let wr_name = wr.metadata.name.clone().unwrap_or_default();
    match hub.get::<WorkloadRebalancer>(None, &wr_name).await? {
        Some(old) if old.status.as_ref().is_some_and(|s| s.finish_time.is_some()) => {
            hub.delete::<WorkloadRebalancer>(None, &wr_name).await?;
        }
        Some(_) => {}
        None => {
            tracing::info!(deployment = %name, "the hub's schedule left the division; asking it to reschedule");
            hub.create(&wr).await?;
        }
    }
    Ok(())
}
