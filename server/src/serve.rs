//! Start-up and shutdown of `hmas serve`.
use crate::auth::AuthServiceImpl;
use crate::config::{HubSettings, Settings, SimArgs};
use crate::gateway::Gateway;
use crate::http::{router, AppState};
use crate::hub::KubeClient;
use crate::members::Members;
use crate::metrics::Metrics;
use crate::reconcile::clusters::ClusterPass;
use crate::reconcile::deployments::Deployer;
use crate::reconcile::observer::{publish_routes, Freshness, Observer};
use crate::reconcile::policies::PolicyPass;
use crate::reconcile::requeue::Requeue;
use crate::reconcile::{Parts, Reconcilers};
use crate::secrets::Sealer;
use crate::services::clusters::ClustersServiceImpl;
use crate::services::deployments::DeploymentsServiceImpl;
use crate::services::gateway::GatewayServiceImpl;
use crate::services::policies::PoliciesServiceImpl;
use crate::services::users::UsersServiceImpl;
use crate::sim::{Sim, SimConfig, Topology};
use crate::store::{now_ms, SessionStore, Store, UsageStore};
use app::services::Services;
use leptos::prelude::LeptosOptions;
use std::sync::Arc;
use std::time::Duration;

pub async fn open_store(settings: &Settings) -> Result<Store, String> {
    if settings.database_url.starts_with("sqlite:") {
        create_private_dir(&settings.data_dir)?;
    }
    let store = Store::connect(&settings.database_url).await.map_err(|e| format!("database: {e}"))?;
    store.migrate().await.map_err(|e| format!("database: {e}"))?;
    Ok(store)
}

