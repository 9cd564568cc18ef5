//! The `galera` backend's database: the nodes given by `--galera-urls`, or a 3-node MariaDB
//! Galera cluster on loopback started for the run with the e2e harness's code
//! (`cellfed_e2e::galera`, the same as `e2e/tests/galera.rs`), stopped and removed at the end;
//! and the `mariadb-local` backend's: one plain MariaDB started by the same code with the same
//! settings (no wsrep), so the cluster is compared with a server on the same disk rather than
//! with the machine's shared one.

use std::path::PathBuf;

use anyhow::{Result, bail};
use cellfed_e2e::galera::Cluster;

/// The nodes of the cluster the run writes to.
pub struct Galera {
    /// One `mysql://` URL per node; the first takes the writes "through one node".
    pub urls: Vec<String>,
    /// The cluster this run started (None with `--galera-urls`), and its directory.
    started: Option<(Cluster, PathBuf)>,
}

impl Galera {
    /// One plain MariaDB started now with the cluster nodes' settings, on the same disk: the
    /// single server the cluster is compared with (`mariadb-local`).
    pub fn single() -> Result<Galera> {
        let dir =
            std::env::temp_dir().join(format!("cellfed-mariadb-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        eprintln!("  starting a private MariaDB in {}", dir.display());
        let server = match Cluster::start_single(&dir) {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                bail!("starting MariaDB: {e}");
            }
        };
        Ok(Galera {
            urls: server.nodes.iter().map(|n| n.url()).collect(),
            started: Some((server, dir)),
        })
    }

    /// The nodes of `urls`, or a cluster of three started now when `urls` is empty.
    pub fn nodes(urls: &[String]) -> Result<Galera> {
        if !urls.is_empty() {
            return Ok(Galera {
                urls: urls.to_vec(),
                started: None,
            });
        }
        let dir = std::env::temp_dir().join(format!("cellfed-galera-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        eprintln!("  starting a 3-node Galera cluster in {}", dir.display());
        let cluster = match Cluster::start(&dir, 3) {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                bail!("starting the Galera cluster: {e}");
            }
        };
        Ok(Galera {
            urls: cluster.nodes.iter().map(|n| n.url()).collect(),
            started: Some((cluster, dir)),
        })
    }
}

impl Drop for Galera {
    fn drop(&mut self) {
        if let Some((cluster, dir)) = self.started.take() {
            drop(cluster);
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
