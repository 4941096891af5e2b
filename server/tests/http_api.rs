//! The real `hmas` binary over HTTP: sign-in, sessions, roles, users, errors, health and metrics.
mod common;

use common::{call, client, login, Hmas};
use serde_json::json;

const ADMIN_PW: &str = "admin-password-1";

#[tokio::test]
async fn health_and_readiness() {
    let h = Hmas::start(Some(ADMIN_PW));
    let c = client();
    assert_eq!(c.get(h.url("/healthz")).send().await.unwrap().text().await.unwrap(), "ok");
    let r = c.get(h.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"), "every response carries a request id");
}

#[tokio::test]
async fn pages_and_api_need_a_session() {
    let h = Hmas::start(Some(ADMIN_PW));
    let c = client();
    let r = c.get(h.url("/users?tab=1")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?next=/users%3Ftab%3D1");
    let r = c.get(h.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Sign in"));
    let (s, body) = call(&c, &h, "/api/users/list", json!({})).await;
    assert_eq!((s, body["code"].as_str()), (401, Some("unauthorized")));
    let (s, body) = call(&c, &h, "/api/auth/me", json!({})).await;
    assert_eq!((s, body), (200, serde_json::Value::Null));
}

#[tokio::test]
async fn sign_in_refusals_are_clear_and_uniform() {
    let h = Hmas::start(Some(ADMIN_PW));
    let c = client();
    let (s1, wrong_pw) = call(&c, &h, "/api/auth/login", json!({"username": "admin", "password": "nope"})).await;
    let (s2, unknown) = call(&c, &h, "/api/auth/login", json!({"username": "ghost", "password": "nope"})).await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(wrong_pw, unknown, "no hint whether the user exists");
    assert_eq!(wrong_pw["message"], "wrong username or password");
    let (s, empty) = call(&c, &h, "/api/auth/login", json!({"username": "", "password": ""})).await;
    assert_eq!(s, 400);
    assert_eq!(empty["fields"]["username"], "is required");
    assert_eq!(empty["fields"]["password"], "is required");
    let (s, missing) = call(&c, &h, "/api/auth/login", json!({"username": "admin"})).await;
    assert_eq!(s, 400);
    assert!(missing["message"].as_str().unwrap().contains("password"), "{missing}");
    let (_, me) = call(&c, &h, "/api/auth/me", json!({})).await;
    assert!(me.is_null(), "refused sign-ins start no session");
}

#[tokio::test]
async fn session_cookie_is_locked_down_and_logout_ends_it() {
    let h = Hmas::start(Some(ADMIN_PW));
    let c = client();
    let r = c
        .post(h.url("/api/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let (_, me) = call(&c, &h, "/api/auth/me", json!({})).await;
    assert_eq!(me["username"], "admin");
    assert_eq!(me["role"], "admin");
    assert!(me.get("password_hash").is_none());
    let page = c.get(h.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("The fleet at a glance, live."));
    let (s, _) = call(&c, &h, "/api/auth/logout", json!({})).await;
    assert_eq!(s, 200);
    let (s, _) = call(&c, &h, "/api/users/list", json!({})).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn users_roles_and_their_limits() {
    let h = Hmas::start(Some(ADMIN_PW));
    let admin = login(&h, "admin", ADMIN_PW).await;

    // Create: validation names fields and changes nothing.
    let (s, e) =
        call(&admin, &h, "/api/users/create", json!({"username": "Bad Name", "role": "operator", "password": "short"}))
            .await;
    assert_eq!(s, 400);
    assert!(e["fields"]["username"].is_string() && e["fields"]["password"].is_string(), "{e}");
    let (s, e) =
        call(&admin, &h, "/api/users/create", json!({"username": "ops", "role": "root", "password": "long-enough-1"}))
            .await;
    assert_eq!(s, 400, "{e}");
    let (_, list) = call(&admin, &h, "/api/users/list", json!({})).await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    let (s, ops) = call(
        &admin,
        &h,
        "/api/users/create",
        json!({"username": "ops", "display_name": "Ops", "role": "operator", "password": "ops-password-1"}),
    )
    .await;
    assert_eq!(s, 200, "{ops}");
    let (s, dup) =
        call(&admin, &h, "/api/users/create", json!({"username": "ops", "role": "user", "password": "ops-password-1"}))
            .await;
    assert_eq!((s, dup["code"].as_str()), (409, Some("conflict")));
    assert!(dup["fields"]["username"].is_string());

    // An operator may not manage users: the API refuses, the page explains.
    let ops_c = login(&h, "ops", "ops-password-1").await;
    let (s, e) = call(&ops_c, &h, "/api/users/list", json!({})).await;
    assert_eq!((s, e["code"].as_str()), (403, Some("forbidden")));
    let page = ops_c.get(h.url("/users")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Not available to your role"), "operator sees why");
    assert!(!page.contains("users-table"), "and no user data");

    // Admins cannot lock themselves out.
    let admin_id = call(&admin, &h, "/api/auth/me", json!({})).await.1["id"].as_str().unwrap().to_string();
    let (s, _) = call(&admin, &h, "/api/users/set_disabled", json!({"id": admin_id, "disabled": true})).await;
    assert_eq!(s, 409);
    let (s, _) = call(&admin, &h, "/api/users/set_role", json!({"id": admin_id, "role": "user"})).await;
    assert_eq!(s, 409);
    let (s, _) = call(&admin, &h, "/api/users/set_role", json!({"id": "nope", "role": "user"})).await;
    assert_eq!(s, 404);

    // Promote, then disable: a disabled user's session ends at once.
    let ops_id = ops["id"].as_str().unwrap();
    let (s, v) = call(&admin, &h, "/api/users/set_role", json!({"id": ops_id, "role": "admin"})).await;
    assert_eq!((s, v["role"].as_str()), (200, Some("admin")));
    let (s, _) = call(&ops_c, &h, "/api/users/list", json!({})).await;
    assert_eq!(s, 200, "the new role applies to the existing session");
    let (s, v) = call(&admin, &h, "/api/users/set_disabled", json!({"id": ops_id, "disabled": true})).await;
    assert_eq!((s, v["disabled"].as_bool()), (200, Some(true)));
    let (s, _) = call(&ops_c, &h, "/api/users/list", json!({})).await;
    assert_eq!(s, 401);
    let (s, _) = call(&client(), &h, "/api/auth/login", json!({"username": "ops", "password": "ops-password-1"})).await;
    assert_eq!(s, 401, "disabled users cannot sign in");
    call(&admin, &h, "/api/users/set_disabled", json!({"id": ops_id, "disabled": false})).await;

    // Reset: generated once, the old password stops working.
    let (s, pw) = call(&admin, &h, "/api/users/reset_password", json!({"id": ops_id})).await;
    assert_eq!(s, 200);
    let pw = pw.as_str().unwrap().to_string();
    assert!(pw.len() >= 16);
    let (s, _) = call(&client(), &h, "/api/auth/login", json!({"username": "ops", "password": "ops-password-1"})).await;
    assert_eq!(s, 401);
    login(&h, "ops", &pw).await;
    let (s, e) = call(&admin, &h, "/api/users/reset_password", json!({"id": ops_id, "password": "short"})).await;
    assert_eq!(s, 400);
    assert!(e["fields"]["password"].is_string());
    let (s, none) =
        call(&admin, &h, "/api/users/reset_password", json!({"id": ops_id, "password": "chosen-password-1"})).await;
    assert_eq!((s, none), (200, serde_json::Value::Null), "a chosen password is not echoed");
}

#[tokio::test]
async fn hostile_requests_are_refused_and_change_nothing() {
    let h = Hmas::start(Some(ADMIN_PW));
    let admin = login(&h, "admin", ADMIN_PW).await;
    let big = "x".repeat(2 * 1024 * 1024);
    let (s, e) =
        call(&admin, &h, "/api/users/create", json!({"username": "big", "role": "user", "password": big})).await;
    assert_eq!((s, e["code"].as_str()), (413, Some("too_large")));

    let r = admin
        .post(h.url("/api/users/create"))
        .header("origin", "http://evil.example")
        .json(&json!({"username": "evil", "role": "admin", "password": "evil-password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let r = admin
        .post(h.url("/api/users/create"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let (s, e) = call(&admin, &h, "/api/no/such/thing", json!({})).await;
    assert_eq!((s, e["code"].as_str()), (404, Some("not_found")));

    let (_, list) = call(&admin, &h, "/api/users/list", json!({})).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "nothing was created");
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let h = Hmas::start(Some(ADMIN_PW));
    let c = client();
    for _ in 0..3 {
        c.get(h.url("/healthz")).send().await.unwrap();
    }
    call(&c, &h, "/api/auth/me", json!({})).await;
    let text = c.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"hmas_http_requests_total{method="GET",route="/healthz",status="200"} 3"#), "{text}");
    assert!(text.contains(r#"route="/api/auth/me",status="200"} 1"#), "{text}");
    assert!(text.contains("# TYPE hmas_http_request_duration_seconds histogram"));
}

#[tokio::test]
async fn first_start_prints_a_generated_password_once_and_sigterm_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut h = Hmas::start_in(&dir, None);
    let line = h.stdout.iter().find(|l| l.contains("created user 'admin'")).expect("password printed").clone();
    let pw = line.split_whitespace().last().unwrap().to_string();
    login(&h, "admin", &pw).await;
    assert!(h.terminate(), "graceful exit on SIGTERM");

    let h2 = Hmas::start_in(&dir, None);
    assert!(!h2.stdout.iter().any(|l| l.contains("created user")), "printed only once");
    login(&h2, "admin", &pw).await;
    let db = std::fs::read(dir.join("hmas.db")).unwrap();
    assert!(!db.windows(pw.len()).any(|w| w == pw.as_bytes()), "the password is not stored in plaintext");
}

/// Server rendering settles: each page's resources are resolved once into the stream, not again
/// and again while it streams (a resource read outside its own boundary made the page guard
/// re-create the page until the stream ended: seconds and megabytes).
#[tokio::test]
async fn every_page_renders_its_resources_once() {
    let h = Hmas::start(Some(ADMIN_PW));
    let c = login(&h, "admin", ADMIN_PW).await;
    common::fleet::register(&c, &h, "gpu-general", "b").await;
    for page in
        ["/", "/clusters", "/clusters/gpu-general", "/deployments", "/policies", "/playground", "/keys", "/users"]
    {
        let r = c.get(h.url(page)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{page}");
        let html = r.text().await.unwrap();
        let resolved = html.matches("__RESOLVED_RESOURCES[").count();
        // A page holds a handful; the fault made thousands.
        assert!(resolved <= 40, "{page}: {resolved} resources resolved into the page ({} bytes)", html.len());
    }
}
