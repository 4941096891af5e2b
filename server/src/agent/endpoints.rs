//! `/healthz` (alive: restart me if not), `/readyz` (serving the model: send me traffic) and
//! `/metrics`, the same for every runtime. Both probes answer the status as JSON.
use super::metrics::{self, Scraped};
use super::state::{Shared, Stage};
use app::models::runtime::RuntimeKind;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct Probe {
    pub state: Shared,
    pub runtime: RuntimeKind,
    pub scraped: Arc<Mutex<Scraped>>,
    pub runtime_up: Arc<AtomicBool>,
}

pub fn router(p: Probe) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(p)
}

async fn healthz(State(p): State<Probe>) -> Response {
    let s = p.state.get();
    // Fetching a large model is being alive; a failed or hung runtime is not.
    let alive = !matches!(s.stage, Stage::Failed | Stage::Unhealthy);
    let code = if alive { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(s)).into_response()
}

async fn readyz(State(p): State<Probe>) -> Response {
    let s = p.state.get();
    let code = if s.ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(s)).into_response()
}

async fn metrics_text(State(p): State<Probe>) -> Response {
    let s = p.state.get();
    let body = {
        let scraped = p.scraped.lock().unwrap_or_else(|e| e.into_inner());
        metrics::render(p.runtime, &s, &scraped, p.runtime_up.load(Ordering::Relaxed))
    };
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
