//! The one error type every server fn returns. It travels as JSON, so scripts see the same
//! `{code, message, fields}` body the dashboard does, and forms can put `fields` next to inputs.

use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;
use server_fn::error::{FromServerFnError, ServerFnErrorErr};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Invalid,
    NotFound,
    Conflict,
    Unauthorized,
    Forbidden,
    TooLarge,
    /// Too many attempts: wait `retry_after` seconds.
    TooManyRequests,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Invalid => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Invalid => "invalid",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    /// Field name → what is wrong with it; only for `invalid`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    /// Seconds to wait before trying again; only for `too_many_requests` (also sent as `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), fields: BTreeMap::new(), retry_after: None }
    }
    pub fn too_many_requests(message: impl Into<String>, retry_after: u64) -> Self {
        Self { retry_after: Some(retry_after.max(1)), ..Self::new(ErrorCode::TooManyRequests, message) }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }
    /// An `invalid` error about one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut fields = BTreeMap::new();
        fields.insert(field.to_string(), message.clone());
        Self { code: ErrorCode::Invalid, message: format!("{field}: {message}"), fields, retry_after: None }
    }

    /// The error as it goes on the wire: messages bounded, so whatever a message quotes (a
    /// caller's input, a member's answer) cannot make the answer large.
    pub fn capped(mut self) -> Self {
        const MESSAGE_MAX: usize = 2000;
        const FIELD_MAX: usize = 400;
        let cap = |s: &mut String, max: usize| {
            if s.len() > max {
                let n = crate::models::validate::clip(s, max).len();
                s.truncate(n);
                s.push('…');
            }
        };
        cap(&mut self.message, MESSAGE_MAX);
        self.fields = std::mem::take(&mut self.fields)
            .into_iter()
            .take(64)
            .map(|(mut k, mut v)| {
                cap(&mut k, 128);
                cap(&mut v, FIELD_MAX);
                (k, v)
            })
            .collect();
        self
    }

    /// The message for one field, if that field is what is wrong.
    pub fn field_error(&self, field: &str) -> Option<String> {
        self.fields.get(field).cloned()
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AppError {}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // The request body did not decode: name what serde named.
            // On the server, Deserialization is the request body failing to decode into the fn's
            // arguments; the response side of a well-formed API does not fail that way.
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::MissingArg(m) | ServerFnErrorErr::Deserialization(m) => {
                AppError::new(ErrorCode::Invalid, format!("invalid request body: {m}"))
            }
            ServerFnErrorErr::Request(m) => AppError::unavailable(format!("the server could not be reached: {m}")),
            other => AppError::internal(other.to_string()),
        }
    }
}

/// Collects per-field problems so a whole form is reported at once.
#[derive(Default, Debug)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn check(&mut self, field: &str, result: Result<(), String>) {
        if let Err(m) = result {
            self.0.entry(field.to_string()).or_insert(m);
        }
    }
    pub fn into_result(self) -> Result<(), AppError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let message = self.0.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("; ");
        Err(AppError { code: ErrorCode::Invalid, message, fields: self.0, retry_after: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_name_every_field() {
        let mut f = FieldErrors::new();
        f.check("username", Err("is required".into()));
        f.check("password", Ok(()));
        f.check("role", Err("unknown role".into()));
        let e = f.into_result().unwrap_err();
        assert_eq!(e.code, ErrorCode::Invalid);
        assert_eq!(e.field_error("username").as_deref(), Some("is required"));
        assert_eq!(e.field_error("role").as_deref(), Some("unknown role"));
        assert!(e.field_error("password").is_none());
        assert_eq!(e.message, "role: unknown role; username: is required");
    }

    #[test]
    fn json_shape_is_stable() {
        let e = AppError::field("name", "must be short");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["code"], "invalid");
        assert_eq!(v["fields"]["name"], "must be short");
        let back: AppError = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
        let nf = serde_json::to_value(AppError::not_found("x")).unwrap();
        assert!(nf.get("fields").is_none());
    }

    #[test]
    fn undecodable_body_is_invalid() {
        let e = AppError::from_server_fn_error(ServerFnErrorErr::Args("missing field `username`".into()));
        assert_eq!(e.code, ErrorCode::Invalid);
        assert!(e.message.contains("username"));
        assert_eq!(e.code.http_status(), 400);
    }
}
