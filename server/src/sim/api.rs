//! The Kubernetes API over HTTP for one simulated cluster: discovery, OpenAPI (enough for kubectl
//! to validate), CRUD, patches, server-side apply, watch, Table output for kubectl, pod logs.
use super::cluster::Cluster;
use super::cluster::Peer;
use super::openapi;
use super::patch;
use super::rbac::{authorize, Identity};
use super::resources::{ResourceType, RESOURCES};
use super::selectors::{field_matches, labels_of, Selector};
use super::status::ApiError;
use super::store::{now_rfc3339, EventType, WatchEvent};
use super::table;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

type Params = HashMap<String, String>;

pub fn router(c: Arc<Cluster>) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/api", get(core_versions))
        .route("/apis", get(group_list))
        .route("/openapi/v2", get(openapi::v2))
        .route("/openapi/v3", get(openapi::v3_root))
        .route("/openapi/v3/{*gv}", get(openapi::v3_group))
        .route("/api/{*rest}", axum::routing::any(dispatch))
        .route("/apis/{*rest}", axum::routing::any(dispatch))
        .fallback(|req: Request| async move { ApiError::no_route(req.uri().path()).into_response() })
        .layer(axum::middleware::from_fn_with_state(c.clone(), authn))
        .layer(axum::middleware::from_fn_with_state(c.clone(), faults))
        .with_state(c)
}

