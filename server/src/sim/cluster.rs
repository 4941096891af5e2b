//! One simulated cluster (the hub or a member): its object store, credentials, fault switches, and
//! the HTTP listener its API is served on.
use super::rbac::{Identity, Tokens};
use super::status::ApiError;
use super::store::ObjectStore;
use axum::http::HeaderMap;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Switches for failure drills and tests.
#[derive(Default)]
pub struct Faults {
    /// Unreachable: new connections are dropped and open ones reset.
    pub down: Arc<AtomicBool>,
    pub latency_ms: AtomicU64,
    /// Share of API requests answered 503, per thousand.
    pub error_per_mille: AtomicU32,
    /// Pods with readiness gates are run by real agents (`hmas agent` processes pointed at this
    /// cluster) that fetch the model, publish progress and set the gates; the kubelet only starts
    /// the container. Off: the kubelet plays the agent's part too.
    pub external_agents: AtomicBool,
}

pub struct Cluster {
    pub name: String,
    pub hub: bool,
    pub store: ObjectStore,
    pub tokens: Tokens,
    /// The client certificate issued for this cluster's admin kubeconfig.
    pub admin_cert: Option<super::tls::ClientCert>,
    pub admin_token: String,
    pub faults: Faults,
    pub addr: SocketAddr,
    pub kubernetes_version: String,
    /// Answers its model servers are generating right now (what a runtime's metrics would show).
    pub generating: Arc<std::sync::atomic::AtomicUsize>,
    /// Hub only: Karmada runs with cluster failover switched on (the controller manager's
    /// `Failover` gate and NoExecute taint eviction, the webhook's
    /// `--allow-no-execute-taint-policy`); off is `karmadactl init`'s default.
    pub failover: std::sync::atomic::AtomicBool,
    logs: Mutex<HashMap<(String, String), Vec<String>>>,
    /// Resource requests answered, as kube-apiserver counts them in `apiserver_request_total`.
    requests: Mutex<std::collections::BTreeMap<RequestKey, u64>>,
}

/// `apiserver_request_total`'s labels: verb, group, version, resource, subresource, code.
type RequestKey = (&'static str, &'static str, &'static str, &'static str, String, u16);

impl Cluster {
    /// `saved`: the credentials of an earlier run, so kubeconfigs handed out then still work.
    pub fn new(
        name: &str,
        hub: bool,
        addr: SocketAddr,
        kubernetes_version: &str,
        pki: &super::tls::Pki,
        saved: Option<&super::SavedCluster>,
    ) -> Cluster {
        let admin_token = saved.map(|s| s.token.clone()).unwrap_or_else(super::random_token);
        let mut tokens = Tokens::default();
        tokens.static_tokens.insert(admin_token.clone(), Identity::Admin(format!("{name}-admin")));
        let admin_cert = match saved {
            Some(s) => Some(s.client_cert.clone()),
            None => pki.client(&format!("{name}-admin"), "system:masters").ok(),
        };
        if let Some(c) = &admin_cert {
            tokens.cert_identities.insert(c.der.clone(), Identity::Admin(format!("{name}-admin")));
        }
        Cluster {
            name: name.to_string(),
            hub,
            store: ObjectStore::default(),
            tokens,
            admin_cert,
            admin_token,
            faults: Faults::default(),
            addr,
            kubernetes_version: kubernetes_version.to_string(),
            generating: Arc::default(),
            failover: Default::default(),
            logs: Mutex::new(HashMap::new()),
            requests: Mutex::default(),
        }
    }

    /// Counts one answered resource request; `verb` as kube-apiserver labels it (`POST`, `APPLY`, …).
    pub fn count_request(&self, verb: &'static str, res: &super::resources::ResourceType, sub: &str, code: u16) {
        let key = (verb, res.group, res.version, res.plural, sub.to_string(), code);
        *self.requests.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default() += 1;
    }

