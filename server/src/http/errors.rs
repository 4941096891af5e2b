//! Errors on the wire: `AppError` as JSON with the HTTP status its code stands for.
use app::error::{AppError, ErrorCode};
use app::services::RequestBody;
use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};

pub fn error_response(e: &AppError) -> Response {
    let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&e.clone().capped()).unwrap_or_default();
    let mut res =
        (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response();
    if let Some(s) = e.retry_after {
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    res
}

/// Server fns answer every error with 500; give each the status its code stands for, so scripts
/// and proxies see 400/401/403/404/409 like any HTTP API. The body is read first (it is small:
/// `body_limit` ran) and kept beside the request, so the endpoint can refuse fields it does not
/// read and a body that does not decode is answered with the field at fault.
pub async fn server_fn_status(req: Request, next: Next) -> Response {
    let is_call = req.uri().path().starts_with("/api/") && req.method() == http::Method::POST;
    let (req, sent) = if is_call {
        let (mut parts, body) = req.into_parts();
        let Ok(bytes) = to_bytes(body, API_BODY_LIMIT as usize).await else {
            return error_response(&too_large());
        };
        parts.extensions.insert(RequestBody(std::sync::Arc::from(&bytes[..])));
        (Request::from_parts(parts, Body::from(bytes.clone())), Some(bytes))
    } else {
        (req, None)
    };
    let res = next.run(req).await;
    if res.status() != StatusCode::INTERNAL_SERVER_ERROR || !res.headers().contains_key("serverfnerror") {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let mut bytes = to_bytes(body, 16 << 20).await.unwrap_or_default();
    if let Ok(mut e) = serde_json::from_slice::<AppError>(&bytes) {
        if let Some(sent) = &sent {
            name_the_field(&mut e, sent);
        }
        parts.status = StatusCode::from_u16(e.code.http_status()).unwrap_or(parts.status);
        if let Some(s) = e.retry_after {
            parts.headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        bytes = serde_json::to_vec(&e.capped()).unwrap_or_default().into();
        parts.headers.remove(header::CONTENT_LENGTH);
    }
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(bytes))
}

/// A body that did not decode: serde says where (`at line 1 column 42`), not which field; the
/// field is the JSON path at that place in what was sent.
pub fn name_the_field(e: &mut AppError, sent: &[u8]) {
    if e.code != ErrorCode::Invalid || !e.fields.is_empty() || !e.message.starts_with("invalid request body") {
        return;
    }
    let message = e.message.clone();
    let Some((head, at)) = message.rsplit_once(" at line ") else { return };
    let Some((line, column)) = at.split_once(" column ") else { return };
    let (Ok(line), Ok(column)) = (line.trim().parse::<usize>(), column.trim().parse::<usize>()) else { return };
    let start: usize = sent.split(|b| *b == b'\n').take(line.saturating_sub(1)).map(|l| l.len() + 1).sum();
    let offset = (start + column.saturating_sub(1)).min(sent.len());
    let what = head.trim_start_matches("invalid request body: ").trim();
    // "missing field `x`" / "unknown field `x`, expected …" are about a key of the object there.
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|p| what.strip_prefix(p))
        .and_then(|r| r.split_once('`'))
        .map(|(name, _)| name.to_string());
    let path = json_path_at(&sent[..offset], named.is_some());
    let field = match (path.is_empty(), named) {
        (_, Some(n)) if path.is_empty() => n,
        (_, Some(n)) => format!("{path}.{n}"),
        (true, None) => return,
        (false, None) => path,
    };
    let field = app::models::validate::clip(&field, 200).to_string();
    e.message = format!("{field}: {what}");
    e.fields.insert(field, what.to_string());
}

/// The JSON path (`spec.settings[1].value`) of the place where `prefix` ends. With
/// `object_only`, the path of the object there rather than of its current key.
pub fn json_path_at(prefix: &[u8], object_only: bool) -> String {
    enum Frame {
        Object { key: Option<String>, expect_key: bool },
        Array(usize),
    }
    let mut stack: Vec<Frame> = Vec::new();
    let (mut in_string, mut escaped, mut buf) = (false, false, Vec::new());
    for &b in prefix {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => {
                    in_string = false;
                    if let Some(Frame::Object { key, expect_key: e @ true }) = stack.last_mut() {
                        *key = Some(String::from_utf8_lossy(&buf).into_owned());
                        *e = false;
                    }
                }
                _ => {}
            }
            if in_string {
                buf.push(b);
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                buf.clear();
            }
            b'{' => stack.push(Frame::Object { key: None, expect_key: true }),
            b'[' => stack.push(Frame::Array(0)),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { expect_key, .. }) => *expect_key = true,
                Some(Frame::Array(i)) => *i += 1,
                None => {}
            },
            _ => {}
        }
    }
    let keep = if object_only { stack.len().saturating_sub(1) } else { stack.len() };
    let mut path = String::new();
    for f in &stack[..keep] {
        match f {
            Frame::Object { key: Some(k), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array(i) => path.push_str(&format!("[{i}]")),
        }
    }
    path
}

/// Largest `/api` body: room for kubeconfigs (at most 256 KiB) in JSON.
const API_BODY_LIMIT: u64 = 1024 * 1024;

fn too_large() -> AppError {
    AppError::new(ErrorCode::TooLarge, format!("request body is larger than {} KiB", API_BODY_LIMIT / 1024))
}

/// Refuses bodies over `API_BODY_LIMIT` bytes before anything reads them.
pub async fn body_limit(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > API_BODY_LIMIT) {
        let mut res = error_response(&too_large());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn named(sent: &str, serde_message: &str) -> AppError {
        let mut e = AppError::new(ErrorCode::Invalid, format!("invalid request body: {serde_message}"));
        name_the_field(&mut e, sent.as_bytes());
        e
    }

    #[test]
    fn decode_errors_name_the_field_where_serde_stopped() {
        let sent = r#"{"spec": {"model": "m", "replicas": -1}}"#;
        let col = sent.find("-1").unwrap() + 2;
        let e = named(sent, &format!("invalid value: integer `-1`, expected u32 at line 1 column {col}"));
        assert_eq!(e.fields.keys().collect::<Vec<_>>(), ["spec.replicas"], "{e:?}");
        assert!(e.message.starts_with("spec.replicas: invalid value"), "{}", e.message);
        let sent = "{\"spec\": {\"model\": \"m\",\n \"settings\": [{\"k\": 1}, {\"k\": true}]}}";
        let col = sent.lines().nth(1).unwrap().find("true").unwrap() + 4;
        let e = named(sent, &format!("invalid type: boolean `true`, expected a string at line 2 column {col}"));
        assert_eq!(e.fields.keys().collect::<Vec<_>>(), ["spec.settings[1].k"], "{e:?}");
        let sent = r#"{"spec": {"model": "m"}}"#;
        let e = named(sent, &format!("missing field `runtime` at line 1 column {}", sent.len() - 1));
        assert_eq!(e.fields.keys().collect::<Vec<_>>(), ["spec.runtime"], "{e:?}");
        let e = named("{}", "missing field `spec` at line 1 column 2");
        assert_eq!(e.fields.keys().collect::<Vec<_>>(), ["spec"], "{e:?}");
        let e = named(r#"{"a": "x\"y", "b": 1}"#, "invalid type at line 1 column 20");
        assert_eq!(e.fields.keys().collect::<Vec<_>>(), ["b"], "escaped quotes do not end strings: {e:?}");
        let untouched = named("not json", "expected value at line 1 column 1");
        assert!(untouched.fields.is_empty());
    }
}