/// Every path but the health and version endpoints needs a token or a client certificate.
async fn authn(State(c): State<Arc<Cluster>>, mut req: Request, next: Next) -> Response {
    if matches!(req.uri().path(), "/version" | "/healthz" | "/livez" | "/readyz") {
        return next.run(req).await;
    }
    let peer = req.extensions().get::<axum::extract::ConnectInfo<Peer>>().map(|c| c.0.clone());
    match c.authenticate(req.headers(), peer.as_ref()) {
        Ok(who) => {
            req.extensions_mut().insert(who);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// Injected latency and errors (the fault controls), before anything else.
async fn faults(State(c): State<Arc<Cluster>>, req: Request, next: Next) -> Response {
    let ms = c.faults.latency_ms.load(std::sync::atomic::Ordering::Relaxed);
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let rate = c.faults.error_per_mille.load(std::sync::atomic::Ordering::Relaxed);
    if rate > 0 && rand::Rng::gen_range(&mut rand::thread_rng(), 0..1000) < rate {
        return ApiError::unavailable("the server is currently unable to handle the request (injected fault)")
            .into_response();
    }
    next.run(req).await
}

async fn version(State(c): State<Arc<Cluster>>) -> Json<Value> {
    let v = &c.kubernetes_version;
    let minor = v.split('.').nth(1).unwrap_or("36");
    Json(json!({
        "major": "1", "minor": minor, "gitVersion": v, "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25", "compiler": "gc",
        "platform": "linux/amd64"
    }))
}

fn served(c: &Cluster) -> impl Iterator<Item = &'static ResourceType> + '_ {
    RESOURCES.iter().filter(move |r| c.hub || !r.hub_only)
}

async fn core_versions(State(c): State<Arc<Cluster>>) -> Response {
    Json(json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": c.addr.to_string()}]})).into_response()
}

async fn group_list(State(c): State<Arc<Cluster>>) -> Response {
    let mut groups: Vec<(&str, &str)> =
        served(&c).filter(|r| !r.group.is_empty()).map(|r| (r.group, r.version)).collect();
    groups.dedup();
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(g, v)| {
            let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})).into_response()
}

fn resource_list(c: &Cluster, group: &str, version: &str) -> Option<Value> {
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    let mut resources = Vec::new();
    for r in served(c).filter(|r| r.group == group && r.version == version) {
        let verbs = json!(["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]);
        resources.push(json!({
            "name": r.plural, "singularName": r.singular(), "namespaced": r.namespaced, "kind": r.kind,
            "verbs": verbs, "shortNames": r.short_names, "storageVersionHash": "sim"
        }));
        resources.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]}));
        if r.kind == "Pod" {
            resources.push(
                json!({"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]}),
            );
        }
    }
    if resources.is_empty() {
        return None;
    }
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
}

/// What a path names, once parsed.
struct Target {
    res: &'static ResourceType,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

enum Route {
    Discovery(Value),
    Object(Target),
}

fn parse(c: &Cluster, path: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::no_route(path)),
    };
    if rest.is_empty() {
        return resource_list(c, group, version).map(Route::Discovery).ok_or_else(|| ApiError::no_route(path));
    }
    let find = |plural: &str| {
        ResourceType::lookup(group, version, plural)
            .filter(|r| c.hub || !r.hub_only)
            .ok_or_else(|| ApiError::no_route(path))
    };
    let s = |x: &str| Some(x.to_string());
    let t = match rest {
        ["namespaces", ns, plural] if *plural != "status" && *plural != "finalize" => {
            Target { res: find(plural)?, ns: s(ns), name: None, sub: None }
        }
        ["namespaces", ns, plural, name] => Target { res: find(plural)?, ns: s(ns), name: s(name), sub: None },
        ["namespaces", ns, plural, name, sub] => Target { res: find(plural)?, ns: s(ns), name: s(name), sub: s(sub) },
        [plural] => Target { res: find(plural)?, ns: None, name: None, sub: None },
        [plural, name] => Target { res: find(plural)?, ns: None, name: s(name), sub: None },
        [plural, name, sub] => Target { res: find(plural)?, ns: None, name: s(name), sub: s(sub) },
        _ => return Err(ApiError::no_route(path)),
    };
    if t.res.namespaced && t.name.is_some() && t.ns.is_none() {
        return Err(ApiError::no_route(path));
    }
    if !t.res.namespaced && t.ns.is_some() {
        return Err(ApiError::no_route(path));
    }
    if let Some(sub) = &t.sub {
        if sub != "status" && !(sub == "log" && t.res.kind == "Pod") && !(sub == "scale" && t.res.kind == "Deployment")
        {
            return Err(ApiError::no_route(path));
        }
    }
    Ok(Route::Object(t))
}

async fn dispatch(State(c): State<Arc<Cluster>>, Query(q): Query<Params>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Some(who) = parts.extensions.get::<Identity>().cloned() else {
        return ApiError::unauthorized().into_response();
    };
    let path = parts.uri.path().to_string();
    let route = match parse(&c, &path) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let t = match route {
        Route::Discovery(v) => return Json(v).into_response(),
        Route::Object(t) => t,
    };
    let body = match axum::body::to_bytes(body, 8 << 20).await {
        Ok(b) => b,
        Err(_) => return ApiError::bad_request("request body too large").into_response(),
    };
    let is_watch = matches!(q.get("watch").map(String::as_str), Some("true" | "1"));
    let verb = match (&parts.method, t.name.is_some(), is_watch) {
        (&Method::GET, false, true) => "watch",
        (&Method::GET, false, false) => "list",
        (&Method::GET, true, _) => "get",
        (&Method::POST, false, _) => "create",
        (&Method::PUT, true, _) => "update",
        (&Method::PATCH, true, _) => "patch",
        (&Method::DELETE, true, _) => "delete",
        (&Method::DELETE, false, _) => "deletecollection",
        (m, _, _) => return ApiError::method_not_allowed(m.as_str()).into_response(),
    };
    if let Err(e) = authorize(&c.store, &who, verb, t.res, t.ns.as_deref()) {
        return e.into_response();
    }
    let wants_table =
        parts.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("as=Table"));
    let include_object = q.get("includeObject").is_some_and(|v| v == "Object");
    let ct =
        parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json").to_string();
    // Protobuf bodies are read for the kinds kubectl's imperative commands create; CBOR not at all.
    if ct.contains("cbor") {
        return ApiError::unsupported_media(&ct).into_response();
    }
    let counted = metric_verb(verb, &ct);
    if verb == "watch" {
        c.count_request(counted, t.res, "", 200);
        return watch(c, t, q).await;
    }
    let response = async {
        if t.sub.as_deref() == Some("scale") {
            return match scale(&c, &t, &q, verb, &ct, &body) {
                Ok(v) => Json(v).into_response(),
                Err(e) => e.into_response(),
            };
        }
        let result = match verb {
            "list" => list(&c, &t, &q, wants_table.then_some(include_object)),
            "get" if t.sub.as_deref() == Some("log") => return pod_log(&c, &t),
            "get" => c.store.get(t.res, t.ns.as_deref().unwrap_or(""), t.name.as_deref().unwrap_or("")).map(|o| {
                if wants_table {
                    table::table(t.res, &[o], c.store.resource_version(), include_object)
                } else {
                    o
                }
            }),
            "create" => create(&c, &t, &q, &ct, &body),
            "update" => update(&c, &t, &q, &ct, &body),
            "patch" => patch_object(&c, &t, &q, &ct, &body),
            "delete" => c.store.delete(t.res, t.ns.as_deref().unwrap_or(""), t.name.as_deref().unwrap_or("")),
            "deletecollection" => delete_collection(&c, &t, &q),
            _ => unreachable!("verbs are matched above"),
        };
        let status = if verb == "create" { StatusCode::CREATED } else { StatusCode::OK };
        match result {
            Ok(v) => (status, Json(v)).into_response(),
            Err(e) => e.into_response(),
        }
    }
    .await;
    c.count_request(counted, t.res, t.sub.as_deref().unwrap_or(""), response.status().as_u16());
    response
}

