//! The cellfed webhook: CRD conversion between `types.kubefed.io/v1beta1` (clusters) and `v1beta2`
//! (topologies), and validating admission of federated resources, Cells and KubeFedClusters.
//! Conversion is a pure function; admission decides purely over facts read from watch-fed caches
//! of the host ([`facts`]), so a write costs no LIST. It never depends on the apiserver or
//! controller crates; `cellfed up` calls [`convert_objects`] in-process.

pub mod admission;
pub mod conversion;
pub mod facts;
pub mod kubefed;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use serde_json::Value;

pub use conversion::convert_objects;

/// Errors of running the webhook.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Certificate material.
    #[error(transparent)]
    Tls(#[from] tls::Error),
    /// Reading the `--client-ca-file`.
    #[error("--client-ca-file {path}: {source}")]
    ReadClientCa {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Binding the socket.
    #[error("listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What the handlers share.
#[derive(Clone)]
pub struct WebhookState {
    /// Caches of the host's admission facts; None = admission allows everything it cannot check
    /// (conversion-only deployments).
    facts: Option<facts::FactCache>,
}

impl WebhookState {
    /// With a host `client`, starts the admission caches (watches of the KubeFedClusters in
    /// `fed_namespace`, Namespaces and Cells) on the current Tokio runtime; they stop when the
    /// last clone of the state is dropped. Until they have synced, decisions LIST the kinds not
    /// synced yet.
    pub fn new(client: Option<kube::Client>, fed_namespace: impl Into<String>) -> Self {
        Self {
            facts: client.map(|c| facts::FactCache::start(c, fed_namespace)),
        }
    }

    /// Whether admission reads only caches (every cache has completed its first sync); true
    /// without a host client.
    pub fn synced(&self) -> bool {
        self.facts.as_ref().is_none_or(facts::FactCache::synced)
    }

    /// Resolves once [`WebhookState::synced`]; bound it with a timeout.
    pub async fn ready(&self) {
        if let Some(f) = &self.facts {
            f.ready().await;
        }
    }
}

/// `POST /convert`, `POST /validate` and KubeFed's own webhooks ([`kubefed`]), `GET /healthz`,
/// `GET /readyz`. The admission paths answer only an authenticated caller (the apiserver's client
/// certificate, when `--client-ca-file` is set); conversion stays open, as kube-apiserver
/// presents no credentials to conversion webhooks.
pub fn router(state: WebhookState) -> Router {
    let admission = Router::new()
        .route("/validate", post(validate))
        .merge(kubefed::routes())
        .route_layer(axum::middleware::from_fn(authenticated));
    Router::new()
        .route("/convert", post(convert))
        .merge(admission)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(Arc::new(state))
}

/// Who called, as the TLS handshake established it (an extension of every request the
/// [`Webhook`] server serves; absent under `oneshot`, which counts as [`Caller::Anyone`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// No `--client-ca-file`: callers are not authenticated.
    Anyone,
    /// The caller presented a certificate signed by a trusted client CA.
    Verified,
    /// A client CA is configured and the caller presented no certificate.
    Unauthenticated,
}

/// Refuses an unauthenticated caller with kube's 401 Status (`/validate` costs host lookups and
/// answers about tenants: only the apiserver may ask).
async fn authenticated(
    caller: Option<axum::Extension<Caller>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    if caller.is_some_and(|axum::Extension(c)| c == Caller::Unauthenticated) {
        let status = serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Unauthorized: this webhook answers only callers presenting a client certificate of its --client-ca-file",
            "reason": "Unauthorized", "code": 401
        });
        return (http::StatusCode::UNAUTHORIZED, axum::Json(status)).into_response();
    }
    next.run(req).await
}

