//! The request path: who is calling, which deployment, within which limits, to which endpoint —
//! then bytes through, both ways.
use super::errors::openai_error;
use super::keys::KeyEntry;
use super::metrics::Observation;
use super::table::{now_ms, pick, InFlight, Route};
use super::tap::{Ending, OnEnd, Seen, Tap};
use super::Gateway;
use crate::auth::{token, SESSION_COOKIE};
use crate::http::errors::same_origin_ok;
use crate::store::LogRecord;
use app::models::user::SessionUser;
use axum::body::{to_bytes, Body};
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use http_body_util::Full;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

const BODY_LIMIT: usize = 16 << 20;
/// At most this many endpoints are tried for one request.
const ATTEMPTS: usize = 3;

pub enum Caller {
    Key(Arc<KeyEntry>),
    User(SessionUser),
}

impl Caller {
    fn key_id(&self) -> &str {
        match self {
            Caller::Key(k) => &k.id,
            Caller::User(_) => "",
        }
    }
    fn user_id(&self) -> &str {
        match self {
            Caller::Key(k) => &k.owner_id,
            Caller::User(u) => &u.id,
        }
    }
    fn allows(&self, deployment: &str) -> bool {
        match self {
            Caller::Key(k) => k.allows(deployment),
            Caller::User(_) => true,
        }
    }
    /// The metrics label: the key id, or `session` for the playground.
    fn label(&self) -> &str {
        match self {
            Caller::Key(k) => &k.id,
            Caller::User(_) => "session",
        }
    }
}

/// An API key (`Authorization: Bearer hmas-…`) or a dashboard session (the playground).
async fn authenticate(gw: &Gateway, method: &http::Method, headers: &HeaderMap) -> Result<Caller, Response> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let secret = v.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).unwrap_or("");
        let Some(key) = gw.keys().get(secret) else {
            return Err(openai_error(StatusCode::UNAUTHORIZED, "invalid_api_key", "Incorrect API key provided."));
        };
        if key.revoked {
            return Err(openai_error(StatusCode::UNAUTHORIZED, "invalid_api_key", "This API key has been revoked."));
        }
        if let Some(at) = key.expires_at.filter(|at| *at <= now_ms()) {
            let when = jiff::Timestamp::from_millisecond(at).map(|t| t.to_string()).unwrap_or_default();
            return Err(openai_error(
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                format!("This API key expired at {when}."),
            ));
        }
        return Ok(Caller::Key(key));
    }
    if let Some(t) = token::cookie_value(headers, SESSION_COOKIE) {
        if !same_origin_ok(method, headers) {
            return Err(openai_error(StatusCode::FORBIDDEN, "cross_origin", "cross-origin request refused"));
        }
        if let Some(u) = session(gw, t, headers).await? {
            return Ok(Caller::User(u));
        }
    }
    Err(openai_error(
        StatusCode::UNAUTHORIZED,
        "missing_api_key",
        "You didn't provide an API key: send `Authorization: Bearer <key>` (create one under API keys).",
    ))
}

async fn session(gw: &Gateway, t: &str, headers: &HeaderMap) -> Result<Option<SessionUser>, Response> {
    let h = token::token_hash(t);
    {
        let cache = gw.inner.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((u, at)) = cache.get(&h).filter(|(_, at)| at.elapsed() < super::SESSION_CACHE) {
            let _ = at;
            return Ok(Some(u.clone()));
        }
    }
    let user = gw.inner.auth.resolve(headers).await.map_err(|e| {
        openai_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", format!("could not check the session: {e}"))
    })?;
    let mut cache = gw.inner.sessions.lock().unwrap_or_else(|e| e.into_inner());
    cache.retain(|_, (_, at)| at.elapsed() < super::SESSION_CACHE);
    if let Some(u) = &user {
        cache.insert(h, (u.clone(), Instant::now()));
    }
    Ok(user)
}

/// What a request names, read without copying the rest of the body.
#[derive(serde::Deserialize)]
struct Peek<'a> {
    #[serde(borrow, default)]
    model: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
}

