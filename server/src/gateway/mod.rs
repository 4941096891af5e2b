//! The inference gateway: one authenticated, OpenAI-compatible endpoint in front of every
//! deployed model. On the request path it reads only memory — the routing table the deployment
//! observer publishes and the key table the key service reloads — and hands usage to a queue.
pub mod errors;
pub mod keys;
mod limit;
mod metrics;
mod proxy;
mod record;
mod table;
pub mod tap;

pub use record::RecorderTask;
pub use table::RouteSpec;

use crate::auth::AuthServiceImpl;
use crate::store::{ApiKeyRecord, KeyStore, Store};
use axum::routing::{any, get, post};
use axum::Router;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use keys::{KeyEntry, KeyTable};
use limit::Limiter;
use metrics::GatewayMetrics;
use record::Recorder;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use table::{Registry, RouteTable};

#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Longest wait for an upstream's response headers (a non-streamed answer comes whole).
    pub timeout: Duration,
    /// Models served outside H-MAS's clusters: (name, base URL).
    pub upstreams: Vec<(String, String)>,
    /// Which site the playground's calls (by session cookie) must come from.
    pub origin: crate::http::origin::OriginPolicy,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(600), upstreams: Vec::new(), origin: Default::default() }
    }
}

#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: GatewayConfig,
    routes: RwLock<Arc<RouteTable>>,
    registry: Registry,
    keys: RwLock<Arc<KeyTable>>,
    limiter: Limiter,
    metrics: GatewayMetrics,
    recorder: Recorder,
    client: Client<HttpConnector, Full<Bytes>>,
    auth: AuthServiceImpl,
    store: Store,
    rotate: AtomicUsize,
}

impl Gateway {
    pub fn start(store: Store, auth: AuthServiceImpl, cfg: GatewayConfig) -> (Gateway, RecorderTask) {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        conn.set_connect_timeout(Some(Duration::from_secs(3)));
        conn.set_keepalive(Some(Duration::from_secs(60)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(1024)
            .build(conn);
        let (recorder, task) = Recorder::start(store.clone());
        let gw = Gateway {
            inner: Arc::new(Inner {
                cfg,
                routes: RwLock::default(),
                registry: Registry::default(),
                keys: RwLock::default(),
                limiter: Limiter::for_store(&store),
                metrics: GatewayMetrics::default(),
                recorder,
                client,
                auth,
                store,
                rotate: AtomicUsize::new(0),
            }),
        };
        gw.set_routes(Vec::new());
        (gw, task)
    }

    /// Replaces the routing table (deployments as last observed, plus configured upstreams).
    pub fn set_routes(&self, mut specs: Vec<RouteSpec>) {
        for (name, url) in &self.inner.cfg.upstreams {
            specs.push(RouteSpec {
                deployment: name.clone(),
                model: name.clone(),
                runtime: "external".into(),
                endpoints: vec![url.clone()],
                created: 0,
            });
        }
        let table = Arc::new(self.inner.registry.build(&specs));
        *self.inner.routes.write().unwrap_or_else(|e| e.into_inner()) = table;
    }

    fn routes(&self) -> Arc<RouteTable> {
        self.inner.routes.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn keys(&self) -> Arc<KeyTable> {
        self.inner.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Re-reads every key from the database; called at start and after any key changes.
    pub async fn reload_keys(&self) -> Result<(), crate::store::StoreError> {
        let records = self.inner.store.list_keys(None).await?;
        let table = KeyTable::new(records.into_iter().filter_map(entry));
        *self.inner.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
        Ok(())
    }

    /// The key table changed here: reload it, and have every other replica reload theirs.
    pub async fn keys_changed(&self) -> Result<(), crate::store::StoreError> {
        self.reload_keys().await?;
        crate::changes::announce(&self.inner.store, crate::changes::KEYS).await;
        Ok(())
    }

    pub fn key_name(&self, id: &str) -> Option<String> {
        self.keys().name_of(id)
    }

    /// `/v1/...` and `/api/inference/{deployment}/...`, with no layer of the dashboard's in front.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/models", get(proxy::list_models))
            .route("/v1/models/{*model}", get(proxy::get_model))
            .route("/v1/chat/completions", post(proxy::by_model))
            .route("/v1/completions", post(proxy::by_model))
            .route("/v1/embeddings", post(proxy::by_model))
            .route("/v1/{*rest}", any(proxy::no_such_route))
            .route("/api/inference/{deployment}/{*rest}", any(proxy::by_deployment))
            .with_state(self.clone())
    }

    /// Every route, for the playground's model picker.
    pub fn models(&self) -> Vec<app::models::apikey::ChatModel> {
        let mut v: Vec<_> = self
            .routes()
            .routes()
            .map(|r| app::models::apikey::ChatModel {
                deployment: r.deployment.clone(),
                model: r.model.clone(),
                runtime: r.runtime.clone(),
                ready: !r.endpoints.is_empty(),
            })
            .collect();
        v.sort_by(|a, b| a.deployment.cmp(&b.deployment));
        v
    }

    pub fn render_metrics(&self, out: &mut String) {
        self.inner.metrics.render(out);
    }
}

fn entry(r: ApiKeyRecord) -> Option<([u8; 32], KeyEntry)> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(&r.key_hash, &mut hash).ok()?;
    Some((
        hash,
        KeyEntry {
            id: r.id,
            name: r.name,
            owner_id: r.owner_id,
            scope: r.scope.map(|s| s.into_iter().collect()),
            rpm: r.rpm,
            tpm: r.tpm,
            expires_at: r.expires_at,
            revoked: r.revoked_at.is_some(),
            owner_disabled: r.owner_disabled,
        },
    ))
}