/// `GET /readyz`: `ok` once the admission caches have synced, else `readyz check failed` with
/// 500 (kube's `?verbose` lists the check by name, never a reason; see
/// [`cellfed_pki::health`]).
async fn ready(
    State(state): State<Arc<WebhookState>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> (http::StatusCode, String) {
    let checks = [cellfed_pki::health::Check {
        name: "admission-caches",
        ok: state.synced(),
    }];
    let report = cellfed_pki::health::report(
        "readyz",
        &checks,
        cellfed_pki::health::verbose(query.as_deref()),
    );
    let code =
        http::StatusCode::from_u16(report.code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    (code, report.body)
}

async fn convert(body: Bytes) -> axum::Json<Value> {
    axum::Json(conversion::review(&body))
}

async fn validate(State(state): State<Arc<WebhookState>>, body: Bytes) -> axum::Json<Value> {
    let review: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return axum::Json(admission::response(
                "",
                Err(admission::Denial {
                    code: 400,
                    reason: "BadRequest",
                    message: format!("the request body is not an AdmissionReview: {e}"),
                }),
            ));
        }
    };
    let bad = |m: &str| {
        axum::Json(admission::response(
            "",
            Err(admission::Denial {
                code: 400,
                reason: "BadRequest",
                message: m.into(),
            }),
        ))
    };
    if review.get("apiVersion").and_then(Value::as_str) != Some("admission.k8s.io/v1")
        || review.get("kind").and_then(Value::as_str) != Some("AdmissionReview")
    {
        return bad("expected apiVersion admission.k8s.io/v1, kind AdmissionReview");
    }
    let Some(req) = review.get("request").filter(|r| r.is_object()) else {
        return bad("the AdmissionReview has no request");
    };
    let uid = req.get("uid").and_then(Value::as_str).unwrap_or_default();
    let group = req
        .pointer("/kind/group")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = req
        .pointer("/kind/kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let namespace = req
        .get("namespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let Some(obj) = req.get("object").filter(|o| o.is_object()) else {
        return axum::Json(admission::response(uid, Ok(())));
    };
    let facts = match &state.facts {
        Some(cache) if admission::uses_facts(group, kind) => match cache
            .facts(&admission::references(group, kind, namespace, obj))
            .await
        {
            Ok(f) => f,
            Err(e) => {
                let d = admission::Denial {
                    code: 500,
                    reason: "InternalError",
                    message: format!("cellfed webhook cannot read the federation: {e}"),
                };
                return axum::Json(admission::response(uid, Err(d)));
            }
        },
        _ => admission::Facts::default(),
    };
    axum::Json(admission::response(
        uid,
        admission::decide(group, kind, namespace, obj, &facts),
    ))
}

/// How to serve.
#[derive(Clone)]
pub struct WebhookConfig {
    /// Listen address (port 0 picks one).
    pub listen: SocketAddr,
    /// kube's `--client-ca-file`: admission reviews (`/validate`) are answered only to callers
    /// presenting a client certificate signed by a CA in this file (the apiserver's, configured
    /// through its `--admission-control-config-file`); a certificate of another CA fails the
    /// handshake, a call without one gets 401. None = anyone may call (development only).
    pub client_ca_file: Option<PathBuf>,
    /// Holds tls.crt/tls.key/ca.crt (generated when missing).
    pub cert_dir: PathBuf,
    /// Extra DNS names/IPs for a generated certificate.
    pub hosts: Vec<String>,
    /// Handler state.
    pub state: WebhookState,
}

/// A bound webhook server.
pub struct Webhook {
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    /// Whether callers of `/validate` must present a client certificate.
    client_auth: bool,
    /// The CA PEM clients must trust (contents of cert_dir/ca.crt, or the serving cert itself).
    pub ca_pem: String,
}

impl Webhook {
    /// Prepares certificates and binds.
    pub async fn bind(config: WebhookConfig) -> Result<Self, Error> {
        let cert = tls::ensure(&config.cert_dir, &config.hosts)?;
        // a mounted pair without ca.crt: its certificate is what callers trust
        let ca_pem = if cert.ca_pem.is_empty() {
            cert.cert_pem.clone()
        } else {
            cert.ca_pem.clone()
        };
        let (tls, client_auth) = match &config.client_ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| Error::ReadClientCa {
                    path: path.clone(),
                    source,
                })?;
                (tls::server_config_with_client_ca(&cert, &pem)?, true)
            }
            None => (tls::server_config(&cert)?, false),
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Listen {
                addr: config.listen,
                source,
            })?;
        Ok(Self {
            listener,
            tls,
            router: router(config.state),
            client_auth,
            ca_pem,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves HTTPS until `shutdown` resolves.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use hyper_util::server::conn::auto;
        use hyper_util::service::TowerToHyperService;
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls);
        // unauthenticated callers can reach this port: cap connections, deadline handshakes
        // and headers, back off on accept errors (see cellfed_pki::listen)
        let limits = cellfed_pki::listen::Limits::default();
        let mut guard = cellfed_pki::listen::Guard::new(self.listener, limits);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                admitted = guard.accept() => {
                    let cellfed_pki::listen::Admitted { tcp, mut slot, .. } = admitted;
                    let router = self.router.clone();
                    let client_auth = self.client_auth;
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let Ok(tls) = slot.complete(acceptor.accept(tcp)).await else { return };
                        let caller = match (client_auth, cellfed_pki::peer_verified(tls.get_ref().1)) {
                            (false, _) => Caller::Anyone,
                            (true, true) => Caller::Verified,
                            (true, false) => Caller::Unauthenticated,
                        };
                        let svc = TowerToHyperService::new(tower::Layer::layer(&axum::Extension(caller), router));
                        let mut builder = auto::Builder::new(TokioExecutor::new());
                        builder
                            .http1()
                            .timer(hyper_util::rt::TokioTimer::new())
                            .header_read_timeout(limits.header_read_timeout);
                        let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                        drop(slot);
                    });
                }
            }
        }
    }
}
