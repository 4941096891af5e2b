use super::validate::{max_len, required};
use crate::error::{AppError, FieldErrors};
use serde::{Deserialize, Serialize};

/// Ordered by power: every role can do what the ones below it can.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Operator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Operator, Role::User];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::User => "user",
        }
    }

    pub fn parse(s: &str) -> Result<Role, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            "user" => Ok(Role::User),
            _ => Err("must be one of admin, operator, user".into()),
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Role::Admin => "Users, clusters, policies and everything below",
            Role::Operator => "Deploys and deletes model instances",
            Role::User => "Playground and own API keys",
        }
    }
}

/// The signed-in user as the rest of the system sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: Role,
}

/// A user as listed to admins. Never carries the password hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

pub const MIN_PASSWORD_LEN: usize = 10;
pub const MAX_PASSWORD_LEN: usize = 256;

pub fn validate_username(v: &str) -> Result<(), String> {
    required(v)?;
    if v.len() < 2 || v.len() > 32 {
        return Err("must be 2 to 32 characters".into());
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.');
    if !v.starts_with(|c: char| c.is_ascii_lowercase()) || !v.chars().all(ok_char) {
        return Err("must start with a lowercase letter and use only a-z, 0-9, '-', '_' and '.'".into());
    }
    Ok(())
}

pub fn validate_new_password(v: &str) -> Result<(), String> {
    if v.chars().count() < MIN_PASSWORD_LEN {
        return Err(format!("must be at least {MIN_PASSWORD_LEN} characters"));
    }
    max_len(v, MAX_PASSWORD_LEN)
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginInput {
    pub username: String,
    pub password: String,
}

impl LoginInput {
    /// Only shape checks: whether the account exists is the server's to say, in one message.
    pub fn validate(&self) -> Result<(), AppError> {
        let mut f = FieldErrors::new();
        f.check("username", required(&self.username).and_then(|_| max_len(&self.username, 64)));
        f.check("password", required(&self.password).and_then(|_| max_len(&self.password, MAX_PASSWORD_LEN)));
        f.into_result()
    }
}

/// Sign-in refused for a while after repeated wrong passwords: for one account (whoever tries)
/// or for one client address (whichever account it tries).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lockout {
    pub kind: LockoutKind,
    /// The username or the address.
    pub subject: String,
    /// Wrong passwords in the current window.
    pub failures: u32,
    /// Until when sign-in is refused (ms since the epoch).
    pub until: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockoutKind {
    Account,
    Address,
}

impl LockoutKind {
    pub fn label(self) -> &'static str {
        match self {
            LockoutKind::Account => "Account",
            LockoutKind::Address => "Address",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    pub username: String,
    #[serde(default)]
    pub display_name: String,
    pub role: Role,
    pub password: String,
}

impl NewUser {
    pub fn validate(&self) -> Result<(), AppError> {
        let mut f = FieldErrors::new();
        f.check("username", validate_username(&self.username));
        f.check("display_name", max_len(&self.display_name, 64));
        f.check("password", validate_new_password(&self.password));
        f.into_result()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetPasswordInput {
    pub id: String,
    /// Empty: the server generates one and returns it once.
    #[serde(default)]
    pub password: String,
}

impl SetPasswordInput {
    pub fn validate(&self) -> Result<(), AppError> {
        let mut f = FieldErrors::new();
        f.check("id", required(&self.id));
        if !self.password.is_empty() {
            f.check("password", validate_new_password(&self.password));
        }
        f.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["admin", "ops-1", "jane.doe", "a_b"] {
            assert!(validate_username(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "Admin", "1abc", "has space", "ü-user", &"a".repeat(33)] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn new_user_reports_all_fields() {
        let e =
            NewUser { username: "X".into(), display_name: "d".repeat(65), role: Role::User, password: "short".into() }
                .validate()
                .unwrap_err();
        assert!(e.field_error("username").is_some());
        assert!(e.field_error("display_name").is_some());
        assert!(e.field_error("password").is_some());
    }

    #[test]
    fn login_requires_both_fields() {
        let e = LoginInput::default().validate().unwrap_err();
        assert_eq!(e.fields.len(), 2);
        assert!(LoginInput { username: "a".into(), password: "b".into() }.validate().is_ok());
    }

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::User);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Ok(r));
        }
        assert!(Role::parse("root").is_err());
        assert_eq!(serde_json::to_string(&Role::Operator).unwrap(), "\"operator\"");
    }
}
