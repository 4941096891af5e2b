//! Just enough OpenAPI v3 for kubectl: every path with its group-version-kind and the
//! `fieldValidation` parameter (so kubectl leaves validation to the server), and schemas that
//! accept any fields; the v2 document in JSON only (clients asking for protobuf fall back to merge
//! patches).
use super::cluster::Cluster;
use super::resources::{ResourceType, RESOURCES};
use super::status::ApiError;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::sync::Arc;

fn gv_path(r: &ResourceType) -> String {
    if r.group.is_empty() {
        format!("api/{}", r.version)
    } else {
        format!("apis/{}/{}", r.group, r.version)
    }
}

fn schema_name(r: &ResourceType) -> String {
    let g = if r.group.is_empty() { "core" } else { r.group };
    format!("io.k8s.sim.{g}.{}.{}", r.version, r.kind)
}

/// A type's two paths (collection and item) with their operations, each built by `op(action)`.
fn insert_paths(paths: &mut Map<String, Value>, r: &ResourceType, op: impl Fn(&str) -> Value) {
    let base = if r.namespaced {
        format!("/{}/namespaces/{{namespace}}/{}", gv_path(r), r.plural)
    } else {
        format!("/{}/{}", gv_path(r), r.plural)
    };
    paths.insert(base.clone(), json!({"get": op("list"), "post": op("post")}));
    paths.insert(
        format!("{base}/{{name}}"),
        json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}),
    );
}

/// The Swagger 2.0 document, in JSON for a client that reads JSON (`kubectl get --raw`). A client
/// that asks for the protobuf form (kubectl's validation) gets a 404, as from a server without it,
/// and falls back to merge patches.
pub async fn v2(State(c): State<Arc<Cluster>>, headers: axum::http::HeaderMap) -> Response {
    let accept = headers.get(axum::http::header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.contains("protobuf") && !accept.contains("json") {
        return ApiError::no_route("/openapi/v2").into_response();
    }
    let mut paths = Map::new();
    let mut definitions = Map::new();
    for r in RESOURCES.iter().filter(|r| c.hub || !r.hub_only) {
        let gvk = json!([{"group": r.group, "version": r.version, "kind": r.kind}]);
        let reference = json!({"$ref": format!("#/definitions/{}", schema_name(r))});
        let op = |action: &str| {
            json!({"operationId": format!("{action}{}", r.kind), "x-kubernetes-action": action,
                   "x-kubernetes-group-version-kind": gvk[0], "responses": {"200": {"description": "OK", "schema": reference}}})
        };
        insert_paths(&mut paths, r, op);
        definitions.insert(
            schema_name(r),
            json!({"type": "object", "x-kubernetes-group-version-kind": gvk,
                   "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}, "spec": {"type": "object"}, "status": {"type": "object"}}}),
        );
    }
    Json(json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": c.kubernetes_version}, "paths": paths, "definitions": definitions}))
        .into_response()
}

pub async fn v3_root(State(c): State<Arc<Cluster>>) -> Json<Value> {
    let mut paths = Map::new();
    for r in RESOURCES.iter().filter(|r| c.hub || !r.hub_only) {
        let p = gv_path(r);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=SIM{}", c.kubernetes_version)}),
        );
    }
    Json(json!({"paths": paths}))
}

pub async fn v3_group(State(c): State<Arc<Cluster>>, Path(gv): Path<String>) -> Response {
    let types: Vec<&ResourceType> = RESOURCES.iter().filter(|r| (c.hub || !r.hub_only) && gv_path(r) == gv).collect();
    if types.is_empty() {
        return ApiError::no_route(&format!("/openapi/v3/{gv}")).into_response();
    }
    let params = json!([
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}}
    ]);
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for r in types {
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let op = |action: &str| {
            json!({"operationId": format!("{action}{}", r.kind), "x-kubernetes-action": action,
                   "x-kubernetes-group-version-kind": gvk, "parameters": params,
                   "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{}", schema_name(r))}}}}}})
        };
        insert_paths(&mut paths, r, op);
        let any = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
        schemas.insert(
            schema_name(r),
            json!({"type": "object", "x-kubernetes-group-version-kind": [gvk],
                   "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": any, "spec": any, "status": any},
                   "x-kubernetes-preserve-unknown-fields": true}),
        );
    }
    Json(json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": c.kubernetes_version}, "paths": paths, "components": {"schemas": schemas}})).into_response()
}