fn create_private_dir(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("data-dir {}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

pub async fn run(settings: Settings) -> Result<(), String> {
    if settings.database_url.starts_with("sqlite:") {
        create_private_dir(&settings.data_dir)?;
    }
    // Before anything writes: a second process on the same SQLite database stops here.
    let (leadership, _claim) = crate::leader::claim(&settings.database_url, &settings.data_dir).await?;
    let store = open_store(&settings).await?;
    let master_key = std::env::var("HMAS_MASTER_KEY").ok();
    let sealer = Sealer::load(master_key.as_deref(), &settings.data_dir)?;
    let auth =
        AuthServiceImpl::with_throttle(store.clone(), settings.session_ttl, settings.secure_cookies, settings.sign_in);
    let given = std::env::var("HMAS_ADMIN_PASSWORD").ok().filter(|p| !p.is_empty());
    match auth.ensure_admin(given.as_deref()).await {
        Ok(Some(pw)) => {
            // The one time this password exists outside the hash: print it for the operator, not to the log.
            println!("\n  First start: created user 'admin' with password  {pw}\n  Sign in and change it under Users. It is not shown again.\n");
        }
        Ok(None) => {}
        Err(e) => return Err(format!("creating the first admin: {e}")),
    }

    // The embedded default: a simulated hub in this process, reached over HTTPS like a real one.
    let (_sim, hub_kubeconfig) = match &settings.hub {
        HubSettings::Simulated { topology, time_scale, tokens_per_second, hub_failover } => {
            let dir = settings.data_dir.join("sim");
            let sim =
                start_sim(topology.as_deref(), *time_scale, *tokens_per_second, *hub_failover, None, &dir).await?;
            tracing::info!(hub = %sim.hub.url(), members = ?sim.member_names(), kubeconfigs = %dir.display(), "simulated hub started");
            println!("Simulated hub: {} (kubeconfigs in {})", sim.hub.url(), dir.display());
            (Some(sim), dir.join("hub.kubeconfig"))
        }
        HubSettings::Kubeconfig(p) => (None, p.clone()),
    };
    let hub =
        KubeClient::from_kubeconfig_file(&hub_kubeconfig, None).await.map_err(|e| format!("hub-kubeconfig: {e}"))?;
    // An unreachable hub is reported, not fatal: the database stays the source of truth.
    match hub.version().await {
        Ok(v) => tracing::info!(server = %hub.server, version = %v, "hub reachable"),
        Err(e) => tracing::warn!(server = %hub.server, error = %e, "hub not reachable yet"),
    }
    let listener =
        tokio::net::TcpListener::bind(settings.addr).await.map_err(|e| format!("addr {}: {e}", settings.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let leptos_options = LeptosOptions::builder()
        .output_name(crate::http::assets::bundle_name(&settings.site_root))
        .site_root(settings.site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build();
    if !settings.site_root.join("pkg").exists() {
        tracing::warn!(site_root = %settings.site_root.display(), "site root has no pkg/: pages will render without styles and scripts (build it with scripts/build-site)");
    }
    let members = Members::new(store.clone(), sealer.clone());
    let clusters = ClustersServiceImpl::new(store.clone(), hub.clone(), sealer, members.clone());

    let wake = crate::changes::Wake::default();
    let metrics = Metrics::default();
    // The reconcilers: the only writers to the hub, run by the leader.
    let deployer = Deployer::new(store.clone(), hub.clone(), members.clone(), Requeue::new("deployments", &metrics));
    let freshness = Freshness::default();
    let observer = Observer::new(store.clone(), hub.clone(), members.clone(), deployer.clone(), freshness.clone());
    let policy_pass = PolicyPass::new(store.clone(), hub.clone(), deployer.clone());
    let cluster_pass =
        ClusterPass::new(store.clone(), hub.clone(), members.clone(), Requeue::new("clusters", &metrics));

    let deployments = DeploymentsServiceImpl::new(store.clone(), members.clone(), freshness, wake.clone());
    let (gateway, recorder) = Gateway::start(store.clone(), auth.clone(), settings.gateway.clone());
    gateway.reload_keys().await.map_err(|e| format!("database: {e}"))?;
    publish_routes(&store, &gateway).await;
    let peers = crate::changes::listen(&settings.database_url, &store, gateway.clone(), wake.clone());
    let policies = PoliciesServiceImpl::new(
        store.clone(),
        hub.clone(),
        members,
        policy_pass.clone(),
        leadership.clone(),
        wake.clone(),
    );
    // A process that leads from the start (SQLite's only one) settles interrupted registrations
    // before it answers anyone; one that becomes leader later does it then.
    let settled = leadership.is_leader();
    if settled {
        cluster_pass.recover().await.map_err(|e| format!("database: {e}"))?;
    }
    let reconcilers = Reconcilers::start(
        Parts {
            store: store.clone(),
            gateway: gateway.clone(),
            leadership: leadership.clone(),
            wake,
            metrics: metrics.clone(),
            deployer,
            observer,
            policies: policy_pass,
            clusters: cluster_pass,
        },
        settled,
    );
    let state = AppState {
        leptos_options,
        store: store.clone(),
        auth: auth.clone(),
        metrics,
        metrics_token: settings.metrics_token.clone(),
        hub: hub.clone(),
        gateway: gateway.clone(),
        origin: settings.gateway.origin.clone(),
        leadership,
        services: Services {
            auth: Arc::new(auth),
            users: Arc::new(UsersServiceImpl::new(store.clone(), gateway.clone())),
            clusters: Arc::new(clusters),
            deployments: Arc::new(deployments),
            gateway: Arc::new(GatewayServiceImpl::new(store.clone(), gateway)),
            policies: Arc::new(policies),
        },
    };

    let purge = tokio::spawn(purge_sessions(store.clone(), settings.usage_retention_days));
    let shutdown = shutdown_signal();
    tracing::info!(%addr, database = store_kind(&settings.database_url), "H-MAS listening");
    println!("H-MAS is listening on http://{addr}");
    let proxies = settings.trusted_proxies.clone();
    crate::http::listen::serve(listener, router(state), settings.http, proxies, shutdown, Duration::from_secs(30))
        .await;
    purge.abort();
    if let Some(l) = peers {
        l.abort();
    }
    reconcilers.stop();
    recorder.stop().await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

fn store_kind(url: &str) -> &'static str {
    if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    }
}

async fn purge_sessions(store: Store, usage_days: u32) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        if let Err(e) = store.purge_expired_sessions(now_ms()).await {
            tracing::warn!(error = %e, "purging expired sessions");
        }
        if let Err(e) = store.prune_usage(now_ms() - i64::from(usage_days) * 24 * 3600 * 1000).await {
            tracing::warn!(error = %e, "pruning the request log");
        }
    }
}

fn load_topology(path: Option<&std::path::Path>) -> Result<Topology, String> {
    match path {
        None => Ok(Topology::default_three()),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("sim-topology {}: {e}", p.display()))?;
            Topology::from_yaml(&text)
        }
    }
}

