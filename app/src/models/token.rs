//! Access tokens: how administrators' scripts call `/api` without a browser session. Each is
//! made by a signed-in user for their own role or a lesser one, shown once, kept only as a hash,
//! and expires.
use super::user::Role;
use super::validate::{max_len, required};
use crate::error::{AppError, FieldErrors};
use serde::{Deserialize, Serialize};

pub const TOKEN_PREFIX: &str = "hmas-at-";
pub const MAX_TOKEN_DAYS: u32 = 365;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccessToken {
    pub name: String,
    /// What the token may do; at most the creator's own role (the default).
    #[serde(default)]
    pub role: Option<Role>,
    /// Days until it stops working (1–365).
    pub expires_in_days: u32,
}

impl NewAccessToken {
    /// `creator`: the role of who makes it; a token never does more than its maker.
    pub fn validate(&self, creator: Role) -> Result<(), AppError> {
        let mut f = FieldErrors::new();
        f.check("name", required(&self.name).and_then(|_| max_len(&self.name, 64)));
        f.check(
            "role",
            match self.role {
                Some(r) if r > creator => Err(format!("may not exceed your own role ({})", creator.as_str())),
                _ => Ok(()),
            },
        );
        f.check(
            "expires_in_days",
            if (1..=MAX_TOKEN_DAYS).contains(&self.expires_in_days) {
                Ok(())
            } else {
                Err(format!("must be from 1 to {MAX_TOKEN_DAYS}"))
            },
        );
        f.into_result()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenStatus {
    Active,
    Expired,
    Revoked,
}

impl TokenStatus {
    pub fn label(self) -> &'static str {
        match self {
            TokenStatus::Active => "Active",
            TokenStatus::Expired => "Expired",
            TokenStatus::Revoked => "Revoked",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenView {
    pub id: String,
    pub name: String,
    /// The token's visible start; the rest is never shown again.
    pub prefix: String,
    pub owner: String,
    pub role: Role,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub created_at: i64,
    pub status: TokenStatus,
}

/// A new token with its secret, returned once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedAccessToken {
    pub token: AccessTokenView,
    pub secret: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_never_exceeds_its_maker() {
        let t = NewAccessToken { name: "ci".into(), role: Some(Role::Admin), expires_in_days: 30 };
        assert!(t.validate(Role::Admin).is_ok());
        let e = t.validate(Role::Operator).unwrap_err();
        assert!(e.fields.contains_key("role"), "{e:?}");
        let t = NewAccessToken { name: String::new(), role: None, expires_in_days: 0 };
        let e = t.validate(Role::User).unwrap_err();
        assert!(e.fields.contains_key("name") && e.fields.contains_key("expires_in_days"));
    }
}
