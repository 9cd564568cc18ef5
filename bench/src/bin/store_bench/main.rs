//! Store benchmark: for each backend, store creates/updates per second next to raw sqlx
//! single-row inserts into a plain table on the same database in the same run, a list of 10k
//! keys, and watch delivery latency (local and cross-instance). See bench/README.md.
//!
//! `cargo run --release -p cellfed-bench --bin store_bench -- --help`

mod delay;
mod etcd;
mod galera;
mod raw;
mod report;
mod run;

use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;

/// Command line of the store benchmark.
#[derive(Debug, Parser)]
#[command(about = "Benchmark cellfed-store against raw sqlx inserts on SQLite, MySQL, PostgreSQL")]
pub struct Args {
    /// Backends to run, in order: sqlite (synchronous=FULL, the default), sqlite-normal
    /// (synchronous=NORMAL), mysql, postgres, etcd (started by the bench; see etcd.rs), galera
    /// (a MariaDB Galera cluster, see `--galera-urls`), mariadb-local (a private MariaDB started
    /// by the bench with the cluster nodes' settings: the single server to compare galera with).
    #[arg(long, value_delimiter = ',', default_value = "sqlite,mysql,postgres")]
    pub backends: Vec<String>,
    /// MySQL/MariaDB URL.
    #[arg(
        long,
        env = "CELLFED_TEST_MYSQL_URL",
        default_value = "mysql://root@127.0.0.1:3306/test"
    )]
    pub mysql_url: String,
    /// Galera nodes for the `galera` backend, comma-separated `mysql://` URLs (the first takes
    /// the writes "through one node"). Empty (the default): the bench starts a 3-node MariaDB
    /// Galera cluster on loopback for the run, with the same code as the e2e test.
    #[arg(long, value_delimiter = ',')]
    pub galera_urls: Vec<String>,
    /// PostgreSQL URL.
    #[arg(
        long,
        env = "CELLFED_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub postgres_url: String,
    /// Directory for the SQLite database file (default: the system temp dir).
    #[arg(long)]
    pub sqlite_dir: Option<std::path::PathBuf>,
    /// Writes per throughput measurement (raw inserts, store creates, store updates).
    #[arg(long, default_value_t = 2000)]
    pub writes: usize,
    /// Raw inserts and store creates alternate in this many rounds (each of writes/rounds).
    #[arg(long, default_value_t = 10)]
    pub rounds: usize,
    /// Concurrent clients for the second throughput measurement.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 1024)]
    pub value_size: usize,
    /// Keys for the list measurement.
    #[arg(long, default_value_t = 10_000)]
    pub list_keys: usize,
    /// Samples of local watch latency.
    #[arg(long, default_value_t = 1000)]
    pub local_samples: usize,
    /// Samples of cross-instance watch latency (each takes up to one poll interval).
    #[arg(long, default_value_t = 200)]
    pub cross_samples: usize,
    /// Simulated network round trip to MySQL/PostgreSQL, in ms (0 = plain loopback): every
    /// connection, raw and store, goes through a proxy on 127.0.0.1 that delays each direction
    /// by half of it, as if the database ran on another host.
    #[arg(long, default_value_t = 0.0)]
    pub rtt_ms: f64,
    /// Group commit: most writes the store commits in one transaction (1 = every write commits
    /// on its own).
    #[arg(long, default_value_t = 128)]
    pub write_batch: usize,
    /// Poll interval of the watching instance in the cross-instance measurement, in ms.
    #[arg(long, default_value_t = 100)]
    pub poll_ms: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let mut reports = Vec::new();
    for backend in &args.backends {
        eprintln!("== {backend}");
        let report = if backend == "etcd" {
            match etcd::backend(&args).await.context("benchmark on etcd")? {
                Some(report) => report,
                None => continue,
            }
        } else {
            run::backend(&args, backend)
                .await
                .with_context(|| format!("benchmark on {backend}"))?
        };
        println!("{}", report.render());
        reports.push(report);
    }
    println!("{}", report::summary(&reports));
    eprintln!("done in {:.1?}", started.elapsed());
    Ok(())
}
