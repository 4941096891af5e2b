//! Who may reach what: the one table of role requirements. The server's auth layer enforces it
//! for every HTTP request, server fns enforce it again when SSR calls them in-process, and the
//! navigation uses it to show only what the user may open.

use crate::models::user::Role;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reachable without a session (sign-in, health, static files).
    Public,
    /// Needs a session whose role is at least this.
    Role(Role),
}

const PUBLIC_PREFIXES: &[&str] = &["/pkg/", "/assets/"];
const PUBLIC_PATHS: &[&str] = &[
    "/login",
    "/api/auth/login",
    "/api/auth/me",
    "/healthz",
    "/readyz",
    "/metrics",
    "/favicon.ico",
    "/favicon.svg",
    "/robots.txt",
];

/// Most specific first; the first prefix that matches decides.
const RULES: &[(&str, Role)] = &[
    ("/api/auth/", Role::User),
    ("/api/clusters/list", Role::User),
    ("/api/clusters/get", Role::User),
    ("/api/clusters/drill-status", Role::User),
    ("/api/clusters/", Role::Admin),
    ("/api/deployments/list", Role::User),
    ("/api/deployments/get", Role::User),
    ("/api/deployments/options", Role::User),
    ("/api/deployments/", Role::Operator),
    ("/api/keys/", Role::User),
    ("/api/playground/", Role::User),
    ("/api/tokens/", Role::User),
    ("/api/policies/list", Role::User),
    ("/api/policies/", Role::Admin),
    ("/api/users/", Role::Admin),
    ("/users", Role::Admin),
];

pub fn access_for(path: &str) -> Access {
    if PUBLIC_PATHS.contains(&path) || PUBLIC_PREFIXES.iter().any(|p| path.starts_with(p)) {
        return Access::Public;
    }
    for (prefix, role) in RULES {
        if path.starts_with(prefix) {
            return Access::Role(*role);
        }
    }
    // An API not named above is an admin's until someone decides otherwise.
    if path.starts_with("/api/") {
        Access::Role(Role::Admin)
    } else {
        Access::Role(Role::User)
    }
}

pub fn allows(access: Access, role: Option<Role>) -> bool {
    match access {
        Access::Public => true,
        Access::Role(need) => role.is_some_and(|r| r >= need),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases = [
            ("/login", None, true),
            ("/pkg/hmas.js", None, true),
            ("/", None, false),
            ("/", Some(Role::User), true),
            ("/clusters", Some(Role::User), true),
            ("/users", Some(Role::Operator), false),
            ("/users", Some(Role::Admin), true),
            ("/api/auth/me", Some(Role::User), true),
            ("/api/auth/me", None, true),
            ("/api/auth/logout", None, false),
            ("/metrics", None, true),
            ("/api/users/list", Some(Role::Operator), false),
            ("/api/users/list", Some(Role::Admin), true),
            ("/api/something/new", Some(Role::Operator), false),
            ("/api/clusters/list", Some(Role::User), true),
            ("/api/clusters/register", Some(Role::Operator), false),
            ("/api/clusters/release", Some(Role::Admin), true),
            ("/clusters/gpu-hpc", Some(Role::User), true),
            ("/api/auth/login", None, true),
            ("/api/deployments/list", Some(Role::User), true),
            ("/api/deployments/create", Some(Role::User), false),
            ("/api/deployments/create", Some(Role::Operator), true),
            ("/api/deployments/delete", Some(Role::Admin), true),
            ("/deployments/llama3-2-1b", Some(Role::User), true),
        ];
        for (path, role, ok) in cases {
            assert_eq!(allows(access_for(path), role), ok, "{path} {role:?}");
        }
    }
}
