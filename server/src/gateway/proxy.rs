//! The request path: who is calling, which deployment, within which limits, to which endpoint —
//! then bytes through, both ways.
use super::errors::openai_error;
use super::keys::KeyEntry;
use super::metrics::Observation;
use super::table::{now_ms, pick, InFlight, Route};
use super::tap::{Ending, OnEnd, Seen, Tap};
use super::Gateway;
use crate::auth::{token, SESSION_COOKIE};
use crate::store::LogRecord;
use app::models::user::SessionUser;
use app::models::validate::{clip, shown};
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
/// Longest model name a request may give (Hugging Face ids are at most 96 characters).
const MODEL_MAX: usize = 256;
/// Longest path kept in the request log.
const LOGGED_PATH_MAX: usize = 256;
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
        if key.owner_disabled {
            let message = "The account this API key belongs to is disabled.";
            return Err(openai_error(StatusCode::UNAUTHORIZED, "invalid_api_key", message));
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
    if token::cookie_value(headers, SESSION_COOKIE).is_some() {
        if let Err(why) = gw.inner.cfg.origin.check(method, headers) {
            return Err(openai_error(StatusCode::FORBIDDEN, "cross_origin", why));
        }
        if !crate::http::origin::json_body(method, headers) {
            let message = "Content-Type: must be application/json";
            return Err(openai_error(StatusCode::BAD_REQUEST, "invalid_content_type", message));
        }
        // Looked up on every call, never cached: signing out or being disabled ends access at once.
        let user = gw.inner.auth.resolve(headers).await.map_err(|e| {
            openai_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", format!("could not check the session: {e}"))
        })?;
        if let Some(u) = user {
            return Ok(Caller::User(u));
        }
    }
    Err(openai_error(
        StatusCode::UNAUTHORIZED,
        "missing_api_key",
        "You didn't provide an API key: send `Authorization: Bearer <key>` (create one under API keys).",
    ))
}

/// What a request names, read without copying the rest of the body.
#[derive(serde::Deserialize)]
struct Peek<'a> {
    #[serde(borrow, default)]
    model: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
}

/// One request on its way: who asks, what the body names, since when.
struct Call {
    gw: Gateway,
    caller: Caller,
    parts: http::request::Parts,
    body: Bytes,
    model: String,
    stream: bool,
    started: Instant,
    /// Why the body is not JSON, if it is not (only calls routed by `model` need it to be).
    not_json: Option<String>,
}

impl Call {
    /// Authenticates, then reads the body and what it names.
    async fn accept(gw: Gateway, req: Request) -> Result<Call, Response> {
        let started = Instant::now();
        let (parts, body) = req.into_parts();
        let caller = authenticate(&gw, &parts.method, &parts.headers).await?;
        let body = to_bytes(body, BODY_LIMIT).await.map_err(|_| too_large())?;
        let (model, stream, not_json) = match serde_json::from_slice::<Peek>(&body) {
            Ok(p) => (p.model.map(|m| m.into_owned()).unwrap_or_default(), p.stream.unwrap_or(false), None),
            Err(e) => (String::new(), false, Some(e.to_string())),
        };
        let call = Call { gw, caller, parts, body, model, stream, started, not_json };
        // Every authenticated request spends from the key's allowance, refused ones too: a key
        // cannot probe names or send garbage faster than it may call models.
        if let Caller::Key(k) = &call.caller {
            if let Err(l) = call.gw.inner.limiter.admit(&k.id, k.rpm, k.tpm).await {
                let message = format!("Rate limit reached for this API key: {}. Retry in {} s.", l.what, l.retry_after);
                let mut r = call.refuse("", StatusCode::TOO_MANY_REQUESTS, "rate_limit_exceeded", message);
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(l.retry_after));
                return Err(r);
            }
        }
        Ok(call)
    }

    /// A refusal after the caller is known: answered, counted and logged.
    fn refuse(&self, deployment: &str, status: StatusCode, code: &str, message: String) -> Response {
        Ticket::new(self, deployment, self.parts.uri.path(), false, status.as_u16(), None).done(None);
        openai_error(status, code, message)
    }
}

