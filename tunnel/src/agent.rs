//! The agent (`cellfed agent`), next to a member cluster: dials the tunnel server over TLS,
//! authenticates with its cluster's token, then serves the server's HTTP/2 CONNECT streams by
//! dialling its member apiserver — always that one address, whatever host the stream names.
//! Reconnects with capped exponential backoff and jitter.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::FutureExt as _;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rand::Rng as _;
use tokio::net::TcpStream;

use crate::metrics::AgentMetrics;
use crate::protocol::{self, Reason};
use crate::tls;

/// Why one connection attempt or session ended.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The token file could not be read.
    #[error("reading token file {path}: {source}")]
    ReadToken {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The server URL is not `https://host[:port]`.
    #[error("{url:?} is not an https://host[:port] URL")]
    BadServerUrl {
        /// The URL.
        url: String,
    },
    /// TLS configuration failed.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The server could not be reached.
    #[error("connecting to {addr}: {message}")]
    Dial {
        /// host:port.
        addr: String,
        /// Why.
        message: String,
    },
    /// The server refused the agent (wrong token, another cluster's name, …).
    #[error("the tunnel server refused the agent ({status}, {reason}): {message}")]
    Refused {
        /// HTTP status.
        status: StatusCode,
        /// The server's reason header.
        reason: String,
        /// The server's message.
        message: String,
    },
    /// The HTTP exchange with the server failed.
    #[error("tunnel session: {0}")]
    Session(String),
}

/// Where the agent's token comes from.
#[derive(Clone, Debug)]
pub enum AgentToken {
    /// A file, re-read before each connection attempt (rotation needs no restart).
    File(PathBuf),
    /// The token itself.
    Inline(String),
}

impl AgentToken {
    fn read(&self) -> Result<String, AgentError> {
        match self {
            AgentToken::Inline(t) => Ok(t.clone()),
            AgentToken::File(path) => std::fs::read_to_string(path)
                .map(|t| t.trim().to_string())
                .map_err(|source| AgentError::ReadToken {
                    path: path.clone(),
                    source,
                }),
        }
    }
}

/// Reconnect backoff: full jitter over `initial · 2^attempt`, capped.
#[derive(Clone, Debug)]
pub struct Backoff {
    /// First delay's upper bound.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// Upper bound of the delay before attempt `attempt` (0-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        self.initial
            .saturating_mul(2u32.saturating_pow(attempt.min(20)))
            .min(self.max)
    }

    /// A random delay in `[ceiling/2, ceiling]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        half + ceiling
            .saturating_sub(half)
            .mul_f64(rand::thread_rng().r#gen::<f64>())
    }
}

/// How to run an agent.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The tunnel server's agent listener, `https://host:port`.
    pub server: String,
    /// The cluster this agent serves.
    pub cluster: String,
    /// Its token.
    pub token: AgentToken,
    /// The member apiserver, `https://host:port` (or `host:port`); TLS passes through untouched.
    pub apiserver: String,
    /// CA certificate(s) (PEM) that sign the tunnel server's certificate.
    pub ca_pem: String,
    /// Reconnect backoff.
    pub backoff: Backoff,
    /// Dialling the server or the apiserver, and the handshake.
    pub connect_timeout: Duration,
    /// HTTP/2 PING interval and timeout towards the server.
    pub keepalive: Duration,
}

impl AgentConfig {
    /// An agent of `cluster` for `server` and `apiserver` with default timings.
    pub fn new(
        server: &str,
        cluster: &str,
        token: AgentToken,
        apiserver: &str,
        ca_pem: &str,
    ) -> Self {
        Self {
            server: server.into(),
            cluster: cluster.into(),
            token,
            apiserver: apiserver.into(),
            ca_pem: ca_pem.into(),
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(10),
        }
    }
}

/// A configured agent.
pub struct Agent {
    config: AgentConfig,
    tls: tokio_rustls::TlsConnector,
    server_addr: String,
    server_name: rustls_pki_types::ServerName<'static>,
    apiserver_addr: String,
    metrics: Arc<AgentMetrics>,
}