/// The verb label of `apiserver_request_total`: HTTP's, with server-side apply apart.
fn metric_verb(verb: &str, content_type: &str) -> &'static str {
    match verb {
        "watch" => "WATCH",
        "list" => "LIST",
        "get" => "GET",
        "create" => "POST",
        "update" => "PUT",
        "patch" if content_type.starts_with("application/apply-patch") => "APPLY",
        "patch" => "PATCH",
        "delete" => "DELETE",
        _ => "DELETECOLLECTION",
    }
}

async fn metrics(State(c): State<Arc<Cluster>>, req: Request) -> Response {
    let Some(who) = req.extensions().get::<Identity>() else { return ApiError::unauthorized().into_response() };
    // kube-apiserver serves /metrics to who may `get` the non-resource URL: admins here.
    if let Identity::ServiceAccount { namespace, name } = who {
        return ApiError::forbidden_path(&format!("system:serviceaccount:{namespace}:{name}"), "/metrics")
            .into_response();
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], c.metrics_text()).into_response()
}

fn decode_body(ct: &str, body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let v: Value = if ct.contains("protobuf") {
        super::protobuf::decode(body).map_err(|e| {
            let mut err = ApiError::unsupported_media(ct);
            err.message = format!("{}: {e}", err.message);
            err
        })?
    } else if ct.contains("yaml") {
        serde_yaml::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))?
    };
    if !v.is_object() {
        return Err(ApiError::bad_request("the body must be an object"));
    }
    Ok(v)
}

fn check_kind(res: &ResourceType, v: &Value) -> Result<(), ApiError> {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or(res.kind);
    let av = v.get("apiVersion").and_then(Value::as_str).map(String::from).unwrap_or_else(|| res.api_version());
    if kind != res.kind || av != res.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            res.api_version()
        )));
    }
    Ok(())
}

/// `fieldValidation=Strict` refuses fields the type does not know; the simulation knows no schemas
/// beyond the top level, so it checks what it can: top-level fields.
fn strict_fields(res: &ResourceType, q: &Params, v: &Value) -> Result<(), ApiError> {
    if q.get("fieldValidation").map(String::as_str) != Some("Strict") {
        return Ok(());
    }
    const TOP: &[&str] = &[
        "apiVersion",
        "kind",
        "metadata",
        "spec",
        "status",
        "data",
        "stringData",
        "type",
        "immutable",
        "rules",
        "subjects",
        "roleRef",
        "secrets",
        "imagePullSecrets",
        "automountServiceAccountToken",
        "involvedObject",
        "reason",
        "message",
        "source",
        "firstTimestamp",
        "lastTimestamp",
        "count",
        "eventTime",
        "reportingComponent",
        "reportingInstance",
        "action",
        "related",
        "series",
        "binaryData",
        "aggregationRule",
    ];
    if let Some(bad) = v.as_object().and_then(|m| m.keys().find(|k| !TOP.contains(&k.as_str()))) {
        return Err(ApiError::bad_request(format!("strict decoding error: unknown field \"{bad}\" in {}", res.kind)));
    }
    Ok(())
}

