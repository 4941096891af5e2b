//! The auth layer in front of every route: resolves the session, attaches the user to the
//! request, and enforces `app::access` — the one table of who may reach what.
use super::AuthServiceImpl;
use crate::http::errors::error_response;
use app::access::{access_for, allows, Access};
use app::error::AppError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

pub async fn require_session(State(auth): State<AuthServiceImpl>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let access = access_for(&path);
    let is_api = path.starts_with("/api/");
    // Static files need no session lookup.
    if access == Access::Public && !is_api && path != "/login" {
        return next.run(req).await;
    }
    let user = match auth.resolve(req.headers()).await {
        Ok(u) => u,
        Err(e) => return error_response(&e),
    };
    let role = user.as_ref().map(|u| u.role);
    if let Some(u) = user {
        req.extensions_mut().insert(u);
    }
    if path == "/login" && role.is_some() {
        return Redirect::to("/").into_response();
    }
    if !allows(access, role) {
        if is_api {
            return error_response(&match role {
                None => AppError::unauthorized("sign in first"),
                Some(_) => AppError::forbidden("your role does not allow this"),
            });
        }
        if role.is_none() {
            let target = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let next_q = if target == "/" { String::new() } else { format!("?next={}", urlencode(target)) };
            return Redirect::to(&format!("/login{next_q}")).into_response();
        }
        // A signed-in user without the role still gets the page, which explains why it is empty.
    }
    next.run(req).await
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_next() {
        assert_eq!(super::urlencode("/users?x=1&y"), "/users%3Fx%3D1%26y");
    }
}
