//! `cellfed apiserver`: the federation plane's Kubernetes-compatible API server on SQL storage.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;

/// Flags of `cellfed apiserver`.
#[derive(Debug, clap::Args)]
pub struct ApiserverArgs {
    /// Storage URL: sqlite://PATH (default, embedded), mysql://USER@HOST:PORT/DB (MySQL, MariaDB,
    /// OceanBase, TiDB) or postgres://USER@HOST:PORT/DB.
    #[arg(long, env = "CELLFED_STORAGE")]
    pub storage: Option<String>,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Directory for the CA, serving certificate, token file and the kubeconfig written for users.
    #[arg(long, default_value = ".cellfed/apiserver")]
    pub data_dir: PathBuf,
    /// Static bearer tokens, kube's format: CSV lines `token,user,uid[,"group1,group2"]`.
    /// Default: DATA_DIR/tokens, created with one admin token (group system:masters) when
    /// missing; that token goes into DATA_DIR/kubeconfig. `--token-file` is an alias.
    #[arg(long = "token-auth-file", visible_alias = "token-file")]
    pub token_file: Option<PathBuf>,
    /// CA bundle (PEM) for x509 client certificates: a client certificate signed by it
    /// authenticates as its CommonName, in its Organizations as groups. Needs TLS.
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// Let requests without credentials in as system:anonymous (group system:unauthenticated),
    /// authorized like any user. Off: they get 401 (except /healthz, /livez, /readyz, /version).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub anonymous_auth: bool,
    /// Authorization modes in order, comma-separated: RBAC (roles and bindings stored in this
    /// apiserver; system:masters may do anything) or AlwaysAllow (every authenticated request is
    /// allowed: tests and local experiments only).
    #[arg(long, value_delimiter = ',', default_value = "RBAC")]
    pub authorization_mode: Vec<cellfed_apiserver::auth::Mode>,
    /// PEM file of public keys (or certificates, or private keys) that verify ServiceAccount
    /// tokens, besides the signing key's own (repeatable).
    #[arg(long = "service-account-key-file")]
    pub service_account_key_files: Vec<PathBuf>,
    /// PEM private key (RSA or ECDSA P-256/P-384) signing ServiceAccount tokens (TokenRequest,
    /// `kubectl create token`). Default: DATA_DIR/sa.key, generated when missing.
    #[arg(long)]
    pub service_account_signing_key_file: Option<PathBuf>,
    /// Issuer (`iss`) of ServiceAccount tokens (repeatable: the first issues, all are accepted).
    /// Default: https://kubernetes.default.svc.cluster.local.
    #[arg(long = "service-account-issuer")]
    pub service_account_issuers: Vec<String>,
    /// Audiences ServiceAccount tokens must name to be accepted here, comma-separated; default:
    /// the issuers.
    #[arg(long, value_delimiter = ',')]
    pub api_audiences: Vec<String>,
    /// Serve plain HTTP instead of HTTPS (local experiments only: no TLS).
    #[arg(long)]
    pub insecure_http: bool,
    /// Extra DNS names or IPs for the serving certificate (repeatable).
    #[arg(long = "tls-host")]
    pub tls_hosts: Vec<String>,
    /// Prefix of the store's tables; replicas of one plane share it, several planes can share
    /// one database with different prefixes.
    #[arg(long, default_value = "cellfed")]
    pub table_prefix: String,
    /// How often the store's history is compacted, as kube-apiserver's flag: each round forgets
    /// what is older than the revision seen at the previous round (one replica per round).
    /// 0 turns compaction off.
    #[arg(long, default_value = "5m", value_parser = super::controller::parse_duration)]
    pub etcd_compaction_interval: std::time::Duration,
    /// As kube-apiserver's flag: how long a request that is not a watch may take before it is
    /// answered 504 Timeout (a request's own shorter `?timeout=` wins).
    #[arg(long, default_value = "1m", value_parser = super::controller::parse_duration)]
    pub request_timeout: std::time::Duration,
    /// SQLite storage only: `full` (the default) syncs every commit to disk, so an acknowledged
    /// write survives a power loss; `normal` syncs at checkpoints only: faster, survives a crash
    /// of the process but may lose the last writes with the machine. Sets `synchronous=` on the
    /// storage URL (see docs/store.md).
    #[arg(long, value_parser = parse_synchronous)]
    pub sqlite_synchronous: Option<cellfed_store::Synchronous>,
    /// kube-apiserver's EncryptionConfiguration file (apiserver.config.k8s.io/v1): which
    /// resources are encrypted in the store and with which keys (aesgcm, aescbc, secretbox,
    /// identity; the first key writes, all read). See docs/security.md for rotation.
    #[arg(long)]
    pub encryption_provider_config: Option<PathBuf>,
    /// kube-apiserver's AdmissionConfiguration file (apiserver.config.k8s.io/v1): the plugins
    /// ValidatingAdmissionWebhook / MutatingAdmissionWebhook name a kubeconfig (`kubeConfigFile`,
    /// absolute) whose users, keyed by webhook host (`name.ns.svc`, `*.svc`, `*`), hold the
    /// client certificate or token presented to admission webhooks. See docs/security.md.
    #[arg(long)]
    pub admission_control_config_file: Option<PathBuf>,
}