    /// The Prometheus text of `/metrics`: the request counter, with kube-apiserver's name and labels.
    pub fn metrics_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::from(
            "# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.\n# TYPE apiserver_request_total counter\n",
        );
        for ((verb, group, version, resource, sub, code), n) in
            self.requests.lock().unwrap_or_else(|e| e.into_inner()).iter()
        {
            let _ = writeln!(
                out,
                "apiserver_request_total{{code=\"{code}\",component=\"apiserver\",group=\"{group}\",resource=\"{resource}\",subresource=\"{sub}\",verb=\"{verb}\",version=\"{version}\"}} {n}"
            );
        }
        out
    }

    /// Records an Event about `involved`, as a controller named `component` does.
    pub fn event(&self, component: &str, involved: &serde_json::Value, kind: &str, reason: &str, message: &str) {
        use super::store::{name_of, now_rfc3339, ns_of};
        let ns = if ns_of(involved).is_empty() { "default" } else { ns_of(involved) };
        let now = now_rfc3339();
        let ev = serde_json::json!({
            "metadata": {"generateName": format!("{}.", name_of(involved))},
            "involvedObject": {"kind": involved["kind"], "name": name_of(involved), "namespace": ns_of(involved), "uid": involved["metadata"]["uid"], "apiVersion": involved["apiVersion"]},
            "reason": reason, "message": message, "type": kind, "count": 1,
            "firstTimestamp": now, "lastTimestamp": now, "source": {"component": component}, "reportingComponent": component,
        });
        let events = super::resources::ResourceType::of_kind("Event").expect("events are served");
        let _ = self.store.create(events, ns, ev);
    }

    pub fn is_down(&self) -> bool {
        self.faults.down.load(Ordering::Relaxed)
    }

    pub fn authenticate(&self, headers: &HeaderMap, peer: Option<&Peer>) -> Result<Identity, ApiError> {
        let h = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let cert = peer.and_then(|p| p.cert.as_deref());
        self.tokens.authenticate(&self.store, h, cert)
    }

    pub fn log(&self, ns: &str, pod: &str, line: impl Into<String>) {
        let mut g = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        let v = g.entry((ns.to_string(), pod.to_string())).or_default();
        if v.len() < 500 {
            v.push(line.into());
        }
    }

    pub fn pod_logs(&self, ns: &str, pod: &str) -> Vec<String> {
        self.logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(ns.to_string(), pod.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

/// A listener whose connections fail while `down` is set, as if the network were cut.
pub struct FaultyListener {
    pub inner: TcpListener,
    pub down: Arc<AtomicBool>,
}

impl axum::serve::Listener for FaultyListener {
    type Io = FaultyIo<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((s, a)) if !self.down.load(Ordering::Relaxed) => {
                    return (FaultyIo { inner: s, down: self.down.clone() }, a);
                }
                Ok(_) => continue,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// The same over TLS, as API servers are reached.
pub struct TlsListener {
    pub inner: TcpListener,
    pub down: Arc<AtomicBool>,
    pub acceptor: tokio_rustls::TlsAcceptor,
}

pub type TlsIo = FaultyIo<tokio_rustls::server::TlsStream<TcpStream>>;

impl axum::serve::Listener for TlsListener {
    type Io = TlsIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (s, a) = match self.inner.accept().await {
                Ok(x) => x,
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            };
            if self.down.load(Ordering::Relaxed) {
                continue;
            }
            // A client that never finishes its handshake must not hold up the others for long.
            match tokio::time::timeout(std::time::Duration::from_secs(5), self.acceptor.accept(s)).await {
                Ok(Ok(tls)) => return (FaultyIo { inner: tls, down: self.down.clone() }, a),
                _ => continue,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Who is on the other end of a TLS connection: the client certificate, if one was shown.
#[derive(Clone, Debug, Default)]
pub struct Peer {
    pub cert: Option<Vec<u8>>,
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        let cert = stream.io().inner.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
        Peer { cert }
    }
}

pub struct FaultyIo<S> {
    inner: S,
    down: Arc<AtomicBool>,
}

impl<S> FaultyIo<S> {
    fn cut(&self) -> Option<io::Error> {
        self.down.load(Ordering::Relaxed).then(|| io::Error::new(io::ErrorKind::ConnectionReset, "cluster unreachable"))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FaultyIo<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.cut() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FaultyIo<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(e) = self.cut() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
