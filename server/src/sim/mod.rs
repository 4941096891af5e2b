//! The simulated hub: a Kubernetes-compatible API server per cluster (a Karmada hub and N
//! members) on loopback, with Karmada's propagation on the hub and kubelets, a scheduler and
//! simulated model servers on the members. It knows nothing of H-MAS: what works against it is
//! meant to work against a real Karmada.
mod admission;
mod api;
pub mod cluster;
pub mod config;
mod control;
mod karmada;
pub mod member;
mod names;
mod openapi;
mod overrides;
mod patch;
mod protobuf;
mod quantity;
mod rbac;
mod registry;
pub mod resources;
mod runtime;
mod selectors;
pub mod standalone;
mod status;
pub mod store;
mod table;
mod tls;
pub mod topology;
mod workload;

pub use config::SimConfig;
pub use topology::Topology;

use cluster::{Cluster, Peer, TlsListener};
use karmada::Karmada;
use member::Member;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tls::Pki;

/// What the simulation hands out as the clusters' CA (it serves plain HTTP on loopback).
pub const SIM_CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nSIMULATED-HMAS-CA\n-----END CERTIFICATE-----\n";

pub fn random_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// What a simulation keeps across restarts: its CA key, and each cluster's port and credentials.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Saved {
    ca_key_pem: String,
    clusters: std::collections::BTreeMap<String, SavedCluster>,
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct SavedCluster {
    pub port: u16,
    pub token: String,
    pub client_cert: tls::ClientCert,
}

fn load_saved(path: Option<&Path>) -> Saved {
    path.and_then(|p| std::fs::read_to_string(p).ok()).and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

/// The port used before, if it is still free; else any.
async fn bind_again(saved: Option<&SavedCluster>) -> io::Result<tokio::net::TcpListener> {
    if let Some(s) = saved {
        if let Ok(l) = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], s.port))).await {
            return Ok(l);
        }
    }
    tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await
}

pub struct Sim {
    pki: Pki,
    pub hub: Arc<Cluster>,
    pub members: Arc<RwLock<Vec<Arc<Member>>>>,
    pub cfg: Arc<SimConfig>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn serve_cluster(
    cluster: Arc<Cluster>,
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    extra: Option<axum::Router>,
) -> tokio::task::JoinHandle<()> {
    let mut app = api::router(cluster.clone());
    if let Some(extra) = extra {
        app = extra.merge(app);
    }
    let listener = TlsListener {
        inner: listener,
        down: cluster.faults.down.clone(),
        acceptor: tokio_rustls::TlsAcceptor::from(tls),
    };
    tokio::spawn(async move {
        let _ = axum::serve(listener, app.into_make_service_with_connect_info::<Peer>()).await;
    })
}

impl Sim {
    /// Starts the hub (on `hub_addr`, or any free loopback port) and the members. With `state`,
    /// the CA, ports and credentials of the previous run are reused (and saved there), so
    /// kubeconfigs and registrations made against it stay valid; the clusters' objects do not
    /// survive a restart.
    pub async fn start(
        topology: Topology,
        cfg: SimConfig,
        hub_addr: Option<SocketAddr>,
        state: Option<&Path>,
    ) -> io::Result<Sim> {
        let cfg = Arc::new(cfg);
        let saved = load_saved(state);
        let pki = Pki::new(Some(saved.ca_key_pem.as_str()).filter(|k| !k.is_empty())).map_err(io::Error::other)?;
        let tls = pki.server_config().map_err(io::Error::other)?;
        let hub_saved = saved.clusters.get("karmada-apiserver");
        let hub_listener = match hub_addr {
            Some(a) => tokio::net::TcpListener::bind(a).await?,
            None => bind_again(hub_saved).await?,
        };
        let hub = Arc::new(Cluster::new(
            "karmada-apiserver",
            true,
            hub_listener.local_addr()?,
            &topology.kubernetes_version,
            &pki,
            hub_saved,
        ));
        let members: Arc<RwLock<Vec<Arc<Member>>>> = Arc::default();
        let mut tasks = Vec::new();
        for spec in &topology.members {
            let previous = saved.clusters.get(&spec.name);
            let l = bind_again(previous).await?;
            let c = Arc::new(Cluster::new(
                &spec.name,
                false,
                l.local_addr()?,
                &topology.kubernetes_version,
                &pki,
                previous,
            ));
            let m = Member::new(c.clone(), spec.clone(), cfg.clone());
            tasks.push(serve_cluster(c, l, tls.clone(), None));
            members.write().unwrap_or_else(|e| e.into_inner()).push(m);
        }
        let control = control::router(hub.clone(), members.clone());
        tasks.push(serve_cluster(hub.clone(), hub_listener, tls, Some(control)));

        hub.failover.store(cfg.hub_failover, std::sync::atomic::Ordering::Relaxed);
        let karmada = Arc::new(Karmada::new(hub.clone(), members.clone(), cfg.clone()));
        let (ms, tick) = (members.clone(), Duration::from_millis(cfg.tick_ms));
        tasks.push(tokio::spawn(async move {
            let mut interval = tokio::time::interval(tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let all: Vec<Arc<Member>> = ms.read().unwrap_or_else(|e| e.into_inner()).clone();
                for m in &all {
                    m.tick();
                }
                karmada.tick();
            }
        }));
        let sim = Sim { pki, hub, members, cfg, tasks };
        if let Some(p) = state {
            sim.save(p)?;
        }
        Ok(sim)
    }