pub async fn by_model(State(gw): State<Gateway>, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let caller = match authenticate(&gw, &parts.method, &parts.headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let body = match to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return too_large(),
    };
    let (model, stream) = match serde_json::from_slice::<Peek>(&body) {
        Ok(p) => (p.model.map(|m| m.into_owned()).unwrap_or_default(), p.stream.unwrap_or(false)),
        Err(e) => {
            return openai_error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("request body is not valid JSON: {e}"),
            )
        }
    };
    if model.is_empty() {
        return openai_error(StatusCode::BAD_REQUEST, "missing_model", "model: required");
    }
    let table = gw.routes();
    let Some(routes) = table.for_model(&model) else {
        return refuse(
            &gw,
            &caller,
            "",
            &model,
            &parts.uri,
            started,
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!("The model `{model}` does not exist or is not deployed."),
        );
    };
    let allowed: Vec<Arc<Route>> = routes.into_iter().filter(|r| caller.allows(&r.deployment)).collect();
    if allowed.is_empty() {
        return refuse(
            &gw,
            &caller,
            "",
            &model,
            &parts.uri,
            started,
            StatusCode::FORBIDDEN,
            "model_not_allowed",
            format!("This API key may not use the model `{model}`."),
        );
    }
    // Named by deployment rather than by the model it serves: the runtime wants its own name.
    let body = match allowed.as_slice() {
        [r] if r.model != model && r.deployment == model => rename_model(&body, &r.model).unwrap_or(body),
        _ => body,
    };
    forward(gw, caller, allowed, parts, body, model, stream, started).await
}

pub async fn by_deployment(
    State(gw): State<Gateway>,
    Path((deployment, rest)): Path<(String, String)>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let (mut parts, body) = req.into_parts();
    let caller = match authenticate(&gw, &parts.method, &parts.headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !rest.starts_with("v1/") {
        return openai_error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route /{rest}: use /api/inference/{deployment}/v1/..."),
        );
    }
    let body = match to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return too_large(),
    };
    let peek = serde_json::from_slice::<Peek>(&body).ok();
    let stream = peek.as_ref().and_then(|p| p.stream).unwrap_or(false);
    let model = peek.and_then(|p| p.model.map(|m| m.into_owned())).unwrap_or_default();
    let table = gw.routes();
    let Some(route) = table.by_deployment.get(&deployment).cloned() else {
        return refuse(
            &gw,
            &caller,
            "",
            &model,
            &parts.uri,
            started,
            StatusCode::NOT_FOUND,
            "deployment_not_found",
            format!("No deployment named `{deployment}`."),
        );
    };
    if !caller.allows(&deployment) {
        return refuse(
            &gw,
            &caller,
            &deployment,
            &model,
            &parts.uri,
            started,
            StatusCode::FORBIDDEN,
            "model_not_allowed",
            format!("This API key may not use deployment `{deployment}`."),
        );
    }
    let q = parts.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    parts.uri = format!("/{rest}{q}").parse().unwrap_or_else(|_| Uri::from_static("/"));
    let model = if model.is_empty() { route.model.clone() } else { model };
    forward(gw, caller, vec![route], parts, body, model, stream, started).await
}

pub async fn list_models(State(gw): State<Gateway>, req: Request) -> Response {
    let caller = match authenticate(&gw, req.method(), req.headers()).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let table = gw.routes();
    let mut seen = std::collections::BTreeMap::new();
    for r in table.routes().filter(|r| caller.allows(&r.deployment)) {
        let e = seen.entry(r.model.clone()).or_insert_with(|| model_object(r));
        if !r.endpoints.is_empty() {
            e["ready"] = json!(true);
        }
    }
    axum::Json(json!({"object": "list", "data": seen.into_values().collect::<Vec<_>>()})).into_response()
}

pub async fn get_model(State(gw): State<Gateway>, Path(model): Path<String>, req: Request) -> Response {
    let caller = match authenticate(&gw, req.method(), req.headers()).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let table = gw.routes();
    match table.for_model(&model).and_then(|rs| rs.into_iter().find(|r| caller.allows(&r.deployment))) {
        Some(r) => axum::Json(model_object(&r)).into_response(),
        None => openai_error(StatusCode::NOT_FOUND, "model_not_found", format!("The model `{model}` does not exist.")),
    }
}

fn model_object(r: &Route) -> Value {
    json!({"id": r.model, "object": "model", "created": r.created / 1000, "owned_by": "hmas",
           "deployment": r.deployment, "runtime": r.runtime, "ready": !r.endpoints.is_empty()})
}

pub async fn no_such_route(uri: Uri) -> Response {
    openai_error(StatusCode::NOT_FOUND, "not_found", format!("Unknown request URL: {}", uri.path()))
}