impl Agent {
    /// Checks the configuration and prepares TLS.
    pub fn new(config: AgentConfig) -> Result<Self, AgentError> {
        let bad = || AgentError::BadServerUrl {
            url: config.server.clone(),
        };
        let uri: http::Uri = config.server.parse().map_err(|_| bad())?;
        if uri.scheme_str() != Some("https") {
            return Err(bad());
        }
        let host = uri.host().ok_or_else(bad)?;
        let server_name = rustls_pki_types::ServerName::try_from(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        )
        .map_err(|_| bad())?;
        let server_addr = protocol::dial_address(&config.server).ok_or_else(bad)?;
        let apiserver_addr = if config.apiserver.contains("://") {
            protocol::dial_address(&config.apiserver)
        } else {
            Some(config.apiserver.clone())
        }
        .ok_or_else(|| AgentError::BadServerUrl {
            url: config.apiserver.clone(),
        })?;
        Ok(Self {
            tls: tokio_rustls::TlsConnector::from(tls::client_config(&config.ca_pem)?),
            server_addr,
            server_name,
            apiserver_addr,
            metrics: Arc::default(),
            config,
        })
    }

    /// The agent's metrics.
    pub fn metrics(&self) -> Arc<AgentMetrics> {
        self.metrics.clone()
    }

    /// Connects and serves, reconnecting with backoff, until `shutdown` resolves.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut attempt = 0u32;
        let mut first = true;
        loop {
            if !first {
                self.metrics.reconnects.fetch_add(1, Ordering::Relaxed);
            }
            first = false;
            let outcome = tokio::select! {
                () = &mut shutdown => break,
                outcome = self.session() => outcome,
            };
            self.metrics.connected.store(0, Ordering::Relaxed);
            match outcome {
                Ok(served) => {
                    tracing::info!(
                        cluster = self.config.cluster,
                        "tunnel session ended: {served}"
                    );
                    attempt = 0;
                }
                Err(e @ AgentError::Refused { .. }) => {
                    tracing::error!(cluster = self.config.cluster, "{e}");
                }
                Err(e) => tracing::warn!(cluster = self.config.cluster, "{e}"),
            }
            let delay = self.config.backoff.delay(attempt);
            attempt = attempt.saturating_add(1);
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
        self.metrics.connected.store(0, Ordering::Relaxed);
    }

    /// One connection: dial, upgrade, serve streams until the connection ends. `Ok` once the
    /// server accepted the agent (the backoff starts over), with why it ended.
    pub async fn session(&self) -> Result<String, AgentError> {
        let token = self.config.token.read()?;
        let timeout = self.config.connect_timeout;
        let dial_err = |message: String| AgentError::Dial {
            addr: self.server_addr.clone(),
            message,
        };
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(&self.server_addr))
            .await
            .map_err(|_| dial_err(format!("timed out after {timeout:?}")))?
            .map_err(|e| dial_err(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let stream = tokio::time::timeout(timeout, self.tls.connect(self.server_name.clone(), tcp))
            .await
            .map_err(|_| dial_err("TLS handshake timed out".into()))?
            .map_err(|e| dial_err(format!("TLS: {e}")))?;
        let upgraded = tokio::time::timeout(timeout, self.upgrade(stream, &token))
            .await
            .map_err(|_| AgentError::Session("the upgrade request timed out".into()))??;
        self.metrics.connected.store(1, Ordering::Relaxed);
        self.metrics.connects.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            cluster = self.config.cluster,
            server = self.config.server,
            "connected to the tunnel server"
        );
        let apiserver: Arc<str> = self.apiserver_addr.as_str().into();
        let mut conn = tokio::time::timeout(
            timeout,
            h2::server::Builder::new()
                .max_concurrent_streams(protocol::MAX_STREAMS)
                .initial_window_size(protocol::STREAM_WINDOW)
                .initial_connection_window_size(protocol::CONNECTION_WINDOW)
                .max_frame_size(protocol::MAX_FRAME_SIZE)
                .handshake::<_, Bytes>(TokioIo::new(upgraded)),
        )
        .await
        .map_err(|_| AgentError::Session("the HTTP/2 handshake timed out".into()))?
        .map_err(|e| AgentError::Session(format!("HTTP/2 handshake: {e}")))?;
        let mut keepalive = match conn.ping_pong() {
            Some(pings) => {
                protocol::keepalive(pings, self.config.keepalive, self.config.keepalive).boxed()
            }
            None => std::future::pending().boxed(),
        };
        loop {
            let (req, respond) = tokio::select! {
                why = &mut keepalive => return Ok(why),
                next = conn.accept() => match next {
                    Some(Ok(stream)) => stream,
                    Some(Err(e)) => return Ok(e.to_string()),
                    None => return Ok("closed by the server".to_string()),
                },
            };
            tokio::spawn(stream_request(
                req,
                respond,
                apiserver.clone(),
                self.metrics.clone(),
                timeout,
            ));
        }
    }

