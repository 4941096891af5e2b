//! API errors as the API server sends them: a `Status` object with the matching code and reason.
use super::resources::ResourceType;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{json, Value};

#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String, details: Option<Value>) -> Self {
        Self { code, reason, message, details }
    }

    fn details(res: &ResourceType, name: &str) -> Value {
        json!({"name": name, "group": res.group, "kind": res.plural})
    }

    pub fn not_found(res: &ResourceType, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{} \"{name}\" not found", res.qualified()), Some(Self::details(res, name)))
    }

    pub fn already_exists(res: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", res.qualified()),
            Some(Self::details(res, name)),
        )
    }

    pub fn conflict(res: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                res.qualified()
            ),
            Some(Self::details(res, name)),
        )
    }

    /// 422 with one cause, as for an invalid name.
    pub fn invalid(res: &ResourceType, name: &str, field: &str, value: &str, why: &str) -> Self {
        let message = format!("{} \"{name}\" is invalid: {field}: Invalid value: \"{value}\": {why}", res.kind);
        let mut d = Self::details(res, name);
        d["kind"] = json!(res.kind);
        d["causes"] = json!([{"reason": "FieldValueInvalid", "message": format!("Invalid value: \"{value}\": {why}"), "field": field}]);
        Self::new(422, "Invalid", message, Some(d))
    }

    /// 422 with several causes, as the API server answers a schema violation; `text` is the
    /// causes joined as it joins them.
    pub fn invalid_causes(res: &ResourceType, name: &str, text: &str, causes: Vec<Value>) -> Self {
        let kind = if res.group.is_empty() { res.kind.to_string() } else { format!("{}.{}", res.kind, res.group) };
        let d = json!({"name": name, "group": res.group, "kind": res.kind, "causes": causes});
        Self::new(422, "Invalid", format!("{kind} \"{name}\" is invalid: {text}"), Some(d))
    }

    /// A validating admission webhook's refusal: 403, its name and message.
    pub fn denied(webhook: &str, text: &str) -> Self {
        Self::new(403, "Forbidden", format!("admission webhook \"{webhook}\" denied the request: {text}"), None)
    }

    pub fn required(res: &ResourceType, field: &str) -> Self {
        let mut d = json!({"group": res.group, "kind": res.kind});
        d["causes"] = json!([{"reason": "FieldValueRequired", "message": "Required value", "field": field}]);
        Self::new(422, "Invalid", format!("{} \"\" is invalid: {field}: Required value", res.kind), Some(d))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into(), None)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized".into(), None)
    }

    pub fn forbidden(user: &str, verb: &str, res: &ResourceType, ns: Option<&str>) -> Self {
        let scope = match ns {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".into(),
        };
        Self::new(
            403,
            "Forbidden",
            format!(
                "{} is forbidden: User \"{user}\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
                res.qualified(),
                res.plural,
                res.group
            ),
            Some(json!({"group": res.group, "kind": res.plural})),
        )
    }

    /// A non-resource URL the caller may not `get`, worded as kube-apiserver words it.
    pub fn forbidden_path(user: &str, path: &str) -> Self {
        Self::new(403, "Forbidden", format!("forbidden: User \"{user}\" cannot get path \"{path}\""), None)
    }

    pub fn no_route(path: &str) -> Self {
        Self::new(404, "NotFound", format!("the server could not find the requested resource ({path})"), None)
    }

    pub fn method_not_allowed(verb: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({verb})"),
            None,
        )
    }

    pub fn unsupported_media(ct: &str) -> Self {
        Self::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got {ct})"), None)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message.into(), None)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message.into(), None)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message.into(), None)
    }

    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (code, axum::Json(self.to_status())).into_response()
    }
}
