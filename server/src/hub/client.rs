use super::error::HubError;
use super::FIELD_MANAGER;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::time::Duration;

/// A client for one cluster (the hub or a member), built from a kubeconfig.
#[derive(Clone)]
pub struct KubeClient {
    client: Client,
    /// The context's default namespace.
    pub namespace: String,
    pub server: String,
}

/// Any object H-MAS reads or writes, namespaced or cluster-scoped.
pub trait Object:
    Resource<DynamicType = (), Scope: ApiScope> + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
}
impl<K> Object for K where
    K: Resource<DynamicType = (), Scope: ApiScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// Builds the right `Api` for a kind's scope: namespaced kinds in one namespace (or all),
/// cluster-scoped kinds ignore the namespace.
pub trait ApiScope {
    fn api<K: Resource<Scope = Self, DynamicType = ()>>(client: Client, ns: Option<&str>) -> Api<K>
    where
        Self: Sized;
}

impl ApiScope for k8s_openapi::NamespaceResourceScope {
    fn api<K: Resource<Scope = Self, DynamicType = ()>>(client: Client, ns: Option<&str>) -> Api<K> {
        match ns {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        }
    }
}

impl ApiScope for k8s_openapi::ClusterResourceScope {
    fn api<K: Resource<Scope = Self, DynamicType = ()>>(client: Client, _ns: Option<&str>) -> Api<K> {
        Api::all(client)
    }
}

impl KubeClient {
    /// From kubeconfig YAML; `context` picks one of several (default: the current context).
    pub async fn from_kubeconfig(yaml: &str, context: Option<&str>) -> Result<KubeClient, HubError> {
        let kc = Kubeconfig::from_yaml(yaml).map_err(|e| HubError::Config(e.to_string()))?;
        let opts = KubeConfigOptions { context: context.map(String::from), ..Default::default() };
        let mut config =
            Config::from_custom_kubeconfig(kc, &opts).await.map_err(|e| HubError::Config(e.to_string()))?;
        // A cluster that does not answer is reported, not waited on.
        config.connect_timeout = Some(Duration::from_secs(5));
        config.read_timeout = Some(Duration::from_secs(30));
        // kube's default retries 503/429/504 for up to 15 attempts with backoff reaching minutes:
        // a dashboard request would hang. H-MAS reports the failure; its reconcilers try again.
        config.default_retry = false;
        let namespace = config.default_namespace.clone();
        let server = config.cluster_url.to_string();
        let client = Client::try_from(config).map_err(|e| HubError::Config(e.to_string()))?;
        Ok(KubeClient { client, namespace, server })
    }

    pub async fn from_kubeconfig_file(path: &std::path::Path, context: Option<&str>) -> Result<KubeClient, HubError> {
        let text = std::fs::read_to_string(path).map_err(|e| HubError::Config(format!("{}: {e}", path.display())))?;
        Self::from_kubeconfig(&text, context).await
    }

    /// The underlying kube client, for watches and what the helpers here do not cover.
    pub fn kube(&self) -> &Client {
        &self.client
    }

    fn api<K: Object>(&self, ns: Option<&str>) -> Api<K> {
        <K::Scope as ApiScope>::api(self.client.clone(), ns)
    }

    /// Server-side apply as `hmas`, taking ownership of the fields it sets.
    pub async fn apply<K: Object>(&self, obj: &K) -> Result<K, HubError> {
        let name = obj.meta().name.clone().ok_or_else(|| HubError::Invalid {
            message: "metadata.name is required".into(),
            field: Some("metadata.name".into()),
        })?;
        let api: Api<K> = self.api(obj.meta().namespace.as_deref());
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        Ok(api.patch(&name, &pp, &Patch::Apply(obj)).await?)
    }

    pub async fn create<K: Object>(&self, obj: &K) -> Result<K, HubError> {
        let api: Api<K> = self.api(obj.meta().namespace.as_deref());
        Ok(api.create(&PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() }, obj).await?)
    }

    /// Replaces an object; its resourceVersion must be current.
    pub async fn replace<K: Object>(&self, obj: &K) -> Result<K, HubError> {
        let api: Api<K> = self.api(obj.meta().namespace.as_deref());
        Ok(api
            .replace(
                &obj.name_any(),
                &PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() },
                obj,
            )
            .await?)
    }

    pub async fn get<K: Object>(&self, ns: Option<&str>, name: &str) -> Result<Option<K>, HubError> {
        Ok(self.api::<K>(ns).get_opt(name).await?)
    }

    /// All objects of a kind, in one namespace or all, optionally by label selector.
    pub async fn list<K: Object>(&self, ns: Option<&str>, labels: Option<&str>) -> Result<Vec<K>, HubError> {
        let mut lp = ListParams::default();
        if let Some(l) = labels {
            lp = lp.labels(l);
        }
        Ok(self.api::<K>(ns).list(&lp).await?.items)
    }

    /// Deletes; returns whether there was anything to delete.
    pub async fn delete<K: Object>(&self, ns: Option<&str>, name: &str) -> Result<bool, HubError> {
        match self.api::<K>(ns).delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(true),
            Err(e) => match HubError::from(e) {
                HubError::NotFound(_) => Ok(false),
                other => Err(other),
            },
        }
    }

    /// Lists nodes: proves the credentials and that RBAC lets H-MAS see the cluster.
    pub async fn nodes(&self) -> Result<Vec<k8s_openapi::api::core::v1::Node>, HubError> {
        self.list(None, None).await
    }

    /// A JSON request outside the typed API (the simulated hub's fault controls); `None`: 404.
    pub async fn raw(&self, req: http::Request<Vec<u8>>) -> Result<Option<serde_json::Value>, HubError> {
        match self.client.request::<serde_json::Value>(req).await {
            Ok(v) => Ok(Some(v)),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn version(&self) -> Result<String, HubError> {
        Ok(self.client.apiserver_version().await?.git_version)
    }
}
