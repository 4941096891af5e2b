//! The router: health, metrics, server fns under /api, the SSR dashboard and static files, and
//! the middleware every dashboard request passes (outermost first): trace → request id → auth →
//! metrics → compression → page ETags. The bundle under `/pkg` and the inference gateway (`/v1`,
//! `/api/inference`) are merged beside them, not behind.
pub mod assets;
pub mod client_addr;
pub mod errors;
pub mod listen;
pub mod origin;
mod request_id;

use crate::auth::layer::require_session;
use crate::auth::AuthServiceImpl;
use crate::metrics::{self, Metrics};
use crate::store::Store;
use app::error::AppError;
use app::services::Services;
use app::{shell, App};
use axum::body::Body;
use axum::extract::{FromRef, State};
use axum::http::Request;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use http::{header, HeaderValue, StatusCode};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub store: Store,
    pub auth: AuthServiceImpl,
    pub metrics: Metrics,
    pub metrics_token: Option<String>,
    pub services: Services,
    /// The Karmada hub (real or simulated).
    pub hub: crate::hub::KubeClient,
    pub gateway: crate::gateway::Gateway,
    pub origin: origin::OriginPolicy,
    /// Whether this replica runs the reconcilers now.
    pub leadership: crate::leader::Leadership,
}

pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let services = state.services.clone();
    let context = move || provide_context(services.clone());
    let options = state.leptos_options.clone();
    // The gateway answers before any of the dashboard's layers: it authenticates by key itself,
    // and its latency budget has no room for them.
    let gateway = state.gateway.router();
    let bundle = assets::router(std::path::Path::new(&*state.leptos_options.site_root));

    let dashboard = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        // Server fns are routed by leptos_routes_with_context, one route each; anything else under
        // /api is not an endpoint.
        .route("/api/{*rest}", any(no_such_endpoint))
        .leptos_routes_with_context(&state, routes, context.clone(), move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(context, shell))
        .layer(from_fn(assets::page_etag))
        .layer(from_fn(errors::server_fn_status))
        .layer(from_fn(errors::body_limit))
        // Bodies without a declared length are cut off here instead.
        .layer(RequestBodyLimitLayer::new(16 << 20))
        .layer(CompressionLayer::new().gzip(true))
        .layer(from_fn_with_state(state.metrics.clone(), metrics::track))
        .layer(from_fn_with_state(state.origin.clone(), origin::guard))
        .layer(from_fn_with_state(state.auth.clone(), require_session))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(request_id::span))
        .layer(SetRequestIdLayer::x_request_id(request_id::MakeId))
        .with_state(state);
    security_headers(Router::new().merge(gateway).merge(bundle).merge(dashboard))
}

/// Headers every answer carries: no framing (clickjacking), no type sniffing, no referrer to
/// other sites, and a content policy that keeps pages to this origin. Scripts stay
/// 'unsafe-inline' because the hydration loader and streamed resources are inline scripts;
/// everything else a page loads or calls must come from here.
fn security_headers(router: Router) -> Router {
    use tower_http::set_header::SetResponseHeaderLayer;
    const CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; \
        style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
        base-uri 'self'; form-action 'self'; frame-ancestors 'none'";
    let set = |name: http::HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    router
        .layer(set(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::REFERRER_POLICY, "same-origin"))
}

async fn no_such_endpoint(uri: http::Uri) -> Response {
    errors::error_response(&AppError::not_found(format!("no API endpoint at {} (see docs/api.md)", uri.path())))
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: database");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}

async fn metrics_text(State(state): State<AppState>, req: Request<Body>) -> Response {
    if let Some(want) = &state.metrics_token {
        let given = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let ok = given
            .and_then(|g| g.strip_prefix("Bearer "))
            .is_some_and(|g| constant_time_eq(g.as_bytes(), want.as_bytes()));
        if !ok {
            return (StatusCode::UNAUTHORIZED, "metrics token required").into_response();
        }
    }
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"))], {
        let mut text = state.metrics.render();
        state.gateway.render_metrics(&mut text);
        text.push_str("# HELP hmas_leader 1 while this replica runs the reconcilers.\n# TYPE hmas_leader gauge\n");
        text.push_str(&format!("hmas_leader {}\n", u8::from(state.leadership.is_leader())));
        text
    })
        .into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
