//! Fault controls on the hub, for failure drills and tests: `/sim/v1/clusters` lists the clusters
//! and their faults; `POST /sim/v1/clusters/{name}` with `{"down": true, "latencyMs": 200,
//! "errorPerMille": 50, "externalAgents": true}` (any subset) changes them. Needs the hub's admin
//! token.
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
    external_agents: Option<bool>,
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
        "generating": c.generating.load(Ordering::Relaxed),
        "externalAgents": c.faults.external_agents.load(Ordering::Relaxed),
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
    if let Some(x) = ch.external_agents {
        c.faults.external_agents.store(x, Ordering::Relaxed);
    }
    Json(describe(&c)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http::Request;
    use tower::ServiceExt;

    async fn send(app: &Router, method: &str, path: &str, token: &str, body: &str) -> (u16, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from(body.to_string()))
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status().as_u16();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn faults_are_switched_with_the_hub_token() {
        let pki = super::super::tls::Pki::new(None).unwrap();
        let addr = "127.0.0.1:1".parse().unwrap();
        let hub = Arc::new(Cluster::new("karmada-apiserver", true, addr, "v1.36.0", &pki, None));
        let member = Arc::new(Cluster::new("m1", false, addr, "v1.36.0", &pki, None));
        let m = Member::new(
            member.clone(),
            crate::sim::Topology::default_three().members[2].clone(),
            Arc::new(crate::sim::SimConfig::fast()),
        );
        let app = router(hub.clone(), Arc::new(RwLock::new(vec![m])));
        let token = hub.admin_token.clone();

        assert_eq!(send(&app, "GET", "/sim/v1/clusters", "wrong", "").await.0, 401);
        let (s, list) = send(&app, "GET", "/sim/v1/clusters", &token, "").await;
        assert_eq!(s, 200);
        assert_eq!(list["clusters"].as_array().unwrap().len(), 2);

        let (s, v) = send(
            &app,
            "POST",
            "/sim/v1/clusters/m1",
            &token,
            r#"{"down": true, "latencyMs": 250, "errorPerMille": 100}"#,
        )
        .await;
        assert_eq!((s, v["down"].as_bool(), v["latencyMs"].as_u64()), (200, Some(true), Some(250)));
        assert!(member.is_down());
        assert_eq!(send(&app, "POST", "/sim/v1/clusters/m1", &token, r#"{"errorPerMille": 1001}"#).await.0, 400);
        assert_eq!(send(&app, "POST", "/sim/v1/clusters/m1", &token, r#"{"dwn": true}"#).await.0, 400);
        assert_eq!(send(&app, "POST", "/sim/v1/clusters/karmada-apiserver", &token, r#"{"down": true}"#).await.0, 400);
        assert_eq!(send(&app, "POST", "/sim/v1/clusters/nope", &token, r#"{"down": true}"#).await.0, 404);
        send(&app, "POST", "/sim/v1/clusters/m1", &token, r#"{"down": false}"#).await;
        assert!(!member.is_down());
    }
}