/// What the API server does to a write before storing it: Services get their node ports
/// allocated and checked; on the hub, Karmada's schemas and webhook have their say.
fn admit(c: &Cluster, res: &'static ResourceType, v: &mut Value) -> Result<(), ApiError> {
    if res.kind == "Service" {
        let ns = v.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_string();
        let name = v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
        let others = c.store.list(res, None).0;
        let current = c.store.try_get(res, &ns, &name);
        if c.hub {
            // The hub allocates like any API server; a member's kubelet side binds its ports itself.
            super::admission::allocate_node_ports(v, current.as_ref(), &others);
        }
        super::admission::check_node_ports(v, &others).map_err(|e| super::admission::refusal(res, &name, &[e]))?;
    }
    if !c.hub {
        return Ok(());
    }
    super::admission::admit(res, v, c.failover.load(std::sync::atomic::Ordering::Relaxed))
}

fn dry_run(q: &Params) -> bool {
    q.get("dryRun").is_some_and(|d| d == "All")
}

fn create(c: &Cluster, t: &Target, q: &Params, ct: &str, body: &Bytes) -> Result<Value, ApiError> {
    let v = decode_body(ct, body)?;
    check_kind(t.res, &v)?;
    strict_fields(t.res, q, &v)?;
    let ns = t.ns.clone().unwrap_or_default();
    let mut v = v;
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        // Status is the controllers' to write.
        m.remove("resourceVersion");
    }
    if let Some(o) = v.as_object_mut() {
        if !matches!(t.res.kind, "Event") {
            o.remove("status");
        }
    }
    if v.pointer("/metadata/namespace").is_none() && t.res.namespaced {
        v["metadata"]["namespace"] = json!(ns);
    }
    admit(c, t.res, &mut v)?;
    record_manager(&mut v, q, "Update");
    if dry_run(q) {
        return Ok(v);
    }
    c.store.create(t.res, &ns, v)
}

/// The `scale` subresource (`kubectl scale`): an `autoscaling/v1` Scale read from the Deployment,
/// and written back to its `spec.replicas` by a replace or a patch of the Scale.
fn scale(c: &Cluster, t: &Target, q: &Params, verb: &str, ct: &str, body: &Bytes) -> Result<Value, ApiError> {
    let ns = t.ns.clone().unwrap_or_default();
    let name = t.name.clone().unwrap_or_default();
    let view = |d: &Value| {
        let selector = d
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
               "metadata": {"name": name, "namespace": ns, "uid": d["metadata"]["uid"], "resourceVersion": d["metadata"]["resourceVersion"], "creationTimestamp": d["metadata"]["creationTimestamp"]},
               "spec": {"replicas": d.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
               "status": {"replicas": d.pointer("/status/replicas").cloned().unwrap_or(json!(0)), "selector": selector}})
    };
    let current = c.store.get(t.res, &ns, &name)?;
    let mut wanted = view(&current);
    match verb {
        "get" => return Ok(wanted),
        "update" => wanted = decode_body(ct, body)?,
        "patch" => {
            let p: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            match ct.split(';').next().unwrap_or("").trim() {
                "application/merge-patch+json" => patch::merge_patch(&mut wanted, &p),
                "application/strategic-merge-patch+json" => patch::strategic_merge(&mut wanted, &p),
                "application/json-patch+json" => json_patch(&mut wanted, &p)?,
                other => return Err(ApiError::unsupported_media(other)),
            }
        }
        other => return Err(ApiError::method_not_allowed(other)),
    }
    let Some(replicas) = wanted.pointer("/spec/replicas").and_then(Value::as_i64).filter(|r| *r >= 0) else {
        return Err(ApiError::invalid(
            t.res,
            &name,
            "spec.replicas",
            &wanted["spec"]["replicas"].to_string(),
            "must be greater than or equal to 0",
        ));
    };
    if dry_run(q) {
        return Ok(wanted);
    }
    let updated = c.store.mutate(t.res, &ns, &name, false, |o| o["spec"]["replicas"] = json!(replicas))?;
    Ok(view(&updated))
}

