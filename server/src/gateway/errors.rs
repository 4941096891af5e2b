//! Errors in OpenAI's shape, so every OpenAI client reports them as it would OpenAI's own.
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use serde_json::json;

pub fn openai_error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    let kind = match status.as_u16() {
        400 | 413 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        _ => "api_error",
    };
    let message = message.to_string();
    // Whatever the message quotes, the answer stays small.
    let message = app::models::validate::clip(&message, 2000);
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body.to_string()).into_response()
}

/// The same, as the last event of a stream that broke after it began.
pub fn stream_error_event(message: &str) -> bytes::Bytes {
    let body = json!({"error": {"message": message, "type": "api_error", "param": null, "code": "upstream_error"}});
    bytes::Bytes::from(format!("data: {body}\n\n"))
}