    /// Sends the upgrade request; returns the upgraded connection on 101.
    async fn upgrade(
        &self,
        stream: tokio_rustls::client::TlsStream<TcpStream>,
        token: &str,
    ) -> Result<hyper::upgrade::Upgraded, AgentError> {
        let session = |e: hyper::Error| AgentError::Session(e.to_string());
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(session)?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let host = self.server_addr.clone();
        let req = Request::builder()
            .method(Method::GET)
            .uri(protocol::AGENT_PATH)
            .header(header::HOST, host)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, protocol::UPGRADE_PROTOCOL)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(protocol::CLUSTER_HEADER, &self.config.cluster)
            .body(Empty::<Bytes>::new())
            .map_err(|e| AgentError::Session(e.to_string()))?;
        let resp = sender.send_request(req).await.map_err(session)?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            let status = resp.status();
            let reason = resp
                .headers()
                .get(protocol::ERROR_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let body = http_body_util::Limited::new(resp.into_body(), 4096)
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string())
                .unwrap_or_default();
            return Err(AgentError::Refused {
                status,
                reason,
                message: body,
            });
        }
        hyper::upgrade::on(resp).await.map_err(session)
    }
}

/// Answers a stream with `status` and a one-line `message`, without splicing.
fn answer(
    mut respond: h2::server::SendResponse<Bytes>,
    status: StatusCode,
    reason: Option<Reason>,
    message: String,
) {
    let mut resp = Response::new(());
    *resp.status_mut() = status;
    if let Some(r) = reason {
        resp.headers_mut()
            .insert(protocol::ERROR_HEADER, HeaderValue::from_static(r.as_str()));
    }
    if let Ok(mut body) = respond.send_response(resp, false) {
        let _ = body.send_data(Bytes::from(message), true);
    }
}

/// One stream from the server: CONNECT → dial the apiserver, answer 200 and splice.
async fn stream_request(
    req: Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    apiserver: Arc<str>,
    metrics: Arc<AgentMetrics>,
    timeout: Duration,
) {
    if req.method() != Method::CONNECT {
        return answer(
            respond,
            StatusCode::METHOD_NOT_ALLOWED,
            None,
            "CONNECT only".into(),
        );
    }
    let tcp = match tokio::time::timeout(timeout, TcpStream::connect(&*apiserver)).await {
        Ok(Ok(tcp)) => tcp,
        outcome => {
            metrics.dial_failures.fetch_add(1, Ordering::Relaxed);
            let why = match outcome {
                Ok(Err(e)) => e.to_string(),
                _ => format!("timed out after {timeout:?}"),
            };
            return answer(
                respond,
                StatusCode::BAD_GATEWAY,
                Some(Reason::MemberUnreachable),
                format!("the agent cannot reach the member apiserver {apiserver}: {why}"),
            );
        }
    };
    let _ = tcp.set_nodelay(true);
    let Ok(send) = respond.send_response(Response::new(()), false) else {
        return;
    };
    metrics.streams_open.fetch_add(1, Ordering::Relaxed);
    metrics.streams_total.fetch_add(1, Ordering::Relaxed);
    let stream = crate::splice::H2Io::new(send, req.into_body());
    crate::splice::splice(stream, tcp, metrics.bytes.clone()).await;
    metrics.streams_open.fetch_sub(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(3), Duration::from_millis(800));
        assert_eq!(b.ceiling(10), Duration::from_secs(2));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(2));
        for attempt in 0..8 {
            let d = b.delay(attempt);
            assert!(d <= b.ceiling(attempt) && d >= b.ceiling(attempt) / 2);
        }
    }

    #[test]
    fn config_is_checked() {
        let ca = crate::tls::ensure(tempfile::tempdir().unwrap().path(), &[])
            .unwrap()
            .ca_pem;
        let ok = AgentConfig::new(
            "https://127.0.0.1:8132",
            "member1",
            AgentToken::Inline("t".into()),
            "https://127.0.0.1:6443",
            &ca,
        );
        assert!(Agent::new(ok.clone()).is_ok());
        let plain = AgentConfig {
            server: "http://127.0.0.1:8132".into(),
            ..ok.clone()
        };
        assert!(matches!(
            Agent::new(plain),
            Err(AgentError::BadServerUrl { .. })
        ));
        let bare = AgentConfig {
            apiserver: "127.0.0.1:6443".into(),
            ..ok
        };
        assert_eq!(Agent::new(bare).unwrap().apiserver_addr, "127.0.0.1:6443");
    }
}