fn too_large() -> Response {
    openai_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("request body is larger than {} MiB", BODY_LIMIT >> 20),
    )
}

fn rename_model(body: &Bytes, model: &str) -> Option<Bytes> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    v.as_object_mut()?.insert("model".into(), Value::String(model.to_string()));
    serde_json::to_vec(&v).ok().map(Bytes::from)
}

/// A refusal after the caller is known: answered, counted and logged.
#[allow(clippy::too_many_arguments)]
fn refuse(
    gw: &Gateway,
    caller: &Caller,
    deployment: &str,
    model: &str,
    uri: &Uri,
    started: Instant,
    status: StatusCode,
    code: &str,
    message: String,
) -> Response {
    Ticket::new(gw, caller, deployment, model, uri.path(), false, started, status.as_u16(), None).done(None);
    openai_error(status, code, message)
}

#[allow(clippy::too_many_arguments)]
async fn forward(
    gw: Gateway,
    caller: Caller,
    routes: Vec<Arc<Route>>,
    parts: http::request::Parts,
    body: Bytes,
    model: String,
    stream: bool,
    started: Instant,
) -> Response {
    let path = parts.uri.path().to_string();
    let first = routes[0].deployment.clone();
    if let Caller::Key(k) = &caller {
        if let Err(l) = gw.inner.limiter.admit(&k.id, k.rpm, k.tpm) {
            let mut r = refuse(
                &gw,
                &caller,
                &first,
                &model,
                &parts.uri,
                started,
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                format!("Rate limit reached for this API key: {}. Retry in {} s.", l.what, l.retry_after),
            );
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(l.retry_after));
            return r;
        }
    }
    let candidates: Vec<_> = routes.iter().flat_map(|r| r.endpoints.iter().cloned()).collect();
    if candidates.is_empty() {
        return refuse(
            &gw,
            &caller,
            &first,
            &model,
            &parts.uri,
            started,
            StatusCode::SERVICE_UNAVAILABLE,
            "model_not_ready",
            format!("The model `{model}` has no ready replica yet (deployment {first}); try again shortly."),
        );
    }
    let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
    let mut headers = parts.headers;
    strip_request_headers(&mut headers);
    let mut tried = Vec::new();
    let mut last_error = String::new();
    for _ in 0..ATTEMPTS.min(candidates.len()) {
        let rotate = gw.inner.rotate.fetch_add(1, Ordering::Relaxed);
        let Some(ep) = pick(&candidates, &tried, rotate) else { break };
        tried.push(ep.clone());
        let deployment = routes
            .iter()
            .find(|r| r.endpoints.iter().any(|e| Arc::ptr_eq(e, &ep)))
            .map(|r| r.deployment.clone())
            .unwrap_or_else(|| first.clone());
        let Ok(uri) = format!("{}{pq}", ep.base).parse::<Uri>() else { continue };
        let mut up = http::Request::new(Full::new(body.clone()));
        *up.method_mut() = parts.method.clone();
        *up.uri_mut() = uri;
        *up.headers_mut() = headers.clone();
        let inflight = InFlight::new(ep.clone());
        match tokio::time::timeout(gw.inner.cfg.timeout, gw.inner.client.request(up)).await {
            Err(_) => {
                return refuse(
                    &gw,
                    &caller,
                    &deployment,
                    &model,
                    &parts.uri,
                    started,
                    StatusCode::GATEWAY_TIMEOUT,
                    "timeout",
                    format!("The model server did not answer within {} s.", gw.inner.cfg.timeout.as_secs()),
                );
            }
            Ok(Err(e)) => {
                // Nothing came back, so trying another endpoint cannot run the request twice for the client.
                ep.mark_failed();
                last_error = error_chain(&e);
                tracing::warn!(endpoint = %ep.base, %deployment, error = %last_error, "upstream unreachable; trying another");
            }
            Ok(Ok(res)) => {
                ep.mark_ok();
                let (mut rp, rb) = res.into_parts();
                strip_hop_by_hop(&mut rp.headers);
                let sse = rp
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("text/event-stream"));
                let ticket = Ticket::new(
                    &gw,
                    &caller,
                    &deployment,
                    &model,
                    &path,
                    stream || sse,
                    started,
                    rp.status.as_u16(),
                    Some(inflight),
                );
                let mut ticket = ticket.with_prompt_estimate(body.len());
                if sse {
                    gw.inner.metrics.stream_opened(&deployment);
                    ticket.sse_open = true;
                }
                let tap = Tap::new(rb, sse, started, Box::new(ticket));
                return Response::from_parts(rp, Body::new(tap));
            }
        }
    }
    refuse(
        &gw,
        &caller,
        &first,
        &model,
        &parts.uri,
        started,
        StatusCode::BAD_GATEWAY,
        "upstream_unreachable",
        format!("No endpoint of `{model}` answered (tried {}): {last_error}", tried.len()),
    )
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