/// Starts the simulated hub and writes its kubeconfigs into `dir`.
pub async fn start_sim(
    topology: Option<&std::path::Path>,
    time_scale: f64,
    tokens_per_second: f64,
    hub_failover: bool,
    hub_addr: Option<std::net::SocketAddr>,
    dir: &std::path::Path,
) -> Result<Sim, String> {
    let topology = load_topology(topology)?;
    let cfg = SimConfig { time_scale, tokens_per_second, hub_failover, ..SimConfig::default() };
    let sim = Sim::start(topology, cfg, hub_addr, Some(&dir.join("state.json")))
        .await
        .map_err(|e| format!("simulated hub: {e}"))?;
    sim.write_kubeconfigs(dir).map_err(|e| format!("kubeconfig-dir {}: {e}", dir.display()))?;
    Ok(sim)
}

/// `hmas sim`: the simulated clusters alone, until SIGTERM.
pub async fn run_sim(args: SimArgs) -> Result<(), String> {
    let sim = start_sim(
        args.sim.topology.as_deref(),
        args.sim.time_scale()?,
        args.sim.tokens_per_second()?,
        !args.sim.hub_defaults,
        args.hub_addr,
        &args.kubeconfig_dir,
    )
    .await?;
    if args.join {
        sim.join_members()?;
    }
    println!(
        "Simulated Karmada hub at {} (kubeconfig: {})",
        sim.hub.url(),
        args.kubeconfig_dir.join("hub.kubeconfig").display()
    );
    for m in sim.members.read().unwrap_or_else(|e| e.into_inner()).iter() {
        println!(
            "  member {} at {} (kubeconfig: {})",
            m.cluster.name,
            m.cluster.url(),
            args.kubeconfig_dir.join(format!("{}.kubeconfig", m.cluster.name)).display()
        );
    }
    println!("Fault controls: GET/POST {}/sim/v1/clusters (hub token)", sim.hub.url());
    shutdown_signal().await;
    Ok(())
}

/// `hmas sim-runtime`: one simulated model server (or Hugging Face Hub) as a process. A `--port`
/// among the runtime's own arguments counts, as the runtime would read it.
pub async fn run_sim_runtime(a: crate::config::SimRuntimeArgs) -> Result<(), String> {
    let in_args = a.args.iter().position(|w| w == "--port").and_then(|i| a.args.get(i + 1)?.parse().ok());
    let port = a
        .port
        .or(in_args)
        .unwrap_or_else(|| app::models::runtime::RuntimeKind::parse(&a.kind).map(|r| r.preset().port).unwrap_or(8080));
    crate::sim::standalone::run(crate::sim::standalone::Options {
        kind: a.kind,
        port,
        download_mb_per_second: a.download_mb_per_second.unwrap_or(50.0),
        model_size_mb: a.model_size_mb,
        tokens_per_second: a.tokens_per_second.unwrap_or(40.0),
        args: a.args,
    })
    .await
    .map_err(|e| format!("sim-runtime: {e}"))
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is called, not when the
/// future is first polled: a signal that arrives right after start-up still stops gracefully.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let term = async move {
            #[cfg(unix)]
            if let Some(mut s) = term {
                s.recv().await;
                return;
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term => {},
        }
        tracing::info!("shutting down: finishing in-flight requests");
    }
}
