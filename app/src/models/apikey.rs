//! API keys for the inference gateway, their usage, and the request log.
use super::validate::{max_len, required};
use crate::error::{AppError, FieldErrors};
use serde::{Deserialize, Serialize};

/// Limits an operator may set per key; above these a limit means nothing.
pub const MAX_RPM: u32 = 1_000_000;
pub const MAX_TPM: u32 = 100_000_000;
pub const MAX_EXPIRY_DAYS: u32 = 3650;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NewApiKey {
    pub name: String,
    /// Deployment names the key may call; `None` for every deployment, now and later.
    #[serde(default)]
    pub scope: Option<Vec<String>>,
    /// Requests per minute; `None` for no limit.
    #[serde(default)]
    pub rpm: Option<u32>,
    /// Prompt + completion tokens per minute; `None` for no limit.
    #[serde(default)]
    pub tpm: Option<u32>,
    /// Days until the key stops working; `None` for never.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

fn positive_up_to(v: Option<u32>, max: u32) -> Result<(), String> {
    match v {
        Some(0) => Err("must be at least 1 (leave it empty for no limit)".into()),
        Some(n) if n > max => Err(format!("must be at most {max}")),
        _ => Ok(()),
    }
}

impl NewApiKey {
    pub fn validate(&self) -> Result<(), AppError> {
        let mut f = FieldErrors::new();
        f.check("name", required(&self.name).and_then(|_| max_len(&self.name, 64)));
        f.check(
            "scope",
            match &self.scope {
                Some(s) if s.is_empty() => Err("choose at least one deployment, or all deployments".into()),
                Some(s) => {
                    s.iter().try_for_each(|d| super::validate::dns1035_label(d).map_err(|m| format!("{d}: {m}")))
                }
                None => Ok(()),
            },
        );
        f.check("rpm", positive_up_to(self.rpm, MAX_RPM));
        f.check("tpm", positive_up_to(self.tpm, MAX_TPM));
        f.check("expires_in_days", positive_up_to(self.expires_in_days, MAX_EXPIRY_DAYS));
        f.into_result()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Expired,
    Revoked,
    /// The key is intact but its owner's account is disabled: refused until the account is enabled.
    OwnerDisabled,
}

impl KeyStatus {
    pub fn label(self) -> &'static str {
        match self {
            KeyStatus::Active => "Active",
            KeyStatus::Expired => "Expired",
            KeyStatus::Revoked => "Revoked",
            KeyStatus::OwnerDisabled => "Owner disabled",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    /// The key's visible start, e.g. `hmas_k3F9x2Qa`; the rest is never shown again.
    pub prefix: String,
    pub owner: String,
    pub scope: Option<Vec<String>>,
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub created_at: i64,
    pub status: KeyStatus,
}

/// A new key with its secret, returned once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreatedApiKey {
    pub key: ApiKeyView,
    pub secret: String,
}

/// Usage over a window, in buckets.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    pub from: i64,
    pub to: i64,
    pub bucket_ms: i64,
    pub points: Vec<UsagePoint>,
    pub by_key: Vec<UsageTotal>,
    pub by_deployment: Vec<UsageTotal>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UsagePoint {
    pub t: i64,
    pub requests: i64,
    pub errors: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageTotal {
    /// Key id (or `playground`), or deployment name.
    pub id: String,
    pub label: String,
    pub requests: i64,
    pub errors: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestLogRow {
    pub at: i64,
    pub key_id: String,
    pub key_name: String,
    pub deployment: String,
    pub model: String,
    pub path: String,
    pub status: u16,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub stream: bool,
    /// `ok`, `error`, `cancelled` (client went away) or `upstream_error`.
    pub outcome: String,
}

/// A model the caller may chat with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatModel {
    pub deployment: String,
    pub model: String,
    pub runtime: String,
    pub ready: bool,
}

/// Windows the usage charts offer, in hours.
pub const USAGE_WINDOWS: [(u32, &str); 3] = [(1, "1 h"), (24, "24 h"), (24 * 7, "7 d")];

pub fn validate_window(hours: u32) -> Result<(), AppError> {
    if USAGE_WINDOWS.iter().any(|(h, _)| *h == hours) {
        Ok(())
    } else {
        Err(AppError::field("hours", "must be 1, 24 or 168"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_fields() {
        let ok = NewApiKey { name: "ci".into(), ..Default::default() };
        assert!(ok.validate().is_ok());
        let cases = [
            (NewApiKey { name: " ".into(), ..Default::default() }, "name"),
            (NewApiKey { name: "x".repeat(65), ..Default::default() }, "name"),
            (NewApiKey { name: "a".into(), scope: Some(vec![]), ..Default::default() }, "scope"),
            (NewApiKey { name: "a".into(), scope: Some(vec!["Bad Name".into()]), ..Default::default() }, "scope"),
            (NewApiKey { name: "a".into(), rpm: Some(0), ..Default::default() }, "rpm"),
            (NewApiKey { name: "a".into(), tpm: Some(MAX_TPM + 1), ..Default::default() }, "tpm"),
            (NewApiKey { name: "a".into(), expires_in_days: Some(0), ..Default::default() }, "expires_in_days"),
        ];
        for (input, field) in cases {
            let e = input.validate().unwrap_err();
            assert!(e.field_error(field).is_some(), "{field}: {e:?}");
        }
        assert!(validate_window(24).is_ok());
        assert!(validate_window(5).unwrap_err().field_error("hours").is_some());
    }
}