fn strip_hop_by_hop(h: &mut HeaderMap) {
    for n in &HOP_BY_HOP {
        h.remove(n);
    }
    h.remove(header::UPGRADE);
}

/// H-MAS's own credentials never reach a model server.
fn strip_request_headers(h: &mut HeaderMap) {
    strip_hop_by_hop(h);
    for n in
        [header::HOST, header::AUTHORIZATION, header::COOKIE, header::CONTENT_LENGTH, header::ORIGIN, header::REFERER]
    {
        h.remove(n);
    }
}

/// One request's account, settled when its response ends (or when it is refused).
struct Ticket {
    gw: Gateway,
    key_id: String,
    key_label: String,
    tpm: Option<u32>,
    user_id: String,
    deployment: String,
    model: String,
    path: String,
    stream: bool,
    started: Instant,
    status: u16,
    prompt_estimate: u64,
    /// Counted in the open-streams gauge until done.
    sse_open: bool,
    _inflight: Option<InFlight>,
}

impl Ticket {
    #[allow(clippy::too_many_arguments)]
    fn new(
        gw: &Gateway,
        caller: &Caller,
        deployment: &str,
        model: &str,
        path: &str,
        stream: bool,
        started: Instant,
        status: u16,
        inflight: Option<InFlight>,
    ) -> Self {
        Self {
            gw: gw.clone(),
            key_id: caller.key_id().to_string(),
            key_label: caller.label().to_string(),
            tpm: match caller {
                Caller::Key(k) => k.tpm,
                Caller::User(_) => None,
            },
            user_id: caller.user_id().to_string(),
            deployment: deployment.to_string(),
            model: model.to_string(),
            path: path.to_string(),
            stream,
            started,
            status,
            prompt_estimate: 0,
            sse_open: false,
            _inflight: inflight,
        }
    }

    /// Without `usage` from the upstream, about four bytes of request per prompt token.
    fn with_prompt_estimate(mut self, body_len: usize) -> Self {
        self.prompt_estimate = (body_len as u64).div_ceil(4);
        self
    }

    fn done(self, seen: Option<Seen>) {
        let seconds = self.started.elapsed().as_secs_f64();
        let (ending, ttft, usage) = match &seen {
            Some(s) => (
                s.ending,
                s.first_byte.filter(|_| self.stream),
                s.usage.unwrap_or(if self.status < 400 { (self.prompt_estimate, s.pieces) } else { (0, 0) }),
            ),
            None => (Ending::Completed, None, (0, 0)),
        };
        let g = &self.gw.inner;
        if self.sse_open {
            g.metrics.stream_closed(&self.deployment);
        }
        if !self.key_id.is_empty() {
            g.limiter.spend_tokens(&self.key_id, self.tpm, usage.0 + usage.1);
        }
        g.metrics.observe(&Observation {
            deployment: &self.deployment,
            key: &self.key_label,
            status: self.status,
            seconds,
            ttft: ttft.map(|t| t.as_secs_f64()),
            prompt_tokens: usage.0,
            completion_tokens: usage.1,
        });
        let outcome = match ending {
            Ending::Completed if self.status >= 400 => "error",
            e => e.as_str(),
        };
        let row = LogRecord {
            id: token::new_id(),
            at: now_ms(),
            key_id: self.key_id.clone(),
            user_id: self.user_id.clone(),
            deployment: self.deployment.clone(),
            model: self.model.clone(),
            path: self.path.clone(),
            status: self.status,
            latency_ms: (seconds * 1000.0).round() as i64,
            ttft_ms: ttft.map(|t| t.as_millis() as i64),
            prompt_tokens: usage.0 as i64,
            completion_tokens: usage.1 as i64,
            stream: self.stream,
            outcome: outcome.to_string(),
        };
        if !g.recorder.record(row) {
            g.metrics.dropped_records.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl OnEnd for Ticket {
    fn ended(self: Box<Self>, seen: Seen) {
        self.done(Some(seen));
    }
}
