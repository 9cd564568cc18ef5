//! The tunnel server: the agent listener (TLS, HTTP/1.1 upgrade, then reverse HTTP/2) and the
//! lifecycle of both listeners. The CONNECT side is in [`crate::proxy`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::auth::{AgentGrant, AuthError, Authenticator};
use crate::metrics::ServerMetrics;
use crate::protocol::{self, Reason};
use crate::registry::Registry;
use crate::tls::{self, ServingCert};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener could not be bound.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The serving certificate is unusable.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// Timeouts and caps of both listeners (DESIGN §9: every listener has handshake and read
/// timeouts and a connection cap).
#[derive(Clone, Debug)]
pub struct Limits {
    /// TLS handshake plus the request head, for agents and proxy clients.
    pub handshake_timeout: Duration,
    /// Concurrent agent connections.
    pub max_agents: usize,
    /// Concurrent proxy client connections.
    pub max_proxy_connections: usize,
    /// HTTP/2 PING interval towards agents; an agent that misses a PING for
    /// `keepalive_timeout` is dropped (its cluster becomes `TunnelDisconnected`).
    pub keepalive_interval: Duration,
    /// See `keepalive_interval`.
    pub keepalive_timeout: Duration,
    /// How long an agent may take to answer a CONNECT stream (it dials its apiserver).
    pub open_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            max_agents: 1024,
            max_proxy_connections: 4096,
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(10),
            open_timeout: Duration::from_secs(10),
        }
    }
}

/// How to run a tunnel server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where agents connect (TLS).
    pub agent_listen: SocketAddr,
    /// Where the controller's CONNECT proxy listens (plain HTTP; also `/metrics`, `/healthz`).
    pub proxy_listen: SocketAddr,
    /// The agent listener's certificate.
    pub cert: ServingCert,
    /// Agent tokens and proxy tokens.
    pub auth: Authenticator,
    /// Timeouts and caps.
    pub limits: Limits,
}

/// What connection handlers share.
pub(crate) struct Shared {
    pub(crate) registry: Registry,
    pub(crate) auth: Authenticator,
    pub(crate) metrics: Arc<ServerMetrics>,
    pub(crate) limits: Limits,
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl Shared {
    /// Resolves when the server stops.
    pub(crate) async fn stopped(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// A bound tunnel server; [`TunnelServer::run_until`] serves it.
pub struct TunnelServer {
    agents: TcpListener,
    proxy: TcpListener,
    tls: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

/// A view of a running server for embedding and tests.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// Live agent connections of `cluster`.
    pub fn agents_connected(&self, cluster: &str) -> usize {
        self.shared.registry.connected(cluster)
    }

    /// The server's metrics.
    pub fn metrics(&self) -> Arc<ServerMetrics> {
        self.shared.metrics.clone()
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

impl TunnelServer {
    /// Binds both listeners (port 0 picks free ports).
    pub async fn bind(config: ServerConfig) -> Result<Self, ServerError> {
        let tls = tokio_rustls::TlsAcceptor::from(tls::server_config(&config.cert)?);
        let (stop, shutdown) = watch::channel(false);
        Ok(Self {
            agents: bind(config.agent_listen).await?,
            proxy: bind(config.proxy_listen).await?,
            tls,
            shared: Arc::new(Shared {
                registry: Registry::default(),
                auth: config.auth,
                metrics: Arc::default(),
                limits: config.limits,
                shutdown,
            }),
            stop,
        })
    }

    /// The agent listener's address.
    pub fn agent_addr(&self) -> SocketAddr {
        self.agents
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The CONNECT proxy's address.
    pub fn proxy_addr(&self) -> SocketAddr {
        self.proxy
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// A handle that outlives `run_until`'s borrow.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
        }
    }

    /// Serves agents and proxy clients until `shutdown` resolves; then closes every
    /// connection (agents reconnect to the next server).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        let agent_slots = Arc::new(Semaphore::new(self.shared.limits.max_agents));
        let proxy_slots = Arc::new(Semaphore::new(self.shared.limits.max_proxy_connections));
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.agents.accept() => {
                    let Ok((tcp, peer)) = accepted else { continue };
                    let Ok(permit) = agent_slots.clone().try_acquire_owned() else {
                        tracing::warn!(%peer, "agent connection refused: connection cap reached");
                        self.shared.metrics.refused_agent("TooManyConnections");
                        continue;
                    };
                    let (shared, tls) = (self.shared.clone(), self.tls.clone());
                    tokio::spawn(async move {
                        tokio::select! {
                            () = agent_connection(shared.clone(), tls, tcp, peer) => {}
                            () = shared.stopped() => {}
                        }
                        drop(permit);
                    });
                }
                accepted = self.proxy.accept() => {
                    let Ok((tcp, peer)) = accepted else { continue };
                    let Ok(permit) = proxy_slots.clone().try_acquire_owned() else {
                        tracing::warn!(%peer, "proxy connection refused: connection cap reached");
                        self.shared.metrics.refused_connect("TooManyConnections");
                        continue;
                    };
                    let shared = self.shared.clone();
                    tokio::spawn(async move {
                        tokio::select! {
                            () = crate::proxy::connection(shared.clone(), tcp) => {}
                            () = shared.stopped() => {}
                        }
                        drop(permit);
                    });
                }
            }
        }
        let _ = self.stop.send(true);
    }
}

/// One agent connection: TLS, the upgrade request, then the reverse HTTP/2 session.
async fn agent_connection(
    shared: Arc<Shared>,
    tls: tokio_rustls::TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) {
    let timeout = shared.limits.handshake_timeout;
    let _ = tcp.set_nodelay(true);
    let stream = match tokio::time::timeout(timeout, tls.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, "agent TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "agent TLS handshake timed out");
            return;
        }
    };
    let (granted_tx, granted_rx) = tokio::sync::oneshot::channel();
    let granted_tx = Arc::new(std::sync::Mutex::new(Some(granted_tx)));
    let svc_shared = shared.clone();
    let service = hyper::service::service_fn(move |req| {
        let (shared, granted_tx) = (svc_shared.clone(), granted_tx.clone());
        async move { Ok::<_, Infallible>(handshake(shared, req, granted_tx, peer).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(%peer, "agent handshake connection: {e}");
    }
    let Ok((grant, upgrade)) = granted_rx.await else {
        return;
    };
    let upgraded = match upgrade.await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(%peer, cluster = grant.cluster, "agent upgrade failed: {e}");
            return;
        }
    };
    serve_agent(&shared, &grant, upgraded, peer).await;
}

type Granted = (AgentGrant, hyper::upgrade::OnUpgrade);
type GrantSlot = Arc<std::sync::Mutex<Option<tokio::sync::oneshot::Sender<Granted>>>>;

fn refuse(status: StatusCode, reason: Reason, message: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(message + "\n")));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        protocol::ERROR_HEADER,
        HeaderValue::from_static(reason.as_str()),
    );
    resp
}

