//! The accept loop, with the limits a public listener needs: a cap on open connections, a
//! deadline for request headers, a pause limit between request body frames, and an idle
//! keep-alive timeout. A connection with a request in flight is never idle, so a streamed answer
//! (or a slow model's first token) holds its connection as long as it takes.
use super::client_addr::TrustedProxies;
use app::services::ClientAddr;
use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use http::Request;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    /// From a connection's first byte of a request to its last header.
    pub header_timeout: Duration,
    /// Longest pause while a request body arrives.
    pub body_timeout: Duration,
    /// A connection with nothing in flight for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(75),
        }
    }
}

/// Serves `router` until `shutdown` resolves, then lets open requests finish (up to `drain`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    proxies: TrustedProxies,
    shutdown: impl std::future::Future<Output = ()>,
    drain: Duration,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopped) = watch::channel(false);
    let proxies = std::sync::Arc::new(proxies);
    tokio::pin!(shutdown);
    loop {
        // At the cap, new connections wait in the kernel's backlog until one closes.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Streamed tokens are small writes: without TCP_NODELAY each could wait for the previous ACK.
        let _ = tcp.set_nodelay(true);
        let conn = Conn { router: router.clone(), peer, limits, proxies: proxies.clone(), stopped: stopped.clone() };
        tokio::spawn(async move {
            conn.run(tcp).await;
            drop(permit);
        });
    }
    let _ = stop.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(drain, slots.acquire_many(all)).await.is_err() {
        tracing::warn!(seconds = drain.as_secs(), "connections still open after the drain period; closing them");
    }
}

struct Conn {
    router: Router,
    peer: SocketAddr,
    limits: Limits,
    proxies: std::sync::Arc<TrustedProxies>,
    stopped: watch::Receiver<bool>,
}

/// What the idle check reads: requests in flight, and when the last one ended.
#[derive(Default)]
struct Activity {
    in_flight: AtomicUsize,
    /// Milliseconds since the connection opened.
    last_ms: AtomicU64,
}

impl Conn {
    async fn run(mut self, tcp: tokio::net::TcpStream) {
        let opened = Instant::now();
        let activity = Arc::new(Activity::default());
        let (router, peer, body_timeout) = (self.router.clone(), self.peer, self.limits.body_timeout);
        let act = activity.clone();
        let proxies = self.proxies.clone();
        let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let (router, act) = (router.clone(), act.clone());
            let client = proxies.client(peer.ip(), req.headers());
            async move {
                act.in_flight.fetch_add(1, Ordering::AcqRel);
                req.extensions_mut().insert(ClientAddr(client));
                let req = req.map(|b| Body::new(TimeoutBody::new(body_timeout, b)));
                let res = router.oneshot(req).await.unwrap_or_else(|e| match e {});
                Ok::<_, std::convert::Infallible>(res.map(|b| Body::new(Tracked { inner: b, act, opened })))
            }
        });
        let mut builder = Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(self.limits.header_timeout);
        builder.http2().timer(TokioTimer::new());
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), svc);
        tokio::pin!(conn);
        let idle = self.limits.idle_timeout;
        let mut tick = tokio::time::interval((idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5)));
        let mut closing = false;
        loop {
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(peer = %peer, error = %e, "connection ended");
                    }
                    return;
                }
                _ = tick.tick(), if !closing => {
                    let quiet = opened.elapsed().saturating_sub(Duration::from_millis(activity.last_ms.load(Ordering::Acquire)));
                    if activity.in_flight.load(Ordering::Acquire) == 0 && quiet >= idle {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
                _ = self.stopped.changed(), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// A response body that marks its request done when it is dropped (finished or abandoned).
struct Tracked {
    inner: Body,
    act: Arc<Activity>,
    opened: Instant,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.act.last_ms.store(self.opened.elapsed().as_millis() as u64, Ordering::Release);
        self.act.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
