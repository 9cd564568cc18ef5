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
use serde_json::json;
use tokio::net::TcpListener;

use crate::auth::Tokens;
use crate::state::{AppState, Converter};
use crate::tls::{self, TlsError};

/// What `cellfed apiserver` configures.
#[derive(Clone)]
pub struct ServerConfig {
    /// Store URL (`sqlite://…`, `mysql://…`, `postgres://…`); ignored when `store` is given.
    pub storage_url: String,
    /// An already opened store (for `cellfed up` and tests).
    pub store: Option<Store>,
    /// Where to listen; port 0 picks a free one (see `Server::local_addr`).
    pub listen: SocketAddr,
    /// Holds `ca.crt`, `serving.crt`, `serving.key`, `tokens`, `kubeconfig`.
    pub data_dir: PathBuf,
    /// Serve plain HTTP instead of HTTPS.
    pub insecure_http: bool,
    /// Static token file (`token,user,uid[,groups]`); None = `<data-dir>/tokens`, created with
    /// one admin token if missing.
    pub token_file: Option<PathBuf>,
    /// Turn authentication off entirely (tests only).
    pub anonymous: bool,
    /// Extra DNS names / IPs for the serving certificate.
    pub tls_hosts: Vec<String>,
    /// In-process CRD converter.
    pub converter: Option<Arc<dyn Converter>>,
    /// `<svc>.<ns>.svc:<port>` → `host:port` for webhook service references.
    pub service_addresses: HashMap<String, String>,
    /// How often the garbage collector looks for work.
    pub gc_interval: Duration,
    /// How often the store's history is compacted (kube-apiserver's `--etcd-compaction-interval`,
    /// default 5 minutes); each round compacts what is older than the revision seen at the
    /// previous one. Zero turns compaction off.
    pub compaction_interval: Duration,
    /// Member-cluster semantics (`cellfed member`); None for the federation apiserver.
    pub member: Option<crate::member::SimConfig>,
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
            tls_hosts: Vec::new(),
            converter: None,
            service_addresses: HashMap::new(),
            gc_interval: Duration::from_millis(500),
            compaction_interval: Duration::from_secs(300),
            member: None,
            table_prefix: "cellfed".into(),
            watch_buffer_bytes: crate::watch::DEFAULT_BUFFER_BYTES,
            watch_buffer_total_bytes: crate::watch::DEFAULT_TOTAL_BYTES,
            conversion_webhook_timeout: crate::conversion::DEFAULT_CONVERSION_TIMEOUT,
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
}

fn ensure_tokens(path: &Path, create: bool) -> Result<(Tokens, Option<String>), ServeError> {
    let err = |m: String| ServeError::ReadTokens {
        path: path.into(),
        message: m,
    };
    if !path.exists() && create {
        let t = tls::random_token();
        tls::write(path, &format!("{t},admin,admin,system:masters\n"))?;
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .and_then(|l| l.split(',').next())
        .map(str::to_string);
    Ok((Tokens::parse(&text).map_err(|e| err(e.to_string()))?, first))
}

/// Creates `default`, `kube-system`, `kube-public`, `kube-node-lease` if missing and loads CRDs.
pub async fn bootstrap(state: &AppState) -> Result<(), crate::error::ApiError> {
    crate::crd::reload(state).await?;
    let Some(res) = state.registry.find("", "v1", "namespaces") else {
        return Ok(());
    };
    let opts = crate::write::WriteOpts {
        field_manager: "cellfed-apiserver".into(),
        ..Default::default()
    };
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        match crate::write::create(state, &res, None, obj, &opts).await {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Server {
    /// Opens the store, bootstraps, prepares TLS/tokens/kubeconfig and binds the socket.
    pub async fn bind(config: ServerConfig) -> Result<Self, ServeError> {
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
        let mut state = AppState::new(store);
        state.converter = config.converter.clone();
        state.conversion_timeout = config.conversion_webhook_timeout;
        state.watches = Arc::new(crate::watch::Buffers::new(
            config.watch_buffer_bytes,
            config.watch_buffer_total_bytes,
        ));
        state.service_addresses = Arc::new(config.service_addresses.clone());
        state.member = config
            .member
            .map(|sim| Arc::new(crate::member::Member::new(sim)));
        let mut token = None;
        if !config.anonymous {
            let (path, create) = match &config.token_file {
                Some(p) => (p.clone(), false),
                None => (config.data_dir.join("tokens"), true),
            };
            let (tokens, first) = ensure_tokens(&path, create)?;
            state.tokens = Some(Arc::new(tokens));
            token = first;
        }
        bootstrap(&state).await?;
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
            (
                Some(tls::server_config(&m)?),
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
        let gc = tokio::spawn(crate::gc::run(self.state.clone(), self.gc_interval));
        let compactor = tokio::spawn(crate::compaction::run(
            self.state.store.clone(),
            self.compaction_interval,
        ));
        let simulator = self
            .state
            .member
            .clone()
            .map(|m| tokio::spawn(crate::member::run_simulator(self.state.clone(), m)));
        let router = crate::router(self.state.clone());
        let acceptor = self.tls.map(tokio_rustls::TlsAcceptor::from);
        let mut conns = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => {
                    let (tcp, _) = match accepted {
                        Ok(x) => x,
                        Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
                    };
                    let svc = TowerToHyperService::new(router.clone());
                    let acceptor = acceptor.clone();
                    conns.spawn(async move {
                        let builder = auto::Builder::new(TokioExecutor::new());
                        let result = match acceptor {
                            Some(a) => match a.accept(tcp).await {
                                Ok(tls) => builder.serve_connection_with_upgrades(TokioIo::new(tls), svc).await,
                                Err(e) => { tracing::debug!(error = %e, "TLS handshake failed"); return; }
                            },
                            None => builder.serve_connection_with_upgrades(TokioIo::new(tcp), svc).await,
                        };
                        if let Err(e) = result {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        // Refuse new connections, stop the background work, end every open connection (watches
        // included) and wait until they are gone: once this returns, the server holds no socket
        // and none of its tasks uses the store any more.
        drop(self.listener);
        gc.abort();
        let _ = gc.await;
        compactor.abort();
        let _ = compactor.await;
        if let Some(s) = simulator {
            s.abort();
            let _ = s.await;
        }
        conns.shutdown().await;
        Ok(())
    }
}

/// Binds and serves until `shutdown` resolves.
pub async fn serve(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    Server::bind(config).await?.run_until(shutdown).await
}
