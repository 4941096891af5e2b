//! One suite, every backend: SQLite always, PostgreSQL when TEST_DATABASE_URL points at a server
//! (the README's test command starts one). Each run gets a fresh database.
use app::models::user::Role;
use server::store::{SessionStore, Store, StoreError, UserRecord, UserStore};

fn user(id: &str, name: &str, role: Role) -> UserRecord {
    UserRecord {
        id: id.into(),
        username: name.into(),
        display_name: format!("{name} display"),
        role,
        password_hash: "$argon2id$fake".into(),
        disabled: false,
        created_at: 1_000,
        updated_at: 1_000,
        last_login_at: None,
    }
}

async fn suite(store: Store) {
    // Migrations are idempotent.
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.ping().await.unwrap();

    // Users: insert, read back exactly, unique usernames.
    assert_eq!(store.count_users().await.unwrap(), 0);
    let admin = user("u1", "admin", Role::Admin);
    store.insert_user(&admin).await.unwrap();
    assert_eq!(store.user_by_id("u1").await.unwrap(), Some(admin.clone()));
    assert_eq!(store.user_by_username("admin").await.unwrap(), Some(admin.clone()));
    assert_eq!(store.user_by_username("nobody").await.unwrap(), None);
    let dup = store.insert_user(&user("u9", "admin", Role::User)).await.unwrap_err();
    assert!(matches!(dup, StoreError::Conflict(ref m) if m.contains("admin")), "{dup:?}");
    assert_eq!(store.count_users().await.unwrap(), 1, "a refused insert changes nothing");

    store.insert_user(&user("u2", "carol", Role::User)).await.unwrap();
    store.insert_user(&user("u3", "bob", Role::Operator)).await.unwrap();
    let names: Vec<_> = store.list_users().await.unwrap().into_iter().map(|u| u.username).collect();
    assert_eq!(names, ["admin", "bob", "carol"]);

    // The last active admin cannot be demoted or disabled; once there is another, it can.
    assert!(matches!(store.update_access("u1", Role::User, false, 2_000).await, Err(StoreError::Conflict(_))));
    assert!(matches!(store.update_access("u1", Role::Admin, true, 2_000).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.user_by_id("u1").await.unwrap().unwrap().role, Role::Admin, "refused change leaves the row");
    assert!(matches!(store.update_access("nope", Role::User, false, 2_000).await, Err(StoreError::NotFound)));
    let bob = store.update_access("u3", Role::Admin, false, 2_000).await.unwrap();
    assert_eq!((bob.role, bob.updated_at), (Role::Admin, 2_000));
    let a = store.update_access("u1", Role::Admin, true, 3_000).await.unwrap();
    assert!(a.disabled);
    store.update_access("u1", Role::Admin, false, 3_100).await.unwrap();

    // Passwords and last sign-in.
    store.set_password_hash("u2", "$argon2id$new", 4_000).await.unwrap();
    assert_eq!(store.user_by_id("u2").await.unwrap().unwrap().password_hash, "$argon2id$new");
    assert!(matches!(store.set_password_hash("nope", "x", 1).await, Err(StoreError::NotFound)));
    store.touch_login("u2", 5_000).await.unwrap();
    assert_eq!(store.user_by_id("u2").await.unwrap().unwrap().last_login_at, Some(5_000));

    // Sessions: valid, expired, disabled user, deletion.
    store.insert_session("h1", "u2", 10_000, 20_000).await.unwrap();
    store.insert_session("h2", "u2", 10_000, 30_000).await.unwrap();
    store.insert_session("h3", "u3", 10_000, 30_000).await.unwrap();
    assert_eq!(store.session_user("h1", 15_000).await.unwrap().map(|u| u.username).as_deref(), Some("carol"));
    assert_eq!(store.session_user("h1", 20_000).await.unwrap(), None, "expired");
    assert_eq!(store.session_user("missing", 15_000).await.unwrap(), None);
    assert!(store.insert_session("h9", "no-such-user", 1, 2).await.is_err(), "sessions need a user");
    store.update_access("u2", Role::User, true, 16_000).await.unwrap();
    assert_eq!(store.session_user("h2", 16_000).await.unwrap(), None, "disabled users have no session");
    store.update_access("u2", Role::User, false, 16_500).await.unwrap();
    assert!(store.session_user("h2", 17_000).await.unwrap().is_some());
    store.delete_session("h2").await.unwrap();
    assert_eq!(store.session_user("h2", 17_000).await.unwrap(), None);
    assert_eq!(store.purge_expired_sessions(25_000).await.unwrap(), 1, "h1 expired");
    assert_eq!(store.delete_user_sessions("u3").await.unwrap(), 1);
    assert_eq!(store.session_user("h3", 17_000).await.unwrap(), None);

    clusters(&store).await;
    keys_and_usage(&store).await;
    if store.backend() == server::store::Backend::Postgres {
        shared_buckets(&store).await;
    }
    policies(&store).await;
    store.close().await;
}

/// Replicas leasing from one key's bucket at once get, together, what the bucket holds and no
/// more: a new bucket starts full, leases are whole units, and the level is what is left.
async fn shared_buckets(store: &Store) {
    use server::store::LimitStore;
    let leases = (0..40).map(|_| async { store.lease("k1", "requests", 100, 3.0).await.unwrap() });
    let got = futures::future::join_all(leases).await;
    let granted: f64 = got.iter().map(|l| l.granted).sum();
    // 100 in the bucket, plus what refills (100 a minute) while the leases run.
    assert!((100.0..=102.0).contains(&granted), "granted {granted} of 100");
    assert!(got.iter().all(|l| l.granted.fract() == 0.0 && l.granted <= 3.0), "{got:?}");
    let last = store.lease("k1", "requests", 100, 50.0).await.unwrap();
    assert!(last.granted <= 1.0 && last.left < 1.0, "{last:?}");
    // Buckets are per key and per limit.
    assert_eq!(store.lease("k1", "tokens", 1000, 7.0).await.unwrap().granted, 7.0);
    assert_eq!(store.lease("k2", "requests", 5, 9.0).await.unwrap().granted, 5.0);
}

async fn policies(store: &Store) {
    use app::models::policy::{PolicyKind, SyncState, SyncStatus};
    use server::store::{PolicyRecord, PolicyStore};
    let rec = |kind, name: &str| PolicyRecord {
        kind,
        name: name.into(),
        spec: format!("{{\"name\":\"{name}\"}}"),
        sync: SyncStatus::default(),
        created_by: "admin".into(),
        created_at: 10,
        updated_at: 10,
    };
    store.insert_policy(&rec(PolicyKind::Strategy, "s1")).await.unwrap();
    // The same name is fine for another kind, a conflict for the same.
    store.insert_policy(&rec(PolicyKind::Profile, "s1")).await.unwrap();
    assert!(
        matches!(store.insert_policy(&rec(PolicyKind::Strategy, "s1")).await, Err(StoreError::Conflict(m)) if m.contains("s1"))
    );
    let sync = SyncStatus { state: SyncState::Error, message: "hub unreachable".into(), at: 20 };
    store.set_policy_sync(PolicyKind::Strategy, "s1", &sync).await.unwrap();
    let all = store.list_policies().await.unwrap();
    assert_eq!(all.len(), 2);
    let s1 = all.iter().find(|p| p.kind == PolicyKind::Strategy).unwrap();
    assert_eq!(s1.sync, sync);
    assert_eq!(s1.spec, rec(PolicyKind::Strategy, "s1").spec);
    store.update_policy(PolicyKind::Strategy, "s1", "{}", 30).await.unwrap();
    let s1 = store.list_policies().await.unwrap().into_iter().find(|p| p.kind == PolicyKind::Strategy).unwrap();
    assert_eq!((s1.spec.as_str(), s1.sync.state, s1.updated_at, s1.created_at), ("{}", SyncState::Pending, 30, 10));
    assert!(matches!(store.update_policy(PolicyKind::Failover, "nope", "{}", 1).await, Err(StoreError::NotFound)));
    assert!(store.delete_policy(PolicyKind::Strategy, "s1").await.unwrap());
    assert!(!store.delete_policy(PolicyKind::Strategy, "s1").await.unwrap());
    assert_eq!(store.list_policies().await.unwrap().len(), 1);
}

async fn keys_and_usage(store: &Store) {
    use server::store::{ApiKeyRecord, KeyStore, LogRecord, UsageDelta, UsageGroup, UsageStore};
    let key = ApiKeyRecord {
        id: "k1".into(),
        name: "ci".into(),
        prefix: "hmas-abcdefgh".into(),
        key_hash: "00".repeat(32),
        owner_id: "u2".into(),
        owner: "carol".into(),
        scope: Some(vec!["llama".into()]),
        rpm: Some(60),
        tpm: None,
        expires_at: Some(99_000),
        revoked_at: None,
        last_used_at: None,
        created_at: 1_000,
        owner_disabled: false,
    };
    store.insert_key(&key).await.unwrap();
    store
        .insert_key(&ApiKeyRecord {
            id: "k2".into(),
            key_hash: "11".repeat(32),
            owner_id: "u3".into(),
            owner: "bob".into(),
            scope: None,
            created_at: 2_000,
            ..key.clone()
        })
        .await
        .unwrap();
    assert!(store.insert_key(&ApiKeyRecord { id: "k3".into(), ..key.clone() }).await.is_err(), "hashes are unique");
    assert_eq!(store.key_by_id("k1").await.unwrap(), Some(key.clone()));
    let mine: Vec<_> = store.list_keys(Some("u2")).await.unwrap().into_iter().map(|k| k.id).collect();
    assert_eq!(mine, ["k1"]);
    let all: Vec<_> = store.list_keys(None).await.unwrap().into_iter().map(|k| k.id).collect();
    assert_eq!(all, ["k2", "k1"], "newest first");
    store.revoke_key("k1", 5_000).await.unwrap();
    assert!(matches!(store.revoke_key("k1", 6_000).await, Err(StoreError::NotFound)), "revoked once");
    store.touch_keys(&[("k1".into(), 7_000)]).await.unwrap();
    let k = store.key_by_id("k1").await.unwrap().unwrap();
    assert_eq!((k.revoked_at, k.last_used_at), (Some(5_000), Some(7_000)));

    // Usage adds up per row across writes; sums group by time, key and deployment.
    let delta = |minute: i64, key: &str, user: &str, dep: &str, n: i64| UsageDelta {
        minute,
        key_id: key.into(),
        user_id: user.into(),
        deployment: dep.into(),
        requests: n,
        errors: 1,
        prompt_tokens: 10 * n,
        completion_tokens: 100 * n,
    };
    let log = LogRecord {
        id: "r1".into(),
        at: 60_500,
        key_id: "k1".into(),
        user_id: "u2".into(),
        deployment: "llama".into(),
        model: "m".into(),
        path: "/v1/chat/completions".into(),
        status: 200,
        latency_ms: 12,
        ttft_ms: Some(3),
        prompt_tokens: 10,
        completion_tokens: 100,
        stream: true,
        outcome: "ok".into(),
    };
    store
        .record_usage(
            &[delta(60_000, "k1", "u2", "llama", 1), delta(120_000, "", "u3", "qwen", 2)],
            std::slice::from_ref(&log),
        )
        .await
        .unwrap();
    store.record_usage(&[delta(60_000, "k1", "u2", "llama", 3)], &[]).await.unwrap();
    let by_time = store.usage(0, 600_000, None, UsageGroup::Time { bucket_ms: 60_000 }).await.unwrap();
    assert_eq!(
        by_time.iter().map(|s| (s.t, s.requests, s.errors)).collect::<Vec<_>>(),
        [(60_000, 4, 2), (120_000, 2, 1)]
    );
    let wide = store.usage(0, 600_000, None, UsageGroup::Time { bucket_ms: 300_000 }).await.unwrap();
    assert_eq!((wide.len(), wide[0].completion_tokens), (1, 600));
    let by_key = store.usage(0, 600_000, Some("u2"), UsageGroup::Key).await.unwrap();
    assert_eq!(by_key.iter().map(|s| (s.group.as_str(), s.prompt_tokens)).collect::<Vec<_>>(), [("k1", 40)]);
    let by_dep = store.usage(0, 600_000, None, UsageGroup::Deployment).await.unwrap();
    assert_eq!(by_dep.iter().map(|s| s.group.as_str()).collect::<Vec<_>>(), ["llama", "qwen"]);
    assert_eq!(store.request_log(Some("u2"), 10).await.unwrap(), vec![log.clone()]);
    assert!(store.request_log(Some("u3"), 10).await.unwrap().is_empty());
    assert_eq!(store.prune_usage(100_000).await.unwrap(), 2, "the log row and the first minute");
    // A burst is written many rows per statement.
    let burst: Vec<LogRecord> =
        (0..130).map(|i| LogRecord { id: format!("b{i}"), at: 200_000 + i, ttft_ms: None, ..log.clone() }).collect();
    store.record_usage(&[], &burst).await.unwrap();
    let back = store.request_log(None, 500).await.unwrap();
    assert_eq!((back.len(), back[0].id.as_str(), back[129].id.as_str()), (130, "b129", "b0"));
    assert_eq!(store.usage(0, 600_000, None, UsageGroup::Key).await.unwrap().len(), 1);
}

async fn clusters(store: &Store) {
    use app::models::cluster::{NodeInfo, ZoneClass};
    use server::store::{ClusterRecord, ClusterState, ClusterStore};
    let node = NodeInfo {
        name: "n1".into(),
        ready: true,
        cpu: "8".into(),
        memory: "32Gi".into(),
        gpu_product: "NVIDIA-L4".into(),
        gpus: 1,
        gpu_memory_mib: 23034,
        nvlink: false,
        mig_capable: false,
        instance_type: "g6".into(),
    };
    let rec = ClusterRecord {
        id: "c1".into(),
        name: "east".into(),
        display_name: "East".into(),
        api_endpoint: "https://e:6443".into(),
        zone_class: ZoneClass::A,
        region: "us-east".into(),
        zone: "".into(),
        credentials: "v1:sealed".into(),
        kubernetes_version: "v1.36.0".into(),
        nodes: vec![node],
        state: ClusterState::Registering,
        state_message: "".into(),
        created_at: 10,
        updated_at: 10,
    };
    assert_eq!(store.upsert_cluster(&rec).await.unwrap(), rec);
    // Upsert by name keeps the id and creation time.
    let again = ClusterRecord {
        id: "other".into(),
        display_name: "East 2".into(),
        created_at: 99,
        updated_at: 20,
        ..rec.clone()
    };
    let got = store.upsert_cluster(&again).await.unwrap();
    assert_eq!((got.id.as_str(), got.created_at, got.display_name.as_str(), got.updated_at), ("c1", 10, "East 2", 20));
    assert_eq!(store.list_clusters().await.unwrap().len(), 1);
    store.set_cluster_state("east", ClusterState::Failed, "boom", 30).await.unwrap();
    let got = store.cluster_by_name("east").await.unwrap().unwrap();
    assert_eq!((got.state, got.state_message.as_str()), (ClusterState::Failed, "boom"));
    assert!(matches!(store.set_cluster_state("nope", ClusterState::Failed, "", 1).await, Err(StoreError::NotFound)));
    assert!(store.delete_cluster("east").await.unwrap());
    assert!(!store.delete_cluster("east").await.unwrap());
    assert!(store.cluster_by_name("east").await.unwrap().is_none());
}

#[tokio::test]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    suite(Store::connect(&url).await.unwrap()).await;
}