/// Records a non-apply writer in managedFields, as the API server does for every write.
fn record_manager(v: &mut Value, q: &Params, operation: &str) {
    let manager = q.get("fieldManager").cloned().unwrap_or_else(|| "unknown".into());
    let entry = json!({"manager": manager, "operation": operation, "apiVersion": v.get("apiVersion").cloned().unwrap_or(Value::Null), "time": now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": patch::fields_of(v)});
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        let mut list: Vec<Value> = m.get("managedFields").and_then(Value::as_array).cloned().unwrap_or_default();
        list.retain(|e| !(e["manager"] == entry["manager"] && e["operation"] == operation));
        list.push(entry);
        m.insert("managedFields".into(), Value::Array(list));
    }
}

fn update(c: &Cluster, t: &Target, q: &Params, ct: &str, body: &Bytes) -> Result<Value, ApiError> {
    let mut v = decode_body(ct, body)?;
    check_kind(t.res, &v)?;
    strict_fields(t.res, q, &v)?;
    let ns = t.ns.clone().unwrap_or_default();
    let name = t.name.clone().unwrap_or_default();
    if t.sub.is_none() {
        if t.res.namespaced {
            v["metadata"]["namespace"] = json!(ns);
        }
        admit(c, t.res, &mut v)?;
    }
    if dry_run(q) {
        return Ok(v);
    }
    record_manager(&mut v, q, "Update");
    c.store.update(t.res, &ns, &name, v, t.sub.as_deref() == Some("status"))
}

fn patch_object(c: &Cluster, t: &Target, q: &Params, ct: &str, body: &Bytes) -> Result<Value, ApiError> {
    let ns = t.ns.clone().unwrap_or_default();
    let name = t.name.clone().unwrap_or_default();
    let status_only = t.sub.as_deref() == Some("status");
    let current = c.store.try_get(t.res, &ns, &name);
    let ct_base = ct.split(';').next().unwrap_or("").trim();
    let mut new = match ct_base {
        "application/apply-patch+yaml" => {
            let applied = decode_body("yaml", body)?;
            check_kind(t.res, &applied)?;
            strict_fields(t.res, q, &applied)?;
            let manager = q.get("fieldManager").filter(|m| !m.is_empty()).ok_or_else(|| {
                ApiError::bad_request("PATCH, application/apply-patch+yaml requires fieldManager to be set")
            })?;
            let applied_name = applied.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
            if applied_name != name {
                return Err(ApiError::bad_request("the name of the object does not match the name on the URL"));
            }
            let mut obj = patch::apply(current.as_ref(), &applied, manager, &now_rfc3339());
            if !status_only {
                admit(c, t.res, &mut obj)?;
            }
            if current.is_none() {
                if dry_run(q) {
                    return Ok(obj);
                }
                if let Some(o) = obj.as_object_mut() {
                    o.remove("status");
                }
                return c.store.create(t.res, &ns, obj);
            }
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
            obj
        }
        "application/merge-patch+json" | "application/strategic-merge-patch+json" | "application/json-patch+json" => {
            let Some(mut obj) = current else { return Err(ApiError::not_found(t.res, &name)) };
            let p: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            match ct_base {
                "application/merge-patch+json" => patch::merge_patch(&mut obj, &p),
                "application/strategic-merge-patch+json" => patch::strategic_merge(&mut obj, &p),
                _ => json_patch(&mut obj, &p)?,
            }
            let given_rv = p.pointer("/metadata/resourceVersion").and_then(Value::as_str);
            if given_rv.is_none() {
                if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                }
            }
            if !status_only {
                admit(c, t.res, &mut obj)?;
            }
            record_manager(&mut obj, q, "Update");
            obj
        }
        other => return Err(ApiError::unsupported_media(other)),
    };
    if dry_run(q) {
        return Ok(new);
    }
    if status_only {
        // Only the status of the patched object is taken.
        let status = new.get("status").cloned().unwrap_or(Value::Null);
        new = c.store.get(t.res, &ns, &name)?;
        new["status"] = status;
        if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
    }
    c.store.update(t.res, &ns, &name, new, status_only)
}

