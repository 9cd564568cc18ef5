//! The HTTP client of conversion and admission webhooks. Every call is bounded in time
//! (connect, handshake, request and response together) and in response size. Connections are
//! kept alive and reused per target — address, server name, scheme, caBundle and the client
//! identity presented (`--admission-control-config-file`) — as
//! kube-apiserver's webhook clients do, so a write admitted by a webhook costs no TCP or TLS
//! handshake once warm. A reused connection the webhook closed meanwhile is replaced once,
//! before any response was read (webhook calls are safe to repeat: a review is a pure
//! question). A call abandoned at its time limit closes its connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use rustls_pki_types::ServerName;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::admission::credentials::Credentials;
use crate::state::AppState;

/// Why a webhook call failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The clientConfig has neither a usable url nor a service.
    #[error("invalid clientConfig: {0}")]
    ResolveTarget(String),
    /// Connecting or the TLS handshake failed.
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    /// The caBundle is not PEM certificates.
    #[error("caBundle: {0}")]
    ParseCaBundle(String),
    /// The TLS client could not be configured.
    #[error("TLS: {0}")]
    ConfigureTls(String),
    /// The HTTP exchange failed.
    #[error("request: {0}")]
    SendRequest(String),
    /// The response is not a successful ConversionReview.
    #[error("response: {0}")]
    ReadResponse(String),
    /// No complete response within the call's time limit.
    #[error("Post \"{url}\": no response within {}s", after.as_secs_f64())]
    Timeout { url: String, after: Duration },
    /// The response body is larger than the call accepts.
    #[error("Post \"{url}\": the response is larger than {limit} bytes")]
    ResponseTooLarge { url: String, limit: usize },
}

pub(crate) struct Target {
    https: bool,
    /// Host name for SNI and the Host header.
    host: String,
    /// Where to connect.
    addr: String,
    path: String,
    /// What names the webhook in `--admission-control-config-file`'s kubeconfig: a URL's
    /// `host[:port]` as written, a service's `name.namespace.svc:port`.
    pub(crate) credentials_target: String,
}

impl Target {
    /// The URL called, for messages.
    pub(crate) fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{}", self.addr, self.path)
    }
}

pub(crate) fn target(state: &AppState, cc: &Value) -> Result<Target, WebhookError> {
    if let Some(url) = cc.get("url").and_then(Value::as_str) {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(WebhookError::ResolveTarget(format!(
                "unsupported url {url}"
            )));
        };
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let host = hostport
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(hostport)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let addr = if hostport.contains(':') && !hostport.ends_with(']') {
            hostport.to_string()
        } else {
            format!("{hostport}:{}", if https { 443 } else { 80 })
        };
        return Ok(Target {
            https,
            host,
            addr,
            path: path.to_string(),
            credentials_target: hostport.to_string(),
        });
    }
    let svc = cc
        .get("service")
        .ok_or_else(|| WebhookError::ResolveTarget("neither url nor service".into()))?;
    let name = svc.get("name").and_then(Value::as_str).unwrap_or_default();
    let ns = svc
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let port = svc.get("port").and_then(Value::as_i64).unwrap_or(443);
    let path = svc.get("path").and_then(Value::as_str).unwrap_or("/");
    let host = format!("{name}.{ns}.svc");
    let key = format!("{host}:{port}");
    let addr = state
        .service_addresses
        .get(&key)
        .cloned()
        .unwrap_or_else(|| key.clone());
    Ok(Target {
        https: true,
        host,
        addr,
        path: path.to_string(),
        credentials_target: key,
    })
}

/// POSTs `body` to the webhook: the whole exchange within `timeout`, a response body of at most
/// `max_response` bytes, presenting `credentials` (a client certificate, a bearer token).
pub(crate) async fn post(
    state: &AppState,
    cc: &Value,
    t: &Target,
    body: Vec<u8>,
    timeout: Duration,
    max_response: usize,
    credentials: Option<Arc<Credentials>>,
) -> Result<Vec<u8>, WebhookError> {
    let call = exchange(
        &state.webhook_clients,
        cc,
        t,
        Bytes::from(body),
        max_response,
        credentials,
    );
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(WebhookError::Timeout {
            url: t.url(),
            after: timeout,
        }),
    }
}

/// Idle connections kept per target.
const MAX_IDLE_PER_TARGET: usize = 16;
/// Targets with idle connections kept (beyond it, the idle connections of all are dropped: a
/// caBundle rotated many times must not keep sockets open).
const MAX_TARGETS: usize = 64;

/// Idle keep-alive connections to webhooks, by target.
#[derive(Default)]
pub struct WebhookClients {
    idle: Mutex<HashMap<PoolKey, Vec<Conn>>>,
}

impl std::fmt::Debug for WebhookClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let idle = self
            .idle
            .lock()
            .map(|m| m.values().map(Vec::len).sum::<usize>())
            .unwrap_or(0);
        f.debug_struct("WebhookClients")
            .field("idle", &idle)
            .finish()
    }
}

impl WebhookClients {
    /// Idle connections held, over all targets.
    pub fn idle(&self) -> usize {
        self.idle
            .lock()
            .map(|m| m.values().map(Vec::len).sum())
            .unwrap_or(0)
    }

