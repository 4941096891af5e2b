//! Fault controls on the hub, for failure drills and tests: `/sim/v1/clusters` lists the clusters
//! and their faults; `POST /sim/v1/clusters/{name}` with `{"down": true, "latencyMs": 200,
//! "errorPerMille": 50}` (any subset) changes them. Needs the hub's admin token.
use super::cluster::Cluster;
use super::member::Member;
use super::status::ApiError;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

#[derive(Clone)]
struct Ctl {
    hub: Arc<Cluster>,
    members: Arc<RwLock<Vec<Arc<Member>>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Change {
    down: Option<bool>,
    latency_ms: Option<u64>,
    error_per_mille: Option<u32>,
}

pub fn router(hub: Arc<Cluster>, members: Arc<RwLock<Vec<Arc<Member>>>>) -> Router {
    Router::new()
        .route("/sim/v1/clusters", get(list))
        .route("/sim/v1/clusters/{name}", get(one).post(change))
        .with_state(Ctl { hub, members })
}

impl Ctl {
    fn all(&self) -> Vec<Arc<Cluster>> {
        let mut v = vec![self.hub.clone()];
        v.extend(self.members.read().unwrap_or_else(|e| e.into_inner()).iter().map(|m| m.cluster.clone()));
        v
    }

    fn auth(&self, h: &HeaderMap) -> Result<(), ApiError> {
        let given =
            h.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        if given == Some(self.hub.admin_token.as_str()) {
            Ok(())
        } else {
            Err(ApiError::unauthorized())
        }
    }
}

fn describe(c: &Cluster) -> Value {
    json!({
        "name": c.name, "hub": c.hub, "server": c.url(),
        "down": c.faults.down.load(Ordering::Relaxed),
        "latencyMs": c.faults.latency_ms.load(Ordering::Relaxed),
        "errorPerMille": c.faults.error_per_mille.load(Ordering::Relaxed),
    })
}

async fn list(State(ctl): State<Ctl>, h: HeaderMap) -> Response {
    if let Err(e) = ctl.auth(&h) {
        return e.into_response();
    }
    Json(json!({"clusters": ctl.all().iter().map(|c| describe(c)).collect::<Vec<_>>()})).into_response()
}

async fn one(State(ctl): State<Ctl>, h: HeaderMap, Path(name): Path<String>) -> Response {
    if let Err(e) = ctl.auth(&h) {
        return e.into_response();
    }
    match ctl.all().into_iter().find(|c| c.name == name) {
        Some(c) => Json(describe(&c)).into_response(),
        None => ApiError::no_route(&format!("/sim/v1/clusters/{name}")).into_response(),
    }
}

async fn change(State(ctl): State<Ctl>, h: HeaderMap, Path(name): Path<String>, body: axum::body::Bytes) -> Response {
    if let Err(e) = ctl.auth(&h) {
        return e.into_response();
    }
    let ch: Change = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return ApiError::bad_request(format!("body: {e}")).into_response(),
    };
    if ch.error_per_mille.is_some_and(|e| e > 1000) {
        return ApiError::bad_request("errorPerMille: must be between 0 and 1000").into_response();
    }
    let Some(c) = ctl.all().into_iter().find(|c| c.name == name) else {
        return ApiError::no_route(&format!("/sim/v1/clusters/{name}")).into_response();
    };
    if c.hub && ch.down == Some(true) {
        return ApiError::bad_request("down: the hub carries these controls; it cannot be taken down through them")
            .into_response();
    }
    if let Some(d) = ch.down {
        c.faults.down.store(d, Ordering::Relaxed);
    }
    if let Some(l) = ch.latency_ms {
        c.faults.latency_ms.store(l, Ordering::Relaxed);
    }
    if let Some(e) = ch.error_per_mille {
        c.faults.error_per_mille.store(e, Ordering::Relaxed);
    }
    Json(describe(&c)).into_response()
}