/// RFC 6902, the operations kubectl and controllers use.
fn json_patch(obj: &mut Value, ops: &Value) -> Result<(), ApiError> {
    let ops = ops.as_array().ok_or_else(|| ApiError::bad_request("a JSON patch must be an array"))?;
    for op in ops {
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request("JSON patch operation without path"))?;
        let (parent_path, last) =
            path.rsplit_once('/').ok_or_else(|| ApiError::bad_request(format!("bad path {path}")))?;
        let last = last.replace("~1", "/").replace("~0", "~");
        let value = op.get("value").cloned().unwrap_or(Value::Null);
        let opname = op.get("op").and_then(Value::as_str).unwrap_or("");
        if opname == "test" {
            if obj.pointer(path) != Some(&value) {
                return Err(ApiError::new_invalid_patch(format!("test failed at {path}")));
            }
            continue;
        }
        let parent = obj
            .pointer_mut(parent_path)
            .ok_or_else(|| ApiError::new_invalid_patch(format!("missing path {parent_path}")))?;
        match (opname, parent) {
            ("add" | "replace", Value::Object(m)) => {
                if opname == "replace" && !m.contains_key(&last) {
                    return Err(ApiError::new_invalid_patch(format!("replace of missing {path}")));
                }
                m.insert(last, value);
            }
            ("remove", Value::Object(m)) => {
                m.remove(&last).ok_or_else(|| ApiError::new_invalid_patch(format!("remove of missing {path}")))?;
            }
            ("add", Value::Array(a)) if last == "-" => a.push(value),
            ("add" | "replace" | "remove", Value::Array(a)) => {
                let i: usize = last.parse().map_err(|_| ApiError::bad_request(format!("bad index in {path}")))?;
                match opname {
                    "add" if i <= a.len() => a.insert(i, value),
                    "replace" if i < a.len() => a[i] = value,
                    "remove" if i < a.len() => {
                        a.remove(i);
                    }
                    _ => return Err(ApiError::new_invalid_patch(format!("index out of range in {path}"))),
                }
            }
            _ => return Err(ApiError::bad_request(format!("unsupported JSON patch operation {opname}"))),
        }
    }
    Ok(())
}

impl ApiError {
    fn new_invalid_patch(message: String) -> Self {
        let mut e = ApiError::bad_request(message);
        e.code = 422;
        e.reason = "Invalid";
        e
    }
}

fn selected(q: &Params, items: Vec<Value>) -> Result<Vec<Value>, ApiError> {
    let label = match q.get("labelSelector") {
        Some(s) => Some(Selector::parse(s).map_err(ApiError::bad_request)?),
        None => None,
    };
    let mut out = Vec::new();
    for o in items {
        if label.as_ref().is_some_and(|s| !s.matches(&labels_of(&o))) {
            continue;
        }
        if let Some(fs) = q.get("fieldSelector") {
            if !field_matches(fs, &o).map_err(ApiError::bad_request)? {
                continue;
            }
        }
        out.push(o);
    }
    Ok(out)
}

/// `table`: answer as a Table, with full objects in the rows when `Some(true)`.
fn list(c: &Cluster, t: &Target, q: &Params, table: Option<bool>) -> Result<Value, ApiError> {
    let (items, rv) = c.store.list(t.res, t.ns.as_deref());
    let items = selected(q, items)?;
    if let Some(include_object) = table {
        return Ok(table::table(t.res, &items, rv, include_object));
    }
    Ok(json!({
        "kind": format!("{}List", t.res.kind),
        "apiVersion": t.res.api_version(),
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items,
    }))
}

