//! Running the API server on a socket: configuration, bootstrap (built-in namespaces, CRDs from
//! the store), TLS or plain HTTP, and the background work: garbage collector and compaction.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cellfed_store::Store;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::auth::{Mode, PeerCertificates};
use crate::state::{AppState, Converter, WriteHook};
use crate::tls::{self, TlsError};

mod startup;

pub use startup::{DEFAULT_ISSUER, bootstrap};
use startup::{ensure_tokens, security};

/// What `cellfed apiserver` configures.
#[derive(Clone)]
pub struct ServerConfig {
    /// Store URL (`sqlite://…`, `mysql://…`, `postgres://…`); ignored when `store` is given.
    pub storage_url: String,
    /// An already opened store (for `cellfed up` and tests).
    pub store: Option<Store>,
    /// Where to listen; port 0 picks a free one (see `Server::local_addr`).
    pub listen: SocketAddr,
    /// Holds `ca.crt`, `serving.crt`, `serving.key`, `tokens`, `sa.key`, `kubeconfig`.
    pub data_dir: PathBuf,
    /// Serve plain HTTP instead of HTTPS.
    pub insecure_http: bool,
    /// Static token file, kube's `--token-auth-file` (`token,user,uid[,"group1,group2"]`);
    /// None = `<data-dir>/tokens`, created with one admin token (group `system:masters`) if
    /// missing.
    pub token_file: Option<PathBuf>,
    /// Turn authentication and authorization off entirely: every request is allowed as
    /// `system:unsecured` (tests and benchmarks only).
    pub anonymous: bool,
    /// kube's `--anonymous-auth`: requests without credentials are `system:anonymous` (in
    /// `system:unauthenticated`) instead of 401. The health and version paths accept anonymous
    /// requests either way.
    pub anonymous_auth: bool,
    /// kube's `--client-ca-file`: clients presenting a certificate signed by one of these CAs
    /// authenticate as its CommonName, in its Organizations as groups. Needs TLS.
    pub client_ca_file: Option<PathBuf>,
    /// kube's `--authorization-mode`, in order (default RBAC).
    pub authorization_modes: Vec<Mode>,
    /// kube's `--service-account-key-file`s: public keys (or certificates, or private keys)
    /// verifying ServiceAccount tokens, besides the signing key's own.
    pub service_account_key_files: Vec<PathBuf>,
    /// kube's `--service-account-signing-key-file`; None = `<data-dir>/sa.key`, an ECDSA P-256
    /// key generated when missing.
    pub service_account_signing_key_file: Option<PathBuf>,
    /// kube's `--service-account-issuer`s (the first issues, all are accepted); empty =
    /// [`DEFAULT_ISSUER`].
    pub service_account_issuers: Vec<String>,
    /// kube's `--api-audiences`; empty = the issuers.
    pub api_audiences: Vec<String>,
    /// Extra DNS names / IPs for the serving certificate.
    pub tls_hosts: Vec<String>,
    /// In-process CRD converter.
    pub converter: Option<Arc<dyn Converter>>,
    /// `<svc>.<ns>.svc:<port>` → `host:port` for webhook service references.
    pub service_addresses: HashMap<String, String>,
    /// How long the garbage collector waits before listing the store again after its watch
    /// broke or a write failed (it follows the store's watch otherwise).
    pub gc_interval: Duration,
    /// How often the store's history is compacted (kube-apiserver's `--etcd-compaction-interval`,
    /// default 5 minutes); each round compacts what is older than the revision seen at the
    /// previous one. Zero turns compaction off.
    pub compaction_interval: Duration,
    /// Called on every write before validation (`cellfed member` plugs its member-cluster
    /// behaviour in here); None for the federation apiserver.
    pub write_hook: Option<Arc<dyn WriteHook>>,
    /// Prefix of the store's tables (several planes can share one database).
    pub table_prefix: String,
    /// Bytes of events one watch may have waiting for its client before it is ended with a 410
    /// (default 16 MiB; one event always fits).
    pub watch_buffer_bytes: usize,
    /// Bytes of events all watches together may have waiting (default 256 MiB).
    pub watch_buffer_total_bytes: usize,
    /// How long one call to a CRD conversion webhook may take (default 30 s); admission webhooks
    /// take their own `timeoutSeconds`.
    pub conversion_webhook_timeout: Duration,
    /// kube's `--request-timeout`: how long a request that is not a watch may take before it is
    /// answered 504 Timeout (default 1 minute; a request's own shorter `?timeout=` wins).
    pub request_timeout: Duration,
    /// kube's `--encryption-provider-config`: an EncryptionConfiguration naming the resources
    /// whose values are encrypted in the store, and with which keys (see docs/security.md).
    pub encryption_provider_config: Option<PathBuf>,
    /// kube's `--admission-control-config-file`: an AdmissionConfiguration whose webhook plugins
    /// name the kubeconfig holding what to present to each admission webhook (client
    /// certificates, tokens; see `admission::credentials` and docs/security.md).
    pub admission_control_config_file: Option<PathBuf>,
    /// How connections are admitted: connection cap (below the descriptor limit by default),
    /// TLS handshake and header read deadlines (see `cellfed_pki::listen`).
    pub connection_limits: cellfed_pki::listen::Limits,
}