fn parse_synchronous(s: &str) -> Result<cellfed_store::Synchronous, String> {
    s.parse().map_err(|e: cellfed_store::Error| e.to_string())
}

impl ApiserverArgs {
    /// The server configuration these flags describe.
    pub fn server_config(&self) -> anyhow::Result<cellfed_apiserver::ServerConfig> {
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating data dir {}", self.data_dir.display()))?;
        let storage = match &self.storage {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("state.db").display()
            ),
        };
        let storage = match self.sqlite_synchronous {
            None => storage,
            Some(_) if !storage.starts_with("sqlite:") => {
                anyhow::bail!("--sqlite-synchronous applies to sqlite:// storage only")
            }
            Some(level) => {
                let sep = if storage.contains('?') { '&' } else { '?' };
                format!("{storage}{sep}synchronous={}", level.as_str())
            }
        };
        let mut config = cellfed_apiserver::ServerConfig::new(storage, self.listen, &self.data_dir);
        config.insecure_http = self.insecure_http;
        config.token_file.clone_from(&self.token_file);
        config.client_ca_file.clone_from(&self.client_ca_file);
        config.anonymous_auth = self.anonymous_auth;
        config
            .authorization_modes
            .clone_from(&self.authorization_mode);
        config
            .service_account_key_files
            .clone_from(&self.service_account_key_files);
        config
            .service_account_signing_key_file
            .clone_from(&self.service_account_signing_key_file);
        config
            .service_account_issuers
            .clone_from(&self.service_account_issuers);
        config.api_audiences.clone_from(&self.api_audiences);
        config.tls_hosts.clone_from(&self.tls_hosts);
        config.table_prefix.clone_from(&self.table_prefix);
        config.compaction_interval = self.etcd_compaction_interval;
        config.request_timeout = self.request_timeout;
        config
            .encryption_provider_config
            .clone_from(&self.encryption_provider_config);
        config
            .admission_control_config_file
            .clone_from(&self.admission_control_config_file);
        Ok(config)
    }
}

/// Runs the API server until Ctrl-C.
pub async fn run(args: ApiserverArgs) -> anyhow::Result<()> {
    let server = cellfed_apiserver::Server::bind(args.server_config()?)
        .await
        .context("starting the apiserver")?;
    eprintln!(
        "cellfed apiserver listening on {}; kubeconfig: {}",
        server.local_addr(),
        server.kubeconfig_path().display()
    );
    eprintln!(
        "try: KUBECONFIG={} kubectl get namespaces",
        server.kubeconfig_path().display()
    );
    server.run_until(super::ctrl_c()).await.context("serving")?;
    Ok(())
}
