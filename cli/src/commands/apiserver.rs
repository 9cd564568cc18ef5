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
    /// Static token file (lines `token,user,uid[,"group1,group2"]`); default: DATA_DIR/tokens,
    /// created with one admin token when missing.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
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
    /// SQLite storage only: `full` (the default) syncs every commit to disk, so an acknowledged
    /// write survives a power loss; `normal` syncs at checkpoints only: faster, survives a crash
    /// of the process but may lose the last writes with the machine. Sets `synchronous=` on the
    /// storage URL (see docs/store.md).
    #[arg(long, value_parser = parse_synchronous)]
    pub sqlite_synchronous: Option<cellfed_store::Synchronous>,
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
        config.tls_hosts.clone_from(&self.tls_hosts);
        config.table_prefix.clone_from(&self.table_prefix);
        config.compaction_interval = self.etcd_compaction_interval;
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