    fn take(&self, key: &PoolKey) -> Option<Conn> {
        let mut idle = self.idle.lock().ok()?;
        let conns = idle.get_mut(key)?;
        while let Some(conn) = conns.pop() {
            if !conn.sender.is_closed() {
                return Some(conn);
            }
        }
        None
    }

    fn put(&self, key: PoolKey, conn: Conn) {
        if conn.sender.is_closed() {
            return;
        }
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        if !idle.contains_key(&key) && idle.len() >= MAX_TARGETS {
            idle.clear();
        }
        let conns = idle.entry(key).or_default();
        if conns.len() < MAX_IDLE_PER_TARGET {
            conns.push(conn);
        }
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    https: bool,
    host: String,
    addr: String,
    ca_bundle: String,
    /// The client identity presented ([`Credentials::id`]), empty for none.
    identity: String,
}

/// One HTTP/1.1 connection: its sender, and its task, ended when the connection is dropped.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    _task: AbortOnDrop,
}

/// Ends the connection task when the connection is dropped (or its call abandoned).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn exchange(
    pool: &WebhookClients,
    cc: &Value,
    t: &Target,
    body: Bytes,
    max_response: usize,
    credentials: Option<Arc<Credentials>>,
) -> Result<Vec<u8>, WebhookError> {
    let key = PoolKey {
        identity: credentials
            .as_ref()
            .map(|c| c.id.clone())
            .unwrap_or_default(),
        https: t.https,
        host: t.host.clone(),
        addr: t.addr.clone(),
        ca_bundle: cc
            .get("caBundle")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    };
    let token = credentials.as_ref().and_then(|c| c.token.as_deref());
    let request = || {
        let mut r = http::Request::post(&t.path)
            .header(http::header::HOST, &t.host)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json");
        if let Some(token) = token {
            r = r.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        r.body(Full::new(body.clone()))
            .map_err(|e| WebhookError::SendRequest(e.to_string()))
    };
    if let Some(mut conn) = pool.take(&key)
        && conn.sender.ready().await.is_ok()
    {
        match conn.sender.send_request(request()?).await {
            Ok(resp) => {
                let out = read(resp, t, max_response).await?;
                pool.put(key, conn);
                return Ok(out);
            }
            // closed by the webhook while idle: nothing was answered, ask on a new connection
            Err(e) => {
                tracing::debug!(url = %t.url(), error = %e, "webhook connection reused after close")
            }
        }
    }
    let mut conn = dial(&key, t, credentials.as_deref()).await?;
    let resp = conn
        .sender
        .send_request(request()?)
        .await
        .map_err(|e| WebhookError::SendRequest(e.to_string()))?;
    let out = read(resp, t, max_response).await?;
    pool.put(key, conn);
    Ok(out)
}

/// A new connection to the target: TCP, TLS with the caBundle as the only trust root when
/// https (presenting the client certificate of `credentials`, if any), and the HTTP/1.1
/// handshake.
async fn dial(
    key: &PoolKey,
    t: &Target,
    credentials: Option<&Credentials>,
) -> Result<Conn, WebhookError> {
    let tcp = TcpStream::connect(&t.addr)
        .await
        .map_err(|source| WebhookError::Connect {
            addr: t.addr.clone(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    if !t.https {
        return handshake(hyper_util::rt::TokioIo::new(tcp)).await;
    }
    let pem = base64::engine::general_purpose::STANDARD
        .decode(&key.ca_bundle)
        .map_err(|e| WebhookError::ParseCaBundle(e.to_string()))?;
    let roots = if pem.is_empty() {
        rustls::RootCertStore::empty()
    } else {
        cellfed_pki::roots(&pem).map_err(|e| WebhookError::ParseCaBundle(e.to_string()))?
    };
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| WebhookError::ConfigureTls(e.to_string()))?
    .with_root_certificates(roots);
    let config = match credentials.and_then(|c| c.client_cert.as_ref()) {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain.clone(), key.clone_key())
            .map_err(|e| WebhookError::ConfigureTls(e.to_string()))?,
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from(t.host.clone())
        .map_err(|e| WebhookError::ResolveTarget(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|source| WebhookError::Connect {
            addr: t.addr.clone(),
            source,
        })?;
    handshake(hyper_util::rt::TokioIo::new(tls)).await
}

async fn handshake<I>(io: I) -> Result<Conn, WebhookError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| WebhookError::SendRequest(e.to_string()))?;
    Ok(Conn {
        sender,
        _task: AbortOnDrop(tokio::spawn(conn).abort_handle()),
    })
}

/// The response body, at most `max_response` bytes, when the status is a success.
async fn read(
    resp: http::Response<hyper::body::Incoming>,
    t: &Target,
    max_response: usize,
) -> Result<Vec<u8>, WebhookError> {
    let status = resp.status();
    let too_large = || WebhookError::ResponseTooLarge {
        url: t.url(),
        limit: max_response,
    };
    let announced = resp
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > max_response) {
        return Err(too_large());
    }
    let body = http_body_util::Limited::new(resp.into_body(), max_response)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                WebhookError::ReadResponse(e.to_string())
            }
        })?
        .to_bytes();
    if !status.is_success() {
        return Err(WebhookError::ReadResponse(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    Ok(body.to_vec())
}