    fn save(&self, path: &Path) -> io::Result<()> {
        let mut saved = Saved { ca_key_pem: self.pki.ca_key_pem.clone(), ..Default::default() };
        let mut all = vec![self.hub.clone()];
        all.extend(self.members.read().unwrap_or_else(|e| e.into_inner()).iter().map(|m| m.cluster.clone()));
        for c in all {
            if let Some(cert) = &c.admin_cert {
                saved.clusters.insert(
                    c.name.clone(),
                    SavedCluster { port: c.addr.port(), token: c.admin_token.clone(), client_cert: cert.clone() },
                );
            }
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_vec_pretty(&saved).map_err(io::Error::other)?)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(())
    }

    pub fn member(&self, name: &str) -> Option<Arc<Member>> {
        self.members.read().unwrap_or_else(|e| e.into_inner()).iter().find(|m| m.cluster.name == name).cloned()
    }

    pub fn member_names(&self) -> Vec<String> {
        self.members.read().unwrap_or_else(|e| e.into_inner()).iter().map(|m| m.cluster.name.clone()).collect()
    }

    /// A kubeconfig for one cluster with its admin token, as a cloud console would hand it out.
    pub fn kubeconfig(&self, cluster: &Cluster) -> String {
        self.kubeconfig_with(cluster, &format!("    token: {}\n", cluster.admin_token))
    }

    /// The same cluster, authenticating with a client certificate instead of a token.
    pub fn kubeconfig_with_cert(&self, cluster: &Cluster) -> Option<String> {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let c = cluster.admin_cert.as_ref()?;
        Some(self.kubeconfig_with(
            cluster,
            &format!("    client-certificate-data: {}\n    client-key-data: {}\n", b64(&c.cert_pem), b64(&c.key_pem)),
        ))
    }

    fn kubeconfig_with(&self, cluster: &Cluster, user_fields: &str) -> String {
        use base64::Engine;
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.pki.ca_pem);
        let user = format!("{}-admin", cluster.name);
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {n}\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\ncontexts:\n- name: {n}\n  context:\n    cluster: {n}\n    user: {user}\ncurrent-context: {n}\nusers:\n- name: {user}\n  user:\n{user_fields}preferences: {{}}\n",
            n = cluster.name,
            url = cluster.url(),
        )
    }

    /// Writes `hub.kubeconfig`, `<member>.kubeconfig` (token) and `<member>-cert.kubeconfig`
    /// (client certificate), mode 0600: they hold admin credentials.
    pub fn write_kubeconfigs(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let mut out = Vec::new();
        let mut write = |name: &str, text: String| -> io::Result<()> {
            let p = dir.join(format!("{name}.kubeconfig"));
            std::fs::write(&p, text)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
            }
            out.push(p);
            Ok(())
        };
        write("hub", self.kubeconfig(&self.hub))?;
        for m in self.members.read().unwrap_or_else(|e| e.into_inner()).iter() {
            write(&m.cluster.name, self.kubeconfig(&m.cluster))?;
            if let Some(k) = self.kubeconfig_with_cert(&m.cluster) {
                write(&format!("{}-cert", m.cluster.name), k)?;
            }
        }
        Ok(out)
    }

    /// Registers every member in the hub in push mode, as `karmadactl join` would: a Secret with
    /// the member's token and CA in `karmada-cluster`, and a Cluster pointing at it.
    pub fn join_members(&self) -> Result<(), String> {
        use base64::Engine;
        use serde_json::json;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let kind = |k: &str| resources::ResourceType::of_kind(k).expect("known kind");
        let store = &self.hub.store;
        if store.try_get(kind("Namespace"), "", "karmada-cluster").is_none() {
            store
                .create(kind("Namespace"), "", json!({"metadata": {"name": "karmada-cluster"}}))
                .map_err(|e| e.message)?;
        }
        for m in self.members.read().unwrap_or_else(|e| e.into_inner()).iter() {
            let name = &m.cluster.name;
            let secret = json!({"metadata": {"name": name}, "type": "Opaque", "data": {"token": b64(&m.cluster.admin_token), "caBundle": b64(&self.pki.ca_pem)}});
            let cluster = json!({"metadata": {"name": name}, "spec": {"syncMode": "Push", "apiEndpoint": m.cluster.url(), "region": m.spec.region, "zone": m.spec.zone, "secretRef": {"namespace": "karmada-cluster", "name": name}}});
            for (k, ns, obj) in [("Secret", "karmada-cluster", secret), ("Cluster", "", cluster)] {
                if store.try_get(kind(k), ns, name).is_none() {
                    store.create(kind(k), ns, obj).map_err(|e| e.message)?;
                }
            }
        }
        Ok(())
    }

    /// Cuts a member (or the hub) off the network, or brings it back.
    pub fn set_down(&self, name: &str, down: bool) -> bool {
        let c =
            if name == self.hub.name { Some(self.hub.clone()) } else { self.member(name).map(|m| m.cluster.clone()) };
        match c {
            Some(c) => {
                c.faults.down.store(down, std::sync::atomic::Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}