/// Answers the agent's upgrade request: 101 for an authorized agent, else 400/401/403/503
/// with a one-line reason.
async fn handshake(
    shared: Arc<Shared>,
    mut req: Request<Incoming>,
    granted: GrantSlot,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let upgrade_ok = header(header::UPGRADE.as_str())
        .is_some_and(|u| u.eq_ignore_ascii_case(protocol::UPGRADE_PROTOCOL));
    if req.uri().path() != protocol::AGENT_PATH || !upgrade_ok {
        shared.metrics.refused_agent(Reason::BadRequest.as_str());
        return refuse(
            StatusCode::BAD_REQUEST,
            Reason::BadRequest,
            format!(
                "expected GET {} with Upgrade: {}",
                protocol::AGENT_PATH,
                protocol::UPGRADE_PROTOCOL
            ),
        );
    }
    let cluster = header(protocol::CLUSTER_HEADER).unwrap_or_default();
    let auth = header(header::AUTHORIZATION.as_str());
    let token = auth.as_deref().and_then(protocol::bearer_token);
    let grant = match shared.auth.agent(&cluster, token).await {
        Ok(g) => g,
        Err(e) => {
            let (status, reason) = match &e {
                AuthError::MissingToken => (StatusCode::UNAUTHORIZED, Reason::Unauthorized),
                AuthError::NotAuthorized { .. } => (StatusCode::FORBIDDEN, Reason::Forbidden),
                AuthError::BadClusterName { .. } => (StatusCode::BAD_REQUEST, Reason::BadRequest),
                _ => (StatusCode::SERVICE_UNAVAILABLE, Reason::Unauthorized),
            };
            tracing::warn!(%peer, cluster, "agent refused: {e}");
            shared.metrics.refused_agent(reason.as_str());
            return refuse(status, reason, e.to_string());
        }
    };
    let Some(tx) = granted.lock().ok().and_then(|mut g| g.take()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            Reason::BadRequest,
            "one handshake per connection".into(),
        );
    };
    let _ = tx.send((grant, hyper::upgrade::on(&mut req)));
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    resp.headers_mut().insert(
        header::UPGRADE,
        HeaderValue::from_static(protocol::UPGRADE_PROTOCOL),
    );
    resp
}

/// Runs the reverse HTTP/2 session with an authorized agent: registered while it lasts.
async fn serve_agent(
    shared: &Shared,
    grant: &AgentGrant,
    upgraded: hyper::upgrade::Upgraded,
    peer: SocketAddr,
) {
    let limits = &shared.limits;
    let handshake = h2::client::Builder::new()
        .initial_window_size(crate::protocol::STREAM_WINDOW)
        .initial_connection_window_size(crate::protocol::CONNECTION_WINDOW)
        .max_frame_size(crate::protocol::MAX_FRAME_SIZE)
        .handshake::<_, Bytes>(TokioIo::new(upgraded));
    let (sender, mut conn) = match tokio::time::timeout(limits.handshake_timeout, handshake).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => {
            tracing::warn!(%peer, cluster = grant.cluster, "agent HTTP/2 handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::warn!(%peer, cluster = grant.cluster, "agent HTTP/2 handshake timed out");
            return;
        }
    };
    let keepalive = conn.ping_pong().map(|pings| {
        crate::protocol::keepalive(pings, limits.keepalive_interval, limits.keepalive_timeout)
    });
    let id = shared.registry.add(grant, sender);
    shared.metrics.agent(&grant.cluster, true);
    tracing::info!(%peer, cluster = grant.cluster, host = grant.host, "agent connected");
    let ended = match keepalive {
        Some(keepalive) => tokio::select! {
            ended = conn => ended.map_err(|e| e.to_string()),
            why = keepalive => Err(why),
        },
        None => conn.await.map_err(|e| e.to_string()),
    };
    shared.registry.remove(&grant.cluster, id);
    shared.metrics.agent(&grant.cluster, false);
    match ended {
        Ok(()) => tracing::info!(%peer, cluster = grant.cluster, "agent disconnected"),
        Err(e) => tracing::info!(%peer, cluster = grant.cluster, "agent disconnected: {e}"),
    }
}