fn delete_collection(c: &Cluster, t: &Target, q: &Params) -> Result<Value, ApiError> {
    let (items, _) = c.store.list(t.res, t.ns.as_deref());
    let items = selected(q, items)?;
    for o in &items {
        let _ = c.store.delete(t.res, super::store::ns_of(o), super::store::name_of(o));
    }
    Ok(
        json!({"kind": format!("{}List", t.res.kind), "apiVersion": t.res.api_version(), "metadata": {}, "items": items}),
    )
}

fn pod_log(c: &Cluster, t: &Target) -> Response {
    let ns = t.ns.as_deref().unwrap_or("");
    let name = t.name.as_deref().unwrap_or("");
    match c.store.get(t.res, ns, name) {
        Err(e) => e.into_response(),
        Ok(_) => {
            let lines = c.pod_logs(ns, name);
            ([(header::CONTENT_TYPE, "text/plain")], lines.join("\n") + "\n").into_response()
        }
    }
}

/// Streams `{"type":…,"object":…}` lines. Starts from `resourceVersion` when given (410 when that
/// is too old), else with ADDED events for what exists; ends after `timeoutSeconds`.
async fn watch(c: Arc<Cluster>, t: Target, q: Params) -> Response {
    let label = match q.get("labelSelector").map(|s| Selector::parse(s)) {
        Some(Err(e)) => return ApiError::bad_request(e).into_response(),
        Some(Ok(s)) => Some(s),
        None => None,
    };
    let field = q.get("fieldSelector").cloned();
    let timeout = q.get("timeoutSeconds").and_then(|s| s.parse::<u64>().ok()).unwrap_or(1800).min(3600);
    let mut rx = c.store.subscribe();
    let start_rv: Option<u64> = q.get("resourceVersion").and_then(|s| s.parse().ok()).filter(|rv| *rv > 0);
    let initial: Vec<WatchEvent> = match start_rv {
        Some(rv) => match c.store.events_since(rv) {
            Some(evs) => evs,
            None => {
                let status = ApiError::gone(format!("too old resource version: {rv} ({})", c.store.resource_version()))
                    .to_status();
                let line =
                    serde_json::to_string(&json!({"type": "ERROR", "object": status})).unwrap_or_default() + "\n";
                return ([(header::CONTENT_TYPE, "application/json")], line).into_response();
            }
        },
        None => {
            let (items, rv) = c.store.list(t.res, t.ns.as_deref());
            items.into_iter().map(|o| WatchEvent { rv, res: t.res, kind: EventType::Added, object: o }).collect()
        }
    };
    let res = t.res;
    let ns = t.ns.clone();
    let matches = move |ev: &WatchEvent| {
        std::ptr::eq(ev.res, res)
            && ns.as_deref().is_none_or(|n| super::store::ns_of(&ev.object) == n)
            && label.as_ref().is_none_or(|s| s.matches(&labels_of(&ev.object)))
            && field.as_deref().is_none_or(|f| field_matches(f, &ev.object).unwrap_or(false))
    };
    let last_initial = initial.last().map(|e| e.rv).unwrap_or(0);
    let (tx, body_rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        let line = |ev: &WatchEvent| {
            Bytes::from(
                serde_json::to_string(&json!({"type": ev.kind.as_str(), "object": ev.object})).unwrap_or_default()
                    + "\n",
            )
        };
        for ev in initial.iter().filter(|e| matches(e)) {
            if tx.send(Ok(line(ev))).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                ev = rx.recv() => match ev {
                    Ok(ev) if ev.rv > last_initial && matches(&ev) => {
                        if tx.send(Ok(line(&ev))).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let status = ApiError::gone("the watch fell behind; start again").to_status();
                        let _ = tx.send(Ok(Bytes::from(serde_json::to_string(&json!({"type": "ERROR", "object": status})).unwrap_or_default() + "\n"))).await;
                        return;
                    }
                    Err(_) => return,
                },
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(body_rx);
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| ApiError::internal("watch").into_response())
}