impl ServerConfig {
    /// HTTPS on `listen` over `storage_url`, data in `data_dir`, defaults elsewhere.
    pub fn new(
        storage_url: impl Into<String>,
        listen: SocketAddr,
        data_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            storage_url: storage_url.into(),
            store: None,
            listen,
            data_dir: data_dir.into(),
            insecure_http: false,
            token_file: None,
            anonymous: false,
            anonymous_auth: false,
            client_ca_file: None,
            authorization_modes: vec![Mode::Rbac],
            service_account_key_files: Vec::new(),
            service_account_signing_key_file: None,
            service_account_issuers: Vec::new(),
            api_audiences: Vec::new(),
            tls_hosts: Vec::new(),
            converter: None,
            service_addresses: HashMap::new(),
            gc_interval: Duration::from_millis(500),
            compaction_interval: Duration::from_secs(300),
            write_hook: None,
            table_prefix: "cellfed".into(),
            watch_buffer_bytes: crate::http::watch::DEFAULT_BUFFER_BYTES,
            watch_buffer_total_bytes: crate::http::watch::DEFAULT_TOTAL_BYTES,
            conversion_webhook_timeout: crate::registry::conversion::DEFAULT_CONVERSION_TIMEOUT,
            request_timeout: crate::http::deadline::DEFAULT_REQUEST_TIMEOUT,
            encryption_provider_config: None,
            admission_control_config_file: None,
            connection_limits: cellfed_pki::listen::Limits::default(),
        }
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Opening the store failed.
    #[error("open store: {0}")]
    OpenStore(#[from] cellfed_store::Error),
    /// Bootstrapping built-in objects failed.
    #[error("bootstrap: {0}")]
    Bootstrap(#[from] crate::error::ApiError),
    /// TLS material or kubeconfig.
    #[error(transparent)]
    PrepareTls(#[from] TlsError),
    /// Reading the token file failed.
    #[error("token file {path}: {message}")]
    ReadTokens { path: PathBuf, message: String },
    /// A client CA bundle or ServiceAccount key could not be used.
    #[error("{flag} {path}: {message}")]
    ReadCredentials {
        flag: &'static str,
        path: PathBuf,
        message: String,
    },
    /// The `--admission-control-config-file` (or a file it names) cannot be used.
    #[error("--admission-control-config-file: {0}")]
    ReadAdmissionConfig(#[from] crate::admission::credentials::Error),
    /// The authentication flags contradict each other.
    #[error("{0}")]
    ConfigureAuth(String),
    /// Binding or accepting on the socket failed.
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A bound server, not yet serving.
pub struct Server {
    state: AppState,
    listener: TcpListener,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    kubeconfig_path: PathBuf,
    gc_interval: Duration,
    compaction_interval: Duration,
    connection_limits: cellfed_pki::listen::Limits,
}

impl Server {
    /// Opens the store, bootstraps, prepares TLS/tokens/kubeconfig and binds the socket.
    pub async fn bind(config: ServerConfig) -> Result<Self, ServeError> {
        // keys, tokens, the kubeconfig and (by default) the database live here
        cellfed_pki::private_dir(&config.data_dir)?;
        let store = match config.store.clone() {
            Some(s) => s,
            None => {
                Store::open_with(
                    cellfed_store::Config::new(&config.storage_url)
                        .with_table_prefix(&config.table_prefix),
                )
                .await?
            }
        };
        let store = match &config.encryption_provider_config {
            Some(path) => store.with_value_transformer(
                crate::storage::encryption::AtRest::from_path(path).map_err(|e| {
                    ServeError::ReadCredentials {
                        flag: "--encryption-provider-config",
                        path: path.clone(),
                        message: e.to_string(),
                    }
                })?,
            ),
            None => store,
        };
        let mut state = AppState::new(store);
        state.converter = config.converter.clone();
        state.conversion_timeout = config.conversion_webhook_timeout;
        state.request_timeout = config.request_timeout;
        state.watches = Arc::new(crate::http::watch::Buffers::new(
            config.watch_buffer_bytes,
            config.watch_buffer_total_bytes,
        ));
        state.service_addresses = Arc::new(config.service_addresses.clone());
        if let Some(path) = &config.admission_control_config_file {
            state.webhook_credentials = Arc::new(crate::admission::credentials::load(path)?);
        }
        state.write_hook = config.write_hook.clone();
        let mut token = None;
        bootstrap(&state).await?;
        if !config.anonymous {
            let (path, create) = match &config.token_file {
                Some(p) => (p.clone(), false),
                None => (config.data_dir.join("tokens"), true),
            };
            let (tokens, first) = ensure_tokens(&path, create)?;
            state.security = Some(Arc::new(security(&config, &state, tokens).await?));
            token = first;
        }
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
        let (tls, url, ca) = if config.insecure_http {
            (None, format!("http://{addr}"), None)
        } else {
            let m = tls::ensure(&config.data_dir, &config.tls_hosts)?;
            let client_ca = state
                .security
                .as_ref()
                .and_then(|s| s.authn.client_ca.as_ref());
            (
                Some(tls::server_config_with_client_ca(&m, client_ca)?),
                format!("https://{addr}"),
                Some(m.ca_pem),
            )
        };
        let kubeconfig_path = config.data_dir.join("kubeconfig");
        tls::write(
            &kubeconfig_path,
            &tls::kubeconfig(&url, ca.as_deref(), token.as_deref()),
        )?;
        Ok(Self {
            state,
            listener,
            addr,
            tls,
            kubeconfig_path,
            gc_interval: config.gc_interval,
            compaction_interval: config.compaction_interval,
            connection_limits: config.connection_limits,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `<data-dir>/kubeconfig`, pointing at this server with the admin token.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The handlers' state (store, registry).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves; open connections (watches) are closed then, before this
    /// returns.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let gc = tokio::spawn(crate::registry::gc::run(
            self.state.clone(),
            self.gc_interval,
        ));
        let compactor = tokio::spawn(crate::storage::compaction::run(
            self.state.store.clone(),
            self.compaction_interval,
        ));
        let rbac = self
            .state
            .security
            .as_ref()
            .filter(|s| s.modes.contains(&Mode::Rbac))
            .map(|s| tokio::spawn(s.rbac.clone().follow(self.state.store.clone())));
        // what other replicas write: CRDs served and webhook configurations called here
        let crds = tokio::spawn(crate::registry::crd::follow(self.state.clone()));
        let webhooks = tokio::spawn(self.state.webhooks.clone().follow(self.state.store.clone()));
        let router = crate::router(self.state.clone());
        let acceptor = self.tls.map(tokio_rustls::TlsAcceptor::from);
        let mut conns = tokio::task::JoinSet::new();
        let limits = self.connection_limits;
        let mut guard = cellfed_pki::listen::Guard::new(self.listener, limits);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                admitted = guard.accept() => {
                    let cellfed_pki::listen::Admitted { tcp, mut slot, .. } = admitted;
                    let router = router.clone();
                    let acceptor = acceptor.clone();
                    conns.spawn(async move {
                        let builder = http_builder(&limits);
                        let result = match acceptor {
                            Some(a) => match slot.complete(a.accept(tcp)).await {
                                Ok(tls) => {
                                    let svc = TowerToHyperService::new(with_peer(router, peer_certificates(&tls)));
                                    builder.serve_connection_with_upgrades(TokioIo::new(tls), svc).await
                                }
                                Err(e) => { tracing::debug!(error = %e, "connection closed before TLS"); return; }
                            },
                            None => {
                                slot.settle();
                                let svc = TowerToHyperService::new(with_peer(router, None));
                                builder.serve_connection_with_upgrades(TokioIo::new(tcp), svc).await
                            }
                        };
                        if let Err(e) = result {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        // the connection's place under the cap is freed only now
                        drop(slot);
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        // Refuse new connections, stop the background work, end every open connection (watches
        // included) and wait until they are gone: once this returns, the server holds no socket
        // and none of its tasks uses the store any more.
        drop(guard);
        gc.abort();
        let _ = gc.await;
        compactor.abort();
        let _ = compactor.await;
        for task in rbac.into_iter().chain([crds, webhooks]) {
            task.abort();
            let _ = task.await;
        }
        conns.shutdown().await;
        Ok(())
    }
}

/// HTTP/1 and HTTP/2 on one connection, with the header read deadline of `limits`.
fn http_builder(limits: &cellfed_pki::listen::Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
}

/// The client certificate chain of a TLS connection, if the client presented one.
fn peer_certificates(
    tls: &tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
) -> Option<PeerCertificates> {
    let chain = tls.get_ref().1.peer_certificates()?;
    Some(PeerCertificates(Arc::new(
        chain.iter().map(|c| c.clone().into_owned()).collect(),
    )))
}

/// The router with the connection's client certificates in every request's extensions.
fn with_peer(
    router: axum::Router,
    peer: Option<PeerCertificates>,
) -> impl tower::Service<
    http::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = axum::routing::future::RouteFuture<std::convert::Infallible>,
> + Clone {
    use tower::ServiceExt as _;
    router.map_request(move |mut req: http::Request<hyper::body::Incoming>| {
        if let Some(peer) = &peer {
            req.extensions_mut().insert(peer.clone());
        }
        req
    })
}

/// Binds and serves until `shutdown` resolves.
pub async fn serve(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    Server::bind(config).await?.run_until(shutdown).await
}