pub async fn by_model(State(gw): State<Gateway>, req: Request) -> Response {
    let mut call = match Call::accept(gw, req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Some(e) = &call.not_json {
        let message = format!("request body is not valid JSON: {e}");
        return call.refuse("", StatusCode::BAD_REQUEST, "invalid_json", message);
    }
    let model = call.model.clone();
    if model.is_empty() {
        return call.refuse("", StatusCode::BAD_REQUEST, "missing_model", "model: required".into());
    }
    if model.len() > MODEL_MAX {
        let message = format!("model: must be at most {MODEL_MAX} bytes (got {})", model.len());
        return call.refuse("", StatusCode::BAD_REQUEST, "invalid_model", message);
    }
    let table = call.gw.routes();
    // A model outside a key's scope is answered as one that does not exist: a scoped key must
    // not learn what else is deployed.
    let allowed: Vec<Arc<Route>> =
        table.for_model(&model).unwrap_or_default().into_iter().filter(|r| call.caller.allows(&r.deployment)).collect();
    if allowed.is_empty() {
        let message = format!("The model `{}` does not exist or is not deployed.", shown(&model));
        return call.refuse("", StatusCode::NOT_FOUND, "model_not_found", message);
    }
    // Named by deployment rather than by the model it serves: the runtime wants its own name.
    if let [r] = allowed.as_slice() {
        if r.model != model && r.deployment == model {
            if let Some(b) = rename_model(&call.body, &r.model) {
                call.body = b;
            }
        }
    }
    forward(call, allowed).await
}

pub async fn by_deployment(
    State(gw): State<Gateway>,
    Path((deployment, rest)): Path<(String, String)>,
    req: Request,
) -> Response {
    let mut call = match Call::accept(gw, req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !rest.starts_with("v1/") {
        let message = format!("no route /{}: use /api/inference/{}/v1/...", shown(&rest), shown(&deployment));
        return openai_error(StatusCode::NOT_FOUND, "not_found", message);
    }
    let table = call.gw.routes();
    let Some(route) = table.by_deployment.get(&deployment).filter(|_| call.caller.allows(&deployment)).cloned() else {
        let message = format!("No deployment named `{}`.", shown(&deployment));
        return call.refuse("", StatusCode::NOT_FOUND, "deployment_not_found", message);
    };
    let q = call.parts.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    call.parts.uri = format!("/{rest}{q}").parse().unwrap_or_else(|_| Uri::from_static("/"));
    if call.model.is_empty() {
        call.model = route.model.clone();
    }
    forward(call, vec![route]).await
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
        None => openai_error(
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!("The model `{}` does not exist.", shown(&model)),
        ),
    }
}

fn model_object(r: &Route) -> Value {
    json!({"id": r.model, "object": "model", "created": r.created / 1000, "owned_by": "hmas",
           "deployment": r.deployment, "runtime": r.runtime, "ready": !r.endpoints.is_empty()})
}

pub async fn no_such_route(uri: Uri) -> Response {
    openai_error(StatusCode::NOT_FOUND, "not_found", format!("Unknown request URL: {}", shown(uri.path())))
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

async fn forward(call: Call, routes: Vec<Arc<Route>>) -> Response {
    let (gw, model) = (&call.gw, &call.model);
    let first = &routes[0].deployment;
    let candidates: Vec<_> = routes.iter().flat_map(|r| r.endpoints.iter().cloned()).collect();
    if candidates.is_empty() {
        let message = format!("The model `{model}` has no ready replica yet (deployment {first}); try again shortly.");
        return call.refuse(first, StatusCode::SERVICE_UNAVAILABLE, "model_not_ready", message);
    }
    let pq = call.parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut headers = call.parts.headers.clone();
    strip_request_headers(&mut headers);
    let mut tried = Vec::new();
    let mut last_error = String::new();
    for _ in 0..ATTEMPTS.min(candidates.len()) {
        let rotate = gw.inner.rotate.fetch_add(1, Ordering::Relaxed);
        let Some(ep) = pick(&candidates, &tried, rotate) else { break };
        tried.push(ep.clone());
        let deployment =
            routes.iter().find(|r| r.endpoints.iter().any(|e| Arc::ptr_eq(e, &ep))).map_or(first, |r| &r.deployment);
        let Ok(uri) = format!("{}{pq}", ep.base).parse::<Uri>() else { continue };
        let mut up = http::Request::new(Full::new(call.body.clone()));
        *up.method_mut() = call.parts.method.clone();
        *up.uri_mut() = uri;
        *up.headers_mut() = headers.clone();
        let inflight = InFlight::new(ep.clone());
        match tokio::time::timeout(gw.inner.cfg.timeout, gw.inner.client.request(up)).await {
            Err(_) => {
                let message = format!("The model server did not answer within {} s.", gw.inner.cfg.timeout.as_secs());
                return call.refuse(deployment, StatusCode::GATEWAY_TIMEOUT, "timeout", message);
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
                let path = call.parts.uri.path();
                let mut ticket =
                    Ticket::new(&call, deployment, path, call.stream || sse, rp.status.as_u16(), Some(inflight));
                // Without `usage` from the upstream, about four bytes of request per prompt token.
                ticket.prompt_estimate = (call.body.len() as u64).div_ceil(4);
                if sse {
                    gw.inner.metrics.stream_opened(deployment);
                    ticket.sse_open = true;
                }
                let tap = Tap::new(rb, sse, call.started, Box::new(ticket));
                return Response::from_parts(rp, Body::new(tap));
            }
        }
    }
    let message = format!("No endpoint of `{model}` answered (tried {}): {last_error}", tried.len());
    call.refuse(first, StatusCode::BAD_GATEWAY, "upstream_unreachable", message)
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
    fn new(call: &Call, deployment: &str, path: &str, stream: bool, status: u16, inflight: Option<InFlight>) -> Self {
        let caller = &call.caller;
        Self {
            gw: call.gw.clone(),
            key_id: caller.key_id().to_string(),
            key_label: caller.label().to_string(),
            tpm: match caller {
                Caller::Key(k) => k.tpm,
                Caller::User(_) => None,
            },
            user_id: caller.user_id().to_string(),
            deployment: deployment.to_string(),
            model: clip(&call.model, MODEL_MAX).to_string(),
            path: clip(path, LOGGED_PATH_MAX).to_string(),
            stream,
            started: call.started,
            status,
            prompt_estimate: 0,
            sse_open: false,
            _inflight: inflight,
        }
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