#[tokio::test]
async fn postgres() {
    let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
        // The README's test command always sets it and HMAS_REQUIRE_POSTGRES, so CI cannot skip this.
        assert!(std::env::var("HMAS_REQUIRE_POSTGRES").is_err(), "TEST_DATABASE_URL is required");
        eprintln!("postgres: TEST_DATABASE_URL not set, not run");
        return;
    };
    // The test command's server listens on a socket in its own directory, never on a TCP port
    // something else on the machine could be holding.
    if std::env::var("HMAS_REQUIRE_POSTGRES").is_ok() {
        let host = base.trim_start_matches("postgres://").split('@').nth(1).unwrap_or_default();
        assert!(host.starts_with("%2F"), "TEST_DATABASE_URL should name a socket directory: {base}");
    }
    let admin = Store::connect(&base).await.unwrap();
    let db = format!("hmas_conformance_{}", std::process::id());
    admin.execute_raw(&format!("DROP DATABASE IF EXISTS {db}")).await.unwrap();
    admin.execute_raw(&format!("CREATE DATABASE {db}")).await.unwrap();
    let url = match base.rsplit_once('/') {
        Some((head, _)) => format!("{head}/{db}"),
        None => panic!("TEST_DATABASE_URL must name a database"),
    };
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.backend(), server::store::Backend::Postgres);
    suite(store).await;
    admin.execute_raw(&format!("DROP DATABASE {db}")).await.unwrap();
}
