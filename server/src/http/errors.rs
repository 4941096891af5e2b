//! Errors on the wire: `AppError` as JSON with the HTTP status its code stands for.
use app::error::AppError;
use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};

pub fn error_response(e: &AppError) -> Response {
    let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(e).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// Server fns answer every error with 500; give each the status its code stands for, so scripts
/// and proxies see 400/401/403/404/409 like any HTTP API.
pub async fn server_fn_status(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    if res.status() != StatusCode::INTERNAL_SERVER_ERROR || !res.headers().contains_key("serverfnerror") {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let bytes = to_bytes(body, 1 << 20).await.unwrap_or_default();
    if let Ok(e) = serde_json::from_slice::<AppError>(&bytes) {
        parts.status = StatusCode::from_u16(e.code.http_status()).unwrap_or(parts.status);
    }
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(bytes))
}

/// Refuses bodies over `limit` bytes before anything reads them.
pub async fn body_limit(req: Request, next: Next) -> Response {
    // Room for kubeconfigs (at most 256 KiB) in JSON.
    const LIMIT: u64 = 1024 * 1024;
    if !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > LIMIT) {
        let mut res = error_response(&AppError::new(
            app::error::ErrorCode::TooLarge,
            format!("request body is larger than {} KiB", LIMIT / 1024),
        ));
        // Read a moderately oversized body to the end, so the client sees this answer instead
        // of a reset; a huge one is cut off with the connection.
        const DRAIN: u64 = 16 * 1024 * 1024;
        if n > DRAIN || to_bytes(req.into_body(), DRAIN as usize).await.is_err() {
            res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        return res;
    }
    next.run(req).await
}

/// State-changing requests from a browser must come from this site: a cross-site page cannot
/// make a signed-in browser act (SameSite=Strict cookies are the first line, this the second).
pub async fn same_origin(req: Request, next: Next) -> Response {
    if same_origin_ok(req.method(), req.headers()) {
        next.run(req).await
    } else {
        error_response(&AppError::forbidden("cross-origin request refused"))
    }
}

/// Reads are always fine; a write must not come from another site.
pub fn same_origin_ok(m: &http::Method, h: &http::HeaderMap) -> bool {
    if m == http::Method::GET || m == http::Method::HEAD || m == http::Method::OPTIONS {
        return true;
    }
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_ok = match h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        // Scripts (curl, SDKs) send no Origin; browsers always do on POST.
        None => true,
        Some(o) => host.is_some_and(|host| o.split_once("://").is_some_and(|(_, rest)| rest == host)),
    };
    let fetch_site_ok = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()).is_none_or(|s| s != "cross-site");
    origin_ok && fetch_site_ok
}
